// The `orthogonality` metric (methods.md §4, OMPQ): from one unlabelled batch (options.samples,
// 32 by default for this metric) through the float model, each layer's output feature map
// F_l (N x d_l) gives the centred Gram matrix K_l = H F_l F_l^T H, H = I - 11^T/N, and
// ORM(i, j) = <K_i, K_j>_F / (||K_i||_F ||K_j||_F) (linear CKA); gamma_i = sum_{j != i} ORM(i, j),
// theta_i = exp(-beta gamma_i). OMPQ has no per-bit loss; its LP maximises sum_i (b_i / 8) c_i with
// c_i = mean(theta_i .. theta_L). For allocators that minimise a loss, Omega_l(b) = c_l (1 - b/8)
// (parts {theta, gamma, c}). extra: {"orm": [[...]], "beta": ...}.
#pragma once

#include <vector>

#include "sensitivity/sensitivity.h"

namespace mpq {

SensitivityResult orthogonality_sensitivity(const SensitivityContext& context);

// OMPQ's importance from each layer's gamma (graph order): theta_i = exp(-beta gamma_i) and
// c_i = mean(theta_i .. theta_L). The metric uses it, and the proxy search re-weights a file by it.
struct OmpqImportance {
  std::vector<double> theta, c;
};
OmpqImportance ompq_importance(const std::vector<double>& gamma, double beta);

// Linear CKA of two feature matrices [N, d1], [N, d2] through their centred Gram matrices.
double linear_cka(const at::Tensor& f1, const at::Tensor& f2);

}  // namespace mpq
