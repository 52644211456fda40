// mpq search --sensitivity S --budget KIND=VALUE ... [--target T] [--solver NAME] -o plan.json
// [--frontier frontier.json]
// mpq search --proxy-search --model M --data D --sensitivity S --budget ... [--validate-data V]
// [--proxy-log log.json] -o plan.json
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
#include "onnx/io.h"
#include "pipeline/proxy_search.h"
#include "pipeline/search.h"
#include "search/cost.h"

namespace mpq::cli {
namespace {

std::string search_help() {
  std::string s = "\nsolvers (--solver; auto = mckp for one budget, ilp for several):\n";
  for (const auto& r : solver_table()) {
    s += "  " + std::string(r.name) + ": " + r.summary + "\n";
  }
  s += "\nbudgets (--budget KIND=VALUE, repeatable; VALUE with a unit, or 0.5r between the\n"
       "cheapest and the most expensive choice, or 0.4x of the most expensive):\n";
  for (const auto& k : cost_kind_table()) s += "  " + std::string(k.name) + ": " + k.summary + "\n";
  s += "\n--proxy-search (LCPAQ) also searches the candidate widths, pinned first/last layers,\n"
       "the activation observer, the weight scale, the split between budgets and OMPQ's beta,\n"
       "scoring each candidate by the KL of its PTQ model to the float model on --proxy-samples\n"
       "calibration samples (docs/search.md). It needs --model and --data.\n";
  return s;
}

}  // namespace

void add_search_command(CLI::App& app) {
  struct Args {
    std::string sensitivity, output, frontier;
    SearchOptions options;
    bool json = false;
    bool proxy = false;
    std::string model, validate, proxy_log;
    DataArgs data;
    ProxySearchOptions proxy_options;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "search", "choose each layer's bit width under budgets from a sensitivity file");
  cmd->footer(search_help());
  cmd->add_option("--sensitivity", a->sensitivity, "sensitivity.json from mpq sensitivity")
      ->required();
  cmd->add_option("--budget", a->options.budgets, "KIND=VALUE, e.g. size=2.5MB, bops=0.4x")
      ->required();
  cmd->add_option("--target", a->options.target,
                  "target description (JSON, docs/targets.md); default: built in");
  cmd->add_option("--solver", a->options.solver, "greedy | mckp | ilp | lp | brute | auto")
      ->capture_default_str();
  cmd->add_option("--time-limit", a->options.solver_options.time_limit_s,
                  "seconds for ilp and mckp's branch and bound")
      ->capture_default_str();
  cmd->add_option("--frontier", a->frontier,
                  "write the Pareto frontier of the first budget here (frontier.json)");
  cmd->add_option("--frontier-points", a->options.frontier_points, "points on the frontier")
      ->capture_default_str();
  cmd->add_option("--pick", a->options.pick,
                  "take the plan from the first budget's frontier (the others held): knee, or "
                  "loss=X for the cheapest point with predicted loss <= X");
  cmd->add_flag("--json", a->json, "print the plan as JSON instead of a table");
  cmd->add_option("-o,--output", a->output, "write plan.json here");
  ProxySearchOptions& po = a->proxy_options;
  cmd->add_flag("--proxy-search", a->proxy,
                "search the quantization hyper-parameters too, scored by a proxy (LCPAQ)");
  cmd->add_option("--model", a->model, "--proxy-search: the float ONNX model");
  add_data_options(*cmd, a->data, false);
  cmd->add_option("--proxy-evals", po.evaluations, "--proxy-search: candidates to score")
      ->capture_default_str();
  cmd->add_option("--proxy-population", po.population, "--proxy-search: population size")
      ->capture_default_str();
  cmd->add_option("--proxy-samples", po.proxy_samples,
                  "--proxy-search: calibration samples the KL proxy is measured on")
      ->capture_default_str();
  cmd->add_option("--proxy-seed", po.seed, "--proxy-search: seed of the evolution")
      ->capture_default_str();
  cmd->add_option("--proxy-score", po.score,
                  "--proxy-search: proxy, or full (score by --validate-data: the slow search)")
      ->capture_default_str();
  cmd->add_option("--calibration-samples", po.ptq.calibration_samples,
                  "--proxy-search: PTQ calibration samples")
      ->capture_default_str();
  cmd->add_option("--act-bits", po.act_bits,
                  "--proxy-search: activation widths to choose from (one for the whole model)")
      ->delimiter(',');
  cmd->add_option("--validate-data", a->validate,
                  "--proxy-search: evaluate every candidate on these data too and report the "
                  "proxy's rank correlation with them");
  cmd->add_option("--validate-limit", po.validation_samples,
                  "--proxy-search: evaluate on the first N samples of --validate-data");
  cmd->add_option("--proxy-log", a->proxy_log,
                  "--proxy-search: write every candidate and the validation here (JSON)");
  // plan.json (-o) and a side file (the frontier, the proxy log), then the summary on stdout (the
  // plan with --json).
  auto finish = [a](const std::string& plan, const std::string& summary,
                    const std::string& side_path, const std::string& side) {
    if (!a->output.empty()) emit(plan, a->output);
    if (!side_path.empty()) emit(side, side_path);
    emit(a->json ? plan
                 : summary + (a->output.empty() ? "" : "wrote " + a->output + "\n") +
                       (side_path.empty() ? "" : "wrote " + side_path + "\n"),
         "");
  };
  cmd->callback([a, cmd, finish] {
    if (a->proxy) {
      MPQ_CHECK(!a->model.empty() && !a->data.spec.empty(),
                "search --proxy-search: --model and --data are needed (the candidates are "
                "quantized and run)");
      MPQ_CHECK(a->frontier.empty() && a->options.pick.empty(),
                "search --proxy-search: --frontier and --pick are not available with it");
      nlohmann::json s = load_json(a->sensitivity);
      Graph model = import_onnx(a->model);
      auto calibration = open_data(a->data, &model);
      std::unique_ptr<Dataset> validation;
      if (!a->validate.empty()) validation = open_other_data(a->data, a->validate, -1, &model);
      a->proxy_options.search = a->options;
      ProxySearchResult r = run_proxy_search(model, s, a->sensitivity, *calibration,
                                             validation.get(), a->proxy_options);
      finish(to_json(r.search.plan).dump(1) + "\n", format_text(r), a->proxy_log,
             a->proxy_log.empty() ? "" : to_json(r).dump(1) + "\n");
      return;
    }
    for (const std::string flag : {"--model", "--data", "--validate-data", "--proxy-log"}) {
      MPQ_CHECK(cmd->count(flag) == 0, "search: ", flag, " belongs to --proxy-search");
    }
    nlohmann::json s = load_json(a->sensitivity);
    if (!a->frontier.empty() && a->options.frontier_points <= 0) a->options.frontier_points = 200;
    SearchRun run = run_search(s, a->sensitivity, a->options);
    MPQ_CHECK(!run.solution.choice.empty(), a->sensitivity, ": solver ", run.solver,
              ": the budgets cannot be met together (", status_name(run.solution.status),
              "), though each alone can: relax one of them");
    finish(to_json(run.plan).dump(1) + "\n", format_text(run), a->frontier,
           a->frontier.empty() ? "" : frontier_json(run).dump(1) + "\n");
  });
}

}  // namespace mpq::cli
