// SDQ's two stages through the search module's cost model (methods.md §5). See sdq.h.
#include "pipeline/sdq.h"

#include <algorithm>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "pipeline/search.h"
#include "search/cost.h"

namespace mpq {

nlohmann::json to_json(const SdqResult& r) {
  nlohmann::json drops = nlohmann::json::array();
  for (const auto& d : r.drops)
    drops.push_back({{"step", d.step},
                     {"group", d.group},
                     {"from", d.from},
                     {"to", d.to},
                     {"forced", d.forced}});
  return {{"start_bits", r.start_bits}, {"steps", r.steps}, {"met_by_training", r.met_by_training},
          {"seconds", r.seconds},       {"cost", r.cost},   {"drops", drops}};
}

SdqRun run_sdq(const Graph& model, const std::string& model_path, const Dataset& train_data,
               const Dataset& calibration, const SdqCommandOptions& o) {
  MPQ_CHECK(!o.budgets.empty(), "train --sdq: give at least one --budget (e.g. avg-bits=2.5)");
  MPQ_CHECK(!o.bits.empty(), "--bits: expected candidate weight widths, found none");
  for (int b : o.bits) MPQ_CHECK(b >= 2 && b <= 8, "--bits: expected widths in 2..8, found ", b);
  MPQ_CHECK(o.act_bits >= 2 && o.act_bits <= 8, "--act-bits: expected 2..8, found ", o.act_bits);
  std::vector<int> bits = o.bits;
  std::sort(bits.begin(), bits.end());
  bits.erase(std::unique(bits.begin(), bits.end()), bits.end());

  // The problem, as `mpq search` builds it, at one activation width.
  nlohmann::json sensitivity = unmeasured_sensitivity(model_facts(model), bits, {o.act_bits});
  sensitivity["metric"] = "sdq";
  sensitivity["info"] = {{"model", model_path}};
  SearchOptions so;
  so.budgets = o.budgets;
  so.target = o.target;
  SearchRun search;
  search.solver = "sdq";
  search.input = search_input(sensitivity, model_path, so);
  search.input.target.act_bits = {{"default", {o.act_bits}}};
  if (o.target.empty()) search.input.target.weight_bits = {{"default", bits}};
  search.built = build_problem(search.input);
  const Problem& problem = search.built.problem;
  SdqProblem sp;
  sp.act_bits = o.act_bits;
  for (const auto& b : problem.budgets) {
    sp.budgets.push_back(b.name);
    sp.limits.push_back(b.limit);
  }
  std::vector<std::vector<int>> item_of_width(problem.groups.size());
  for (size_t g = 0; g < problem.groups.size(); ++g) {
    const Group& group = problem.groups[g];
    std::vector<int> order(group.items.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = int(i);
    std::sort(order.begin(), order.end(), [&](int a, int b) {
      return group.items[size_t(a)].weight_bits < group.items[size_t(b)].weight_bits;
    });
    SdqGroup sg;
    sg.layers = group.layers;
    for (int i : order) {
      const Item& item = group.items[size_t(i)];
      if (!sg.bits.empty() && sg.bits.back() == item.weight_bits) continue;
      sg.bits.push_back(item.weight_bits);
      sg.cost.push_back(item.cost);
      item_of_width[g].push_back(i);
    }
    sp.groups.push_back(sg);
  }

  SdqRun run;
  // What stage 1's plan depends on: the problem, the model's weights and stage 1's settings.
  const SdqOptions& s1 = o.stage1;
  nlohmann::json key = {
      {"problem", sensitivity},
      {"budgets", o.budgets},
      {"target", o.target},
      {"model", file_exists(model_path) ? hash_file(model_path) : model_path},
      {"data", train_data.describe()},
      {"settings",
       {s1.start_bits, s1.beta_init, s1.beta_lr, s1.threshold, s1.tau, s1.cost_weight,
        s1.cost_growth, s1.curvature, s1.normalize, s1.max_epochs, s1.qat.kd_weight,
        s1.qat.train.optimizer.lr, s1.qat.train.batch_size, s1.qat.train.seed}}};
  const std::string problem_key = hash_hex(fnv1a64(key.dump()));
  if (file_exists(o.plan_output)) {
    Plan saved = load_plan(o.plan_output);
    if (saved.extra.value("sdq", nlohmann::json::object()).value("problem", "") == problem_key) {
      log_info("sdq: stage 1 already done (", o.plan_output, ")");
      run.plan = saved;
      run.stage1_from_file = true;
    }
  }
  if (!run.stage1_from_file) {
    run.stage1 = sdq_search(model, sp, train_data, calibration, o.stage1);
    // The plan in the search's format, with SDQ's reasons.
    search.solution.choice.resize(problem.groups.size());
    for (size_t g = 0; g < problem.groups.size(); ++g) {
      const auto& widths = sp.groups[g].bits;
      size_t w =
          size_t(std::find(widths.begin(), widths.end(), run.stage1.bits[g]) - widths.begin());
      search.solution.choice[g] = item_of_width[g][w];
    }
    Solution s = evaluate_choice(problem, search.solution.choice);
    s.detail = "sdq stage 1: " + std::to_string(run.stage1.steps) + " steps, " +
               std::to_string(run.stage1.drops.size()) + " drops";
    search.solution = s;
    plan_from_solution(&search, sensitivity, model_path);
    std::map<std::string, std::string> reasons;
    for (size_t g = 0; g < sp.groups.size(); ++g) {
      std::string why = "sdq: started at " + std::to_string(run.stage1.start_bits) + " bits";
      for (const auto& d : run.stage1.drops)
        if (d.group == sp.groups[g].layers[0])
          why += ", " + std::string(d.forced ? "forced " : "") + "drop " + std::to_string(d.from) +
                 "->" + std::to_string(d.to) + " at step " + std::to_string(d.step);
      if (sp.groups[g].bits.size() == 1) why = "pinned";
      for (const auto& l : sp.groups[g].layers) reasons[l] = why;
    }
    for (auto& l : search.plan.layers) {
      l.extra.erase("omega");
      l.extra["reason"] = reasons[l.name];
    }
    search.plan.extra.erase("sensitivity");
    search.plan.extra["sdq"] = to_json(run.stage1);
    search.plan.extra["sdq"]["problem"] = problem_key;
    run.plan = search.plan;
    save_plan(o.plan_output, run.plan);
    log_info("sdq: stage 1 plan written to ", o.plan_output);
  }
  if (o.train_plan) {
    run.stage2 = train_qat(model, run.plan, train_data, calibration, o.stage2);
    run.trained = true;
  }
  return run;
}

}  // namespace mpq
