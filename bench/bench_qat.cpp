// Training-time mixed precision (issue 8): on each zoo model at average weight budgets of 2.0 and
// 2.5 bits with 4-bit activations, top-1 on the Fashion-MNIST test set of
//   float;
//   uniform PTQ and uniform QAT at the widest uniform width within the budget (W2A4);
//   the best searched plan: `mpq run` (run_pipeline) with each method preset at the budget and a
//   target whose activations are 4 bits, the plan with the best PTQ accuracy, then QAT;
//   SDQ: stage 1 learns the plan, stage 2 trains it with distillation and bin regularization.
// Every QAT run uses the same schedule (epochs, samples, SGD, cosine, distillation from the float
// model); the best epoch on the evaluation set is reported (the set doubles as validation, as in
// `mpq train`). Cost: a QAT epoch's optimisation time over a float training epoch's on the same
// samples and batch (train_seconds, validation excluded).
// Usage: bench_qat [--models resnet20,cnn] [--budgets 2,2.5] [--epochs 2] [--train-limit 20000]
//                  [--eval-limit 10000] [--methods mpqco,hawq] [--lsq] [--sdq-only] [--json F]
// --sdq-only skips the uniform and searched rows and the cost (after a change to SDQ alone).
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
#include "pipeline/quantize.h"
#include "pipeline/run.h"
#include "pipeline/sdq.h"
#include "quant/plan.h"
#include "train/qat.h"
#include "train/trainer.h"

using namespace mpq;
using nlohmann::json;

namespace {

struct Settings {
  std::vector<std::string> models = {"resnet20", "cnn"};
  std::vector<std::string> budgets = {"2", "2.5"};
  std::vector<std::string> methods = {"mpqco", "hawq"};
  int act_bits = 4;
  int64_t epochs = 2, train_limit = 20000, eval_limit = -1;
  bool lsq = false;
  bool sdq_only = false;  // float and SDQ only (after a change to SDQ alone)
  int threads = 2;
  std::string json_path;
};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

double accuracy(const QuantizedModel& q, const Dataset& data) {
  EvalOptions eo;
  eo.progress = false;
  eo.batch_size = 500;
  return evaluate_simulated(q, "q", data, eo, nullptr).top1;
}

QatOptions qat_options(const Settings& s, const std::string& out, const Dataset& eval) {
  QatOptions o;
  o.train.epochs = s.epochs;
  o.train.batch_size = 128;
  o.train.optimizer.lr = 0.01;
  o.train.optimizer.weight_decay = 0;
  o.train.label_smoothing = 0;
  o.train.output = out;
  o.train.resume = false;
  o.train.progress = false;
  o.ptq.progress = false;
  o.lsq = s.lsq;
  o.validate = [&eval](const QuantizedModel& q) { return EpochScore{accuracy(q, eval), 0}; };
  return o;
}

json qat_row(const QatResult& r, double wall_seconds) {
  double train = 0;
  for (const auto& e : r.train.history) train += e.train_seconds;
  return {{"top1", r.train.best_accuracy},
          {"best_epoch", r.train.best_epoch},
          {"avg_weight_bits", r.sizes.weight_bits_average},
          {"epoch_train_seconds", train / double(std::max<size_t>(r.train.history.size(), 1))},
          {"wall_seconds", wall_seconds}};
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  bench::ArgReader args(argc, argv);
  while (args.next()) {
    if (args.is("--models")) {
      s.models = bench::split_commas(args.value());
    } else if (args.is("--budgets")) {
      s.budgets = bench::split_commas(args.value());
    } else if (args.is("--methods")) {
      s.methods = bench::split_commas(args.value());
    } else if (args.is("--epochs")) {
      s.epochs = std::stoll(args.value());
    } else if (args.is("--train-limit")) {
      s.train_limit = std::stoll(args.value());
    } else if (args.is("--eval-limit")) {
      s.eval_limit = std::stoll(args.value());
    } else if (args.is("--threads")) {
      s.threads = std::stoi(args.value());
    } else if (args.is("--lsq")) {
      s.lsq = true;
    } else if (args.is("--sdq-only")) {
      s.sdq_only = true;
    } else if (args.is("--json")) {
      s.json_path = args.value();
    } else {
      std::fprintf(
          stderr,
          "usage: bench_qat [--models a,b] [--budgets 2,2.5] [--methods mpqco,hawq] "
          "[--epochs N] [--train-limit N] [--eval-limit N] [--lsq] [--sdq-only] [--threads N] "
          "[--json F]\n");
      return 2;
    }
  }
  init_runtime(s.threads);
  set_log_level(LogLevel::kQuiet);
  const std::string work =
      (std::filesystem::temp_directory_path() / ("mpq-bench-qat-" + std::to_string(getpid())))
          .string();
  std::filesystem::create_directories(work);
  // A target with 4-bit activations for the searched plans.
  const std::string target = join_path(work, "a" + std::to_string(s.act_bits) + ".json");
  write_file_atomic(target, json{{"format", "mpq-target"},
                                 {"version", 1},
                                 {"name", "a" + std::to_string(s.act_bits)},
                                 {"weight_bits", {{"default", {2, 3, 4, 5, 6, 8}}}},
                                 {"act_bits", {{"default", {s.act_bits}}}}}
                                .dump());
  std::printf(
      "epochs %lld on %lld training samples, batch 128, SGD lr 0.01 cosine, distillation "
      "T=1%s; activations %d bits\n\n",
      (long long)s.epochs, (long long)s.train_limit, s.lsq ? ", LSQ" : "", s.act_bits);
  if (s.sdq_only)
    std::printf(
        "| model | budget | float | SDQ (plan bits) | SDQ stage 1 s |\n|---|---|---|---|---|\n");
  else
    std::printf(
        "| model | budget | float | uniform PTQ | uniform QAT | best searched PTQ -> QAT | "
        "SDQ (plan bits) | SDQ stage 1 s |\n|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  json models = json::array();
  for (const std::string& arch : s.models) {
    const std::string path = std::string(MPQ_SOURCE_DIR) + "/examples/models/" + arch + ".onnx";
    Graph model = import_onnx(path);
    DataOptions d;
    d.spec = "fashion-mnist:train";
    d.limit = s.train_limit;
    d.preprocess.mean = {std::stod(model.metadata.at("mpq.mean"))};
    d.preprocess.std = {std::stod(model.metadata.at("mpq.std"))};
    auto train = open_dataset(d);
    d.spec = "fashion-mnist:test";
    d.limit = s.eval_limit;
    auto eval = open_dataset(d);
    json m = {{"model", arch}};
    EvalOptions eo;
    eo.progress = false;
    eo.batch_size = 500;
    m["float_top1"] = evaluate(model, *eval, eo, nullptr).top1;
    // Float training epoch on the same samples (the cost reference).
    if (!s.sdq_only) {
      Graph copy = import_onnx(path);
      TrainOptions t;
      t.epochs = 1;
      t.batch_size = 128;
      t.optimizer.lr = 0.01;
      t.output = join_path(work, arch + ".float.onnx");
      t.resume = false;
      t.progress = false;
      t.validate = [](const Graph&) { return EpochScore{}; };
      TrainResult r = train_model(&copy, *train, t);
      m["float_epoch_seconds"] = r.history.at(0).train_seconds;
    }
    std::fprintf(stderr, "%s: float %.2f %%\n", arch.c_str(), 100 * m["float_top1"].get<double>());
    json rows = json::array();
    json uniform_cache = json::object();
    for (const std::string& b : s.budgets) {
      const double bits = std::stod(b);
      json row = {{"budget", b}};
      // Uniform at the widest width within the budget.
      const int u = int(std::floor(bits + 1e-9));
      const std::string ukey = std::to_string(u);
      if (!s.sdq_only && !uniform_cache.contains(ukey)) {
        Plan plan = uniform_plan(model, u, s.act_bits);
        QatOptions o = qat_options(s, join_path(work, arch + ".u" + ukey + ".onnx"), *eval);
        json ur = {{"weight_bits", u}};
        ur["ptq_top1"] = accuracy(quantize_ptq(model, plan, train.get(), o.ptq), *eval);
        auto start = std::chrono::steady_clock::now();
        QatResult r = train_qat(model, plan, *train, *train, o);
        ur["qat"] = qat_row(r, bench::seconds_since(start));
        uniform_cache[ukey] = ur;
        std::fprintf(stderr, "  uniform W%dA%d: PTQ %.2f %%, QAT %.2f %% (QAT epoch %.1f s)\n", u,
                     s.act_bits, 100 * ur["ptq_top1"].get<double>(),
                     100 * ur["qat"]["top1"].get<double>(),
                     ur["qat"]["epoch_train_seconds"].get<double>());
      }
      if (!s.sdq_only) row["uniform"] = uniform_cache[ukey];
      // The best searched plan (PTQ accuracy), then QAT.
      json searched = json::array();
      std::string best_dir;
      double best_ptq = -1;
      for (const auto& method : s.sdq_only ? std::vector<std::string>{} : s.methods) {
        RunOptions ro;
        ro.method = method;
        ro.budgets = {"avg-bits=" + b};
        ro.target = target;
        ro.uniform_bits.clear();
        ro.frontier_evals = 0;
        ro.verify = false;
        ro.report = false;
        ro.ptq.progress = false;
        ro.sensitivity_run.cache_dir = join_path(work, "cache");
        const std::string dir = join_path(work, arch + "." + method + "." + b);
        try {
          RunSummary r = run_pipeline(path, *train, *eval, dir, ro);
          double top1 = r.run.at("mixed").at("top1").get<double>();
          searched.push_back({{"method", method}, {"ptq_top1", top1}});
          if (top1 > best_ptq) {
            best_ptq = top1;
            best_dir = dir;
            row["searched_method"] = method;
          }
        } catch (const std::exception& e) {
          searched.push_back({{"method", method}, {"error", e.what()}});
        }
      }
      if (!s.sdq_only) row["searched"] = searched;
      if (!best_dir.empty()) {
        Plan plan = load_plan(join_path(best_dir, "plan.json"));
        QatOptions o = qat_options(s, join_path(best_dir, "qat.onnx"), *eval);
        auto start = std::chrono::steady_clock::now();
        QatResult r = train_qat(model, plan, *train, *train, o);
        row["searched_qat"] = qat_row(r, bench::seconds_since(start));
        row["searched_ptq_top1"] = best_ptq;
      }
      // SDQ.
      {
        SdqCommandOptions so;
        so.budgets = {"avg-bits=" + b};
        so.act_bits = s.act_bits;
        so.stage2 = qat_options(s, join_path(work, arch + ".sdq." + b + ".onnx"), *eval);
        so.stage2.bin_reg = 0.1;
        so.stage1.qat = qat_options(s, "", *eval);
        so.plan_output = join_path(work, arch + ".sdq." + b + ".plan.json");
        auto start = std::chrono::steady_clock::now();
        SdqRun r = run_sdq(model, path, *train, *train, so);
        row["sdq"] = qat_row(r.stage2, bench::seconds_since(start));
        row["sdq"]["stage1"] = to_json(r.stage1);
      }
      if (s.sdq_only) {
        std::printf("| %s | %s | %.2f | %.2f (%.2f) | %.1f |\n", arch.c_str(), b.c_str(),
                    100 * m["float_top1"].get<double>(), 100 * row["sdq"]["top1"].get<double>(),
                    row["sdq"]["avg_weight_bits"].get<double>(),
                    row["sdq"]["stage1"]["seconds"].get<double>());
        std::fflush(stdout);
        rows.push_back(row);
        continue;
      }
      const json& un = row["uniform"];
      std::string searched_cell =
          row.contains("searched_qat")
              ? row["searched_method"].get<std::string>() + " " +
                    fmt("%.2f", 100 * row["searched_ptq_top1"].get<double>()) + " -> " +
                    fmt("%.2f", 100 * row["searched_qat"]["top1"].get<double>())
              : "failed";
      std::printf("| %s | %s | %.2f | W%dA%d %.2f | %.2f | %s | %.2f (%.2f) | %.1f |\n",
                  arch.c_str(), b.c_str(), 100 * m["float_top1"].get<double>(), u, s.act_bits,
                  100 * un["ptq_top1"].get<double>(), 100 * un["qat"]["top1"].get<double>(),
                  searched_cell.c_str(), 100 * row["sdq"]["top1"].get<double>(),
                  row["sdq"]["avg_weight_bits"].get<double>(),
                  row["sdq"]["stage1"]["seconds"].get<double>());
      std::fflush(stdout);
      rows.push_back(row);
    }
    m["rows"] = rows;
    models.push_back(m);
  }
  if (!s.sdq_only)
    std::printf("\nQAT epoch cost (optimisation time of one epoch over a float training epoch):\n");
  for (const auto& m : s.sdq_only ? json::array() : models) {
    const double f = m["float_epoch_seconds"].get<double>();
    const json& u = m["rows"][0]["uniform"]["qat"];
    std::printf("  %s: float %.1f s, QAT (W%dA%d) %.1f s, ratio %.2f\n",
                m["model"].get<std::string>().c_str(), f,
                m["rows"][0]["uniform"]["weight_bits"].get<int>(), s.act_bits,
                u["epoch_train_seconds"].get<double>(), u["epoch_train_seconds"].get<double>() / f);
  }
  json out = {{"settings",
               {{"epochs", s.epochs},
                {"train_limit", s.train_limit},
                {"eval_limit", s.eval_limit},
                {"act_bits", s.act_bits},
                {"lsq", s.lsq},
                {"sdq_only", s.sdq_only},
                {"threads", s.threads}}},
              {"models", models}};
  if (!s.json_path.empty()) write_file_atomic(s.json_path, out.dump(1) + "\n");
  std::filesystem::remove_all(work);
  return 0;
}
