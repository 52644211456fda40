// Sensitivity metrics' wall time (issue 5) on resnet20 and mobilenetv2 with the same data: hessian
// (Hutchinson, a fixed number of global probes) against the same estimator in PyTorch's Python API
// (bench/hutchinson_torch.py, Debian python3-torch, same BN-folded model, samples, batch and probe
// count) in the same run, then fisher (also in units of one forward pass over the samples),
// orthogonality and delta-loss.
// Usage: bench_sensitivity [--models resnet20,mobilenetv2] [--samples 256] [--batch 64]
//                          [--probes 4] [--threads 2] [--json out.json]
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_util.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/process.h"
#include "data/dataset.h"
#include "exec/executor.h"
#include "exec/runtime.h"
#include "onnx/io.h"
#include "pipeline/eval.h"
#include "sensitivity/sensitivity.h"

using namespace mpq;

int main(int argc, char** argv) {
  std::vector<std::string> models = {"resnet20", "mobilenetv2"};
  int64_t samples = 256, batch = 64, probes = 4;
  int threads = 2;
  std::string json_path;
  bench::ArgReader args(argc, argv);
  while (args.next()) {
    if (args.is("--models")) {
      models = bench::split_commas(args.value());
    } else if (args.is("--samples")) {
      samples = std::stoll(args.value());
    } else if (args.is("--batch")) {
      batch = std::stoll(args.value());
    } else if (args.is("--probes")) {
      probes = std::stoll(args.value());
    } else if (args.is("--threads")) {
      threads = std::stoi(args.value());
    } else if (args.is("--json")) {
      json_path = args.value();
    } else {
      std::fprintf(stderr,
                   "usage: bench_sensitivity [--models a,b] [--samples N] [--batch B] "
                   "[--probes P] [--threads T] [--json F]\n");
      return 2;
    }
  }
  try {
    init_runtime(threads);
    set_log_level(LogLevel::kQuiet);
    const char* py_env = std::getenv("MPQ_TORCH_PYTHON");
    std::string python = py_env ? py_env : "/usr/bin/python3";
    std::string script = std::string(MPQ_SOURCE_DIR) + "/bench/hutchinson_torch.py";
    std::string tmp = std::filesystem::temp_directory_path().string() + "/mpq_bench_sensitivity";
    std::filesystem::create_directories(tmp);
    nlohmann::json rows = nlohmann::json::array();
    std::printf(
        "| model | samples | hessian mpq s | hessian pytorch s | mpq/pytorch | fisher s | fisher "
        "in forward passes | orthogonality s | delta-loss s |\n|---|---|---|---|---|---|---|---|"
        "---|\n");
    for (const std::string& arch : models) {
      std::string path = std::string(MPQ_SOURCE_DIR) + "/examples/models/" + arch + ".onnx";
      Graph g = import_onnx(path);
      DataOptions d;
      d.spec = "fashion-mnist:train";
      d.preprocess = model_preprocess(g, d.preprocess);
      auto data = open_dataset(d);
      SensitivityOptions o;
      o.samples = samples;
      o.batch_size = batch;
      o.progress = false;
      auto time_metric = [&](const std::string& metric, SensitivityOptions mo) {
        mo.metric = metric;
        SensitivityContext c = make_context(g, data.get(), mo);
        auto start = std::chrono::steady_clock::now();
        SensitivityResult r = run_sensitivity(c);
        return std::make_pair(bench::seconds_since(start), r);
      };
      // hessian with a fixed probe count, and the peer on the same folded model and samples.
      SensitivityOptions ho = o;
      ho.min_probes = ho.max_probes = probes;
      auto [hessian_s, hessian] = time_metric("hessian", ho);
      SensitivityContext c = make_context(g, data.get(), ho);
      export_onnx(c.graph, tmp + "/model.onnx");
      SampleBatches batches(*data, ho);
      std::vector<at::Tensor> xs, ys;
      for (const Batch& b : batches) {
        xs.push_back(b.x);
        ys.push_back(b.y);
      }
      save_npy(tmp + "/x.npy", at::cat(xs));
      save_npy(tmp + "/y.npy", at::cat(ys));
      ProcessResult pr =
          run_process({python, script, tmp + "/model.onnx", tmp + "/x.npy", tmp + "/y.npy",
                       std::to_string(batch), std::to_string(probes), std::to_string(threads)});
      if (pr.exit_code != 0) throw std::runtime_error("PyTorch peer failed: " + pr.output);
      nlohmann::json peer = nlohmann::json::parse(pr.output.substr(pr.output.find('{')));
      double torch_s = peer.at("seconds").get<double>();
      // One forward pass over the same samples: fisher's unit of cost.
      Executor ex(c.graph);
      auto start = std::chrono::steady_clock::now();
      {
        c10::InferenceMode guard;
        for (const Batch& b : batches) ex.run({b.x});
      }
      double forward_s = bench::seconds_since(start);
      double fisher_s = time_metric("fisher", o).first;
      SensitivityOptions oo = o;
      oo.samples = 32;
      double orth_s = time_metric("orthogonality", oo).first;
      double delta_s = time_metric("delta-loss", o).first;
      std::printf("| %s | %lld | %.2f | %.2f | %.2f | %.2f | %.1f | %.3f | %.1f |\n", arch.c_str(),
                  (long long)samples, hessian_s, torch_s, hessian_s / torch_s, fisher_s,
                  fisher_s / forward_s, orth_s, delta_s);
      std::fflush(stdout);
      nlohmann::json traces = nlohmann::json::object();
      for (const auto& l : hessian.layers) traces[l.name] = l.extra.value("trace", 0.0);
      rows.push_back({{"model", arch},
                      {"samples", samples},
                      {"batch", batch},
                      {"probes", probes},
                      {"threads", threads},
                      {"hessian_seconds", hessian_s},
                      {"torch_hessian_seconds", torch_s},
                      {"ratio", hessian_s / torch_s},
                      {"forward_seconds", forward_s},
                      {"fisher_seconds", fisher_s},
                      {"fisher_forward_passes", fisher_s / forward_s},
                      {"orthogonality_seconds", orth_s},
                      {"delta_loss_seconds", delta_s},
                      {"mpq_traces", traces},
                      {"torch_traces", peer.at("traces")}});
    }
    if (!json_path.empty()) write_file_atomic(json_path, rows.dump(2) + "\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_sensitivity: %s\n", e.what());
    return 1;
  }
  return 0;
}
