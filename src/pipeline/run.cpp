// `mpq run` (issue 7): the stages of design.md's data flow, one after another, each leaving its
// artifact in the run folder; run.json records what ran, with what, how long, and the measured
// results the report plots (methods.md §1, §2, §3, §4 through the presets).
#include "pipeline/run.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/version.h"
#include "exec/executor.h"
#include "onnx/io.h"
#include "onnx/passes/fold_batchnorm.h"
#include "pipeline/eval.h"
#include "pipeline/inspect.h"
#include "pipeline/onnxruntime.h"
#include "pipeline/proxy_search.h"
#include "pipeline/quantize.h"
#include "pipeline/report.h"
#include "pipeline/search.h"
#include "quant/simulate.h"
#include "search/budget.h"
#include "sensitivity/output_kind.h"

namespace mpq {

namespace {

const MethodPreset kMethods[] = {
    {"mpqco", "fisher", "greedy", "mse",
     "MPQCO: Fisher second-order objective, MCKP greedy on the convex hull"},
    {"hawq", "hessian", "ilp", "mse", "HAWQ-V3 / LCPAQ: Hutchinson Hessian trace, ILP (CBC)"},
    {"ompq", "orthogonality", "lp", "mse",
     "OMPQ: orthogonality of layer features from 32 unlabelled samples, linear program"},
    {"pareto", "hessian", "pareto", "mse",
     "LCPAQ's Pareto frontier: Hessian trace, the exact frontier point at the budget"},
    {"lcpaq", "hessian", "ilp", "mse",
     "LCPAQ: Hutchinson Hessian trace, ILP under every budget, and a proxy search of the "
     "quantization hyper-parameters (widths, pins, observer, weight scale, budget split)"},
    {"multipoint", "", "", "multipoint",
     "multipoint PTQ: uniform low bits plus extra points where the output error is largest"},
};

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The measures of one quantized configuration (evaluated against the float model).
nlohmann::json measures(const QuantizeResult& q, const EvalResult& e) {
  nlohmann::json j = {{"size_bytes", q.sizes.total_bytes()},
                      {"weight_size_bytes", q.sizes.paper_bytes},
                      {"avg_weight_bits", q.sizes.weight_bits_average},
                      {"bitops", q.bitops},
                      {"file_bytes", q.file_bytes},
                      {"int8_format", q.int8_format}};
  if (e.labelled) {
    j["top1"] = e.top1;
    j["loss"] = e.loss;
  }
  if (e.has_ctc) {
    j["char_accuracy"] = e.char_accuracy;
    j["line_accuracy"] = e.line_accuracy;
  }
  if (e.has_reference) {
    j["output"] = e.output;
    if (e.has_agreement) j["agreement"] = e.agreement;
    if (e.has_kl) j["kl"] = e.kl;
    if (e.has_cosine) j["cosine"] = e.cosine;
    if (std::isfinite(e.sqnr_db)) j["sqnr_db"] = e.sqnr_db;
  }
  return j;
}

// Sum over layers of Omega at the plan's weight (and activation) bits; null where a width was not
// measured.
nlohmann::json predicted_loss(const nlohmann::json& sensitivity, const Plan& plan) {
  if (!sensitivity.is_object()) return nullptr;
  double sum = 0;
  for (const auto& l : sensitivity.at("layers")) {
    const LayerPlan* p = plan.find(l.at("name").get<std::string>());
    if (!p || p->weight.bits >= 16) continue;
    bool found = false;
    for (const auto& b : l.at("weight")) {
      if (b.at("bits").get<int>() == p->weight.bits) {
        sum += b.at("omega").get<double>();
        found = true;
      }
    }
    if (!found) return nullptr;
    for (const auto& b : l.value("act", nlohmann::json::array())) {
      if (b.at("bits").get<int>() == p->act.bits) sum += b.at("omega").get<double>();
    }
  }
  return sum;
}

// The first weight width at or above 2 below `average` and the extra points that bring the
// paper's average bits (every point counted) to `average`: multipoint's "mixed precision
// without mixed precision" at an average-bits budget.
std::pair<int, double> multipoint_setting(double average, const std::vector<int>& bits) {
  int base = 0;
  for (int b : bits) {
    if (b < average - 1e-9 && b > base) base = b;
  }
  MPQ_CHECK(
      base >= 2, "--method multipoint: an average of ", average,
      " bits leaves no lower candidate width to add points to (candidates ",
      [&] {
        std::string s;
        for (int b : bits) s += (s.empty() ? "" : ",") + std::to_string(b);
        return s;
      }(),
      ")");
  return {base, average / base - 1};
}

class Stages {
 public:
  explicit Stages(nlohmann::json* run) : run_(run) { (*run_)["stages"] = nlohmann::json::array(); }
  void begin(const std::string& name) {
    log_info("mpq run: ", name);
    name_ = name;
    start_ = Clock::now();
  }
  nlohmann::json& end(const std::string& artifact = "") {
    nlohmann::json s = {{"name", name_}, {"seconds", since(start_)}};
    if (!artifact.empty()) s["artifact"] = artifact;
    (*run_)["stages"].push_back(s);
    return (*run_)["stages"].back();
  }

 private:
  nlohmann::json* run_;
  std::string name_;
  Clock::time_point start_;
};

}  // namespace

const std::vector<MethodPreset>& method_table() {
  static const std::vector<MethodPreset> table(std::begin(kMethods), std::end(kMethods));
  return table;
}

const MethodPreset& find_method(const std::string& name) {
  std::string known;
  for (const auto& m : method_table()) {
    if (name == m.name) return m;
    known += (known.empty() ? "" : ", ") + std::string(m.name);
  }
  MPQ_FAIL("--method: unknown method '", name, "' (expected one of ", known, ")");
}

RunSummary run_pipeline(const std::string& model_path, const Dataset& calibration,
                        const Dataset& evaluation, const std::string& dir, const RunOptions& o) {
  const MethodPreset& method = find_method(o.method);
  const bool multipoint = std::string(method.name) == "multipoint";
  const std::string metric = !o.metric.empty() ? o.metric : multipoint ? "fisher" : method.metric;
  std::string solver = !o.solver.empty() ? o.solver : multipoint ? "mckp" : method.solver;
  PtqOptions ptq = o.ptq;
  if (!o.quantizer_given) ptq.method = method.quantizer;
  MPQ_CHECK(!o.budgets.empty(), "mpq run: at least one --budget is needed (e.g. avg-bits=3)");

  Graph model = import_onnx(model_path);
  check_exportable(model);  // the export's opset upgrade, before any work
  RunSummary out;
  out.dir = dir;
  nlohmann::json& run = out.run;
  run = {{"format", "mpq-run"}, {"version", 1}, {"mpq_version", kVersion}};
  Stages stages(&run);

  // Budgets first: from the model's shapes alone, before anything expensive.
  stages.begin("check budgets");
  // Layer facts at the data's sample shape: models with symbolic spatial sizes resolve there.
  nlohmann::json facts = model_facts(with_sample_shape(model, calibration.sample_shape()));
  SearchOptions search_options;
  search_options.budgets = o.budgets;
  search_options.target = o.target;
  search_options.solver = solver == "pareto" ? "mckp" : solver;
  search_options.frontier_points = 200;
  build_problem(
      search_input(unmeasured_sensitivity(facts, o.bits, o.act_bits), model_path, search_options));
  std::pair<int, double> points{0, 0.0};
  if (multipoint) {
    MPQ_CHECK(o.budgets.size() == 1 && parse_budget(o.budgets[0]).kind == CostKind::kAvgBits &&
                  parse_budget(o.budgets[0]).mode == BudgetSpec::Mode::kAbsolute,
              "--method multipoint: expected one avg-bits budget (e.g. --budget avg-bits=3), "
              "found '",
              o.budgets[0], "'");
    points = multipoint_setting(parse_budget(o.budgets[0]).value, o.bits);
  }
  stages.end();
  std::filesystem::create_directories(dir);

  int64_t layers = int64_t(facts.at("layers").size()), macs = 0, params = 0;
  for (const auto& l : facts.at("layers")) macs += l.at("macs").get<int64_t>();
  params = facts.at("total_params").get<int64_t>();
  run["model"] = {{"path", model_path},
                  {"hash", hash_file(model_path)},
                  {"params", params},
                  {"macs", macs},
                  {"layers", layers}};
  const bool labelled = calibration.has_labels() && evaluation.has_labels() &&
                        model_output_kind(model, calibration) == OutputKind::kScores;
  run["data"] = {{"calibration", calibration.describe()},
                 {"evaluation", evaluation.describe()},
                 {"eval_samples", evaluation.size()},
                 {"labelled", labelled}};
  run["method"] = {{"name", method.name},
                   {"metric", metric},
                   {"solver", solver},
                   {"quantizer", ptq.method},
                   {"summary", method.summary}};
  if (multipoint) {
    run["method"]["base_bits"] = points.first;
    run["method"]["extra_points"] = points.second;
  }

  // Sensitivity (cached by model, data and options).
  stages.begin("sensitivity");
  SensitivityOptions so;
  so.metric = metric;
  so.bits = o.bits;
  so.act_bits = o.act_bits;
  so.samples = o.sensitivity_samples > 0   ? o.sensitivity_samples
               : metric == "orthogonality" ? 32
                                           : 512;
  if (o.max_probes > 0) so.max_probes = o.max_probes;
  // Label-free when there are no labels or the outputs are not class scores (a detection map,
  // per-step probabilities, an embedding): the metrics compare with the float model instead.
  const OutputKind kind = model_output_kind(model, calibration);
  so.label_free = !calibration.has_labels() || kind != OutputKind::kScores;
  so.output = output_kind_name(kind);
  SensitivityRun srun =
      run_sensitivity_command(model, model_path, calibration, so, o.sensitivity_run);
  nlohmann::json sensitivity = to_json(srun);
  const std::string sensitivity_path = join_path(dir, "sensitivity.json");
  write_file_atomic(sensitivity_path, sensitivity.dump(1) + "\n");
  stages.end("sensitivity.json")["from_cache"] = srun.from_cache;

  // Search: the plan at the budget and the frontier of the first budget.
  stages.begin("search");
  SearchRun search;
  if (std::string(method.name) == "lcpaq") {
    // LCPAQ: the ILP inside a proxy search of the quantization hyper-parameters; the chosen
    // quantizer settings quantize the model unless --quantizer was given.
    ProxySearchOptions po;
    po.search = search_options;
    po.search.frontier_points = 0;
    po.evaluations = o.proxy_evals;
    po.proxy_samples = o.proxy_samples;
    po.ptq = ptq;
    ProxySearchResult r =
        run_proxy_search(model, sensitivity, sensitivity_path, calibration, nullptr, po);
    write_file_atomic(join_path(dir, "proxy_search.json"), to_json(r).dump(1) + "\n");
    search = std::move(r.search);
    search.frontier = first_budget_frontier(search.built.problem, search_options.frontier_points,
                                            search_options.solver_options);
    if (!o.quantizer_given) {
      ptq = r.ptq;  // po.ptq with the chosen method, observer and weight scale
      run["method"]["quantizer"] = ptq.method;
    }
    run["method"]["proxy_search"] = {{"settings", r.candidates[r.best].settings},
                                     {"kl", r.candidates[r.best].kl},
                                     {"candidates", r.scored},
                                     {"seconds", r.search_seconds},
                                     {"log", "proxy_search.json"}};
  } else {
    search = run_search(sensitivity, sensitivity_path, search_options);
  }
  MPQ_CHECK(!search.solution.choice.empty(), "mpq run: solver ", search.solver,
            ": the budgets cannot be met together (", status_name(search.solution.status),
            "), though each alone can: relax one of them");
  Plan plan = search.plan;
  if (multipoint) {
    // The searched plan stays in the folder as the mixed-precision reference; the model is
    // multipoint at uniform base bits, its extra points spread where the output error is largest.
    plan = uniform_plan(model, points.first, 8);
    plan.extra = search.plan.extra;
    for (auto& l : plan.layers) {
      const LayerPlan* searched = search.plan.find(l.name);
      if (searched) l.extra = searched->extra;
      l.extra["reason"] = "multipoint: " + std::to_string(points.first) +
                          "-bit base, extra points spread over the network";
    }
    ptq.extra_points = points.second;
    ptq.point_scope = PointScope::kNetwork;
  }
  save_plan(join_path(dir, "plan.json"), plan);
  write_file_atomic(join_path(dir, "frontier.json"), frontier_json(search).dump(1) + "\n");
  run["budgets"] = search.plan.extra.at("budgets");
  stages.end("plan.json");

  // Quantize and export the chosen plan.
  stages.begin("quantize");
  const std::string model_out = join_path(dir, "model.q.onnx");
  QuantizeResult mixed = run_quantize(model, plan, &calibration, ptq, o.qdq, model_out);
  stages.end("model.q.onnx");

  // Evaluate float, mixed, uniform baselines and a few frontier points on the same data.
  stages.begin("evaluate");
  Graph folded = model;
  fold_batchnorm(&folded);
  Executor reference(folded);
  EvalOptions eo;
  eo.progress = false;
  eo.ctc = o.ctc.get();
  std::vector<at::Tensor> reference_outputs;  // the float model's, computed once
  eo.reference_outputs = &reference_outputs;
  EvalResult float_eval = evaluate(reference, model.source, evaluation, eo, nullptr);
  auto evaluate_config = [&](QuantizeResult& q) {
    return evaluate_simulated(q.model, model.source + " (quantized)", evaluation, eo, &reference);
  };
  run["float"] = {{"size_bytes", mixed.float_file_bytes},
                  {"weight_size_bytes", mixed.sizes.float_paper_bytes},
                  {"avg_weight_bits", 32},
                  {"bitops", mixed.float_bitops}};
  if (float_eval.labelled) {
    run["float"]["top1"] = float_eval.top1;
    run["float"]["loss"] = float_eval.loss;
  }
  if (float_eval.has_ctc) {
    run["float"]["char_accuracy"] = float_eval.char_accuracy;
    run["float"]["line_accuracy"] = float_eval.line_accuracy;
  }
  run["mixed"] = measures(mixed, evaluate_config(mixed));
  run["mixed"]["predicted_loss"] = predicted_loss(sensitivity, plan);

  PtqOptions baseline = ptq;
  baseline.progress = false;
  if (multipoint) baseline.extra_points = 0;
  if (multipoint) baseline.method = "mse";
  run["uniform"] = nlohmann::json::array();
  auto uniform = [&](int b, int a) {
    Plan u = uniform_plan(model, b, a);
    for (auto& l : u.layers) {
      const LayerPlan* p = search.plan.find(l.name);
      if (p) l.weight.scheme = p->weight.scheme;
    }
    return u;
  };
  // The uniform baselines share one calibration (equal to calibrating each, ptq_test).
  std::unique_ptr<PtqCalibration> kept;
  if (baseline.method != "multipoint" && !o.uniform_bits.empty()) {
    kept = std::make_unique<PtqCalibration>(
        model, int8_plan(uniform(8, 8), o.qdq), calibration, baseline,
        std::vector<ObserverSetting>{{observer_for(baseline), baseline.observer_options}});
  }
  const std::string weight_scale = weight_scale_method(baseline);
  for (int b : o.uniform_bits) {
    for (int a : o.uniform_act_bits) {
      Plan u = uniform(b, a);
      QuantizeResult q =
          kept ? export_quantized(model, kept->quantize(int8_plan(u, o.qdq), weight_scale, 0),
                                  o.qdq, "")
               : run_quantize(model, u, &calibration, baseline, o.qdq, "");
      nlohmann::json m = measures(q, evaluate_config(q));
      m["weight_bits"] = b;
      m["act_bits"] = a;
      m["predicted_loss"] = predicted_loss(sensitivity, u);
      run["uniform"].push_back(m);
    }
  }
  run["frontier_eval"] = nlohmann::json::array();
  const auto& fpoints = search.frontier;
  const int k = std::min<int>(o.frontier_evals, int(fpoints.size()));
  PtqOptions frontier_ptq = baseline;
  for (int i = 0; i < k; ++i) {
    const size_t at = size_t(std::lround(double(i + 1) * double(fpoints.size() - 1) / (k + 1)));
    const FrontierPoint& f = fpoints[at];
    Plan p = search.plan;
    for (size_t l = 0; l < search.input.layers.size(); ++l) {
      const int64_t g = search.built.group_of_layer[l];
      const Item& item = search.built.problem.groups[size_t(g)].items[size_t(f.choice[size_t(g)])];
      for (auto& lp : p.layers) {
        if (lp.name != search.input.layers[l].info.name) continue;
        lp.weight.bits = item.weight_bits;
        lp.act.bits = item.act_bits;
      }
    }
    QuantizeResult q = run_quantize(model, p, &calibration, frontier_ptq, o.qdq, "");
    nlohmann::json m = measures(q, evaluate_config(q));
    m["predicted_loss"] = f.objective;
    run["frontier_eval"].push_back(m);
  }
  stages.end();

  // Verify the exported file in ONNX Runtime.
  if (o.verify) {
    stages.begin("verify");
    std::string why;
    if (onnxruntime_available(&why)) {
      VerifyOptions vo;
      vo.samples = std::min<int64_t>(o.verify_samples, evaluation.size());
      VerifyResult v = verify_model(model_out, evaluation, vo);
      nlohmann::json outputs = nlohmann::json::array();
      double max_rel = 0, agreement = 1;
      for (const auto& d : v.outputs) {
        nlohmann::json e = {{"name", d.name}, {"max_abs", d.max_abs}, {"max_rel", d.max_rel}};
        if (d.has_top1) {
          e["top1_agreement"] = d.top1_agreement;
          agreement = std::min(agreement, d.top1_agreement);
        }
        max_rel = std::max(max_rel, d.max_rel);
        outputs.push_back(e);
      }
      // The thresholds of the model tests (docs/quantization.md): ONNX Runtime's integer
      // kernels round differently from mpq's float simulation, within these bounds.
      run["verify"] = {{"samples", v.samples},
                       {"max_rel_diff", max_rel},
                       {"top1_agreement", agreement},
                       {"passed", max_rel <= 5e-2 && agreement >= 0.995},
                       {"outputs", outputs}};
    } else {
      run["verify_skipped"] = why;
    }
    stages.end();
  }

  run["files"] = {{"model", "model.q.onnx"},
                  {"plan", "plan.json"},
                  {"sensitivity", "sensitivity.json"},
                  {"frontier", "frontier.json"}};
  write_file_atomic(join_path(dir, "run.json"), run.dump(1) + "\n");
  if (o.report) {
    stages.begin("report");
    ReportFiles files = write_report(dir);
    stages.end("report.html");
    run["files"]["report_html"] = "report.html";
    run["files"]["report_md"] = "report.md";
    write_file_atomic(join_path(dir, "run.json"), run.dump(1) + "\n");
  }
  return out;
}

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// The task metric where there is one, else the label-free quality against the float model.
std::string quality(const nlohmann::json& m) {
  if (m.contains("top1")) return fmt("%.2f %%", 100 * m.at("top1").get<double>());
  if (m.contains("char_accuracy"))
    return fmt("%.2f %% chars", 100 * m.at("char_accuracy").get<double>()) +
           fmt(", %.1f %% lines", 100 * m.at("line_accuracy").get<double>());
  if (m.contains("agreement")) return fmt("%.2f %% agr.", 100 * m.at("agreement").get<double>());
  if (m.contains("cosine")) return fmt("cos %.4f", m.at("cosine").get<double>());
  if (m.contains("sqnr_db")) return fmt("SQNR %.1f dB", m.at("sqnr_db").get<double>());
  if (!m.contains("output")) return "reference";  // the float model, unlabelled data
  return "SQNR inf";
}

std::string size_text(const nlohmann::json& m) {
  return fmt("%.1f KiB", m.at("size_bytes").get<double>() / 1024.0);
}

}  // namespace

std::string format_summary(const RunSummary& s) {
  const nlohmann::json& r = s.run;
  // Uniform precision at the same budget, as the report picks it: the largest uniform model
  // whose cost in the first budget's measure, scaled as the mixed model's measured cost is to the
  // budget's total, stays within the limit (uniform W3 meets avg-bits=3).
  const nlohmann::json& first = r.at("budgets").at(0);
  const std::string kind = first.at("kind").get<std::string>();
  const char* key = kind == "size" ? "size_bytes" : kind == "bops" ? "bitops" : "weight_size_bytes";
  double headroom = 1;
  if (first.value("total", 0.0) > 0)
    headroom = first.at("limit").get<double>() / first.at("total").get<double>();
  const double mixed_cost = r.at("mixed").at(key).get<double>() * headroom * (1 + 1e-9);
  const nlohmann::json* same = nullptr;
  for (const auto& u : r.at("uniform")) {
    double c = u.at(key).get<double>();
    if (c <= mixed_cost && (!same || c > same->at(key).get<double>())) same = &u;
  }
  std::ostringstream o;
  o << "| model | quality | size | avg weight bits | BitOps |\n|---|---|---|---|---|\n";
  auto row = [&](const std::string& name, const nlohmann::json& m) {
    o << "| " << name << " | " << quality(m) << " | " << size_text(m) << " | "
      << fmt("%.2f", m.at("avg_weight_bits").get<double>()) << " | "
      << fmt("%.3g", m.at("bitops").get<double>()) << " |\n";
  };
  row("float", r.at("float"));
  if (same) row("uniform W" + std::to_string(same->at("weight_bits").get<int>()) + "A8", *same);
  row("mixed (" + r.at("method").at("name").get<std::string>() + ")", r.at("mixed"));
  for (const auto& b : r.at("budgets")) {
    o << "budget " << b.at("budget").get<std::string>() << ": " << b.value("text", std::string())
      << (b.value("binding", false) ? " (binding)" : "") << "\n";
  }
  if (r.contains("verify")) {
    o << "ONNX Runtime: max relative difference "
      << fmt("%.2g", r.at("verify").at("max_rel_diff").get<double>()) << ", top-1 agreement "
      << fmt("%.1f %%", 100 * r.at("verify").at("top1_agreement").get<double>())
      << (r.at("verify").at("passed").get<bool>() ? "" : " (NOT within the expected bounds)")
      << "\n";
  } else if (r.contains("verify_skipped")) {
    o << "ONNX Runtime verification skipped: " << r.at("verify_skipped").get<std::string>() << "\n";
  }
  if (r.at("files").contains("report_html")) {
    o << "report: " << join_path(s.dir, "report.html") << "\n";
  }
  return o.str();
}

}  // namespace mpq
