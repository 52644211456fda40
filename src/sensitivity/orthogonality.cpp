// The `orthogonality` metric: OMPQ's layer orthogonality (methods.md §4). One forward pass of one
// unlabelled batch; each layer's output is reduced to its centred N x N Gram matrix inside a value
// hook, so no feature map outlives its layer's step. Cost: O(N^2 d_l) per layer for the Grams,
// O(L^2 N^2) for the ORM; memory O(L N^2) beyond the forward pass itself.
#include "sensitivity/orthogonality.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "exec/executor.h"

namespace mpq {
namespace {

// Columns of a feature map converted to float64 at a time: keeps the float64 copy at 32 MB
// whatever the layer's size.
constexpr int64_t kChunkElements = int64_t(1) << 22;

// H F F^T H for F = features reshaped to [N, d], in float64.
at::Tensor centred_gram(const at::Tensor& features) {
  at::Tensor f = features.reshape({features.size(0), -1});
  int64_t n = f.size(0), d = f.size(1);
  int64_t chunk = std::max<int64_t>(1, kChunkElements / std::max<int64_t>(1, n));
  at::Tensor gram = at::zeros({n, n}, f.options().dtype(at::kDouble));
  for (int64_t start = 0; start < d; start += chunk) {
    at::Tensor part = f.narrow(1, start, std::min(chunk, d - start)).to(at::kDouble);
    gram.addmm_(part, part.t());
  }
  // H G H = G - row means - column means + grand mean (G is symmetric).
  at::Tensor row = gram.mean(1, /*keepdim=*/true);
  return gram - row - row.t() + gram.mean();
}

// <Ki, Kj>_F / (||Ki||_F ||Kj||_F), in [0, 1] for the positive semi-definite centred Grams (clamped
// against rounding); 0 when either Gram is zero (a feature constant over the batch has no direction
// to compare).
double gram_cka(const at::Tensor& ki, const at::Tensor& kj) {
  double norm = std::sqrt((ki * ki).sum().item<double>() * (kj * kj).sum().item<double>());
  if (!(norm > 0)) return 0;
  return std::clamp((ki * kj).sum().item<double>() / norm, 0.0, 1.0);
}

}  // namespace

double linear_cka(const at::Tensor& f1, const at::Tensor& f2) {
  MPQ_CHECK(f1.dim() >= 1 && f2.dim() >= 1 && f1.size(0) == f2.size(0),
            "linear_cka: expected feature matrices with the same number of samples, found shapes ",
            f1.sizes(), " and ", f2.sizes());
  MPQ_CHECK(f1.size(0) >= 2, "linear_cka: expected at least 2 samples, found ", f1.size(0));
  at::NoGradGuard no_grad;
  return gram_cka(centred_gram(f1), centred_gram(f2));
}

OmpqImportance ompq_importance(const std::vector<double>& gamma, double beta) {
  const size_t count = gamma.size();
  OmpqImportance r{std::vector<double>(count), std::vector<double>(count)};
  for (size_t i = 0; i < count; ++i) r.theta[i] = std::exp(-beta * gamma[i]);
  double tail = 0;
  for (size_t i = count; i-- > 0;) {
    tail += r.theta[i];
    r.c[i] = tail / double(count - i);
  }
  return r;
}

SensitivityResult orthogonality_sensitivity(const SensitivityContext& c) {
  const SensitivityOptions& o = c.options;
  MPQ_CHECK(c.data, "orthogonality needs data (--data)");
  int64_t n = std::min<int64_t>(o.samples, c.data->size());
  MPQ_CHECK(n >= 2, "--samples: orthogonality needs a batch of at least 2 samples (one sample's ",
            "centred Gram matrix is zero), found ", n, " (--samples ", o.samples, ", data ",
            c.data->describe(), ")");
  // One batch of all N samples whatever options.batch_size: each Gram matrix compares every pair
  // of samples, so splitting the batch would mean holding every layer's features at once.
  SensitivityOptions one_batch = o;
  one_batch.batch_size = n;
  SampleBatches batches(*c.data, one_batch);
  MPQ_ASSERT(batches.size() == 1, "expected one batch, found ", batches.size());

  const size_t count = c.layers.size();
  std::vector<at::Tensor> grams(count);
  Executor ex(c.graph);
  for (size_t i = 0; i < count; ++i) {
    const std::string& output = c.graph.nodes[size_t(c.layers[i].node)].outputs[0];
    ex.set_value_hook(output, [&grams, i](const std::string&, const at::Tensor& x) {
      grams[i] = centred_gram(x);
      return x;
    });
  }
  {
    c10::InferenceMode guard;
    ex.run({batches.read(0).x});
  }
  for (size_t i = 0; i < count; ++i) {
    MPQ_ASSERT(grams[i].defined(), "layer '", c.layers[i].name, "': output not computed");
  }

  // ORM, gamma, theta, c.
  std::vector<std::vector<double>> orm(count, std::vector<double>(count, 1.0));
  for (size_t i = 0; i < count; ++i) {
    for (size_t j = i + 1; j < count; ++j) orm[i][j] = orm[j][i] = gram_cka(grams[i], grams[j]);
  }
  std::vector<double> gamma(count, 0.0);
  for (size_t i = 0; i < count; ++i) {
    for (size_t j = 0; j < count; ++j)
      if (j != i) gamma[i] += orm[i][j];
  }
  const OmpqImportance importance = ompq_importance(gamma, o.beta);
  const std::vector<double>& theta = importance.theta;
  const std::vector<double>& cost = importance.c;

  SensitivityResult r;
  r.metric = "orthogonality";
  for (size_t i = 0; i < count; ++i) {
    LayerSensitivity l;
    l.extra = {{"gamma", gamma[i]}, {"theta", theta[i]}, {"c", cost[i]}};
    for (int b : o.bits) {
      BitSensitivity s;
      s.bits = b;
      s.omega = cost[i] * (1.0 - double(b) / 8.0);
      s.parts = {{"theta", theta[i]}, {"gamma", gamma[i]}, {"c", cost[i]}};
      l.weight.push_back(s);
    }
    r.layers.push_back(std::move(l));
  }
  r.extra = {{"orm", orm}, {"beta", o.beta}, {"samples", n}};
  return r;
}

}  // namespace mpq
