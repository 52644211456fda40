#include "quant/scheme.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "quant/weight_scale.h"

namespace mpq {
namespace {

TEST(Scheme, TableNamesAreUnique) {
  for (size_t i = 0; i < scheme_table().size(); ++i) {
    for (size_t j = i + 1; j < scheme_table().size(); ++j) {
      EXPECT_STRNE(scheme_table()[i].name, scheme_table()[j].name);
    }
    EXPECT_EQ(&find_scheme(scheme_table()[i].name), &scheme_table()[i]);
  }
  EXPECT_THROW(find_scheme("int4"), Error);
}

TEST(Scheme, EveryRowQuantizesOntoItsGridAndBack) {
  at::manual_seed(0);
  at::Tensor w = at::randn({6, 10});
  for (const auto& row : scheme_table()) {
    if (!row.quantized) continue;
    for (int bits : {2, 3, 4, 8, 16}) {
      QuantSpec spec{bits, row.name, 4};
      RowLayout l = make_row_layout({6, 10}, 0, spec);
      at::Tensor rows = to_rows(w, l);
      QParams p = weight_params(rows, bits, row, {});
      at::Tensor q = quantize_to_int(rows, p);
      SCOPED_TRACE(std::string(row.name) + " " + std::to_string(bits));
      EXPECT_TRUE(q.eq(q.round()).all().item<bool>());
      EXPECT_GE(q.min().item<double>(), double(p.qmin));
      EXPECT_LE(q.max().item<double>(), double(p.qmax));
      at::Tensor back = from_rows(dequantize(q, p), l);
      // Max-abs / min-max scales never clip, so the error is at most half a step per element
      // (unsigned symmetric grids clip negative values to 0 by design).
      at::Tensor step = from_rows(p.scale.expand_as(rows), l);
      at::Tensor err = (back - w).abs();
      if (!row.symmetric || row.is_signed) {
        EXPECT_TRUE(err.le(step * 0.5 + 1e-6).all().item<bool>());
      }
      // Zero is exactly representable on every grid.
      EXPECT_EQ(dequantize(quantize_to_int(at::zeros_like(rows), p), p).abs().max().item<double>(),
                0.0);
    }
  }
}

TEST(Scheme, AffineRangeAndZeroPoint) {
  QParams p = params_from_range(at::scalar_tensor(-1.0), at::scalar_tensor(3.0), 8,
                                find_scheme("affine-tensor"));
  EXPECT_NEAR(p.scale.item<double>(), 4.0 / 255, 1e-7);
  EXPECT_EQ(p.zero_point.item<double>(), 64);  // qmin - round(lo / s) = 0 - round(-63.75)
  EXPECT_EQ(p.qmin, 0);
  EXPECT_EQ(p.qmax, 255);
  QParams s = params_from_range(at::scalar_tensor(-1.0), at::scalar_tensor(0.5), 4,
                                find_scheme("sym-tensor"));
  EXPECT_NEAR(s.scale.item<double>(), 1.0 / 7, 1e-7);
  EXPECT_EQ(s.qmin, -8);
  EXPECT_EQ(s.qmax, 7);
  // A constant tensor gets the smallest scale and quantizes to the zero point.
  QParams z = params_from_range(at::scalar_tensor(0.0), at::scalar_tensor(0.0), 4,
                                find_scheme("sym-tensor"));
  EXPECT_GT(z.scale.item<double>(), 0);
  EXPECT_EQ(quantize_to_int(at::zeros({3}), z).abs().sum().item<double>(), 0);
}

TEST(Scheme, RoundsHalfToEvenLikeQuantizeLinear) {
  QParams p = params_from_range(at::scalar_tensor(-8.0), at::scalar_tensor(7.0), 8,
                                find_scheme("sym-tensor"));
  p.scale = at::scalar_tensor(1.0f);
  at::Tensor q = quantize_to_int(at::tensor({0.5f, 1.5f, 2.5f, -0.5f, -1.5f}), p);
  EXPECT_TRUE(q.equal(at::tensor({0.f, 2.f, 2.f, -0.f, -2.f})));
}

TEST(Scheme, FakeQuantizeStraightThroughGradient) {
  QParams p = params_from_range(at::scalar_tensor(-1.0), at::scalar_tensor(1.0), 4,
                                find_scheme("sym-tensor"));
  at::Tensor x = at::tensor({-3.0f, -0.5f, 0.1f, 0.3f, 0.99f, 2.0f}).requires_grad_();
  at::Tensor y = fake_quantize(x, p);
  EXPECT_TRUE(y.detach().equal(dequantize(quantize_to_int(x.detach(), p), p)));
  y.sum().backward();
  // Inside [qmin s, qmax s] = [-8/7, 1]: gradient 1; outside: 0.
  EXPECT_TRUE(x.grad().equal(at::tensor({0.f, 1.f, 1.f, 1.f, 1.f, 0.f})));
}

TEST(Scheme, RowLayoutsRoundTrip) {
  at::Tensor w = at::randn({4, 3, 3, 3});
  for (int64_t axis : {0, 1}) {
    for (const char* scheme : {"sym-tensor", "sym-channel", "sym-group"}) {
      for (int64_t g : {1, 4, 5, 27, 40}) {
        QuantSpec spec{4, scheme, g};
        RowLayout l = make_row_layout(w.sizes().vec(), axis, spec);
        at::Tensor rows = to_rows(w, l);
        EXPECT_EQ(rows.size(0), l.rows);
        EXPECT_EQ(rows.size(1), l.row_size);
        EXPECT_TRUE(from_rows(rows, l).equal(w)) << scheme << " axis " << axis << " g " << g;
      }
    }
  }
  // Per group: each row holds g consecutive inputs of one output channel, zero-padded at the end.
  RowLayout l = make_row_layout({2, 5}, 0, {4, "sym-group", 2});
  at::Tensor rows = to_rows(at::arange(10, at::kFloat).reshape({2, 5}), l);
  EXPECT_TRUE(rows.equal(
      at::tensor({0.f, 1.f, 2.f, 3.f, 4.f, 0.f, 5.f, 6.f, 7.f, 8.f, 9.f, 0.f}).reshape({6, 2})));
}

TEST(Scheme, SpecChecks) {
  EXPECT_THROW(check_spec({9, "sym-channel", 0}, "x"), Error);
  EXPECT_THROW(check_spec({1, "sym-channel", 0}, "x"), Error);
  EXPECT_THROW(check_spec({4, "sym-group", 0}, "x"), Error);
  EXPECT_NO_THROW(check_spec({16, "affine-tensor", 0}, "x"));
  try {
    check_spec({12, "sym-channel", 0}, "plan.json: layer 'conv1'");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("plan.json: layer 'conv1': bits: expected 2-8, 16 or 32"),
              std::string::npos)
        << e.what();
  }
}

TEST(WeightScale, MseNeverWorseThanMaxAbsAndClipsOutliers) {
  at::manual_seed(1);
  at::Tensor rows = at::randn({16, 200});
  rows.index_put_({at::indexing::Slice(), 0}, 12.0);  // one outlier per row
  const SchemeInfo& sym = find_scheme("sym-channel");
  for (int bits : {2, 3, 4, 6, 8}) {
    auto err = [&](const std::string& method) {
      WeightScaleOptions o;
      o.method = method;
      QParams p = weight_params(rows, bits, sym, o);
      return (dequantize(quantize_to_int(rows, p), p) - rows).square().sum(1);
    };
    at::Tensor maxabs = err("maxabs"), mse = err("mse");
    EXPECT_TRUE(mse.le(maxabs * (1 + 1e-6)).all().item<bool>()) << bits;
    if (bits <= 4) {
      EXPECT_LT(mse.sum().item<double>(), 0.8 * maxabs.sum().item<double>()) << bits;
    }
  }
  WeightScaleOptions pct;
  pct.method = "percentile";
  pct.percentile = 99;
  QParams p = weight_params(rows, 8, sym, pct);
  EXPECT_LT(p.scale.max().item<double>() * 127, 6.0);  // the outlier is clipped
  WeightScaleOptions bad;
  bad.method = "entropy";
  EXPECT_THROW(weight_params(rows, 4, sym, bad), Error);
}

// With a Gram matrix the mse search minimises d^T G d per row: its pick must equal the best of the
// brute-force grid under G, and a diagonal G must give what the element weights give.
TEST(WeightScale, OutputAwareMseIsTheGridMinimumUnderTheGram) {
  at::manual_seed(4);
  const int64_t rows = 12, k = 20, groups = 3;
  at::Tensor w = at::randn({rows, k});
  w.index_put_({at::indexing::Slice(), 3}, 5.0);
  at::Tensor x = at::randn({groups, 4 * k, k});
  x = x + x.narrow(2, 0, 1) * 2;  // correlated inputs: G far from diagonal
  at::Tensor gram = at::bmm(x.transpose(1, 2), x) / double(4 * k);
  const SchemeInfo& sym = find_scheme("sym-channel");
  auto gram_error = [&](const QParams& p) {
    at::Tensor d = (dequantize(quantize_to_int(w, p), p) - w).to(at::kDouble);
    at::Tensor dg = d.reshape({groups, -1, k});
    return (at::bmm(dg, gram.to(at::kDouble)) * dg).sum(-1).reshape({rows});
  };
  for (int bits : {2, 3, 4, 8}) {
    SCOPED_TRACE("bits " + std::to_string(bits));
    WeightScaleOptions o;
    o.method = "mse";
    at::Tensor picked = gram_error(weight_params(w, bits, sym, o, {gram, {}}));
    at::Tensor plain = gram_error(weight_params(w, bits, sym, o));
    at::Tensor hi = w.abs().amax(1, true);
    at::Tensor brute = at::full({rows}, INFINITY, at::kDouble);
    for (int64_t i = 0; i < o.grid; ++i) {
      double alpha = 1.0 - (1.0 - o.min_ratio) * double(i) / double(o.grid - 1);
      brute = at::minimum(brute, gram_error(params_from_range(-hi * alpha, hi * alpha, bits, sym)));
    }
    EXPECT_TRUE(at::allclose(picked, brute, 1e-5, 1e-9))
        << "worst gap " << (picked - brute).abs().max().item<double>();
    EXPECT_TRUE((picked <= plain * (1 + 1e-5)).all().item<bool>());

    at::Tensor diag = gram.diagonal(0, 1, 2);  // [groups, K]
    at::Tensor element = diag.repeat_interleave(rows / groups, 0);
    QParams from_element = weight_params(w, bits, sym, o, {{}, element});
    QParams from_diag = weight_params(w, bits, sym, o, {at::diag_embed(diag), {}});
    EXPECT_TRUE(at::allclose(from_element.scale, from_diag.scale, 1e-6, 0));
  }
  WeightScaleOptions l1;
  l1.method = "mse";
  l1.p = 1;
  EXPECT_THROW(weight_params(w, 4, sym, l1, {gram, {}}), Error);
}

}  // namespace
}  // namespace mpq
