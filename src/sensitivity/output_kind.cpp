// The output kinds' table, the inference rule, the label-free losses and the comparisons of
// output_kind.h.
#include "sensitivity/output_kind.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace mpq {
namespace {

constexpr std::array<OutputKindInfo, kOutputKinds> kKinds = {{
    {OutputKind::kScores, "scores", "N x C class scores: KL of softmax, top-1 agreement"},
    {OutputKind::kSequence, "sequence",
     "N x T x C per-step class probabilities: KL per step, per-step argmax agreement"},
    {OutputKind::kMap, "map",
     "N x C x ... dense map: 1/2 squared error, per-position argmax over channels"},
    {OutputKind::kEmbedding, "embedding", "N x D embedding: 1/2 squared error, cosine similarity"},
}};

// Probabilities are clamped here before their log: a step whose reference gives a class no mass
// adds nothing, and a model that gives it none costs log(1e12) at most instead of infinity.
constexpr double kProbabilityFloor = 1e-12;
constexpr double kUnitTolerance = 1e-3;

// [N, C] view of a scores output (N x C x 1 x 1 included).
at::Tensor as_rows(const at::Tensor& y) { return y.reshape({y.size(0), -1}); }

// [N, T, C] view of a sequence: the last axis holds the classes, the ones between are steps.
at::Tensor as_steps(const at::Tensor& y) {
  MPQ_CHECK(y.dim() >= 2, "a sequence output needs N x T x C, found shape ", y.sizes());
  return y.reshape({y.size(0), -1, y.size(-1)});
}

bool trailing_ones(const at::Tensor& y) {
  for (int64_t d = 2; d < y.dim(); ++d)
    if (y.size(d) != 1) return false;
  return true;
}

}  // namespace

const std::array<OutputKindInfo, kOutputKinds>& output_kind_table() { return kKinds; }

const char* output_kind_name(OutputKind kind) {
  for (const auto& k : kKinds)
    if (k.kind == kind) return k.name;
  MPQ_ASSERT(false, "output kind ", int(kind), " has no row");
}

std::vector<std::string> output_kind_names() {
  std::vector<std::string> names;
  for (const auto& k : kKinds) names.push_back(k.name);
  return names;
}

OutputKind find_output_kind(const std::string& name) {
  std::string names;
  for (const auto& k : kKinds) {
    if (name == k.name) return k.kind;
    names += std::string(names.empty() ? "" : ", ") + k.name;
  }
  MPQ_FAIL("expected an output kind (", names, "), found '", name, "'");
}

OutputKind infer_output_kind(const Graph& model, const at::Tensor& sample_output) {
  auto it = model.metadata.find(kOutputKindKey);
  if (it != model.metadata.end()) {
    try {
      return find_output_kind(it->second);
    } catch (const Error& e) {
      MPQ_FAIL(model.source, ": metadata '", kOutputKindKey, "': ", e.what());
    }
  }
  at::NoGradGuard no_grad;
  const at::Tensor& y = sample_output;
  MPQ_CHECK(y.dim() >= 1 && y.size(0) > 0 && y.numel() > 0, model.source,
            ": expected the first output to have a batch axis and values, found shape ", y.sizes());
  at::Tensor v = y.detach().to(at::kDouble);
  if (v.dim() >= 2 && trailing_ones(v)) {
    at::Tensor rows = as_rows(v);
    if (rows.size(1) < 2) return OutputKind::kScores;
    bool probabilities = rows.min().item<double>() >= 0 &&
                         (rows.sum(1) - 1).abs().max().item<double>() <= kUnitTolerance;
    bool unit = (rows.norm(2, {1}) - 1).abs().max().item<double>() <= kUnitTolerance;
    return unit && !probabilities ? OutputKind::kEmbedding : OutputKind::kScores;
  }
  if (v.dim() == 3 && v.size(2) > 1 && v.min().item<double>() >= -kUnitTolerance &&
      v.max().item<double>() <= 1 + kUnitTolerance &&
      (v.sum(2) - 1).abs().max().item<double>() <= kUnitTolerance)
    return OutputKind::kSequence;
  return OutputKind::kMap;
}

std::string output_kind(const Graph& model, const at::Tensor& sample_output) {
  return output_kind_name(infer_output_kind(model, sample_output));
}

OutputKind model_output_kind(const Executor& model, const Dataset& data) {
  const Graph& g = model.graph();
  auto it = g.metadata.find(kOutputKindKey);
  if (it != g.metadata.end()) return infer_output_kind(g, at::Tensor());
  MPQ_CHECK(data.size() > 0, "data ", data.describe(), ": expected at least one sample");
  std::vector<int64_t> first(size_t(std::min<int64_t>(8, data.size())));
  std::iota(first.begin(), first.end(), 0);
  c10::InferenceMode guard;
  return infer_output_kind(g, model.run({data.read(first).x})[0]);
}

OutputKind model_output_kind(const Graph& model, const Dataset& data) {
  return model_output_kind(Executor(model), data);
}

at::Tensor label_free_loss(OutputKind kind, const at::Tensor& output, const at::Tensor& reference) {
  MPQ_ASSERT(reference.defined(), "the label-free loss needs the float model's output");
  MPQ_CHECK(output.sizes() == reference.sizes(), "label-free loss: the output's shape ",
            output.sizes(), " differs from the float model's ", reference.sizes());
  const at::Tensor ref = reference.detach();
  switch (kind) {
    case OutputKind::kScores: {
      at::Tensor z = as_rows(output);
      at::Tensor log_p = at::log_softmax(ref.reshape({z.size(0), -1}), 1);
      at::Tensor log_q = at::log_softmax(z, 1);
      return (log_p.exp() * (log_p - log_q)).sum(1).mean();
    }
    case OutputKind::kSequence: {
      at::Tensor p = as_steps(ref), q = as_steps(output);
      at::Tensor kl =
          p * (p.clamp_min(kProbabilityFloor).log() - q.clamp_min(kProbabilityFloor).log());
      return kl.sum(2).mean();
    }
    case OutputKind::kMap:
    case OutputKind::kEmbedding:
      return 0.5 * (output - ref).square().sum() / double(output.size(0));
  }
  MPQ_ASSERT(false, "output kind ", int(kind), " has no loss");
}

void OutputComparison::add(const at::Tensor& output, const at::Tensor& reference) {
  MPQ_CHECK(output.sizes() == reference.sizes(), "the output's shape ", output.sizes(),
            " differs from the reference's ", reference.sizes());
  MPQ_CHECK(output.dim() >= 1, "expected a batch axis, found a scalar output");
  at::NoGradGuard no_grad;
  const int64_t n = output.size(0);
  switch (kind) {
    case OutputKind::kScores: {
      // The class-score sums exactly as eval and delta-loss always computed them.
      at::Tensor z = as_rows(output), r = as_rows(reference);
      has_agreement = has_kl = true;
      agreement += z.argmax(1).eq(r.argmax(1)).sum().item<double>();
      at::Tensor logp = at::log_softmax(z, 1), ref_logp = at::log_softmax(r, 1);
      kl += (ref_logp.exp() * (ref_logp - logp)).sum().item<double>();
      break;
    }
    case OutputKind::kSequence: {
      at::Tensor q = as_steps(output), p = as_steps(reference);
      has_agreement = has_kl = true;
      agreement += q.argmax(2).eq(p.argmax(2)).to(at::kDouble).mean(1).sum().item<double>();
      at::Tensor step_kl =
          p * (p.clamp_min(kProbabilityFloor).log() - q.clamp_min(kProbabilityFloor).log());
      kl += step_kl.sum(2).to(at::kDouble).mean(1).sum().item<double>();
      break;
    }
    case OutputKind::kMap: {
      // Channels on axis 1, positions on the axes after it.
      if (output.dim() >= 2 && output.size(1) > 1) {
        at::Tensor y = output.reshape({n, output.size(1), -1});
        at::Tensor r = reference.reshape({n, output.size(1), -1});
        has_agreement = has_kl = true;
        agreement += y.argmax(1).eq(r.argmax(1)).to(at::kDouble).mean(1).sum().item<double>();
        at::Tensor logp = at::log_softmax(y, 1), ref_logp = at::log_softmax(r, 1);
        kl += (ref_logp.exp() * (ref_logp - logp))
                  .sum(1)
                  .to(at::kDouble)
                  .mean(1)
                  .sum()
                  .item<double>();
      }
      break;
    }
    case OutputKind::kEmbedding: {
      has_cosine = true;
      cosine += at::cosine_similarity(as_rows(output).to(at::kDouble),
                                      as_rows(reference).to(at::kDouble), 1)
                    .sum()
                    .item<double>();
      break;
    }
  }
  signal += reference.pow(2).sum().item<double>();
  noise += (reference - output).pow(2).sum().item<double>();
  samples += n;
}

double OutputComparison::sqnr_db() const {
  return noise > 0 ? 10 * std::log10(signal / noise) : std::numeric_limits<double>::infinity();
}

}  // namespace mpq
