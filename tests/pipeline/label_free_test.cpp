// Models whose outputs are not class scores, with no labels, through the pipeline: the zoo's
// detector (a dense map), seqnet (per-step class probabilities) and embednet (an L2-normalised
// embedding), built with weights as Constant nodes and a symbolic height and width, written to
// ONNX and read back. Each is inspected at two input sizes, its output kind is inferred with and
// without metadata, every sensitivity metric runs label-free on unlabelled images, and the model
// quantized at W8A8, W4A8 and W2A8 is evaluated against the float model.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "exec/executor.h"
#include "onnx/io.h"
#include "onnx/layers.h"
#include "pipeline/eval.h"
#include "pipeline/inspect.h"
#include "pipeline/quantize.h"
#include "pipeline/sensitivity.h"
#include "pipeline/zoo.h"
#include "quant/simulate.h"
#include "support/test_data.h"
#include "support/test_util.h"

namespace mpq {
namespace {

struct Arch {
  const char* name;
  OutputKind kind;
};
const Arch kArchs[] = {{"detector", OutputKind::kMap},
                       {"seqnet", OutputKind::kSequence},
                       {"embednet", OutputKind::kEmbedding}};

// The zoo model with weights as Constant nodes and symbolic H and W, through an ONNX file.
Graph round_trip(const std::string& arch, const std::string& dir) {
  ZooOptions o;
  o.weights_as_constants = true;
  o.dynamic_hw = true;
  o.width_mult = 0.5;
  o.random_bn = true;
  o.seed = 1;
  Graph built = build_zoo_model(arch, o);
  EXPECT_TRUE(built.initializers.empty()) << arch << ": weights should be Constant nodes";
  int64_t constants = 0;
  for (const auto& n : built.nodes) constants += n.op_type == "Constant";
  EXPECT_GT(constants, 4) << arch;
  std::string path = dir + "/" + arch + ".onnx";
  export_onnx(built, path);
  Graph g = import_onnx(path);
  EXPECT_EQ(g.source, path);
  return g;
}

TEST(LabelFree, ZooModelsRunAtTwoSizes) {
  std::string dir = test::temp_dir();
  for (const Arch& a : kArchs) {
    SCOPED_TRACE(a.name);
    Graph g = round_trip(a.name, dir);
    ASSERT_EQ(g.inputs.size(), 1u);
    EXPECT_FALSE(g.inputs[0].shape[2].fixed());
    EXPECT_FALSE(g.inputs[0].shape[3].fixed());
    EXPECT_EQ(g.metadata.at(kOutputKindKey), output_kind_name(a.kind));
    std::vector<QuantLayer> layers = find_quantizable_layers(g);  // Constant weights folded
    EXPECT_GE(layers.size(), 4u);

    ModelSummary small = inspect_model(g, {{1, 1, 16, 16}});
    ModelSummary large = inspect_model(g, {{1, 1, 24, 32}});
    ASSERT_EQ(small.layers.size(), layers.size());
    for (size_t l = 0; l < small.layers.size(); ++l) {
      const LayerSummary &s = small.layers[l], &b = large.layers[l];
      // A convolution's MACs scale with the area (24 x 32 = 3 x 16 x 16); seqnet's per-step
      // layer with the width (the steps); embednet's Gemm not at all.
      double ratio = double(b.macs) / double(s.macs);
      if (s.op == "Conv") {
        EXPECT_DOUBLE_EQ(ratio, 3.0) << s.name;
      } else if (s.op == "MatMul") {
        EXPECT_DOUBLE_EQ(ratio, 2.0) << s.name;
      } else {
        EXPECT_DOUBLE_EQ(ratio, 1.0) << s.name;
      }
    }

    Executor ex(g);
    at::Tensor y16 = ex.run({at::randn({2, 1, 16, 16})})[0];
    at::Tensor y24 = ex.run({at::randn({2, 1, 24, 32})})[0];
    std::vector<int64_t> s16, s24;
    switch (a.kind) {
      case OutputKind::kMap:
        s16 = {2, 45, 4, 4}, s24 = {2, 45, 6, 8};  // 3 anchors x (5 + 10 classes), H/4 x W/4
        break;
      case OutputKind::kSequence:
        s16 = {2, 8, 10}, s24 = {2, 16, 10};  // W/2 steps of 10 classes
        break;
      default:
        s16 = s24 = {2, 32};
    }
    EXPECT_EQ(y16.sizes().vec(), s16);
    EXPECT_EQ(y24.sizes().vec(), s24);

    // The kind from the metadata, and inferred from the outputs alone at both sizes.
    EXPECT_EQ(infer_output_kind(g, y16), a.kind);
    Graph bare = g;
    bare.metadata.clear();
    EXPECT_EQ(infer_output_kind(bare, y16), a.kind);
    EXPECT_EQ(infer_output_kind(bare, y24), a.kind);
    auto data = test::random_images(4, 16, 3, /*classes=*/0);
    EXPECT_EQ(model_output_kind(bare, *data), a.kind);
  }
  // The classifiers say they give class scores.
  Graph cnn = test::tiny_zoo("cnn", 8);
  EXPECT_EQ(cnn.metadata.at(kOutputKindKey), "scores");
  cnn.metadata.clear();
  EXPECT_EQ(model_output_kind(cnn, *test::random_images(4, 8, 3, 0)), OutputKind::kScores);
}

TEST(LabelFree, SensitivityOnUnlabelledImages) {
  std::string dir = test::temp_dir();
  auto data = test::random_images(16, 16, 3, /*classes=*/0);
  ASSERT_FALSE(data->has_labels());
  for (const Arch& a : kArchs) {
    Graph g = round_trip(a.name, dir);
    for (const auto& metric : metric_table()) {
      SCOPED_TRACE(std::string(a.name) + " " + metric.name);
      SensitivityOptions o;
      o.metric = metric.name;
      o.bits = {2, 4, 8};
      o.samples = 16;
      o.batch_size = 8;
      o.min_probes = o.max_probes = 8;
      o.label_free = true;
      o.progress = false;
      SensitivityRunOptions run;
      run.use_cache = false;
      SensitivityRun r = run_sensitivity_command(g, g.source, *data, o, run);
      EXPECT_EQ(r.result.info.at("options").at("output"), output_kind_name(a.kind));
      ASSERT_GE(r.result.layers.size(), 4u);
      size_t decreasing = 0;
      for (const auto& l : r.result.layers) {
        ASSERT_EQ(l.weight.size(), 3u);
        for (const auto& b : l.weight) EXPECT_TRUE(std::isfinite(b.omega)) << l.name;
        decreasing +=
            l.weight[0].omega > l.weight[1].omega && l.weight[1].omega > l.weight[2].omega;
      }
      // Omega falls with the bit width for (nearly) every layer.
      EXPECT_GE(decreasing + 1, r.result.layers.size());
      // The facts the search needs are counted at the data's size.
      EXPECT_GT(r.facts.at("layers").at(0).at("macs").get<int64_t>(), 0);
      if (metric.needs_labels) {
        // Without --label-free the metric asks for labels, which the data does not have.
        o.label_free = false;
        EXPECT_THROW(run_sensitivity_command(g, g.source, *data, o, run), Error);
      }
    }
  }
}

TEST(LabelFree, QuantizedAgainstFloat) {
  std::string dir = test::temp_dir();
  auto data = test::random_images(32, 16, 3, /*classes=*/0);
  for (const Arch& a : kArchs) {
    SCOPED_TRACE(a.name);
    Graph g = round_trip(a.name, dir);
    PtqOptions ptq;
    ptq.calibration_samples = 32;
    ptq.progress = false;
    EvalOptions eval;
    eval.progress = false;
    EvalResult w8, w4, w2;
    for (int bits : {8, 4, 2}) {
      QuantizeResult r = run_quantize(g, uniform_plan(g, bits, 8), data.get(), ptq, {}, "");
      evaluate_quantized(g, &r, *data, eval);
      EXPECT_FALSE(r.float_eval.labelled);
      EXPECT_FALSE(r.float_eval.has_reference);
      (bits == 8 ? w8 : bits == 4 ? w4 : w2) = r.quant_eval;
    }
    for (const EvalResult* r : {&w8, &w4, &w2}) {
      EXPECT_EQ(r->output, output_kind_name(a.kind));
      EXPECT_TRUE(r->has_reference);
      EXPECT_TRUE(std::isfinite(r->sqnr_db));
      nlohmann::json j = to_json(*r);
      EXPECT_EQ(j.at("output"), output_kind_name(a.kind));
      EXPECT_EQ(j.contains("cosine"), a.kind == OutputKind::kEmbedding) << j.dump();
      EXPECT_EQ(j.contains("agreement"), a.kind != OutputKind::kEmbedding) << j.dump();
      EXPECT_EQ(j.contains("kl"), a.kind != OutputKind::kEmbedding) << j.dump();
    }
    EXPECT_GT(w8.sqnr_db, w4.sqnr_db);
    EXPECT_GT(w4.sqnr_db, w2.sqnr_db);
    EXPECT_GT(w8.sqnr_db, w2.sqnr_db + 10);
    if (a.kind == OutputKind::kEmbedding) {
      EXPECT_GT(w8.cosine, 0.999);
      EXPECT_LT(w2.cosine, w8.cosine);
      EXPECT_NE(format_text(w8).find("cosine"), std::string::npos);
    } else {
      EXPECT_GT(w8.agreement, 0.95);
      EXPECT_LT(w2.agreement, w8.agreement);
      EXPECT_LT(w8.kl, w2.kl);
      EXPECT_GE(w8.kl, 0);
    }

    // The float model against itself: full agreement, no noise.
    EvalResult same = evaluate(g, *data, eval, &g);
    EXPECT_NEAR(a.kind == OutputKind::kEmbedding ? same.cosine : same.agreement, 1.0, 1e-12);
    EXPECT_TRUE(std::isinf(same.sqnr_db));
  }
}

// Labels next to an output that is not class scores are left aside, not misread as classes.
TEST(LabelFree, EvalIgnoresLabelsOfOtherOutputs) {
  std::string dir = test::temp_dir();
  Graph g = round_trip("detector", dir);
  auto labelled = test::random_images(8, 16, 3, 10);
  EvalOptions eval;
  eval.progress = false;
  EvalResult r = evaluate(g, *labelled, eval, &g);
  EXPECT_FALSE(r.labelled);
  EXPECT_EQ(r.output, "map");
  EXPECT_FALSE(to_json(r).contains("top1"));
  // A stated kind wins over the metadata.
  eval.output_kind = "embedding";
  EXPECT_TRUE(evaluate(g, *labelled, eval, &g).has_cosine);
}

}  // namespace
}  // namespace mpq

namespace mpq {
namespace {

// EvalOptions::reference_outputs: the float model's outputs computed by the first evaluation
// and reused by the next give the same comparison as running the reference every time.
TEST(LabelFree, CachedReferenceOutputsGiveTheSameComparison) {
  std::string dir = test::temp_dir();
  auto data = test::random_images(40, 16, 3, /*classes=*/0);
  Graph g = round_trip("seqnet", dir);
  Executor reference(g);
  PtqOptions ptq;
  ptq.calibration_samples = 32;
  ptq.progress = false;
  std::vector<at::Tensor> cache;
  for (int bits : {8, 2}) {
    QuantizeResult r = run_quantize(g, uniform_plan(g, bits, 8), data.get(), ptq, {}, "");
    Executor q(r.model.graph);
    attach_quantizers(&q, r.model);
    EvalOptions plain;
    plain.progress = false;
    plain.batch_size = 16;  // batches of 16, 16 and 8
    EvalOptions cached = plain;
    cached.reference_outputs = &cache;
    EvalResult a = evaluate(q, "q", *data, plain, &reference);
    EvalResult b = evaluate(q, "q", *data, cached, &reference);
    EXPECT_EQ(cache.size(), 3u);
    EXPECT_DOUBLE_EQ(a.agreement, b.agreement) << bits;
    EXPECT_DOUBLE_EQ(a.kl, b.kl) << bits;
    EXPECT_DOUBLE_EQ(a.sqnr_db, b.sqnr_db) << bits;
  }
}

}  // namespace
}  // namespace mpq
