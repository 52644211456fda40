// `mpq eval`: a model's accuracy (top-1, top-5, cross-entropy) on labelled data, and its
// agreement with a reference model on the same inputs (top-1 agreement, KL divergence of the
// softmax outputs, SQNR of the logits), with throughput.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "exec/executor.h"
#include "onnx/graph.h"

namespace mpq {

struct EvalOptions {
  int64_t batch_size = 100;
  bool progress = true;
};

struct EvalResult {
  int64_t samples = 0;
  bool labelled = false;
  double top1 = 0, top5 = 0;  // fractions in [0, 1]
  double loss = 0;            // mean cross-entropy
  bool has_reference = false;
  double agreement = 0;  // fraction of samples where top-1 equals the reference's
  double kl = 0;         // mean KL(p_ref || p_model), nats
  double sqnr_db = 0;    // 10 log10(sum ref^2 / sum (ref - model)^2) over all logits
  double seconds = 0;    // time in the model's forward passes
  double samples_per_second = 0;
};

// Runs `model` (and `reference`, if given) over every sample of `data`; the model's first output
// is taken as the logits. Example: auto r = evaluate(g, *data, {}, nullptr);
EvalResult evaluate(const Graph& model, const Dataset& data, const EvalOptions& options,
                    const Graph* reference);
// The same over executors already set up (e.g. with quantizer hooks); `label` names the model in
// errors. Example: Executor q(qm.graph); attach_quantizers(&q, qm); evaluate(q, "q", *data, {},
// &f);
EvalResult evaluate(const Executor& model, const std::string& label, const Dataset& data,
                    const EvalOptions& options, const Executor* reference);

nlohmann::json to_json(const EvalResult& result);
std::string format_text(const EvalResult& result);

// Per-channel mean and standard deviation of the first `max_samples` samples (after scaling, before
// normalisation), for models that store their own normalisation.
std::pair<std::vector<double>, std::vector<double>> channel_statistics(const Dataset& data,
                                                                       int64_t max_samples);

// Preprocessing a model asks for in its metadata ("mpq.mean", "mpq.std", "mpq.scale"; comma-
// separated numbers), applied over `base` where `base` leaves them unset.
Preprocess model_preprocess(const Graph& model, Preprocess base);

}  // namespace mpq
