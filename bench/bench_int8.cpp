// Integer types of the export (issue 18, core/int8_format.h): each shipped zoo model at W8A8 in
// each --int8 format, top-1 on Fashion-MNIST test images in mpq's simulation, in ONNX Runtime on
// this CPU, and in ONNX Runtime on an emulated CPU without VNNI (qemu-x86_64 -cpu Haswell: AVX2,
// FMA), with top-1 agreement between ONNX Runtime and mpq; plus ONNX Runtime's latency on this CPU
// at batch 1 (the formats' speed cost here; emulated times mean nothing and are not taken).
// Usage: bench_int8 [--models vit,resnet20] [--samples 500] [--cpu Haswell] [--threads 2]
//                   [--json out.json]
#include <ATen/ATen.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_util.h"
#include "core/cpu.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/process.h"
#include "exec/runtime.h"
#include "pipeline/onnxruntime.h"
#include "pipeline/quantize.h"
#include "zoo_data.h"

using namespace mpq;

int main(int argc, char** argv) {
  std::vector<std::string> models = {"resnet20", "mobilenetv2", "cnn", "vit"};
  int64_t samples = 500;
  int threads = 2;
  std::string cpu = "Haswell", json_path;
  bench::ArgReader args(argc, argv);
  while (args.next()) {
    if (args.is("--models")) {
      models = bench::split_commas(args.value());
    } else if (args.is("--samples")) {
      samples = std::stoll(args.value());
    } else if (args.is("--cpu")) {
      cpu = args.value();
    } else if (args.is("--threads")) {
      threads = std::stoi(args.value());
    } else if (args.is("--json")) {
      json_path = args.value();
    } else {
      std::fprintf(stderr,
                   "usage: bench_int8 [--models LIST] [--samples N] [--cpu QEMU_MODEL] "
                   "[--threads N] [--json FILE]\n");
      return 2;
    }
  }
  init_runtime(threads);
  set_log_level(LogLevel::kQuiet);
  std::string why;
  if (!onnxruntime_available(&why)) {
    std::fprintf(stderr, "bench_int8 needs ONNX Runtime: %s\n", why.c_str());
    return 1;
  }
  const bool emulate = !find_program("qemu-x86_64").empty();
  std::printf("this CPU: %s\nemulated: %s\n\n", describe(host_cpu()).c_str(),
              emulate ? ("qemu-x86_64 -cpu " + cpu).c_str() : "no (qemu-x86_64 not installed)");
  std::printf("%-12s %-13s %9s %9s %10s %11s %10s %11s\n", "model", "int8", "mpq top1", "ORT top1",
              "ORT agree", "emu top1", "emu agree", "ORT ms/img");
  nlohmann::json rows = nlohmann::json::array();
  for (const std::string& arch : models) {
    bench::ZooData z;
    if (!bench::open_zoo_data(arch, samples, &z)) continue;
    for (const char* format : {"u8s8", "s8s8", "u8u8", "reduce-range"}) {
      PtqOptions o;
      o.calibration_samples = 512;
      o.progress = false;
      QdqOptions q;
      q.int8_format = format;
      TempDir dir("bench_int8");
      const std::string out = join_path(dir.path(), arch + ".onnx");
      run_quantize(z.graph, uniform_plan(z.graph, 8, 8), z.train.get(), o, q, out);
      VerifyOptions vo;
      vo.samples = samples;
      set_onnxruntime_cpu("");
      VerifyResult native = verify_model(out, *z.test, vo);
      VerifyResult emulated;
      if (emulate) {
        set_onnxruntime_cpu(cpu);
        emulated = verify_model(out, *z.test, vo);
        set_onnxruntime_cpu("");
      }
      at::Tensor one = z.test->read({0}).x;
      double ms = 1000 * time_onnxruntime(out, {one}, threads, 2.0);
      std::printf(
          "%-12s %-13s %8.2f%% %8.2f%% %9.2f%% %10s %10s %11.3f\n", arch.c_str(), format,
          100 * native.top1_mpq, 100 * native.top1_ort, 100 * native.outputs[0].top1_agreement,
          emulate ? (std::to_string(100 * emulated.top1_ort).substr(0, 5) + "%").c_str() : "-",
          emulate ? (std::to_string(100 * emulated.outputs[0].top1_agreement).substr(0, 6) + "%")
                        .c_str()
                  : "-",
          ms);
      std::fflush(stdout);
      nlohmann::json row = {{"model", arch},
                            {"int8_format", format},
                            {"samples", native.samples},
                            {"top1_mpq", native.top1_mpq},
                            {"top1_ort", native.top1_ort},
                            {"agreement_ort", native.outputs[0].top1_agreement},
                            {"max_rel_ort", native.outputs[0].max_rel},
                            {"ort_ms_batch1", ms}};
      if (emulate) {
        row["emulated_cpu"] = cpu;
        row["top1_ort_emulated"] = emulated.top1_ort;
        row["agreement_ort_emulated"] = emulated.outputs[0].top1_agreement;
        row["max_rel_ort_emulated"] = emulated.outputs[0].max_rel;
      }
      rows.push_back(row);
    }
  }
  if (!json_path.empty())
    write_file_atomic(json_path,
                      nlohmann::json({{"cpu", describe(host_cpu())}, {"rows", rows}}).dump(1));
  return 0;
}
