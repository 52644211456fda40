// Training: the optimisers against PyTorch's update rules written out by hand, the cosine
// schedule, BatchNormalization statistics in training mode, augmentation, and short real runs on
// Fashion-MNIST that must learn and must resume from their checkpoint.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/fs.h"
#include "exec/executor.h"
#include "onnx/builder.h"
#include "onnx/io.h"
#include "pipeline/eval.h"
#include "pipeline/zoo.h"
#include "support/test_util.h"
#include "train/trainer.h"

namespace mpq {
namespace {

TEST(Optimizer, SgdNesterovMatchesTheUpdateRule) {
  at::Tensor w = at::tensor({1.0, -2.0, 0.5}, at::kDouble).reshape({1, 3}).requires_grad_(true);
  OptimizerOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.weight_decay = 0.01;
  Optimizer opt({{"w", w, true}}, o);
  at::Tensor ref = w.detach().clone(), buf;
  for (int step = 0; step < 3; ++step) {
    opt.zero_grad();
    (w * w * double(step + 1)).sum().backward();
    at::Tensor g = 2.0 * double(step + 1) * ref + 0.01 * ref;
    buf = step == 0 ? g.clone() : buf * 0.9 + g;
    ref = ref - 0.1 * (g + 0.9 * buf);
    opt.step(0.1);
    EXPECT_TRUE(at::allclose(w.detach(), ref, 1e-12, 1e-12)) << step;
  }
}

TEST(Optimizer, AdamWMatchesTheUpdateRule) {
  at::Tensor w = at::tensor({0.3, -0.7}, at::kDouble).reshape({2, 1}).requires_grad_(true);
  OptimizerOptions o;
  o.kind = "adamw";
  o.weight_decay = 0.05;
  Optimizer opt({{"w", w, true}}, o);
  at::Tensor ref = w.detach().clone(), m = at::zeros_like(ref), v = at::zeros_like(ref);
  for (int t = 1; t <= 3; ++t) {
    opt.zero_grad();
    (w.pow(3)).sum().backward();
    at::Tensor g = 3 * ref.pow(2);
    double lr = 0.01;
    ref = ref * (1 - lr * 0.05);
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    ref = ref - lr * (m / (1 - std::pow(0.9, t))) / ((v / (1 - std::pow(0.999, t))).sqrt() + 1e-8);
    opt.step(lr);
    EXPECT_TRUE(at::allclose(w.detach(), ref, 1e-10, 1e-12)) << t;
  }
}

TEST(Optimizer, CosineSchedule) {
  EXPECT_DOUBLE_EQ(cosine_lr(0.1, 0, 100, 0), 0.1);
  EXPECT_NEAR(cosine_lr(0.1, 50, 100, 0), 0.05, 1e-12);
  EXPECT_NEAR(cosine_lr(0.1, 100, 100, 0), 0.0, 1e-12);
  EXPECT_NEAR(cosine_lr(0.1, 4, 100, 10), 0.05, 1e-12);  // warm-up: (4 + 1) / 10
}

TEST(Training, BatchNormUsesBatchStatisticsAndUpdatesRunningOnes) {
  GraphBuilder b("bn", 13);
  std::string x = b.input("x", {std::string("N"), int64_t(3), int64_t(4), int64_t(4)});
  b.output(b.node("BatchNormalization",
                  {x, b.weight("g", at::ones({3})), b.weight("b", at::zeros({3})),
                   b.weight("m", at::zeros({3})), b.weight("v", at::ones({3}))},
                  {{"momentum", attr(0.9)}}));
  Graph g = b.build();
  Executor exec(g);
  at::Tensor in = at::randn({8, 3, 4, 4}) * 3 + 2;
  exec.set_training(true);
  at::Tensor y = exec.run({in})[0];
  // Normalised with the batch's own statistics: zero mean, unit variance per channel.
  EXPECT_TRUE(at::allclose(y.mean({0, 2, 3}), at::zeros({3}), 0, 1e-5));
  at::Tensor batch_mean = in.mean({0, 2, 3}), batch_var = in.var({0, 2, 3}, /*unbiased=*/true);
  EXPECT_TRUE(at::allclose(g.initializers.at("m"), 0.1 * batch_mean, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(g.initializers.at("v"), 0.9 + 0.1 * batch_var, 1e-5, 1e-6));
  exec.set_training(false);
  at::Tensor before = g.initializers.at("m").clone();
  exec.run({in});
  EXPECT_TRUE(at::equal(g.initializers.at("m"), before));
}

TEST(Training, AugmentationCropsAndFlips) {
  at::Tensor x = at::arange(2 * 1 * 5 * 5, at::kFloat).reshape({2, 1, 5, 5});
  at::Generator gen = at::detail::createCPUGenerator(3);
  at::Tensor same = augment_batch(x, 0, false, gen);
  EXPECT_TRUE(at::equal(same, x));
  for (int trial = 0; trial < 10; ++trial) {
    at::Tensor y = augment_batch(x, 1, true, gen);
    ASSERT_EQ(y.sizes(), x.sizes());
    // Every output row is a (possibly flipped) shifted window of the padded input: its non-zero
    // values are consecutive integers of one input row.
    for (int64_t n = 0; n < 2; ++n) {
      at::Tensor row = y[n][0][2];
      at::Tensor nz = row.masked_select(row != 0);
      if (nz.numel() > 1) {
        EXPECT_TRUE((nz.diff().abs() == 1).all().item<bool>()) << row;
      }
    }
  }
}

TrainOptions quick(const std::string& out, const Dataset& val) {
  TrainOptions t;
  t.epochs = 2;
  t.batch_size = 64;
  t.optimizer.lr = 0.05;
  t.output = out;
  t.progress = false;
  t.validate = [&val](const Graph& g) {
    EvalOptions eo;
    eo.progress = false;
    EvalResult r = evaluate(g, val, eo, nullptr);
    return EpochScore{r.top1, r.loss};
  };
  return t;
}

TEST(Training, LearnsFashionMnistAndResumes) {
  std::string dir = test::temp_dir();
  DataOptions d;
  d.spec = "fashion-mnist:train";
  d.limit = 3000;
  d.preprocess.mean = {0.286};
  d.preprocess.std = {0.353};
  auto train = open_dataset(d);
  d.spec = "fashion-mnist:test";
  d.limit = 1000;
  auto val = open_dataset(d);
  ZooOptions z;
  z.width_mult = 0.5;
  Graph model = build_zoo_model("cnn", z);
  TrainOptions t = quick(dir + "/cnn.onnx", *val);
  t.epochs = 1;
  TrainResult first = train_model(&model, *train, t);
  ASSERT_EQ(first.history.size(), 1u);
  EXPECT_GT(first.history[0].val_accuracy, 0.5);  // chance is 0.1
  ASSERT_TRUE(file_exists(dir + "/cnn.onnx.ckpt"));
  // A second run with more epochs picks up after epoch 1 and keeps improving the loss.
  Graph fresh = build_zoo_model("cnn", z);
  t.epochs = 2;
  TrainResult second = train_model(&fresh, *train, t);
  EXPECT_EQ(second.resumed_from, 1);
  ASSERT_EQ(second.history.size(), 1u);
  EXPECT_EQ(second.history[0].epoch, 2);
  EXPECT_LT(second.history[0].train_loss, first.history[0].train_loss);
  // The best model is a valid ONNX file that runs and carries its accuracy.
  Graph best = import_onnx(dir + "/cnn.onnx");
  EXPECT_TRUE(best.metadata.count("mpq.train.val_accuracy"));
  EvalOptions eo;
  eo.progress = false;
  EXPECT_NEAR(evaluate(best, *val, eo, nullptr).top1, second.best_accuracy, 1e-9);
}

}  // namespace
}  // namespace mpq
