// Quantization-aware training and SDQ on the shipped CNN with real Fashion-MNIST samples: QAT at
// W2A4 must beat the PTQ model it starts from, export a QDQ file ONNX Runtime runs with the same
// outputs as mpq's simulation, learn its step sizes with LSQ and resume from its checkpoint; BN
// kept in training mode exports unfolded; SDQ's stage 1 must end within the budget by training.
#include "train/qat.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/fs.h"
#include "onnx/io.h"
#include "pipeline/eval.h"
#include "pipeline/onnxruntime.h"
#include "pipeline/quantize.h"
#include "pipeline/sdq.h"
#include "support/test_util.h"

namespace mpq {
namespace {

struct Fixture {
  Graph model;
  std::unique_ptr<Dataset> train, val;
};

Fixture load(int64_t train_limit) {
  Fixture f;
  f.model = import_onnx(test::source_path("examples/models/cnn.onnx"));
  DataOptions d;
  d.spec = "fashion-mnist:train";
  d.limit = train_limit;
  d.preprocess.mean = {std::stod(f.model.metadata.at("mpq.mean"))};
  d.preprocess.std = {std::stod(f.model.metadata.at("mpq.std"))};
  f.train = open_dataset(d);
  d.spec = "fashion-mnist:test";
  d.limit = 1000;
  f.val = open_dataset(d);
  return f;
}

double accuracy(const QuantizedModel& q, const Dataset& data) {
  EvalOptions eo;
  eo.progress = false;
  return evaluate_simulated(q, "q", data, eo, nullptr).top1;
}

QatOptions quick(const std::string& out, const Dataset& val) {
  QatOptions o;
  o.train.epochs = 1;
  o.train.batch_size = 64;
  o.train.optimizer.lr = 0.01;
  o.train.optimizer.weight_decay = 0;
  o.train.label_smoothing = 0;
  o.train.output = out;
  o.train.progress = false;
  o.ptq.calibration_samples = 256;
  o.ptq.progress = false;
  o.validate = [&val](const QuantizedModel& q) { return EpochScore{accuracy(q, val), 0}; };
  return o;
}

TEST(Qat, BeatsItsPtqStartAtTwoBitsAndRunsInOnnxRuntime) {
  std::string dir = test::temp_dir();
  Fixture f = load(2048);
  Plan plan = uniform_plan(f.model, 2, 4);
  QatOptions o = quick(dir + "/q.onnx", *f.val);
  double ptq = accuracy(quantize_ptq(f.model, plan, f.train.get(), o.ptq), *f.val);
  QatResult r = train_qat(f.model, plan, *f.train, *f.train, o);
  ASSERT_EQ(r.train.history.size(), 1u);
  double qat = r.train.best_accuracy;
  EXPECT_GT(qat, ptq + 0.02) << "PTQ " << ptq << ", QAT " << qat;
  EXPECT_NEAR(r.sizes.weight_bits_average, 2.0, 1e-9);
  // The written file is the validated model: ONNX Runtime gives the same answers.
  if (!onnxruntime_available()) GTEST_SKIP() << "ONNX Runtime not available";
  VerifyOptions vo;
  vo.samples = 300;
  VerifyResult v = verify_model(dir + "/q.onnx", *f.val, vo);
  ASSERT_EQ(v.outputs.size(), 1u);
  EXPECT_GE(v.outputs[0].top1_agreement, 0.99);
  EXPECT_LT(v.outputs[0].max_rel, 0.05);
}

TEST(Qat, LsqLearnsStepSizesAndTheRunResumes) {
  std::string dir = test::temp_dir();
  Fixture f = load(1024);
  Plan plan = uniform_plan(f.model, 3, 4);
  QatOptions o = quick(dir + "/lsq.onnx", *f.val);
  o.lsq = true;
  o.bin_reg = 0.1;
  QatResult first = train_qat(f.model, plan, *f.train, *f.train, o);
  QuantizedModel start = quantize_ptq(f.model, plan, f.train.get(), o.ptq);
  // Step sizes moved away from their PTQ values.
  double moved = 0;
  for (size_t i = 0; i < start.layers.size(); ++i) {
    if (!start.layers[i].weight_quantized) continue;
    moved += (first.model.layers[i].weight_params.scale - start.layers[i].weight_params.scale)
                 .abs()
                 .sum()
                 .item<double>();
  }
  EXPECT_GT(moved, 0);
  ASSERT_TRUE(file_exists(dir + "/lsq.onnx.ckpt"));
  // The checkpoint holds the learned step sizes, as trained.
  Graph ckpt = import_onnx(dir + "/lsq.onnx.ckpt");
  int64_t saved_scales = 0;
  for (size_t i = 0; i < first.model.layers.size(); ++i) {
    const auto& l = first.model.layers[i];
    auto it = ckpt.initializers.find("mpq.state/" + l.layer.name + "/weight_scale");
    if (!l.weight_quantized || it == ckpt.initializers.end()) continue;
    EXPECT_TRUE(at::allclose(it->second.clamp_min(1e-8), l.weight_params.scale)) << l.layer.name;
    ++saved_scales;
  }
  EXPECT_GT(saved_scales, 0);
  // Two epochs with the checkpoint of one: only the second runs.
  o.train.epochs = 2;
  QatResult second = train_qat(f.model, plan, *f.train, *f.train, o);
  EXPECT_EQ(second.train.resumed_from, 1);
  ASSERT_EQ(second.train.history.size(), 1u);
  EXPECT_EQ(second.train.history[0].epoch, 2);
}

TEST(Qat, BatchNormKeptTrainsAndExportsUnfolded) {
  std::string dir = test::temp_dir();
  Fixture f = load(512);
  Plan plan = uniform_plan(f.model, 4, 8);
  QatOptions o = quick(dir + "/bn.onnx", *f.val);
  o.ptq.fold_batchnorm = false;
  o.train.epochs = 2;
  o.freeze_bn_epoch = 1;
  QatResult r = train_qat(f.model, plan, *f.train, *f.train, o);
  EXPECT_GT(r.train.best_accuracy, 0.8);
  Graph q = import_onnx(dir + "/bn.onnx");
  int64_t bn = 0;
  for (const auto& n : q.nodes) bn += n.op_type == "BatchNormalization";
  EXPECT_GT(bn, 0);
}

TEST(Qat, RejectsMultipointPlans) {
  std::string dir = test::temp_dir();
  Fixture f = load(256);
  Plan plan = uniform_plan(f.model, 3, 8);
  plan.layers[1].extra_points = 0.25;
  QatOptions o = quick(dir + "/mp.onnx", *f.val);
  o.ptq.method = "multipoint";
  try {
    train_qat(f.model, plan, *f.train, *f.train, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multipoint"), std::string::npos) << e.what();
  }
}

TEST(Sdq, StageOneLearnsAPlanWithinTheBudget) {
  std::string dir = test::temp_dir();
  Fixture f = load(1024);
  SdqCommandOptions o;
  o.budgets = {"avg-bits=3"};
  o.act_bits = 4;
  o.stage1.qat = quick(dir + "/sdq.onnx", *f.val);
  o.stage1.max_epochs = 4;
  // 16 steps per epoch here: a larger starting cost weight than the default drops faster.
  o.stage1.cost_weight = 0.5;
  o.plan_output = dir + "/plan.json";
  o.train_plan = false;
  SdqRun r = run_sdq(f.model, test::source_path("examples/models/cnn.onnx"), *f.train, *f.train, o);
  EXPECT_TRUE(r.stage1.met_by_training);
  EXPECT_FALSE(r.stage1.drops.empty());
  ASSERT_EQ(r.stage1.cost.size(), 1u);
  Plan plan = load_plan(o.plan_output);
  check_plan(plan, f.model, o.plan_output);
  // The plan's own total against its budget (weight bits summed over weights).
  ASSERT_EQ(plan.extra["budgets"].size(), 1u);
  const auto& b = plan.extra["budgets"][0];
  EXPECT_LE(b["total"].get<double>(), b["limit"].get<double>());
  for (const auto& l : plan.layers) {
    EXPECT_EQ(l.act.bits, 4);
    EXPECT_NE(l.extra.value("reason", "").find("sdq"), std::string::npos) << l.name;
  }
  // The finished stage 1 is read back, not repeated.
  SdqRun again =
      run_sdq(f.model, test::source_path("examples/models/cnn.onnx"), *f.train, *f.train, o);
  EXPECT_TRUE(again.stage1_from_file);
  // Budgets below every layer's lowest width stop before training.
  o.budgets = {"avg-bits=1.5"};
  o.plan_output = dir + "/plan2.json";
  EXPECT_THROW(run_sdq(f.model, "cnn.onnx", *f.train, *f.train, o), Error);
}

}  // namespace
}  // namespace mpq
