// Training throughput: the same ResNet-20 training step (forward, label-smoothed cross-entropy,
// backward, SGD with Nesterov momentum and weight decay) in mpq and in PyTorch's Python API
// (Debian python3-torch, bench/train_step_torch.py), same batch and threads. Prints images/s for
// both and the ratio mpq / PyTorch (the goal: >= 0.8): the median of --rounds
// interleaved measurements.
//   bench_train_vs_torch [--batch B] [--threads N] [--seconds S] [--rounds R] [--json]
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/process.h"
#include "exec/executor.h"
#include "exec/runtime.h"
#include "onnx/io.h"
#include "pipeline/zoo.h"
#include "train/trainer.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t batch = 128;
  int threads = int(std::thread::hardware_concurrency());
  double seconds = 3;
  int rounds = 3;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--batch" && i + 1 < argc)
      batch = std::atoll(argv[++i]);
    else if (a == "--threads" && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (a == "--seconds" && i + 1 < argc)
      seconds = std::atof(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc)
      rounds = std::max(1, std::atoi(argv[++i]));
    else if (a == "--json")
      json = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--batch B] [--threads N] [--seconds S] [--rounds R] [--json]\n",
                   argv[0]);
      return 2;
    }
  }
  try {
    mpq::init_runtime(threads);
    const char* py_env = std::getenv("MPQ_TORCH_PYTHON");
    std::string python = py_env ? py_env : "/usr/bin/python3";
    std::string script = std::string(MPQ_SOURCE_DIR) + "/bench/train_step_torch.py";

    mpq::Graph model = mpq::build_zoo_model("resnet20", mpq::ZooOptions{});
    model = mpq::import_onnx_bytes(mpq::export_onnx_bytes(model), ".", "resnet20");
    std::vector<mpq::Param> params;
    for (const auto& name : mpq::trainable_parameters(model)) {
      at::Tensor& t = model.initializers.at(name);
      t = t.detach().clone().requires_grad_(true);
      params.push_back({name, t, t.dim() >= 2});
    }
    mpq::OptimizerOptions oo;
    oo.lr = 0.05;
    mpq::Optimizer opt(params, oo);
    mpq::Executor exec(model);
    exec.set_training(true);
    at::manual_seed(0);
    at::Tensor x = at::randn({batch, 1, 28, 28}), y = at::randint(0, 10, {batch}, at::kLong);
    auto step = [&] {
      at::Tensor loss =
          at::cross_entropy_loss(exec.run({x})[0], y, {}, at::Reduction::Mean, -100, 0.1);
      opt.zero_grad();
      loss.backward();
      opt.step(0.05);
    };
    auto time_mpq = [&] {
      for (int i = 0; i < 2; ++i) step();
      int steps = 0;
      auto start = std::chrono::steady_clock::now();
      double elapsed = 0;
      while (elapsed < seconds || steps < 3) {
        step();
        ++steps;
        elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
      return double(steps * batch) / elapsed;
    };
    std::vector<double> ours, theirs, ratios;
    for (int r = 0; r < rounds; ++r) {
      ours.push_back(time_mpq());
      mpq::ProcessResult pr = mpq::run_process({python, script, std::to_string(batch),
                                                std::to_string(threads), std::to_string(seconds)});
      if (pr.exit_code != 0) throw std::runtime_error("PyTorch peer failed: " + pr.output);
      auto j = nlohmann::json::parse(pr.output.substr(pr.output.find('{')));
      theirs.push_back(j["images_per_s"].get<double>());
      ratios.push_back(ours.back() / theirs.back());
    }
    nlohmann::json row = {{"model", "resnet20"},
                          {"batch", batch},
                          {"threads", threads},
                          {"mpq_images_per_s", median(ours)},
                          {"torch_images_per_s", median(theirs)},
                          {"ratio", median(ratios)}};
    if (json) {
      std::printf("%s\n", row.dump(2).c_str());
    } else {
      std::printf("%-10s %5s %7s %16s %18s %10s\n", "model", "batch", "threads", "mpq images/s",
                  "pytorch images/s", "mpq/torch");
      std::printf("%-10s %5lld %7d %16.1f %18.1f %10.2f\n", "resnet20", (long long)batch, threads,
                  median(ours), median(theirs), median(ratios));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_vs_torch: %s\n", e.what());
    return 1;
  }
  return 0;
}
