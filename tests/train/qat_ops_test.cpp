// The differentiable pieces of QAT and SDQ (train/qat_ops.h) against finite differences of the
// function each backward claims to differentiate: LSQ against its straight-through surrogate (the
// rounding offset held fixed), the Gumbel choice against its sigmoid relaxation (the noise held
// fixed), distillation and bin regularization against themselves (smooth where evaluated).
#include "train/qat_ops.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "quant/scheme.h"

namespace mpq {
namespace {

// Central differences of a scalar function of one tensor (double precision).
at::Tensor numeric_gradient(const std::function<double(const at::Tensor&)>& f, const at::Tensor& x,
                            double h = 1e-6) {
  at::Tensor g = at::zeros_like(x);
  at::Tensor flat = x.reshape({-1});
  for (int64_t i = 0; i < flat.numel(); ++i) {
    at::Tensor up = flat.clone(), down = flat.clone();
    up[i] += h;
    down[i] -= h;
    g.reshape({-1})[i] = (f(up.reshape(x.sizes())) - f(down.reshape(x.sizes()))) / (2 * h);
  }
  return g;
}

at::Tensor analytic_gradient(const std::function<at::Tensor(const at::Tensor&)>& f,
                             const at::Tensor& x) {
  at::Tensor leaf = x.clone().requires_grad_(true);
  f(leaf).backward();
  return leaf.grad();
}

TEST(QatOps, LsqForwardIsTheSchemesFakeQuantization) {
  at::Tensor x = at::randn({4, 16}, at::kFloat) * 2;
  QParams p =
      params_from_range(at::full({}, -3.0), at::full({}, 2.5), 4, find_scheme("affine-tensor"));
  at::Tensor y = lsq_fake_quantize(x, p.scale, p.zero_point, p.qmin, p.qmax, 0.3);
  EXPECT_TRUE(at::allclose(y, fake_quantize(x, p), 0, 1e-6));
}

TEST(QatOps, LsqGradientsMatchFiniteDifferencesOfTheSurrogate) {
  // Values inside and outside the grid's range; none on a rounding boundary.
  at::Tensor x = at::tensor({-2.3, -0.61, -0.07, 0.18, 0.44, 0.97, 1.3, 4.2}, at::kDouble);
  at::Tensor s = at::full({}, 0.27, at::kDouble), z = at::full({}, 1.0, at::kDouble);
  const int64_t qmin = -4, qmax = 3;
  const double g = 0.5;
  // The surrogate: rounding replaced by the identity plus the offset it had at this point.
  at::Tensor v0 = at::clamp(x / s + z, double(qmin), double(qmax));
  at::Tensor offset = at::round(v0) - v0;
  auto surrogate = [&](const at::Tensor& xs, const at::Tensor& ss) {
    at::Tensor v = at::clamp(xs / ss + z, double(qmin), double(qmax));
    return (v + offset - z) * ss;
  };
  at::Tensor weights = at::linspace(0.5, 1.5, x.numel(), at::kDouble);  // a generic direction
  at::Tensor gx = analytic_gradient(
      [&](const at::Tensor& xs) {
        return (lsq_fake_quantize(xs, s, z, qmin, qmax, g) * weights).sum();
      },
      x);
  at::Tensor nx = numeric_gradient(
      [&](const at::Tensor& xs) { return (surrogate(xs, s) * weights).sum().item<double>(); }, x);
  EXPECT_TRUE(at::allclose(gx, nx, 1e-6, 1e-6)) << gx << nx;
  at::Tensor gs = analytic_gradient(
      [&](const at::Tensor& ss) {
        return (lsq_fake_quantize(x, ss, z, qmin, qmax, g) * weights).sum();
      },
      s);
  at::Tensor ns = numeric_gradient(
      [&](const at::Tensor& ss) { return (surrogate(x, ss) * weights).sum().item<double>(); }, s);
  // The gradient that reaches the scale is LSQ's scaled by g.
  EXPECT_NEAR(gs.item<double>(), g * ns.item<double>(), 1e-6);
  // And that is LSQ's formula: round(v) - v inside, qmin - z / qmax - z outside.
  at::Tensor v = x / s + z;
  at::Tensor inside = (v >= qmin) & (v <= qmax);
  at::Tensor formula =
      at::where(inside, at::round(v) - v,
                at::where(v < qmin, at::full_like(v, qmin - 1.0), at::full_like(v, qmax - 1.0)));
  EXPECT_NEAR(gs.item<double>(), g * (formula * weights).sum().item<double>(), 1e-9);
}

TEST(QatOps, GumbelChoiceIsExactInForwardAndFollowsItsRelaxation) {
  at::manual_seed(5);
  const double beta = 0.3, tau = 0.7;
  at::Tensor b = at::full({}, beta, at::kDouble);
  // Forward: exactly 0 or 1, 1 with probability beta.
  double ones = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    double h = st_gumbel_choice(b, logistic_noise(b), tau).item<double>();
    ASSERT_TRUE(h == 0.0 || h == 1.0) << h;
    ones += h;
  }
  EXPECT_NEAR(ones / n, beta, 0.01);  // 3 standard errors
  // Backward: the derivative of sigmoid((logit(beta) + u) / tau) for the same noise u.
  for (double u : {-1.3, -0.2, 0.4, 2.0}) {
    at::Tensor noise = at::full({}, u, at::kDouble);
    at::Tensor g = analytic_gradient(
        [&](const at::Tensor& bb) { return st_gumbel_choice(bb, noise, tau) * 3.0; }, b);
    at::Tensor ng = numeric_gradient(
        [&](const at::Tensor& bb) {
          double logit = std::log(bb.item<double>() / (1 - bb.item<double>()));
          return 3.0 / (1 + std::exp(-(logit + u) / tau));
        },
        b);
    EXPECT_NEAR(g.item<double>(), ng.item<double>(), 1e-6) << u;
  }
}

TEST(QatOps, CurvatureCorrectionMakesTheChoiceGradientExactOnAQuadratic) {
  // L(w) = sum a (w - t)^2 / 2, so H = diag(a); f(h) = L(low + h delta).
  at::manual_seed(6);
  at::Tensor a = at::rand({40}, at::kDouble) + 0.1, t = at::randn({40}, at::kDouble);
  at::Tensor low = at::randn({40}, at::kDouble), delta = at::randn({40}, at::kDouble);
  auto loss = [&](const at::Tensor& w) { return (a * (w - t).square()).sum() / 2; };
  const double exact = (loss(low + delta) - loss(low)).item<double>();
  const double c = (a * delta.square()).sum().item<double>() / 2;
  for (double u : {-3.0, 3.0}) {                // logistic noise that makes h = 0, then h = 1
    auto gradient_at_h = [&](bool corrected) {  // d/dh of the loss (plus the correction)
      at::Tensor beta = at::full({}, 0.5, at::kDouble).requires_grad_(true);
      at::Tensor h = st_gumbel_choice(beta, at::full({}, u, at::kDouble), 1.0);
      h.retain_grad();
      at::Tensor l = loss(low + h * delta);
      (corrected ? l + curvature_correction(h, c) : l).backward();
      EXPECT_EQ(h.item<double>(), u > 0 ? 1.0 : 0.0);
      return h.grad().item<double>();
    };
    EXPECT_GT(std::abs(gradient_at_h(false) - exact), 1e-3) << u;  // first order alone is off
    EXPECT_NEAR(gradient_at_h(true), exact, 1e-9) << u;
  }
}

TEST(QatOps, DistillationLossAndItsGradient) {
  at::Tensor student = at::randn({3, 5}, at::kDouble), teacher = at::randn({3, 5}, at::kDouble);
  const double t = 2.5;
  // T^2 (KL(p_t || p_s) + H(p_t)), mean over the batch.
  at::Tensor pt = at::softmax(teacher / t, 1), log_ps = at::log_softmax(student / t, 1);
  double expected = -(pt * log_ps).sum(1).mean().item<double>() * t * t;
  EXPECT_NEAR(distillation_loss(student, teacher, t).item<double>(), expected, 1e-12);
  at::Tensor g = analytic_gradient(
      [&](const at::Tensor& s) { return distillation_loss(s, teacher, t); }, student);
  at::Tensor ng = numeric_gradient(
      [&](const at::Tensor& s) { return distillation_loss(s, teacher, t).item<double>(); },
      student);
  EXPECT_TRUE(at::allclose(g, ng, 1e-6, 1e-7));
  // Minimal (gradient zero) when the student equals the teacher.
  at::Tensor g0 = analytic_gradient(
      [&](const at::Tensor& s) { return distillation_loss(s, teacher, t); }, teacher);
  EXPECT_LT(g0.abs().max().item<double>(), 1e-12);
}

TEST(QatOps, BinRegularizationGradientAndMinimum) {
  // Weights of 2 rows near a 3-bit signed grid with per-row scales; none on a level boundary
  // or on a level itself (the occupancy is piecewise linear there).
  at::Tensor scale = at::tensor({0.1, 0.2}, at::kDouble).reshape({2, 1});
  at::Tensor zero = at::zeros({2, 1}, at::kDouble);
  at::Tensor levels = at::tensor({-3.8, -2.2, -0.9, 0.13, 0.31, 1.12, 2.81, 3.3}, at::kDouble);
  at::Tensor rows = at::stack({levels, levels.flip(0) * 0.9 + 0.07}) * scale;
  for (bool entropy : {false, true}) {
    auto f = [&](const at::Tensor& r) {
      return bin_regularization(r, scale, zero, -4, 3, entropy);
    };
    at::Tensor g = analytic_gradient(f, rows);
    at::Tensor ng =
        numeric_gradient([&](const at::Tensor& r) { return f(r).item<double>(); }, rows);
    EXPECT_TRUE(at::allclose(g, ng, 1e-5, 1e-7)) << entropy << g << ng;
  }
  // Every weight on its level, every level used equally often: both terms are zero.
  at::Tensor even = at::arange(-4, 4, at::kDouble).repeat({2, 3}) * scale;
  EXPECT_NEAR(bin_regularization(even, scale, zero, -4, 3, true).item<double>(), 0, 1e-12);
  // The within-bin part alone: weights at k + 0.25 give (0.25)^2 per occupied level.
  at::Tensor shifted = (at::arange(-4, 4, at::kDouble) + 0.25).repeat({2, 1}) * scale;
  EXPECT_NEAR(bin_regularization(shifted, scale, zero, -4, 3, false).item<double>(), 0.0625, 1e-12);
}

}  // namespace
}  // namespace mpq
