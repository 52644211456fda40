// LCPAQ's proxy search and its rows (issue 9, methods.md §2), on each zoo model:
//  1. the lcpaq preset of `mpq run` against hawq (HAWQ-ILP) and mpqco at the same latency budget
//     on the BitFusion target (targets/bitfusion.json; activations 8 bits): top-1 on the test
//     set, the latency the plan uses, the search stage's seconds;
//  2. the proxy's validation: run_proxy_search with every candidate also evaluated on the test
//     set; Spearman of -KL (proxy, on --proxy-samples calibration samples) with test top-1;
//  3. the same search scored by full test-set evaluation (score = full): its wall time against
//     the proxy search's, and the test top-1 each search's best candidate reaches.
// The sensitivity (hessian, as hawq and lcpaq use it) comes from the hawq run's folder.
// Usage: bench_proxy [--models resnet20,mobilenetv2,vit] [--evals 32] [--eval-limit N]
//                    [--latency 0.3r] [--samples 256] [--max-probes 16] [--no-full]
//                    [--no-rows] [--json F]
// Run it with OMP_WAIT_POLICY=PASSIVE on a quiet machine; both searches run in this process,
// one after the other, so their ratio holds even when the absolute times drift.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_util.h"
#include "core/fs.h"
#include "core/log.h"
#include "data/dataset.h"
#include "exec/runtime.h"
#include "onnx/io.h"
#include "pipeline/eval.h"
#include "pipeline/proxy_search.h"
#include "pipeline/run.h"
#include "zoo_data.h"

using namespace mpq;
using nlohmann::json;

namespace {

struct Settings {
  std::vector<std::string> models = {"resnet20", "mobilenetv2", "vit"};
  std::vector<std::string> methods = {"mpqco", "hawq", "lcpaq"};
  std::string latency = "0.3r";
  int evals = 32;
  int64_t eval_limit = -1, samples = 256, max_probes = 16;
  bool full = true, rows = true;
  int threads = 2;
  std::string json_path;
};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

double stage_seconds(const json& run, const std::string& name) {
  for (const auto& s : run.at("stages"))
    if (s.at("name") == name) return s.at("seconds").get<double>();
  return NAN;
}

// The latency total of a run's plan (run.json "budgets").
double latency_total(const json& run) {
  for (const auto& b : run.at("budgets"))
    if (b.at("budget").get<std::string>().rfind("latency", 0) == 0)
      return b.at("total").get<double>();
  return NAN;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  bench::ArgReader args(argc, argv);
  while (args.next()) {
    if (args.is("--models")) {
      s.models = bench::split_commas(args.value());
    } else if (args.is("--evals")) {
      s.evals = std::stoi(args.value());
    } else if (args.is("--eval-limit")) {
      s.eval_limit = std::stoll(args.value());
    } else if (args.is("--latency")) {
      s.latency = args.value();
    } else if (args.is("--samples")) {
      s.samples = std::stoll(args.value());
    } else if (args.is("--max-probes")) {
      s.max_probes = std::stoll(args.value());
    } else if (args.is("--no-full")) {
      s.full = false;
    } else if (args.is("--no-rows")) {
      s.rows = false;
    } else if (args.is("--json")) {
      s.json_path = args.value();
    } else {
      std::fprintf(stderr,
                   "usage: bench_proxy [--models a,b] [--evals N] [--eval-limit N] "
                   "[--latency 0.3r] [--samples N] [--max-probes N] [--no-full] [--no-rows] "
                   "[--json F]\n");
      return 2;
    }
  }
  init_runtime(s.threads);
  set_log_level(LogLevel::kQuiet);
  const auto start = std::chrono::steady_clock::now();
  const std::string work =
      (std::filesystem::temp_directory_path() / ("mpq-bench-proxy-" + std::to_string(getpid())))
          .string();
  std::filesystem::create_directories(work);
  const std::string target = std::string(MPQ_SOURCE_DIR) + "/targets/bitfusion.json";
  const std::string budget = "latency=" + s.latency;

  json models = json::array();
  std::string rows_table =
      "| model | method | top-1 % | latency us (BitFusion) | avg weight bits | search s |\n"
      "|---|---|---|---|---|---|\n";
  std::string proxy_table =
      "| model | candidates | Spearman(-KL, top-1) | proxy search s | full-eval search s | "
      "ratio | best top-1 % (proxy) | best top-1 % (full) | plain search top-1 % |\n"
      "|---|---|---|---|---|---|---|---|---|\n";
  for (const std::string& arch : s.models) {
    bench::ZooData zoo;
    if (!bench::open_zoo_data(arch, s.eval_limit, &zoo)) continue;
    std::fprintf(stderr, "%s\n", arch.c_str());
    const std::string& path = zoo.path;
    const Graph& g = zoo.graph;
    const Dataset* calibration = zoo.train.get();
    const Dataset* evaluation = zoo.test.get();
    json m = {{"model", arch}, {"rows", json::array()}};

    // 1. The methods at the same latency budget (hawq first: its sensitivity feeds part 2).
    std::vector<std::string> methods = {"hawq"};
    if (s.rows)
      for (const auto& x : s.methods)
        if (x != "hawq") methods.push_back(x);
    for (const std::string& method : methods) {
      RunOptions o;
      o.method = method;
      o.budgets = {budget};
      o.target = target;
      o.sensitivity_samples = s.samples;
      o.max_probes = s.max_probes;
      o.sensitivity_run.cache_dir = join_path(work, "cache");
      o.uniform_bits = {};
      o.frontier_evals = 0;
      o.verify = false;
      o.report = false;
      o.ptq.progress = false;
      o.proxy_evals = s.evals;
      const std::string dir = join_path(join_path(work, arch), method);
      std::fprintf(stderr, "  %s %s ...", method.c_str(), budget.c_str());
      std::fflush(stderr);
      json row = {{"method", method}};
      try {
        RunSummary r = run_pipeline(path, *calibration, *evaluation, dir, o);
        row["top1"] = r.run.at("mixed").value("top1", NAN);
        row["avg_weight_bits"] = r.run.at("mixed").at("avg_weight_bits");
        row["latency_us"] = latency_total(r.run) * 1000;  // the target's table is in ms
        row["search_seconds"] = stage_seconds(r.run, "search");
        row["sensitivity_seconds"] = stage_seconds(r.run, "sensitivity");
        if (r.run.at("method").contains("proxy_search"))
          row["proxy_search"] = r.run.at("method").at("proxy_search");
        rows_table += "| " + arch + " | " + method + " | " +
                      fmt("%.2f", 100 * row["top1"].get<double>()) + " | " +
                      fmt("%.2f", row["latency_us"].get<double>()) + " | " +
                      fmt("%.2f", row["avg_weight_bits"].get<double>()) + " | " +
                      fmt("%.2f", row["search_seconds"].get<double>()) + " |\n";
      } catch (const std::exception& e) {
        row["error"] = e.what();
        rows_table += "| " + arch + " | " + method + " | failed: " + e.what() + " | | | |\n";
      }
      std::fprintf(stderr, " done\n");
      m["rows"].push_back(row);
    }

    // 2 and 3. The proxy's validation, then the same search scored by full evaluation.
    const std::string sens_path =
        join_path(join_path(join_path(work, arch), "hawq"), "sensitivity.json");
    if (!std::filesystem::exists(sens_path)) {
      models.push_back(m);
      continue;
    }
    json sensitivity = json::parse(read_file(sens_path));
    ProxySearchOptions po;
    po.search.budgets = {budget};
    po.search.target = target;
    po.evaluations = s.evals;
    po.progress = false;
    std::fprintf(stderr, "  proxy search with validation ...");
    std::fflush(stderr);
    ProxySearchResult proxy =
        run_proxy_search(g, sensitivity, sens_path, *calibration, evaluation, po);
    std::fprintf(stderr, " done\n");
    const ProxyCandidate& best = proxy.candidates[proxy.best];
    const ProxyCandidate& plain = proxy.candidates.front();
    json p = to_json(proxy);
    p.erase("candidates");
    m["proxy"] = p;
    m["proxy"]["best_top1"] = best.val_top1;
    m["proxy"]["plain_top1"] = plain.val_top1;
    m["proxy"]["best_settings"] = best.settings;
    double full_seconds = NAN, full_top1 = NAN;
    if (s.full) {
      po.score = "full";
      std::fprintf(stderr, "  search scored by full evaluation ...");
      std::fflush(stderr);
      ProxySearchResult full =
          run_proxy_search(g, sensitivity, sens_path, *calibration, evaluation, po);
      std::fprintf(stderr, " done\n");
      full_seconds = full.search_seconds;
      full_top1 = full.candidates[full.best].val_top1;
      m["full"] = {{"search_seconds", full_seconds},
                   {"scored", full.scored},
                   {"best_top1", full_top1},
                   {"best_settings", full.candidates[full.best].settings}};
    }
    proxy_table += "| " + arch + " | " + std::to_string(proxy.validation.n) + " | " +
                   fmt("%.2f", proxy.validation.spearman) + " | " +
                   fmt("%.1f", proxy.search_seconds) + " | " + fmt("%.1f", full_seconds) + " | 1/" +
                   fmt("%.0f", full_seconds / proxy.search_seconds) + " | " +
                   fmt("%.2f", 100 * best.val_top1) + " | " + fmt("%.2f", 100 * full_top1) + " | " +
                   fmt("%.2f", 100 * plain.val_top1) + " |\n";
    models.push_back(m);
  }

  const double total = bench::seconds_since(start);
  std::printf(
      "bench_proxy: budget %s on the BitFusion target (activations 8 bits); top-1 on %s "
      "Fashion-MNIST test images; hessian sensitivity on %lld training samples, at most %lld "
      "probes; proxy = KL to the float model on 128 calibration samples; %d candidates per "
      "search; %d threads\n\n",
      budget.c_str(), s.eval_limit > 0 ? std::to_string(s.eval_limit).c_str() : "all 10,000",
      (long long)s.samples, (long long)s.max_probes, s.evals, s.threads);
  if (s.rows) std::printf("%s\n", rows_table.c_str());
  std::printf("%s\ntotal %.0f s\n", proxy_table.c_str(), total);
  if (!s.json_path.empty()) {
    json out = {{"settings",
                 {{"models", s.models},
                  {"budget", budget},
                  {"evals", s.evals},
                  {"eval_limit", s.eval_limit},
                  {"samples", s.samples},
                  {"max_probes", s.max_probes},
                  {"threads", s.threads}}},
                {"models", models},
                {"total_seconds", total}};
    write_file_atomic(s.json_path, out.dump(2) + "\n");
  }
  std::filesystem::remove_all(work);
  return 0;
}
