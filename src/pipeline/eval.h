// `mpq eval`: a model's accuracy (top-1, top-5, cross-entropy) on labelled data, and its
// agreement with a reference model on the same inputs, with throughput. The agreement depends on
// what the first output is (sensitivity/output_kind.h): class scores give top-1 agreement and the
// KL of the softmax outputs; per-step probabilities the per-step argmax agreement and KL; a map
// the argmax over channels per position and the KL of the softmax over channels; an embedding
// the cosine similarity. SQNR over every output element for all. Accuracy needs class scores.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "exec/executor.h"
#include "onnx/graph.h"
#include "pipeline/ctc.h"

namespace mpq {

struct EvalOptions {
  int64_t batch_size = 100;  // at most; fewer where the activation budget needs it
  bool progress = true;
  // What the first output is: "auto" (metadata "mpq.output" of the reference, else of the model,
  // else inferred from the first batch's output) or a row of output_kind_table().
  std::string output_kind = "auto";
  // The reference's outputs per batch, filled on the first evaluation and reused by later ones
  // on the same data and batch size (mpq run compares many quantized models with one float
  // model); null = run the reference every time.
  std::vector<at::Tensor>* reference_outputs = nullptr;
  // Text recognition: the first output read by greedy CTC decoding against ctc->labels
  // (pipeline/ctc.h); null = not a recognizer (or no text labels).
  const CtcTask* ctc = nullptr;
};

struct EvalResult {
  int64_t samples = 0;
  bool labelled = false;
  double top1 = 0, top5 = 0;      // fractions in [0, 1]
  double loss = 0;                // mean cross-entropy
  std::string output = "scores";  // the output kind (output_kind.h)
  bool has_reference = false;
  // Class scores: fraction of samples where top-1 equals the reference's. Sequence: per-step
  // argmax agreement, mean over steps and samples. Map: argmax over channels per position, mean
  // over positions and samples. Not for embeddings or single-channel maps (has_agreement).
  bool has_agreement = false;
  double agreement = 0;
  // Mean KL(p_ref || p_model), nats: of the softmax (scores), of the probabilities per step
  // (sequence, mean over steps) or of the softmax over channels per position (map, mean over
  // positions). Not for embeddings (has_kl).
  bool has_kl = false;
  double kl = 0;
  bool has_cosine = false;  // embeddings: mean cosine similarity to the reference
  double cosine = 0;
  double sqnr_db = 0;    // 10 log10(sum ref^2 / sum (ref - model)^2) over all output elements
  bool has_ctc = false;  // options.ctc: character and line accuracy of the greedy CTC reading
  double char_accuracy = 0, line_accuracy = 0;
  double seconds = 0;  // time in the model's forward passes
  double samples_per_second = 0;
};

// Runs `model` (and `reference`, if given) over every sample of `data`; the model's first output
// is the one evaluated. Example: auto r = evaluate(g, *data, {}, nullptr);
EvalResult evaluate(const Graph& model, const Dataset& data, const EvalOptions& options,
                    const Graph* reference);
// The same over executors already set up (e.g. with quantizer hooks); `label` names the model in
// errors. Example: Executor q(qm.graph); attach_quantizers(&q, qm); evaluate(q, "q", *data, {},
// &f);
EvalResult evaluate(const Executor& model, const std::string& label, const Dataset& data,
                    const EvalOptions& options, const Executor* reference);

nlohmann::json to_json(const EvalResult& result);

// The size of the last dimension of the model's first output on one sample of `data` (the class
// count of a classifier or a recognizer): for the checks before any work.
int64_t output_classes(const Graph& model, const Dataset& data);
std::string format_text(const EvalResult& result);

// Per-channel mean and standard deviation of the first `max_samples` samples (after scaling, before
// normalisation), for models that store their own normalisation.
std::pair<std::vector<double>, std::vector<double>> channel_statistics(const Dataset& data,
                                                                       int64_t max_samples);

// Preprocessing a model asks for in its metadata ("mpq.mean", "mpq.std", "mpq.scale"; comma-
// separated numbers), applied over `base` where `base` leaves them unset.
Preprocess model_preprocess(const Graph& model, Preprocess base);

}  // namespace mpq
