// Inference throughput of mpq's executor against ONNX Runtime on the same model file, batch and
// thread count: the zoo CNNs (and the transformer) at batch 1 and 32. Prints samples/s for both
// and the ratio mpq / ONNX Runtime (the goal: >= 0.7 at batch 32): the median of
// --rounds interleaved measurements of --seconds each.
//   bench_exec_vs_ort [--threads N] [--seconds S] [--json] [--models resnet20,cnn,...]
//                     [--profile]   (per-op time of mpq's run on stderr)
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "exec/executor.h"
#include "exec/runtime.h"
#include "onnx/io.h"
#include "onnx/passes/fold_batchnorm.h"
#include "pipeline/onnxruntime.h"
#include "pipeline/zoo.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double time_mpq(const mpq::Executor& exec, const at::Tensor& x, double seconds) {
  c10::InferenceMode guard;
  for (int i = 0; i < 3; ++i) exec.run({x});
  int runs = 0;
  auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < seconds || runs < 3) {
    exec.run({x});
    ++runs;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return elapsed / runs;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = int(std::thread::hardware_concurrency());
  double seconds = 1.0;
  int rounds = 5;
  bool json = false, profile = false;
  std::string models = "resnet20,mobilenetv2,cnn,vit";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc)
      rounds = std::max(1, std::atoi(argv[++i]));
    else if (a == "--seconds" && i + 1 < argc)
      seconds = std::atof(argv[++i]);
    else if (a == "--models" && i + 1 < argc)
      models = argv[++i];
    else if (a == "--json")
      json = true;
    else if (a == "--profile")
      profile = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--threads N] [--seconds S] [--rounds R] [--models a,b] [--json] "
                   "[--profile]\n",
                   argv[0]);
      return 2;
    }
  }
  try {
    std::string why;
    if (!mpq::onnxruntime_available(&why)) {
      std::fprintf(stderr, "bench_exec_vs_ort: %s\n", why.c_str());
      return 1;
    }
    mpq::init_runtime(threads);
    std::string dir =
        (std::filesystem::temp_directory_path() / ("mpq-bench-" + std::to_string(::getpid())))
            .string();
    std::filesystem::create_directories(dir);
    nlohmann::json rows = nlohmann::json::array();
    if (!json)
      std::printf("%-12s %5s %7s %14s %14s %8s\n", "model", "batch", "threads", "mpq samples/s",
                  "ort samples/s", "mpq/ort");
    std::stringstream list(models);
    std::string arch;
    while (std::getline(list, arch, ',')) {
      mpq::Graph g = mpq::build_zoo_model(arch, mpq::ZooOptions{});
      std::string path = dir + "/" + arch + ".onnx";
      mpq::export_onnx(g, path);
      mpq::Graph loaded = mpq::import_onnx(path);
      mpq::fold_batchnorm(&loaded);  // ONNX Runtime fuses Conv+BN too
      mpq::Executor exec(loaded);
      for (int64_t batch : {1, 32}) {
        at::Tensor x = at::randn({batch, 1, 28, 28});
        // Interleaved rounds, medians: on a shared 2-core machine single measurements of either
        // runtime swing by 2x, and alternating the two exposes both to the same conditions.
        std::vector<double> ours_runs, theirs_runs, ratios;
        for (int r = 0; r < rounds; ++r) {
          ours_runs.push_back(time_mpq(exec, x, seconds));
          theirs_runs.push_back(mpq::time_onnxruntime(path, {x}, threads, seconds));
          ratios.push_back(theirs_runs.back() / ours_runs.back());
        }
        double ours = median(ours_runs), theirs = median(theirs_runs);
        if (profile) {
          mpq::Executor prof(loaded);
          prof.set_profiling(true);
          time_mpq(prof, x, seconds);
          for (const auto& [op, t] : prof.profile())
            std::fprintf(stderr, "  %-20s %8.3f ms %6lld calls\n", op.c_str(), 1e3 * t.seconds,
                         (long long)t.calls);
        }
        double ratio = median(ratios);
        rows.push_back({{"model", arch},
                        {"batch", batch},
                        {"threads", threads},
                        {"mpq_samples_per_s", batch / ours},
                        {"ort_samples_per_s", batch / theirs},
                        {"ratio", ratio}});
        if (!json)
          std::printf("%-12s %5lld %7d %14.1f %14.1f %8.2f\n", arch.c_str(), (long long)batch,
                      threads, batch / ours, batch / theirs, ratio);
        std::fflush(stdout);
      }
    }
    std::filesystem::remove_all(dir);
    if (json) std::printf("%s\n", rows.dump(2).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_exec_vs_ort: %s\n", e.what());
    return 1;
  }
  return 0;
}
