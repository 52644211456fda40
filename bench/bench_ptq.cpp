// PTQ accuracy and speed (issue 4): each shipped zoo model in float, at uniform W8A8, W6A8, W4A8,
// W3A8 and W2A8 with round-to-nearest (rtn) and MSE clipping (mse), and with multipoint at 3 and 4
// bits with 10 % and 25 % extra points; top-1 on the Fashion-MNIST test set, the file size on
// disk and the time of quantization (calibration on --samples training images included).
// Usage: bench_ptq [--models resnet20,cnn] [--samples 512] [--limit N] [--json out.json]
//                  [--only SUBSTRING] [--clip-error output|diagonal|weight]
#include <ATen/ATen.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_util.h"
#include "core/fs.h"
#include "core/log.h"
#include "exec/executor.h"
#include "exec/runtime.h"
#include "onnx/io.h"
#include "onnx/layers.h"
#include "onnx/passes/fold_batchnorm.h"
#include "pipeline/eval.h"
#include "pipeline/quantize.h"
#include "quant/simulate.h"
#include "zoo_data.h"

using namespace mpq;

namespace {

struct Config {
  std::string label;
  int bits;
  std::string method;
  double points = 0;
};

std::vector<Config> configs() {
  std::vector<Config> c;
  for (int b : {8, 6, 4, 3, 2}) {
    for (const char* m : {"rtn", "mse"}) {
      c.push_back({"W" + std::to_string(b) + "A8 " + m, b, m});
    }
  }
  for (int b : {4, 3}) {
    for (double p : {0.10, 0.25}) {
      c.push_back({"W" + std::to_string(b) + "A8 multipoint +" + std::to_string(int(p * 100)) + "%",
                   b, "multipoint", p});
    }
  }
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> models = {"resnet20", "mobilenetv2", "cnn", "vit"};
  int64_t samples = 512, limit = -1;
  std::string json_path, only, clip_error = "output";
  int threads = 2;
  bench::ArgReader args(argc, argv);
  while (args.next()) {
    if (args.is("--models")) {
      models = bench::split_commas(args.value());
    } else if (args.is("--samples")) {
      samples = std::stoll(args.value());
    } else if (args.is("--limit")) {
      limit = std::stoll(args.value());
    } else if (args.is("--json")) {
      json_path = args.value();
    } else if (args.is("--threads")) {
      threads = std::stoi(args.value());
    } else if (args.is("--only")) {
      only = args.value();
    } else if (args.is("--clip-error")) {
      clip_error = args.value();
    } else {
      std::fprintf(stderr,
                   "usage: bench_ptq [--models a,b] [--samples N] [--limit N] [--json F] "
                   "[--only SUBSTRING] [--clip-error E]\n");
      return 2;
    }
  }
  init_runtime(threads);
  set_log_level(LogLevel::kQuiet);
  nlohmann::json results = nlohmann::json::array();
  std::printf(
      "| model | config | top-1 %% | Δ vs float | file KiB | weights MB (papers) | time s |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (const std::string& arch : models) {
    bench::ZooData zoo;
    if (!bench::open_zoo_data(arch, limit, &zoo)) continue;
    const Graph& g = zoo.graph;
    const auto& calibration = zoo.train;
    const auto& data = zoo.test;
    EvalOptions eo;
    eo.progress = false;
    eo.batch_size = 500;
    Graph folded = g;
    fold_batchnorm(&folded);
    Executor reference(folded);
    EvalResult f = evaluate(reference, arch, *data, eo, nullptr);
    int64_t float_bytes = int64_t(export_onnx_bytes(g).size());
    double float_mb = 0;
    for (const auto& l : find_quantizable_layers(g)) {
      float_mb += double(g.initializers.at(l.weight).numel()) * 4 / double(1 << 20);
    }
    std::printf("| %s | float | %.2f | | %.1f | %.4f | |\n", arch.c_str(), 100 * f.top1,
                double(float_bytes) / 1024, float_mb);
    results.push_back(
        {{"model", arch}, {"config", "float"}, {"top1", f.top1}, {"file_bytes", float_bytes}});
    for (const Config& c : configs()) {
      if (!only.empty() && c.label.find(only) == std::string::npos) continue;
      PtqOptions o;
      o.method = c.method;
      o.clip_error = clip_error;
      o.calibration_samples = samples;
      o.extra_points = c.points;
      o.progress = false;
      QuantizeResult r = run_quantize(g, uniform_plan(g, c.bits, 8), calibration.get(), o, {}, "");
      Executor q(r.model.graph);
      attach_quantizers(&q, r.model);
      EvalResult e = evaluate(q, arch, *data, eo, &reference);
      std::printf("| %s | %s | %.2f | %+.2f | %.1f | %.4f | %.2f |\n", arch.c_str(),
                  c.label.c_str(), 100 * e.top1, 100 * (e.top1 - f.top1),
                  double(r.file_bytes) / 1024, r.sizes.paper_bytes / double(1 << 20), r.seconds);
      std::fflush(stdout);
      results.push_back({{"model", arch},
                         {"config", c.label},
                         {"bits", c.bits},
                         {"method", c.method},
                         {"extra_points", c.points},
                         {"top1", e.top1},
                         {"agreement", e.agreement},
                         {"file_bytes", r.file_bytes},
                         {"paper_mb", r.sizes.paper_bytes / double(1 << 20)},
                         {"seconds", r.seconds}});
    }
  }
  if (!json_path.empty()) write_file_atomic(json_path, results.dump(2) + "\n");
  return 0;
}
