// Target files (docs/targets.md): every file in targets/ loads, targets/default.json is the
// built-in target, the HAWQ-V3 target carries the published T4 latencies unchanged, candidates
// follow the precedence default < op < pin < override, and every bad field is reported with the
// file and its JSON path on one line.
#include "search/target.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "support/error_of.h"

namespace mpq {
namespace {

namespace fs = std::filesystem;
using Pairs = std::vector<std::pair<int, int>>;

using testing::error_of;

LayerInfo layer(const std::string& name, const std::string& op, int64_t macs = 1000) {
  LayerInfo l;
  l.name = name;
  l.op = op;
  l.weight_elems = 100;
  l.out_channels = 4;
  l.macs = macs;
  l.input_elems = 50;
  return l;
}

void expect_same_table(const CostTable& a, const CostTable& b) {
  EXPECT_EQ(a.unit, b.unit);
  EXPECT_EQ(a.layers, b.layers);
  EXPECT_EQ(a.per_mac, b.per_mac);
  EXPECT_EQ(a.uncounted, b.uncounted);
}

void expect_same_rules(const std::vector<LayerRule>& a, const std::vector<LayerRule>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].pattern, b[i].pattern);
    EXPECT_EQ(a[i].weight_bits, b[i].weight_bits);
    EXPECT_EQ(a[i].act_bits, b[i].act_bits);
    EXPECT_EQ(a[i].fixed_weight_bits, b[i].fixed_weight_bits);
    EXPECT_EQ(a[i].fixed_act_bits, b[i].fixed_act_bits);
    EXPECT_EQ(a[i].keep_float, b[i].keep_float);
  }
}

std::vector<std::string> target_files() {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(fs::path(MPQ_SOURCE_DIR) / "targets")) {
    if (e.path().extension() == ".json") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(TargetGlob, Cases) {
  struct Case {
    const char* pattern;
    const char* name;
    bool match;
  };
  const Case cases[] = {
      {"conv1", "conv1", true},
      {"conv1", "conv10", false},
      {"conv1", "layer1.0.conv1", false},
      {"*", "", true},
      {"*", "anything", true},
      {"", "", true},
      {"", "a", false},
      {"?", "", false},
      {"?", "x", true},
      {"fc*", "fc", true},
      {"fc*", "fc.1", true},
      {"fc*", "xfc", false},
      {"*.conv1", "layer1.0.conv1", true},
      {"*.conv1", "conv1", false},
      {"layer?.0.conv1", "layer2.0.conv1", true},
      {"layer?.0.conv1", "layer12.0.conv1", false},
      {"layer*.downsample", "layer3.0.downsample", true},
      {"a*b*c", "aXbYc", true},
      {"a*b*c", "abc", true},
      {"a*b*c", "aXbY", false},
      {"a*b", "abab", true},
      {"/layer1/*/Conv", "/layer1/layer1.0/conv1/Conv", true},
      {"**", "x", true},
      // Many stars against a long non-match must stay fast (no exponential backtracking).
      {"*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(glob_match(c.pattern, c.name), c.match) << c.pattern << " vs " << c.name;
  }
}

TEST(TargetFiles, EveryFileLoads) {
  std::set<std::string> names;
  for (const auto& path : target_files()) {
    SCOPED_TRACE(path);
    Target t = load_target(path);
    EXPECT_EQ(t.path, path);
    // The name is how --target refers to the file, so it must be the file's stem.
    EXPECT_EQ(t.name, fs::path(path).stem().string());
    EXPECT_FALSE(t.description.empty());
    EXPECT_TRUE(t.weight_bits.count("default"));
    EXPECT_TRUE(t.act_bits.count("default"));
    names.insert(t.name);
  }
  for (const char* expected : {"default", "hawq_v3_t4_resnet18", "int8_int4_cpu", "edge_w2_8"}) {
    EXPECT_TRUE(names.count(expected)) << expected;
  }
}

TEST(TargetFiles, DefaultFileIsBuiltIn) {
  Target file = load_target(std::string(MPQ_SOURCE_DIR) + "/targets/default.json");
  Target built = default_target();
  EXPECT_EQ(built.path, "");
  EXPECT_EQ(file.name, built.name);
  EXPECT_EQ(file.description, built.description);
  EXPECT_EQ(file.weight_bits, built.weight_bits);
  EXPECT_EQ(file.act_bits, built.act_bits);
  expect_same_rules(file.pins, built.pins);
  expect_same_rules(file.overrides, built.overrides);
  EXPECT_EQ(file.ties, built.ties);
  EXPECT_EQ(file.tie_same_input, built.tie_same_input);
  EXPECT_EQ(file.tie_add, built.tie_add);
  EXPECT_EQ(file.tie_concat, built.tie_concat);
  EXPECT_EQ(file.per_channel, built.per_channel);
  EXPECT_EQ(file.zero_points, built.zero_points);
  EXPECT_EQ(file.kernels, built.kernels);
  expect_same_table(file.latency, built.latency);
  expect_same_table(file.energy, built.energy);

  LayerCandidates c = layer_candidates(built, layer("conv", "Conv"));
  EXPECT_EQ(c.weight_bits, (std::vector<int>{2, 3, 4, 5, 6, 8}));
  EXPECT_EQ(c.act_bits, (std::vector<int>{8}));
  EXPECT_EQ(c.pairs.size(), 6u);
  EXPECT_TRUE(built.tie_same_input);
  EXPECT_TRUE(built.latency.empty() && built.energy.empty());
}

TEST(TargetFiles, HawqLatenciesAreThePublishedOnes) {
  auto data = nlohmann::json::parse(
      read_file(std::string(MPQ_SOURCE_DIR) + "/tests/search/data/hawq_v3_resnet18_ilp.json"));
  Target t = load_target(std::string(MPQ_SOURCE_DIR) + "/targets/hawq_v3_t4_resnet18.json");
  EXPECT_EQ(t.latency.unit, "ms");
  ASSERT_EQ(t.latency.layers.size(), data["layers"].size());
  ASSERT_EQ(data["layers"].size(), 19u);
  EXPECT_EQ(t.ties, data["ties"].get<std::vector<std::vector<std::string>>>());

  const auto& expected = data["expected"]["latency"];
  double total = 0;
  size_t i = 0;
  for (const auto& row : data["layers"]) {
    LayerInfo l = layer(row["name"].get<std::string>(), "Conv", row["macs"].get<int64_t>());
    SCOPED_TRACE(l.name);
    // "ms" on load is a factor of exactly 1, so the numbers must be bit-identical.
    EXPECT_EQ(layer_cost(CostKind::kLatency, l, 4, 4, t), row["t4_latency_ms_int4"].get<double>());
    EXPECT_EQ(layer_cost(CostKind::kLatency, l, 8, 8, t), row["t4_latency_ms_int8"].get<double>());
    LayerCandidates c = layer_candidates(t, l);
    EXPECT_EQ(c.reason, LayerCandidates::Reason::kSearched);
    // Only the INT4 and INT8 kernels exist on the T4 path HAWQ-V3 measured.
    EXPECT_EQ(c.pairs, (Pairs{{4, 4}, {8, 8}}));
    int b = expected["bits"][i++].get<int>();
    total += layer_cost(CostKind::kLatency, l, b, b, t);
  }
  // The data file's exhaustive-search answer, recomputed from the target's table.
  EXPECT_NEAR(total, expected["latency_ms"].get<double>(), 1e-4);

  for (const char* name : {"conv1", "fc"}) {
    LayerInfo l = layer(name, std::string(name) == "fc" ? "Gemm" : "Conv");
    LayerCandidates c = layer_candidates(t, l);
    EXPECT_EQ(c.reason, LayerCandidates::Reason::kPinned);
    EXPECT_EQ(c.pairs, (Pairs{{8, 8}}));
    EXPECT_EQ(layer_cost(CostKind::kLatency, l, 8, 8, t), 0.0) << name << " is uncounted";
  }
}

TEST(TargetFiles, CpuTargetPerMacInMilliseconds) {
  Target t = load_target(std::string(MPQ_SOURCE_DIR) + "/targets/int8_int4_cpu.json");
  EXPECT_EQ(t.latency.unit, "ms");
  // 2.0e-5 us per MAC, read in us and kept in ms: 1e6 MACs = 20 us = 0.02 ms.
  EXPECT_NEAR(layer_cost(CostKind::kLatency, layer("layer1.0.conv1", "Conv", 1000000), 8, 8, t),
              0.02, 1e-12);
  EXPECT_NEAR(layer_cost(CostKind::kLatency, layer("head", "MatMul", 1000000), 4, 8, t), 0.025,
              1e-12);
  for (const char* name : {"conv1", "fc", "fc.2"}) {
    LayerCandidates c = layer_candidates(t, layer(name, "Gemm"));
    EXPECT_EQ(c.reason, LayerCandidates::Reason::kPinned) << name;
    EXPECT_EQ(c.pairs, (Pairs{{8, 8}})) << name;
  }
  EXPECT_EQ(layer_candidates(t, layer("layer1.0.conv1", "Conv")).pairs, (Pairs{{4, 8}, {8, 8}}));
}

TEST(TargetFiles, DocExampleLoads) {
  // The first JSON block of docs/targets.md is the format's showcase: it must stay loadable.
  std::string doc = read_file(std::string(MPQ_SOURCE_DIR) + "/docs/targets.md");
  size_t begin = doc.find("```json\n");
  ASSERT_NE(begin, std::string::npos);
  begin += 8;
  std::string text = doc.substr(begin, doc.find("```", begin) - begin);
  Target t = target_from_json(text, "docs/targets.md");
  EXPECT_EQ(t.name, "my_npu");
  EXPECT_EQ(layer_candidates(t, layer("x", "Gemm")).pairs, (Pairs{{8, 8}}));
  EXPECT_EQ(layer_candidates(t, layer("layer4.1.conv2", "Conv")).pairs,
            (Pairs{{4, 4}, {4, 8}, {8, 4}, {8, 8}}));
  EXPECT_NEAR(layer_cost(CostKind::kLatency, layer("layer1.0.conv1", "Conv"), 4, 4, t), 0.2109,
              1e-12);
}

TEST(TargetFiles, Int8FormatIsRead) {
  EXPECT_EQ(target_from_json(R"({"int8_format": "u8u8"})", "t.json").int8_format, "u8u8");
  EXPECT_EQ(target_from_json(R"({"int8_format": "reduce-range"})", "t.json").int8_format,
            "reduce-range");
  EXPECT_EQ(target_from_json("{}", "t.json").int8_format, "");
}

TEST(TargetFiles, EdgeTargetTiesAdds) {
  Target t = load_target(std::string(MPQ_SOURCE_DIR) + "/targets/edge_w2_8.json");
  EXPECT_TRUE(t.tie_add);
  EXPECT_TRUE(t.tie_same_input);
  EXPECT_FALSE(t.tie_concat);
  EXPECT_TRUE(t.latency.empty() && t.energy.empty());
  LayerCandidates c = layer_candidates(t, layer("x", "Conv"));
  EXPECT_EQ(c.weight_bits, (std::vector<int>{2, 3, 4, 5, 6, 8}));
  EXPECT_EQ(c.act_bits, (std::vector<int>{4, 8}));
  EXPECT_EQ(c.pairs.size(), 12u);
}

TEST(TargetFiles, BitFusionCostsTwoBitSliceProducts) {
  Target t = load_target(std::string(MPQ_SOURCE_DIR) + "/targets/bitfusion.json");
  LayerInfo l = layer("x", "Conv");
  l.macs = 1000000;
  const double brick = 1e3 / (8192 * 500e6);  // ms per BitBrick operation
  auto at = [&](int w, int a) { return layer_cost(CostKind::kLatency, l, w, a, t); };
  EXPECT_NEAR(at(2, 2), 1e6 * brick, 1e-15);
  EXPECT_NEAR(at(8, 8), 16e6 * brick, 1e-14);
  EXPECT_NEAR(at(4, 8), 8e6 * brick, 1e-14);
  EXPECT_DOUBLE_EQ(at(3, 8), at(4, 8));  // ceil(3/2) = 2 slices
  EXPECT_NEAR(at(5, 4), 6e6 * brick, 1e-14);
}

TEST(TargetFiles, MemoryBoundCostsBytesMoved) {
  Target t = load_target(std::string(MPQ_SOURCE_DIR) + "/targets/edge_cpu_memory_bound.json");
  LayerInfo l = layer("x", "Conv");
  l.weight_elems = 9216, l.input_elems = 12544, l.output_elems = 6272, l.macs = 1 << 20;
  const double per_byte_ms = 1e3 / 4e9;
  for (auto [w, a] : Pairs{{2, 4}, {4, 8}, {8, 8}}) {
    double bytes = 9216.0 * w / 8 + (12544.0 + 6272.0) * a / 8;
    EXPECT_NEAR(layer_cost(CostKind::kLatency, l, w, a, t), bytes * per_byte_ms, 1e-12) << w;
  }
  // per_byte adds to per_mac; bad coefficients name their path.
  Target both = target_from_json(
      R"({"latency": {"unit": "ms", "per_mac": {"default": {"w8": 1e-6}},
                      "per_byte": {"weights": 1e-3}}})",
      "b.json");
  EXPECT_NEAR(layer_cost(CostKind::kLatency, l, 8, 8, both), 1.048576 + 9.216, 1e-9);
  std::string msg = error_of(
      [&] { target_from_json(R"({"latency": {"per_byte": {"weights": -1}}})", "n.json"); });
  EXPECT_NE(msg.find("latency.per_byte.weights"), std::string::npos) << msg;
}

TEST(TargetRules, Precedence) {
  Target t = target_from_json(R"({
    "weight_bits": {"default": [2, 4, 8], "Gemm": [8, 4, 8]},
    "act_bits": {"Conv": [4, 8]},
    "pins": [{"layers": "conv*", "weight_bits": 4},
             {"layers": "conv9", "act_bits": 4},
             {"layers": "head*", "float": true}],
    "overrides": [{"layers": "conv2", "weight_bits": [3, 2]},
                  {"layers": "fc", "act_bits": 16},
                  {"layers": "head2", "weight_bits": 8}]
  })",
                              "p.json");
  EXPECT_EQ(t.name, "p");  // the stem when the file names none
  using R = LayerCandidates::Reason;
  struct Case {
    const char* name;
    const char* op;
    std::vector<int> w, a;
    R reason;
    const char* rule;
  };
  const Case cases[] = {
      // default < op: Gemm's own list (sorted, deduplicated); act falls back to the built-in {8}.
      {"fc", "Gemm", {4, 8}, {16}, R::kOverride, "fc"},
      {"fc2", "Gemm", {4, 8}, {8}, R::kSearched, ""},
      {"mm", "MatMul", {2, 4, 8}, {8}, R::kSearched, ""},
      {"x", "Conv", {2, 4, 8}, {4, 8}, R::kSearched, ""},
      // pin: its bits, else the highest candidate.
      {"conv1", "Conv", {4}, {8}, R::kPinned, "conv*"},
      // the last matching pin wins as a whole.
      {"conv9", "Conv", {8}, {4}, R::kPinned, "conv9"},
      {"head1", "Gemm", {32}, {32}, R::kPinned, "head*"},
      // override > pin: replaces the candidates it names, keeps the pinned rest.
      {"conv2", "Conv", {2, 3}, {8}, R::kOverride, "conv2"},
      {"head2", "Gemm", {8}, {32}, R::kOverride, "head2"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    LayerCandidates got = layer_candidates(t, layer(c.name, c.op));
    EXPECT_EQ(got.weight_bits, c.w);
    EXPECT_EQ(got.act_bits, c.a);
    EXPECT_EQ(got.reason, c.reason);
    EXPECT_EQ(got.rule, c.rule);
    EXPECT_EQ(got.pairs.size(), c.w.size() * c.a.size());
  }
}

TEST(TargetRules, KernelsRestrictSearchedLayersOnly) {
  Target t = target_from_json(R"({
    "weight_bits": {"default": [2, 4, 8]}, "act_bits": {"default": [4, 8]},
    "kernels": ["w4a4", "w8"],
    "pins": [{"layers": "first", "weight_bits": 2, "act_bits": 8}],
    "overrides": [{"layers": "odd", "weight_bits": [2]}]
  })",
                              "k.json");
  EXPECT_TRUE(kernel_supported(t, 4, 4));
  EXPECT_FALSE(kernel_supported(t, 4, 8));
  EXPECT_TRUE(kernel_supported(t, 8, 4));
  EXPECT_TRUE(kernel_supported(default_target(), 3, 5));
  EXPECT_EQ(layer_candidates(t, layer("x", "Conv")).pairs, (Pairs{{4, 4}, {8, 4}, {8, 8}}));
  EXPECT_EQ(layer_candidates(t, layer("first", "Conv")).pairs, (Pairs{{2, 8}}));
  EXPECT_EQ(layer_candidates(t, layer("odd", "Conv")).pairs, (Pairs{{2, 4}, {2, 8}}));

  Target none =
      target_from_json(R"({"weight_bits": {"default": [2]}, "kernels": ["w4"]})", "n.json");
  std::string msg = error_of([&] { layer_candidates(none, layer("conv7", "Conv")); });
  EXPECT_NE(msg.find("n.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("conv7"), std::string::npos) << msg;
  EXPECT_NE(msg.find("w4"), std::string::npos) << msg;
}

TEST(TargetRules, OptionalFieldsKeepDefaults) {
  Target t =
      target_from_json(R"({"auto_ties": {"add": true}, "weight_scheme": {"zero_points": true},
                                  "energy": {"unit": "mJ", "per_mac": {"default": {"w8a8": 1.5}}}})",
                       "o.json");
  EXPECT_TRUE(t.tie_same_input);
  EXPECT_TRUE(t.tie_add);
  EXPECT_FALSE(t.tie_concat);
  EXPECT_TRUE(t.per_channel);
  EXPECT_TRUE(t.zero_points);
  EXPECT_EQ(t.weight_bits, default_target().weight_bits);
  EXPECT_EQ(t.energy.unit, "mJ");
  EXPECT_EQ(t.energy.per_mac.at("default").at("w8a8"), 1.5);  // energy is never rescaled
  EXPECT_TRUE(t.latency.empty());
}

TEST(TargetErrors, NameFileAndJsonPath) {
  struct Case {
    const char* json;
    const char* expected;  // a substring of the message
  };
  const Case cases[] = {
      {R"({"weight_bit": {"default": [8]}})", "t.json: unknown field 'weight_bit' (expected"},
      {R"({"int8_format": "u4s4"})",
       "t.json: int8 format: expected one of auto, u8s8, s8s8, u8u8, reduce-range, found 'u4s4'"},
      {R"({"int8_format": 8})", "t.json: int8_format: expected a string"},
      {R"({"pins": [{"layers": "a"}, {"layers": "b"}, {"layers": "c", "weight_bits": 7.5}]})",
       "t.json: pins[2].weight_bits: expected an integer bit width (2-8, 16 or 32), found 7.5"},
      {R"({"weight_bits": {"default": [4, 9]}})",
       "t.json: weight_bits.default[1]: expected an integer bit width (2-8, 16 or 32), found 9"},
      {R"({"weight_bits": {"default": [1]}})", "weight_bits.default[0]: expected an integer"},
      {R"({"act_bits": {"default": [64]}})", "act_bits.default[0]: expected an integer"},
      {R"({"weight_bits": {"default": 8}})", "weight_bits.default: expected a non-empty list of"},
      {R"({"weight_bits": {"Linear": [8]}})", "t.json: weight_bits: unknown op type 'Linear'"},
      {R"({"weight_bits": [4, 8]})", "t.json: weight_bits: expected an object mapping op types"},
      {R"({"pins": [{"layers": "a", "weight": 4}]})", "t.json: pins[0]: unknown field 'weight'"},
      {R"({"pins": [{"weight_bits": 4}]})", "t.json: pins[0].layers: expected a layer name"},
      {R"({"pins": [{"layers": ""}]})", "t.json: pins[0].layers: expected a layer name pattern"},
      {R"({"pins": [{"layers": 3}]})", "t.json: pins[0].layers: expected a string, found 3"},
      {R"({"pins": [{"layers": "a", "float": "yes"}]})",
       "t.json: pins[0].float: expected true or false, found \"yes\""},
      {R"({"pins": [{"layers": "a", "float": true, "weight_bits": 8}]})",
       "t.json: pins[0]: \"float\": true"},
      {R"({"pins": [{"layers": "a", "weight_bits": [4, 8]}]})",
       "t.json: pins[0].weight_bits: expected an integer bit width"},
      {R"({"pins": {"layers": "a"}})", "t.json: pins: expected a list of objects"},
      {R"({"overrides": [{"layers": "a", "act_bits": "8"}]})",
       "t.json: overrides[0].act_bits: expected an integer bit width (2-8, 16 or 32) or a list"},
      {R"({"overrides": [{"layers": "a", "weight_bits": [4, 7.5]}]})",
       "t.json: overrides[0].weight_bits[1]: expected an integer bit width"},
      {R"({"overrides": [{"layers": "a"}]})",
       "t.json: overrides[0]: expected weight_bits or act_bits"},
      {R"({"overrides": [{"layers": "a", "float": true}]})",
       "t.json: overrides[0]: unknown field 'float'"},
      {R"({"ties": [["a", "b"], "c"]})", "t.json: ties[1]: expected a non-empty list"},
      {R"({"ties": [["a", 2]]})", "t.json: ties[0][1]: expected a string, found 2"},
      {R"({"auto_ties": {"residual": true}})", "t.json: auto_ties: unknown field 'residual'"},
      {R"({"auto_ties": {"add": 1}})", "t.json: auto_ties.add: expected true or false, found 1"},
      {R"({"weight_scheme": {"per_channel": "no"}})",
       "t.json: weight_scheme.per_channel: expected true or false"},
      {R"({"kernels": ["w4x"]})", "t.json: kernels[0]: expected wBaB or wB"},
      {R"({"latency": {"unit": "ns", "layers": {}}})",
       "t.json: latency.unit: expected \"ms\", \"us\" or \"s\", found \"ns\""},
      {R"({"latency": {"layers": {"conv1": {"w4a9": 1}}}})",
       "t.json: latency.layers.conv1: bad key 'w4a9'"},
      {R"({"latency": {"layers": {"conv1": {"w04": 1}}}})", "latency.layers.conv1: bad key 'w04'"},
      {R"({"latency": {"layers": {"c": {"": 1}}}})", "latency.layers.c: bad key ''"},
      {R"({"latency": {"layers": {"c": {"w4a": 1}}}})", "latency.layers.c: bad key 'w4a'"},
      {R"({"latency": {"layers": {"c": {"a8": 1}}}})", "latency.layers.c: bad key 'a8'"},
      {R"({"latency": {"layers": {"c": {"w": 1}}}})", "latency.layers.c: bad key 'w'"},
      {R"({"latency": {"layers": {"c": {"w4a8x": 1}}}})", "latency.layers.c: bad key 'w4a8x'"},
      {R"({"latency": {"layers": {"conv1": {"w4": "fast"}}}})",
       "t.json: latency.layers.conv1.w4: expected a non-negative number, found \"fast\""},
      {R"({"energy": {"layers": {"x": {"w4": -1}}}})",
       "t.json: energy.layers.x.w4: expected a non-negative number, found -1"},
      {R"({"latency": {"per_mac": {"Conv2d": {"w8": 1}}}})",
       "t.json: latency.per_mac: unknown op type 'Conv2d'"},
      {R"({"latency": {"per_layer": {}}})", "t.json: latency: unknown field 'per_layer'"},
      {R"({"latency": {"uncounted": ["a*"], "layers": {"ab": {"w8": 1}}}})",
       "t.json: latency.layers.ab: the layer has costs but also matches uncounted pattern 'a*'"},
      {R"({"version": 2})", "t.json: version: expected 1, found 2"},
      {R"({"format": "mpq-plan"})", "t.json: format: expected \"mpq-target\""},
      {R"({"name": 5})", "t.json: name: expected a string, found 5"},
      {R"([1, 2])", "t.json: expected an object with fields"},
      {R"({"pins": [}")", "t.json: not valid JSON"},
  };
  for (const auto& c : cases) {
    std::string msg = error_of([&] { target_from_json(c.json, "t.json"); });
    EXPECT_NE(msg.find(c.expected), std::string::npos) << c.json << "\n  got: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(TargetErrors, LoadNamesTheFile) {
  fs::path dir = fs::temp_directory_path() / ("mpq_target_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string path = (dir / "bad.json").string();
  std::ofstream(path) << R"({"pins": [{"layers": "conv1", "act_bits": 9}]})";
  std::string msg = error_of([&] { load_target(path); });
  EXPECT_EQ(msg,
            path + ": pins[0].act_bits: expected an integer bit width (2-8, 16 or 32), found 9");
  msg = error_of([&] { load_target((dir / "none.json").string()); });
  EXPECT_NE(msg.find("none.json"), std::string::npos) << msg;
  fs::remove_all(dir);
}

TEST(TargetErrors, BitsAcceptedExactly) {
  for (int b = -1; b <= 40; ++b) {
    bool ok = (b >= 2 && b <= 8) || b == 16 || b == 32;
    EXPECT_EQ(valid_bits(b), ok) << b;
    std::string json = R"({"weight_bits": {"default": [)" + std::to_string(b) + "]}}";
    if (ok) {
      EXPECT_NO_THROW(target_from_json(json, "b.json")) << b;
    } else {
      EXPECT_NE(error_of([&] { target_from_json(json, "b.json"); }).find("b.json"),
                std::string::npos)
          << b;
    }
  }
  // Writers that print every number as a float: 8.0 is 8.
  EXPECT_EQ(target_from_json(R"({"weight_bits": {"default": [8.0]}})", "f.json")
                .weight_bits.at("default"),
            (std::vector<int>{8}));
}

}  // namespace
}  // namespace mpq
