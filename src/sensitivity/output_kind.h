// What a model's first output means, and how mpq compares it with the float model's output when
// there are no labels or the output is not class scores. The kind decides the label-free loss the
// sensitivity metrics differentiate (sensitivity.h) and the agreement `mpq eval --ref` reports
// (pipeline/eval.h). One row per kind (output_kind_table()):
//   scores     N x C class scores (logits or probabilities). Loss: KL(softmax(ref) || softmax(y))
//              over the class axis, mean over samples. Agreement: top-1.
//   sequence   N x T x C per-step class probabilities (a Softmax over the last axis already in the
//              model). Loss: KL(ref_t || y_t) of the probabilities themselves (log of the output
//              clamped at 1e-12, not log_softmax of it) per step, mean over steps and samples.
//              Agreement: per-step argmax, mean over steps.
//   map        N x C x ... dense outputs (a detection or segmentation map, any regression).
//              Loss: 1/2 sum_i (y_i - ref_i)^2 per sample, mean over samples. Agreement: argmax
//              over the channel axis (1) per position, mean over positions; KL of the softmax over
//              that axis per position (neither for a single channel).
//   embedding  N x D vectors, L2-normalised or not. Loss: as map. Agreement: cosine similarity,
//              mean over samples (reported as "cosine"); no KL.
// Why 1/2 sum of squares: it is the KL between unit Gaussians centred on the two outputs,
// KL(N(ref, I) || N(y, I)) = 1/2 ||y - ref||^2, the Gaussian-likelihood analogue of the KL used for
// class scores. Its Hessian at the float model is J^T J, which is the true Fisher of that
// likelihood (fisher.h draws y_float + N(0, I) targets), so hessian, fisher and delta-loss measure
// the same quantity on the same scale, as they do for class scores.
// SQNR, 10 log10(sum ref^2 / sum (ref - y)^2) over every element, is reported for every kind.
//
// Inference (infer_output_kind), for models from anywhere:
//   1. the model's metadata "mpq.output" (scores, sequence, map or embedding), when present;
//   2. else from the float output y on a few samples (batch axis first):
//      - rank 2, or rank > 2 with every axis after the second of size 1 (N x C x 1 x 1):
//        scores when the rows are probabilities (entries >= 0, summing to 1) or are not of unit
//        L2 norm; embedding when every row has unit L2 norm (|norm - 1| <= 1e-3) and C > 1;
//      - rank 3 whose entries lie in [0, 1] and whose last axis sums to 1 (within 1e-3) at every
//        step, with more than one class: sequence;
//      - anything else (rank >= 3 otherwise, or rank 1): map.
//   A sequence of raw logits (no Softmax) or a channels-last map is inferred as a map with
//   channels on axis 1; set the metadata (or --output-kind) for those.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "exec/executor.h"
#include "onnx/graph.h"

namespace mpq {

enum class OutputKind { kScores, kSequence, kMap, kEmbedding };

struct OutputKindInfo {
  OutputKind kind;
  const char* name;         // as in metadata, options and JSON
  const char* description;  // one line, for --help
};
inline constexpr int kOutputKinds = 4;
const std::array<OutputKindInfo, kOutputKinds>& output_kind_table();
const char* output_kind_name(OutputKind kind);
std::vector<std::string> output_kind_names();  // the table's names, in order
// Example: find_output_kind("map") == OutputKind::kMap; throws listing the table.
OutputKind find_output_kind(const std::string& name);

// The metadata key a model states its output kind in.
inline constexpr const char* kOutputKindKey = "mpq.output";

// The rule above, from `model`'s metadata or its first output on a few samples.
// Example: OutputKind k = infer_output_kind(g, Executor(g).run({x})[0]);
OutputKind infer_output_kind(const Graph& model, const at::Tensor& sample_output);
// The same, by name ("scores", "sequence", "map", "embedding").
std::string output_kind(const Graph& model, const at::Tensor& sample_output);
// Runs `model` on the first (up to 8) samples of `data` unless its metadata says the kind.
// Example: if (model_output_kind(g, *data) != OutputKind::kScores) options.label_free = true;
OutputKind model_output_kind(const Executor& model, const Dataset& data);
OutputKind model_output_kind(const Graph& model, const Dataset& data);

// The label-free loss of `output` against the float model's `reference` (same shape; detached
// here), averaged over the batch, per the table above.
at::Tensor label_free_loss(OutputKind kind, const at::Tensor& output, const at::Tensor& reference);

// Running sums of how far outputs are from reference outputs, per the table above. Example:
//   OutputComparison c(kind); for (...) c.add(y, ref); double a = c.agreement / c.samples;
struct OutputComparison {
  explicit OutputComparison(OutputKind kind) : kind(kind) {}
  void add(const at::Tensor& output, const at::Tensor& reference);
  double sqnr_db() const;  // +inf when output == reference

  OutputKind kind;
  int64_t samples = 0;
  // Which sums mean something for this kind and shape (set by add()).
  bool has_agreement = false, has_kl = false, has_cosine = false;
  double agreement = 0;  // sum over samples of the fraction of positions whose argmax agrees
  double kl = 0;         // sum over samples of the mean KL per position, nats
  double cosine = 0;     // sum over samples of the cosine similarity
  double signal = 0, noise = 0;
};

}  // namespace mpq
