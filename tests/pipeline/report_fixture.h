// A small run folder's artifacts built in code for the report tests (pipeline and CLI): a
// four-layer model with run.json, plan.json, sensitivity.json and frontier.json as `mpq run`
// writes them (docs/report.md), labelled or not. One Ω is negative, as measured metrics give.
#pragma once

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "core/fs.h"

namespace mpq::test {

struct RunArtifacts {
  nlohmann::json run, plan, sensitivity, frontier;
};

inline RunArtifacts report_fixture(bool labelled = true) {
  using nlohmann::json;
  RunArtifacts a;
  const char* names[] = {"conv1", "block.conv", "head.conv", "fc"};
  const int chosen[] = {4, 8, 2, 8};
  const double params[] = {144, 2304, 4608, 650};
  const double macs[] = {112896, 1806336, 903168, 640};

  a.sensitivity = {{"format", "mpq.sensitivity"},
                   {"version", 1},
                   {"metric", "fisher"},
                   {"info", {{"data_hash", "0123456789abcdef"}, {"options", {{"samples", 64}}}}},
                   {"layers", json::array()}};
  a.plan = {{"format", "mpq-plan"},
            {"version", 1},
            {"layers", json::array()},
            {"search", {{"solver", "mckp"}, {"status", "optimal"}, {"gap", 0.0}}}};
  for (int i = 0; i < 4; ++i) {
    json weight = json::array();
    for (int bits : {2, 4, 8}) {
      double omega = (i + 1) * 0.05 * std::pow(4.0, 2 - bits);
      if (i == 3 && bits == 8) omega = -2e-7;  // below the sampling noise
      weight.push_back({{"bits", bits}, {"omega", omega}, {"std_error", omega / 10}});
    }
    a.sensitivity["layers"].push_back(
        {{"name", names[i]}, {"params", params[i]}, {"macs", macs[i]}, {"weight", weight}});
    double size = params[i] * chosen[i] / 8 + 64;
    a.plan["layers"].push_back(
        {{"name", names[i]},
         {"weight_bits", chosen[i]},
         {"weight_scheme", "sym-channel"},
         {"act_bits", 8},
         {"act_scheme", "affine-tensor"},
         {"omega", weight[chosen[i] == 2   ? 0
                          : chosen[i] == 4 ? 1
                                           : 2]["omega"]},
         {"cost", {{"size", size}, {"bops", macs[i] * chosen[i] * 8}}},
         {"reason", i == 2 ? "budget size binding" : "lowest Omega of its candidates"}});
  }
  json budgets = json::array({{{"budget", "size=0.5r"},
                               {"kind", "size"},
                               {"unit", "B"},
                               {"limit", 3300.0},
                               {"lowest", 2200.0},
                               {"highest", 4400.0},
                               {"total", 3290.0},
                               {"binding", true},
                               {"text", "3.30 KB of 3.30 KB"}},
                              {{"budget", "bops=0.9x"},
                               {"kind", "bops"},
                               {"unit", "BitOps"},
                               {"limit", 1.8e8},
                               {"lowest", 4.9e7},
                               {"highest", 2.0e8},
                               {"total", 1.5e8},
                               {"binding", false},
                               {"text", "150 M of 180 M"}}});
  a.plan["budgets"] = budgets;

  a.frontier = {
      {"format", "mpq-frontier"}, {"version", 1},
      {"budget", "size"},         {"unit", "B"},
      {"limit", 3300.0},          {"chosen", {{"cost", 3290.0}, {"predicted_loss", 0.0123}}},
      {"points", json::array()}};
  const double costs[] = {2200, 2500, 2900, 3290, 3800, 4400};
  const double losses[] = {0.6, 0.2, 0.05, 0.0123, 0.003, 0.0009};
  for (int i = 0; i < 6; ++i) {
    a.frontier["points"].push_back(
        {{"cost", costs[i]}, {"predicted_loss", losses[i]}, {"average_weight_bits", 2 + i}});
  }

  auto measured = [&](double top1, double size, double bitops, double bits, double agreement) {
    json m = {{"size_bytes", size},      {"weight_size_bytes", size - 300},
              {"bitops", bitops},        {"avg_weight_bits", bits},
              {"agreement", agreement},  {"kl", (1 - agreement) / 5},
              {"sqnr_db", 10 + 2 * bits}};
    if (labelled) m["top1"] = top1;
    return m;
  };
  a.run = {
      {"format", "mpq-run"},
      {"version", 1},
      {"mpq_version", "0.1.0"},
      {"model",
       {{"path", "examples/models/tiny.onnx"},
        {"hash", "e6964fba61e2d4f2"},
        {"params", 8000},
        {"macs", 2823040},
        {"layers", 4}}},
      {"data",
       {{"calibration", "fashion-mnist train (60000 samples, 1x28x28, 10 classes)"},
        {"evaluation", "fashion-mnist test (10000 samples, 1x28x28, 10 classes)"},
        {"eval_samples", 10000},
        {"labelled", labelled}}},
      {"method",
       {{"name", "mpqco"}, {"metric", "fisher"}, {"solver", "mckp"}, {"quantizer", "mse"}}},
      {"budgets", budgets},
      {"stages", json::array({{{"name", "sensitivity"},
                               {"seconds", 1.25},
                               {"artifact", "sensitivity.json"},
                               {"from_cache", true}},
                              {{"name", "search"}, {"seconds", 0.012}, {"artifact", "plan.json"}},
                              {{"name", "quantize"}, {"seconds", 2.5}},
                              {{"name", "evaluate"}, {"seconds", 30.0}},
                              {{"name", "verify"}, {"seconds", 4.0}}})},
      {"float",
       {{"size_bytes", 1107000.0},
        {"weight_size_bytes", 1089896.0},
        {"bitops", 4.18e10},
        {"avg_weight_bits", 32}}},
      {"mixed", measured(0.9401, 3290, 1.5e8, 4.4, 0.981)},
      {"uniform", json::array()},
      {"frontier_eval", json::array()},
      {"verify",
       {{"samples", 500},
        {"max_rel_diff", 0.004},
        {"top1_agreement", 1.0},
        {"passed", true},
        {"outputs", json::array({{{"name", "logits"},
                                  {"max_abs", 0.0123},
                                  {"max_rel", 0.004},
                                  {"top1_agreement", 1.0}}})}}},
      {"files",
       {{"model", "model.q.onnx"},
        {"plan", "plan.json"},
        {"sensitivity", "sensitivity.json"},
        {"frontier", "frontier.json"}}}};
  if (labelled) {
    a.run["float"]["top1"] = 0.9472;
    a.run["float"]["loss"] = 0.16;
  }
  a.run["mixed"]["predicted_loss"] = 0.0123;
  const double u_top1[] = {0.412, 0.9302, 0.9465}, u_size[] = {2200, 3000, 4400};
  const int u_bits[] = {2, 4, 8};
  for (int i = 0; i < 3; ++i) {
    json m = measured(u_top1[i], u_size[i], 2.8e7 * u_bits[i], u_bits[i], 0.5 + 0.16 * i);
    m["weight_bits"] = u_bits[i];
    m["act_bits"] = 8;
    m["predicted_loss"] = losses[i * 2 + (i == 2 ? 1 : 0)];
    a.run["uniform"].push_back(m);
  }
  const int at[] = {1, 2, 4};
  for (int i = 0; i < 3; ++i) {
    json m = measured(0.80 + 0.05 * i, costs[at[i]], 6e7 * (i + 1), 2.5 + i, 0.9 + 0.03 * i);
    m["predicted_loss"] = losses[at[i]];
    a.run["frontier_eval"].push_back(m);
  }
  return a;
}

// Writes the artifacts into `dir` (which exists) under the names run.json's "files" gives.
inline void write_report_fixture(const std::string& dir, const RunArtifacts& a) {
  write_file_atomic(join_path(dir, "run.json"), a.run.dump(1));
  write_file_atomic(join_path(dir, "plan.json"), a.plan.dump(1));
  write_file_atomic(join_path(dir, "sensitivity.json"), a.sensitivity.dump(1));
  write_file_atomic(join_path(dir, "frontier.json"), a.frontier.dump(1));
}

}  // namespace mpq::test
