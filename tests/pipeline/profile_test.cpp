// mpq profile's geometry: every Conv, Gemm and MatMul layer of the zoo architectures (grouped and
// depthwise convolutions, strides, a transformer's token matrices) is timed as a kernel doing
// exactly the layer's multiply-accumulates, and the written target file loads and prices a
// latency budget. Timings are not asserted.
#include "pipeline/profile.h"

#include <gtest/gtest.h>

#include "core/fs.h"
#include "search/target.h"
#include "support/test_data.h"
#include "support/test_util.h"

namespace mpq {
namespace {

TEST(Profile, EveryZooLayerIsTimedAtItsOwnShape) {
  ProfileOptions o;
  o.timing.repeats = 1;
  o.timing.warmup = 1;
  o.timing.min_sample_ms = 0.01;
  o.onnxruntime = false;  // the whole-model check: its own test below
  for (const char* arch : {"resnet20", "mobilenetv2", "cnn", "vit"}) {
    SCOPED_TRACE(arch);
    Graph g = test::tiny_zoo(arch, 16);
    ProfileResult r = profile_model(g, arch, o);
    ASSERT_FALSE(r.layers.empty());
    for (const auto& l : r.layers) {
      EXPECT_TRUE(l.timed) << l.name << ": " << l.why_not;
      EXPECT_EQ(l.kernel_macs, l.macs) << l.name << " " << l.shape;
      EXPECT_GT(l.int8.median_ms, 0) << l.name;
    }
    EXPECT_GT(r.pass_int8.median_ms, 0);
    // The target file: every timed layer priced at every 2-8 bit width and in float.
    std::string path = test::temp_dir() + "/" + arch + ".json";
    write_file_atomic(path, r.target.dump());
    Target t = load_target(path);
    EXPECT_EQ(t.latency.layers.size(), r.layers.size());
    for (const auto& [name, bits] : t.latency.layers) {
      EXPECT_EQ(bits.size(), 8u) << name;                      // w2..w8 and w32
      EXPECT_DOUBLE_EQ(bits.at("w4"), bits.at("w8")) << name;  // one int8 kernel
    }
    EXPECT_TRUE(kernel_supported(t, 3, 8));
    EXPECT_FALSE(kernel_supported(t, 16, 16));
  }
}

// The whole float model in ONNX Runtime: timed, and the check recorded in the target file next
// to the kernel pass's.
TEST(Profile, WholeModelCheckInOnnxRuntime) {
  ProfileOptions o;
  o.timing.repeats = 1;
  o.timing.warmup = 1;
  o.timing.min_sample_ms = 0.01;
  o.ort_seconds = 0.2;
  ProfileResult r = profile_model(test::tiny_zoo("cnn", 16), "cnn", o);
  ASSERT_TRUE(r.ort) << r.ort_why;
  EXPECT_GT(r.ort_f32_ms, 0);
  const auto& check = r.target["profile"]["check"]["whole_model_onnxruntime"];
  EXPECT_TRUE(check.contains("error_f32_percent")) << check.dump();
  EXPECT_NE(format_text(r).find("whole float model in ONNX Runtime (every op)"), std::string::npos);
}

}  // namespace
}  // namespace mpq
