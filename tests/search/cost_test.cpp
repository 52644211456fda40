// The cost model against hand-computed values for every kind (cost.h), --budget parsing for every
// unit and mode with its one-line errors, limit resolution and printing (budget.h).
#include "search/cost.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "search/budget.h"
#include "search/target.h"
#include "support/error_of.h"

namespace mpq {
namespace {

using testing::error_of;

// A 3x3 conv, 16 -> 32 channels, with a weight count that does not pack evenly at 3 bits.
LayerInfo conv() {
  LayerInfo l;
  l.name = "layer1.0.conv1";
  l.op = "Conv";
  l.weight_elems = 4610;
  l.bias_elems = 32;
  l.out_channels = 32;
  l.macs = 461000;
  l.input_elems = 1601;
  l.output_elems = 3200;
  return l;
}

double cost(CostKind kind, int w, int a, const Target& t = default_target()) {
  return layer_cost(kind, conv(), w, a, t);
}

TEST(CostKinds, TableRowsRoundTrip) {
  const auto& table = cost_kind_table();
  ASSERT_EQ(table.size(), 7u);
  for (size_t i = 0; i < table.size(); ++i) {
    const CostKindInfo& row = table[i];
    EXPECT_EQ(static_cast<size_t>(row.kind), i) << "rows in enum order";
    EXPECT_EQ(parse_cost_kind(row.name), row.kind);
    EXPECT_EQ(&cost_kind_info(row.kind), &row);
    EXPECT_NE(std::string(row.summary), "");
    EXPECT_EQ(row.max_aggregate, row.kind == CostKind::kMemory) << row.name;
  }
  std::string msg = error_of([] { parse_cost_kind("sise"); });
  EXPECT_EQ(msg,
            "unknown budget kind 'sise' (expected one of size, weight-size, bops, latency, energy, "
            "memory, avg-bits)");
}

TEST(CostSize, PackedWeightsScalesZeroPointsBias) {
  // ceil(4610 * 4 / 8) = 2305 weight bytes + 32 scales * 4 + 32 bias * 4.
  EXPECT_EQ(cost(CostKind::kSize, 4, 8), 2305 + 128 + 128);
  // 4610 * 3 / 8 = 1728.75 -> 1729 bytes packed.
  EXPECT_EQ(cost(CostKind::kSize, 3, 8), 1729 + 128 + 128);
  EXPECT_EQ(cost(CostKind::kSize, 8, 8), 4610 + 128 + 128);
  // Activation bits do not change the stored model.
  EXPECT_EQ(cost(CostKind::kSize, 4, 4), cost(CostKind::kSize, 4, 8));
  // Float: 4 bytes per weight and bias, no scales.
  EXPECT_EQ(cost(CostKind::kSize, 32, 32), 4 * 4610 + 4 * 32);

  Target per_tensor = default_target();
  per_tensor.per_channel = false;
  EXPECT_EQ(cost(CostKind::kSize, 4, 8, per_tensor), 2305 + 4 + 128);
  per_tensor.zero_points = true;
  EXPECT_EQ(cost(CostKind::kSize, 4, 8, per_tensor), 2305 + 4 + 1 + 128);

  Target affine = default_target();
  affine.zero_points = true;
  EXPECT_EQ(cost(CostKind::kSize, 4, 8, affine), 2305 + 128 + 32 + 128);
  // 16-bit weights keep 16-bit zero points.
  EXPECT_EQ(cost(CostKind::kSize, 16, 8, affine), 9220 + 128 + 64 + 128);
}

TEST(CostSize, NoBiasNoChannels) {
  LayerInfo l = conv();
  l.bias_elems = 0;
  l.out_channels = 0;  // unknown: one scale at least
  EXPECT_EQ(layer_cost(CostKind::kSize, l, 2, 8, default_target()), 1153 + 4);
}

TEST(CostOthers, HandComputed) {
  EXPECT_EQ(cost(CostKind::kWeightSize, 3, 8), 1728.75);  // papers: no rounding, no extras
  EXPECT_EQ(cost(CostKind::kWeightSize, 8, 8), 4610);
  EXPECT_EQ(cost(CostKind::kWeightSize, 32, 32), 4 * 4610);
  EXPECT_EQ(cost(CostKind::kBops, 4, 8), 461000.0 * 32);  // the header's example
  EXPECT_EQ(cost(CostKind::kBops, 3, 5), 461000.0 * 15);
  EXPECT_EQ(cost(CostKind::kBops, 32, 32), 461000.0 * 1024);
  EXPECT_EQ(cost(CostKind::kAvgBits, 5, 8), 4610.0 * 5);
  // The activation read: ceil(1601 * 4 / 8) = 801 bytes; weight bits do not matter.
  EXPECT_EQ(cost(CostKind::kMemory, 2, 4), 801);
  EXPECT_EQ(cost(CostKind::kMemory, 8, 8), 1601);
  EXPECT_EQ(cost(CostKind::kMemory, 32, 32), 4 * 1601);
}

TEST(CostOthers, BadBits) {
  std::string msg = error_of([] { cost(CostKind::kBops, 9, 8); });
  EXPECT_NE(msg.find("layer1.0.conv1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("w9a8"), std::string::npos) << msg;
}

Target table_target() {
  return target_from_json(R"({
    "latency": {"unit": "us",
                "uncounted": ["stem*"],
                "layers": {"layer1.0.conv1": {"w4a8": 120, "w4": 150, "w8a8": 200},
                           "only4": {"w4a4": 10}},
                "per_mac": {"Conv": {"w4": 0.001, "w8a8": 0.002}, "default": {"w8": 0.004}}},
    "energy": {"unit": "uJ", "per_mac": {"Conv": {"w4a4": 0.5}}}
  })",
                          "lat.json");
}

TEST(CostLatency, PerLayerTableMostSpecificKey) {
  Target t = table_target();
  EXPECT_NEAR(cost(CostKind::kLatency, 4, 8, t), 0.120, 1e-15);  // "w4a8" beats "w4"
  EXPECT_NEAR(cost(CostKind::kLatency, 4, 4, t), 0.150, 1e-15);  // "w4": any activation bits
  EXPECT_NEAR(cost(CostKind::kLatency, 8, 8, t), 0.200, 1e-15);
}

TEST(CostLatency, PerMacTable) {
  Target t = table_target();
  LayerInfo l = conv();
  l.name = "layer2.0.conv1";  // not in "layers": op per-MAC * macs, us -> ms
  EXPECT_NEAR(layer_cost(CostKind::kLatency, l, 4, 8, t), 461000 * 0.001e-3, 1e-12);
  EXPECT_NEAR(layer_cost(CostKind::kLatency, l, 8, 8, t), 461000 * 0.002e-3, 1e-12);
  l.op = "MatMul";  // no MatMul row: the "default" row
  EXPECT_NEAR(layer_cost(CostKind::kLatency, l, 8, 4, t), 461000 * 0.004e-3, 1e-12);
  l.name = "stem.conv";
  EXPECT_EQ(layer_cost(CostKind::kLatency, l, 2, 2, t), 0.0);  // uncounted
  // Energy keeps the file's unit.
  l.op = "Conv";
  EXPECT_EQ(layer_cost(CostKind::kEnergy, l, 4, 4, t), 461000 * 0.5);
}

TEST(CostLatency, MissingEntryNamesFileLayerAndBits) {
  Target t = table_target();
  LayerInfo l = conv();
  l.name = "layer2.0.conv1";
  std::string msg = error_of([&] { layer_cost(CostKind::kLatency, l, 2, 4, t); });
  EXPECT_EQ(msg,
            "lat.json: latency table has no entry for layer 'layer2.0.conv1' (op Conv) at w2a4 "
            "(expected latency.layers.layer2.0.conv1.w2a4 or .w2, or latency.per_mac.Conv.w2a4 "
            "or .w2)");
  // A layer's own row is not completed from per-MAC numbers.
  l.name = "only4";
  msg = error_of([&] { layer_cost(CostKind::kLatency, l, 8, 8, t); });
  EXPECT_EQ(msg,
            "lat.json: latency.layers.only4: no entry for w8a8 (expected key 'w8a8' or 'w8', "
            "found w4a4)");
  msg = error_of([&] { layer_cost(CostKind::kEnergy, l, 8, 8, t); });
  EXPECT_NE(msg.find("lat.json: energy table has no entry for layer 'only4'"), std::string::npos)
      << msg;
  msg = error_of([&] { layer_cost(CostKind::kLatency, l, 8, 8, default_target()); });
  EXPECT_EQ(msg,
            "target 'default': the target has no latency table (expected \"latency\" with "
            "\"layers\" or \"per_mac\", docs/targets.md)");
}

TEST(BudgetParse, EveryUnit) {
  using M = BudgetSpec::Mode;
  struct Case {
    const char* text;
    CostKind kind;
    M mode;
    double value;
  };
  const double kKi = 1024, kMi = 1048576, kGi = 1073741824;
  const Case cases[] = {
      {"size=2.5MB", CostKind::kSize, M::kAbsolute, 2.5e6},
      {"size=800KiB", CostKind::kSize, M::kAbsolute, 800 * kKi},
      {"size=3KB", CostKind::kSize, M::kAbsolute, 3e3},
      {"size=3kB", CostKind::kSize, M::kAbsolute, 3e3},
      {"size=1.5GB", CostKind::kSize, M::kAbsolute, 1.5e9},
      {"size=2MiB", CostKind::kSize, M::kAbsolute, 2 * kMi},
      {"size=1GiB", CostKind::kSize, M::kAbsolute, kGi},
      {"size=512B", CostKind::kSize, M::kAbsolute, 512},
      {"size=4096", CostKind::kSize, M::kAbsolute, 4096},
      {"size=1e6B", CostKind::kSize, M::kAbsolute, 1e6},
      {"size=.5MB", CostKind::kSize, M::kAbsolute, 5e5},
      {" size = 2.5 MB ", CostKind::kSize, M::kAbsolute, 2.5e6},
      {"weight-size=4.5MB", CostKind::kWeightSize, M::kAbsolute, 4.5 * kMi},
      {"weight-size=1KB", CostKind::kWeightSize, M::kAbsolute, kKi},
      {"weight-size=1GB", CostKind::kWeightSize, M::kAbsolute, kGi},
      {"weight-size=3MiB", CostKind::kWeightSize, M::kAbsolute, 3 * kMi},
      {"weight-size=100B", CostKind::kWeightSize, M::kAbsolute, 100},
      {"bops=12G", CostKind::kBops, M::kAbsolute, 12e9},
      {"bops=3K", CostKind::kBops, M::kAbsolute, 3e3},
      {"bops=2M", CostKind::kBops, M::kAbsolute, 2e6},
      {"bops=1.5T", CostKind::kBops, M::kAbsolute, 1.5e12},
      {"bops=1000", CostKind::kBops, M::kAbsolute, 1000},
      {"latency=3ms", CostKind::kLatency, M::kAbsolute, 3},
      {"latency=800us", CostKind::kLatency, M::kAbsolute, 0.8},
      {"latency=0.5s", CostKind::kLatency, M::kAbsolute, 500},
      {"latency=2", CostKind::kLatency, M::kAbsolute, 2},
      {"energy=2.1", CostKind::kEnergy, M::kAbsolute, 2.1},
      {"memory=64KB", CostKind::kMemory, M::kAbsolute, 64e3},
      {"memory=64KiB", CostKind::kMemory, M::kAbsolute, 64 * kKi},
      {"avg-bits=3.5", CostKind::kAvgBits, M::kAbsolute, 3.5},
      {"size=0.5r", CostKind::kSize, M::kFraction, 0.5},
      {"latency=1r", CostKind::kLatency, M::kFraction, 1},
      {"bops=0.4x", CostKind::kBops, M::kMultiple, 0.4},
      {"avg-bits=0r", CostKind::kAvgBits, M::kFraction, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    BudgetSpec s = parse_budget(c.text);
    EXPECT_EQ(s.kind, c.kind);
    EXPECT_EQ(s.mode, c.mode);
    EXPECT_DOUBLE_EQ(s.value, c.value);
    EXPECT_EQ(s.text, c.text);
  }
}

TEST(BudgetParse, RelativeModesForEveryKind) {
  for (const auto& k : cost_kind_table()) {
    std::string name = k.name;
    EXPECT_EQ(parse_budget(name + "=0.25r").mode, BudgetSpec::Mode::kFraction) << name;
    BudgetSpec x = parse_budget(name + "=2x");
    EXPECT_EQ(x.mode, BudgetSpec::Mode::kMultiple) << name;
    EXPECT_EQ(x.value, 2) << name;
    EXPECT_EQ(x.kind, k.kind);
  }
}

TEST(BudgetParse, ErrorsNameTheText) {
  struct Case {
    const char* text;
    const char* message;  // the whole message
  };
  const Case cases[] = {
      {"size=2.5XB",
       "--budget 'size=2.5XB': unknown unit 'XB' for size (expected B, KB, MB, GB, KiB, MiB, GiB, "
       "r or x)"},
      {"size2.5MB", "--budget 'size2.5MB': expected KIND=VALUE (e.g. size=2.5MB, bops=0.5r)"},
      {"sise=2MB",
       "--budget 'sise=2MB': unknown kind 'sise' (expected one of size, weight-size, bops, "
       "latency, energy, memory, avg-bits)"},
      {"size=-1MB", "--budget 'size=-1MB': expected a non-negative value, found -1"},
      {"size=MB", "--budget 'size=MB': expected a number after '=', found 'MB'"},
      {"size=", "--budget 'size=': expected a number after '=', found ''"},
      {"size=1.5r", "--budget 'size=1.5r': expected a fraction r in [0, 1], found 1.5"},
      {"bops=1e999", "--budget 'bops=1e999': expected a finite number, found '1e999'"},
      {"latency=3MB",
       "--budget 'latency=3MB': unknown unit 'MB' for latency (expected s, ms, us, r or x)"},
      {"bops=3GB", "--budget 'bops=3GB': unknown unit 'GB' for bops (expected K, M, G, T, r or x)"},
      {"energy=2J",
       "--budget 'energy=2J': unknown unit 'J' for energy (expected a plain number, "
       "r or x)"},
      {"avg-bits=3.5b",
       "--budget 'avg-bits=3.5b': unknown unit 'b' for avg-bits (expected a "
       "plain number, r or x)"},
      {"size=2e",
       "--budget 'size=2e': unknown unit 'e' for size (expected B, KB, MB, GB, KiB, "
       "MiB, GiB, r or x)"},
      {"size=inf", "--budget 'size=inf': expected a number after '=', found 'inf'"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(error_of([&] { parse_budget(c.text); }), c.message);
  }
}

TEST(BudgetResolve, FractionMultipleAbsolute) {
  EXPECT_DOUBLE_EQ(resolve_limit(parse_budget("size=0.25r"), 10, 30), 15);
  EXPECT_DOUBLE_EQ(resolve_limit(parse_budget("size=0r"), 10, 30), 10);
  EXPECT_DOUBLE_EQ(resolve_limit(parse_budget("size=1r"), 10, 30), 30);
  EXPECT_DOUBLE_EQ(resolve_limit(parse_budget("bops=0.4x"), 10, 30), 12);
  EXPECT_DOUBLE_EQ(resolve_limit(parse_budget("size=2KB"), 10, 30), 2000);
  // avg-bits: bits per weight become a total of weights * bits.
  EXPECT_DOUBLE_EQ(resolve_limit(parse_budget("avg-bits=3.5"), 2000, 8000, 1000), 3500);
  EXPECT_DOUBLE_EQ(resolve_limit(parse_budget("avg-bits=0.5r"), 2000, 8000, 1000), 5000);
  EXPECT_DOUBLE_EQ(resolve_limit(parse_budget("avg-bits=0.5x"), 2000, 8000, 1000), 4000);
}

TEST(BudgetFormat, Units) {
  EXPECT_EQ(format_cost(CostKind::kSize, 2.5e6), "2.50 MB");
  EXPECT_EQ(format_cost(CostKind::kBops, 1.2e10), "12.0 GBitOps");
  EXPECT_EQ(format_cost(CostKind::kLatency, 3.2), "3.20 ms");
  EXPECT_EQ(format_cost(CostKind::kSize, 512), "512 B");
  EXPECT_EQ(format_cost(CostKind::kSize, 0), "0 B");
  EXPECT_EQ(format_cost(CostKind::kSize, 123456), "123 KB");
  EXPECT_EQ(format_cost(CostKind::kMemory, 64e3), "64.0 KB");
  EXPECT_EQ(format_cost(CostKind::kWeightSize, 7.2656 * 1048576), "7.27 MiB");
  EXPECT_EQ(format_cost(CostKind::kBops, 999.7e6), "1.00 GBitOps");  // rounding moves the prefix
  EXPECT_EQ(format_cost(CostKind::kLatency, 0.8), "800 us");
  EXPECT_EQ(format_cost(CostKind::kLatency, 1500), "1.50 s");
  EXPECT_EQ(format_cost(CostKind::kLatency, 0), "0 ms");
  EXPECT_EQ(format_cost(CostKind::kEnergy, 2.1), "2.10");
  EXPECT_EQ(format_cost(CostKind::kAvgBits, 3.5e6, 1e6), "3.50 bits");
  EXPECT_EQ(format_cost(CostKind::kAvgBits, 3.5e6), "3.50 Mbit*weights");
  EXPECT_EQ(format_cost(CostKind::kSize, INFINITY), "inf");
}

}  // namespace
}  // namespace mpq
