// The orthogonality metric (methods.md §4): linear CKA against its feature-space formula and its
// invariances, the ORM against CKA of the layer outputs captured independently, and gamma, theta,
// c and Omega against the ORM.
#include "sensitivity/orthogonality.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "data/dataset.h"
#include "exec/executor.h"
#include "pipeline/zoo.h"
#include "support/test_data.h"
#include "support/test_util.h"

namespace mpq {
namespace {

constexpr int64_t kSize = 8;

Graph tiny_resnet() { return test::tiny_zoo("resnet20", kSize); }

// Unlabelled random images.
std::unique_ptr<Dataset> random_images(int64_t n) { return test::random_images(n, kSize, 3, 0); }

// ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) with column-centred X, Y: the feature-space form of
// linear CKA (Kornblith et al. 2019), independent of the Gram route the library takes.
double feature_space_cka(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.reshape({a.size(0), -1}).to(at::kDouble);
  at::Tensor y = b.reshape({b.size(0), -1}).to(at::kDouble);
  x = x - x.mean(0, true);
  y = y - y.mean(0, true);
  double cross = at::mm(y.t(), x).square().sum().item<double>();
  double xx = at::mm(x.t(), x).square().sum().sqrt().item<double>();
  double yy = at::mm(y.t(), y).square().sum().sqrt().item<double>();
  return cross / (xx * yy);
}

TEST(Orthogonality, LinearCkaMatchesFeatureSpaceFormula) {
  at::manual_seed(0);
  for (int trial = 0; trial < 5; ++trial) {
    at::Tensor f1 = at::randn({12, 7}, at::kDouble);
    at::Tensor f2 = at::randn({12, 2, 3, 3}, at::kDouble) + 0.3 * f1.sum(1).reshape({12, 1, 1, 1});
    double cka = linear_cka(f1, f2);
    EXPECT_NEAR(cka, feature_space_cka(f1, f2), 1e-12);
    EXPECT_GT(cka, 0);
    EXPECT_LT(cka, 1);
  }
  // float32 features are computed in float64.
  at::Tensor f = at::randn({10, 30});
  at::Tensor g = f.narrow(1, 0, 20) + 0.5 * at::randn({10, 20});
  EXPECT_NEAR(linear_cka(f, g), feature_space_cka(f, g), 1e-9);
}

TEST(Orthogonality, LinearCkaInvariances) {
  at::manual_seed(1);
  at::Tensor f1 = at::randn({16, 9}, at::kDouble), f2 = at::randn({16, 5}, at::kDouble);
  f2 = f2 + f1.narrow(1, 0, 5);
  double base = linear_cka(f1, f2);
  EXPECT_NEAR(linear_cka(f1, f1), 1.0, 1e-12);
  EXPECT_NEAR(linear_cka(f1, f2), linear_cka(f2, f1), 1e-12);
  // Isotropic scaling of either side.
  EXPECT_NEAR(linear_cka(7.5 * f1, f2), base, 1e-12);
  EXPECT_NEAR(linear_cka(f1, 0.01 * f2), base, 1e-12);
  // An orthogonal transform F -> F Q of the features.
  at::Tensor q = std::get<0>(at::linalg_qr(at::randn({9, 9}, at::kDouble)));
  EXPECT_NEAR(at::mm(q.t(), q).sub(at::eye(9, at::kDouble)).abs().max().item<double>(), 0, 1e-12);
  EXPECT_NEAR(linear_cka(at::mm(f1, q), f2), base, 1e-12);
  // Centring removes a shift common to all samples.
  EXPECT_NEAR(linear_cka(f1 + at::randn({1, 9}, at::kDouble), f2), base, 1e-12);
  // Not invariant to a non-isotropic scaling (the test can fail).
  at::Tensor s = at::ones({1, 9}, at::kDouble);
  s[0][0] = 10;
  EXPECT_GT(std::abs(linear_cka(f1 * s, f2) - base), 1e-3);
}

TEST(Orthogonality, RejectsFewerThanTwoSamples) {
  EXPECT_THROW(linear_cka(at::randn({1, 4}), at::randn({1, 3})), Error);
  EXPECT_THROW(linear_cka(at::randn({4, 4}), at::randn({3, 3})), Error);
  Graph g = tiny_resnet();
  auto data = random_images(8);
  SensitivityOptions o;
  o.metric = "orthogonality";
  o.samples = 1;
  o.progress = false;
  SensitivityContext c = make_context(g, data.get(), o);
  try {
    orthogonality_sensitivity(c);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--samples"), std::string::npos) << e.what();
  }
}

class OrthogonalityModel : public ::testing::Test {
 protected:
  void SetUp() override {
    graph_ = tiny_resnet();
    data_ = random_images(24);
    options_.metric = "orthogonality";
    options_.samples = 16;
    options_.bits = {2, 4, 8};
    options_.beta = 2.5;
    options_.progress = false;
    context_ = make_context(graph_, data_.get(), options_);
    result_ = run_sensitivity(context_);
  }
  std::vector<std::vector<double>> orm() const {
    return result_.extra.at("orm").get<std::vector<std::vector<double>>>();
  }
  Graph graph_;
  std::unique_ptr<Dataset> data_;
  SensitivityOptions options_;
  SensitivityContext context_;
  SensitivityResult result_;
};

TEST_F(OrthogonalityModel, OrmIsSymmetricWithUnitDiagonalInZeroOne) {
  auto m = orm();
  size_t n = context_.layers.size();
  ASSERT_GE(n, 5u);
  ASSERT_EQ(m.size(), n);
  EXPECT_EQ(result_.extra.at("samples").get<int64_t>(), 16);
  EXPECT_EQ(result_.extra.at("beta").get<double>(), 2.5);
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(m[i].size(), n);
    EXPECT_DOUBLE_EQ(m[i][i], 1.0);
    for (size_t j = 0; j < n; ++j) {
      EXPECT_DOUBLE_EQ(m[i][j], m[j][i]);
      EXPECT_GE(m[i][j], 0.0);
      EXPECT_LE(m[i][j], 1.0);
    }
  }
}

TEST_F(OrthogonalityModel, OrmIsCkaOfTheLayerOutputs) {
  // Capture every layer's output on the same batch with hooks of our own.
  SensitivityOptions one = options_;
  one.batch_size = options_.samples;
  SampleBatches batches(*data_, one);
  ASSERT_EQ(batches.size(), 1u);
  std::vector<at::Tensor> outputs(context_.layers.size());
  Executor ex(context_.graph);
  for (size_t i = 0; i < outputs.size(); ++i) {
    ex.set_value_hook(context_.graph.nodes[size_t(context_.layers[i].node)].outputs[0],
                      [&outputs, i](const std::string&, const at::Tensor& x) {
                        outputs[i] = x.clone();
                        return x;
                      });
  }
  {
    c10::InferenceMode guard;
    ex.run({batches.read(0).x});
  }
  auto m = orm();
  for (size_t i = 0; i < outputs.size(); ++i) {
    for (size_t j = 0; j < outputs.size(); ++j) {
      if (i == j) continue;
      EXPECT_NEAR(m[i][j], feature_space_cka(outputs[i], outputs[j]), 1e-9)
          << context_.layers[i].name << " vs " << context_.layers[j].name;
    }
  }
  // Distinct layers are not all alike (the test can fail).
  EXPECT_LT(m[0].back(), 0.999);
}

TEST_F(OrthogonalityModel, GammaThetaAndCFollowTheOrm) {
  auto m = orm();
  size_t n = m.size();
  std::vector<double> theta(n);
  for (size_t i = 0; i < n; ++i) {
    double gamma = 0;
    for (size_t j = 0; j < n; ++j) gamma += i == j ? 0 : m[i][j];
    theta[i] = std::exp(-2.5 * gamma);
    const LayerSensitivity& l = result_.layers[i];
    EXPECT_EQ(l.name, context_.layers[i].name);
    EXPECT_NEAR(l.extra.at("gamma").get<double>(), gamma, 1e-12);
    EXPECT_NEAR(l.extra.at("theta").get<double>(), theta[i], 1e-12);
  }
  for (size_t i = 0; i < n; ++i) {
    double c = 0;
    for (size_t j = i; j < n; ++j) c += theta[j];
    c /= double(n - i);
    const LayerSensitivity& l = result_.layers[i];
    EXPECT_NEAR(l.extra.at("c").get<double>(), c, 1e-12);
    ASSERT_EQ(l.weight.size(), 3u);
    for (size_t k = 0; k < 3; ++k) {
      const BitSensitivity& b = l.weight[k];
      EXPECT_EQ(b.bits, options_.bits[k]);
      EXPECT_NEAR(b.omega, c * (1 - b.bits / 8.0), 1e-12);
      EXPECT_NEAR(b.parts.at("c").get<double>(), c, 1e-12);
      EXPECT_NEAR(b.parts.at("theta").get<double>(), theta[i], 1e-12);
      EXPECT_EQ(b.std_error, 0);
    }
    // Fewer bits cost more.
    EXPECT_GT(l.weight[0].omega, l.weight[1].omega);
    EXPECT_EQ(l.weight[2].omega, 0);
  }
}

}  // namespace
}  // namespace mpq
