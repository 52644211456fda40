// mpq search --sensitivity S --budget KIND=VALUE ... [--target T] [--solver NAME] -o plan.json
// [--frontier frontier.json]
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "core/fs.h"
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
  return s;
}

}  // namespace

void add_search_command(CLI::App& app) {
  struct Args {
    std::string sensitivity, output, frontier;
    SearchOptions options;
    bool json = false;
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
  cmd->callback([a] {
    nlohmann::json s = load_json(a->sensitivity);
    if (!a->frontier.empty() && a->options.frontier_points <= 0) a->options.frontier_points = 200;
    SearchRun run = run_search(s, a->sensitivity, a->options);
    MPQ_CHECK(!run.solution.choice.empty(), a->sensitivity, ": solver ", run.solver,
              ": the budgets cannot be met together (", status_name(run.solution.status),
              "), though each alone can: relax one of them");
    std::string plan = to_json(run.plan).dump(1) + "\n";
    if (!a->output.empty()) emit(plan, a->output);
    if (!a->frontier.empty()) emit(frontier_json(run).dump(1) + "\n", a->frontier);
    emit(a->json ? plan
                 : format_text(run) + (a->output.empty() ? "" : "wrote " + a->output + "\n") +
                       (a->frontier.empty() ? "" : "wrote " + a->frontier + "\n"),
         "");
  });
}

}  // namespace mpq::cli
