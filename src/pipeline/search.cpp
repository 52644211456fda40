// `mpq search` (issue 6, methods.md §1, §2, §4): reads a sensitivity file, builds the problem
// for a target and budgets, runs a solver and writes the plan with the reason for each choice.
#include "pipeline/search.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/version.h"
#include "onnx/layers.h"
#include "pipeline/inspect.h"
#include "search/cost.h"

namespace mpq {

nlohmann::json model_facts(const Graph& model) {
  ModelSummary s = inspect_model(model);
  // Export folds a BatchNormalization that follows a layer into the layer's weight and a bias
  // of one value per output channel; its own tensors disappear. Count the model that way.
  std::map<std::string, int64_t> node_of;
  for (size_t i = 0; i < model.nodes.size(); ++i) node_of[model.nodes[i].name] = int64_t(i);
  int64_t layer_params = 0, folded = 0;
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : s.layers) {
    const Node& n = model.nodes[size_t(node_of.at(l.name))];
    int64_t bias = l.bias_elems;
    std::vector<int64_t> readers = model.consumers(n.outputs[0]);
    if (readers.size() == 1 && model.nodes[size_t(readers[0])].op_type == "BatchNormalization") {
      bias = l.out_channels;
      for (const auto& in : model.nodes[size_t(readers[0])].inputs) {
        if (model.is_initializer(in)) folded += model.initializers.at(in).numel();
      }
    }
    layer_params += l.weight_elems + l.bias_elems;
    layers.push_back({{"name", l.name},
                      {"op", l.op},
                      {"weight_elems", l.weight_elems},
                      {"bias_elems", bias},
                      {"out_channels", l.out_channels},
                      {"macs", l.macs},
                      {"input_elems", l.input_elems},
                      {"output_elems", l.output_elems}});
  }
  LayerTies t = find_layer_ties(model);
  return {{"layers", layers},
          {"ties", {{"same_input", t.same_input}, {"add", t.add}, {"concat", t.concat}}},
          {"total_params", s.total_params},
          {"float_params", std::max<int64_t>(0, s.total_params - layer_params - folded)}};
}

namespace {

int64_t required_int(const nlohmann::json& e, const char* key, const std::string& where,
                     const std::string& layer) {
  MPQ_CHECK(e.contains(key) && e.at(key).is_number_integer(), where, ": layer '", layer,
            "': expected an integer \"", key,
            "\" (files written before mpq search existed lack it: run mpq sensitivity again)");
  return e.at(key).get<int64_t>();
}

std::map<int, double> omegas(const nlohmann::json& e, const char* key, const std::string& where,
                             const std::string& layer) {
  std::map<int, double> out;
  if (!e.contains(key)) return out;
  MPQ_CHECK(e.at(key).is_array(), where, ": layer '", layer, "': \"", key, "\" must be an array");
  for (const auto& b : e.at(key)) {
    MPQ_CHECK(b.is_object() && b.contains("bits") && b.contains("omega") &&
                  b.at("bits").is_number_integer() && b.at("omega").is_number(),
              where, ": layer '", layer, "': each \"", key,
              "\" entry needs integer \"bits\" and numeric \"omega\", found ", b.dump());
    double omega = b.at("omega").get<double>();
    MPQ_CHECK(std::isfinite(omega), where, ": layer '", layer, "': omega at ",
              b.at("bits").get<int>(), " bits is not finite");
    out[b.at("bits").get<int>()] = omega;
  }
  return out;
}

std::string budget_names(const Problem& p, const std::vector<int>& rows) {
  std::string s;
  for (int k : rows) s += (s.empty() ? "" : ", ") + p.budgets[size_t(k)].name;
  return s;
}

// Why the group took its item: pinned / override rules, the budgets that stop it improving.
std::string reason(const SearchRun& run, int64_t layer, int64_t group) {
  const LayerCandidates& c = run.built.candidates[size_t(layer)];
  const Group& g = run.built.problem.groups[size_t(group)];
  std::string r;
  if (c.reason == LayerCandidates::Reason::kPinned)
    return "pinned by the target ('" + c.rule + "')";
  if (c.reason == LayerCandidates::Reason::kOverride) {
    r = "override '" + c.rule + "'";
    if (g.items.size() == 1) return r;
  }
  if (g.layers.size() > 1) {
    std::string others;
    for (const auto& n : g.layers) {
      if (n != run.input.layers[size_t(layer)].info.name)
        others += (others.empty() ? "" : ", ") + n;
    }
    r += (r.empty() ? "" : "; ") + std::string("tied with ") + others;
  }
  if (g.items.size() == 1) return r.empty() ? "only one candidate" : r;
  std::vector<int> rows = blocking_budgets(run.built.problem, run.solution.choice, group);
  std::string b = rows.empty() ? "lowest Omega of its candidates"
                               : "budget " + budget_names(run.built.problem, rows) + " binding";
  return r.empty() ? b : r + "; " + b;
}

}  // namespace

SearchInput search_input(const nlohmann::json& j, const std::string& where,
                         const SearchOptions& options) {
  MPQ_CHECK(j.is_object() && j.value("format", "") == "mpq.sensitivity", where,
            ": expected a sensitivity file (\"format\": \"mpq.sensitivity\") from mpq "
            "sensitivity");
  MPQ_CHECK(j.contains("layers") && j.at("layers").is_array() && !j.at("layers").empty(), where,
            ": expected a non-empty \"layers\" array");
  MPQ_CHECK(!options.budgets.empty(),
            "mpq search: at least one --budget is needed (e.g. --budget "
            "size=0.5r)");
  SearchInput in;
  in.where = where;
  in.target = options.target.empty() ? default_target() : load_target(options.target);
  for (const auto& text : options.budgets) in.budgets.push_back(parse_budget(text));

  for (const auto& e : j.at("layers")) {
    MPQ_CHECK(e.is_object() && e.contains("name") && e.at("name").is_string(), where,
              ": each layer needs a \"name\", found ", e.dump().substr(0, 80));
    SearchLayer l;
    l.info.name = e.at("name").get<std::string>();
    l.info.op = e.value("op", "");
    l.info.weight_elems = required_int(e, "weight_elems", where, l.info.name);
    l.info.bias_elems = required_int(e, "bias_elems", where, l.info.name);
    l.info.out_channels = required_int(e, "out_channels", where, l.info.name);
    l.info.macs = required_int(e, "macs", where, l.info.name);
    l.info.input_elems = required_int(e, "input_elems", where, l.info.name);
    l.info.output_elems = required_int(e, "output_elems", where, l.info.name);
    l.weight_omega = omegas(e, "weight", where, l.info.name);
    l.act_omega = omegas(e, "act", where, l.info.name);
    in.layers.push_back(l);
  }
  // Tensors outside the layers stay in float (normalisation, embeddings, ...).
  if (j.contains("float_params") && j.at("float_params").is_number_integer()) {
    in.fixed_size_bytes = 4.0 * double(j.at("float_params").get<int64_t>());
  }
  if (j.contains("ties") && j.at("ties").is_object()) {
    const nlohmann::json& t = j.at("ties");
    auto add = [&](const char* key, bool on) {
      if (!on || !t.contains(key)) return;
      for (const auto& g : t.at(key)) {
        bool names = g.is_array();
        for (const auto& n : g) names = names && n.is_string();
        MPQ_CHECK(names, where, ": ties.", key, ": expected arrays of layer names, found ",
                  g.dump());
        in.ties.push_back(g.get<std::vector<std::string>>());
      }
    };
    add("same_input", in.target.tie_same_input);
    add("add", in.target.tie_add);
    add("concat", in.target.tie_concat);
  }

  return in;
}

nlohmann::json unmeasured_sensitivity(const nlohmann::json& facts, const std::vector<int>& bits,
                                      const std::vector<int>& act_bits) {
  nlohmann::json j = facts;
  j["format"] = "mpq.sensitivity";
  for (auto& l : j["layers"]) {
    nlohmann::json w = nlohmann::json::array(), a = nlohmann::json::array();
    for (int b : bits) w.push_back({{"bits", b}, {"omega", 0.0}});
    for (int b : act_bits) a.push_back({{"bits", b}, {"omega", 0.0}});
    l["weight"] = w;
    if (!a.empty()) l["act"] = a;
  }
  return j;
}

void plan_from_solution(SearchRun* run_ptr, const nlohmann::json& j, const std::string& where) {
  SearchRun& run = *run_ptr;
  const SearchInput& in = run.input;
  const Problem& p = run.built.problem;
  run.plan = Plan();
  // The plan: every layer in sensitivity order, with its share of the group's choice.
  if (!run.solution.choice.empty()) {
    for (size_t i = 0; i < in.layers.size(); ++i) {
      const SearchLayer& l = in.layers[i];
      int64_t g = run.built.group_of_layer[i];
      const Item& item = p.groups[size_t(g)].items[size_t(run.solution.choice[size_t(g)])];
      LayerPlan lp;
      lp.name = l.info.name;
      lp.weight = weight_spec(item.weight_bits);
      if (item.weight_bits < 16) lp.weight.scheme = weight_scheme(in.target);
      lp.act = activation_spec(item.act_bits);
      double omega = (item.weight_bits >= 16 ? 0.0 : l.weight_omega.at(item.weight_bits)) +
                     (l.act_omega.count(item.act_bits) ? l.act_omega.at(item.act_bits) : 0.0);
      nlohmann::json cost = nlohmann::json::object();
      for (const auto& b : run.built.budgets) {
        cost[cost_kind_info(b.spec.kind).name] =
            layer_cost(b.spec.kind, l.info, item.weight_bits, item.act_bits, in.target);
      }
      lp.extra = {{"omega", omega},
                  {"cost", cost},
                  {"candidates",
                   [&] {
                     nlohmann::json c = nlohmann::json::array();
                     for (const auto& it : p.groups[size_t(g)].items) {
                       c.push_back("w" + std::to_string(it.weight_bits) + "a" +
                                   std::to_string(it.act_bits));
                     }
                     return c;
                   }()},
                  {"reason", reason(run, int64_t(i), g)}};
      run.plan.layers.push_back(lp);
    }
  }
  nlohmann::json budgets = nlohmann::json::array();
  for (const auto& b : run.built.budgets) {
    nlohmann::json e = {{"budget", b.spec.text},
                        {"kind", cost_kind_info(b.spec.kind).name},
                        {"unit", cost_kind_info(b.spec.kind).unit},
                        {"limit", b.limit},
                        {"lowest", b.lowest},
                        {"highest", b.highest}};
    if (!run.solution.choice.empty()) {
      double total = 0;
      if (b.row >= 0) {
        total = run.solution.cost[size_t(b.row)] + b.fixed;
        e["binding"] = bool(run.solution.binding[size_t(b.row)]);
      } else {
        for (const auto& l : run.plan.layers) {
          total = std::max(total, l.extra["cost"][cost_kind_info(b.spec.kind).name].get<double>());
        }
      }
      e["total"] = total;
      e["text"] = format_cost(b.spec.kind, total) + " of " + format_cost(b.spec.kind, b.limit);
    }
    budgets.push_back(e);
  }
  const Solution& s = run.solution;
  run.plan.extra["search"] = {{"solver", run.solver},
                              {"status", status_name(s.status)},
                              {"predicted_loss", s.objective},
                              {"bound", s.bound},
                              {"gap", s.gap},
                              {"seconds", s.seconds},
                              {"detail", s.detail},
                              {"notes", run.built.notes},
                              {"groups", p.groups.size()}};
  run.plan.extra["budgets"] = budgets;
  run.plan.extra["target"] = {{"name", in.target.name}, {"file", in.target.path}};
  nlohmann::json info = j.value("info", nlohmann::json::object());
  run.plan.extra["sensitivity"] = {{"file", where},
                                   {"metric", j.value("metric", "")},
                                   {"model", info.value("model", "")},
                                   {"model_hash", info.value("model_hash", "")},
                                   {"data_hash", info.value("data_hash", "")}};
  run.plan.extra["mpq_version"] = kVersion;
}

SearchRun run_search(const nlohmann::json& j, const std::string& where,
                     const SearchOptions& options) {
  SearchRun run;
  run.input = search_input(j, where, options);
  const SearchInput& in = run.input;
  run.built = build_problem(in);
  const Problem& p = run.built.problem;
  run.solver = resolve_solver(options.solver, p);
  const bool pick = !options.pick.empty();
  double max_loss = 0;
  if (pick && options.pick != "knee") {
    const std::string prefix = "loss=";
    bool ok = options.pick.rfind(prefix, 0) == 0;
    if (ok) {
      try {
        size_t used = 0;
        max_loss = std::stod(options.pick.substr(prefix.size()), &used);
        ok = used == options.pick.size() - prefix.size() && std::isfinite(max_loss);
      } catch (const std::exception&) {
        ok = false;
      }
    }
    MPQ_CHECK(ok, "--pick: expected \"knee\" or \"loss=X\" (a predicted loss), found '",
              options.pick, "'");
  }
  run.solution = solve(run.solver, p, options.solver_options);
  if ((options.frontier_points > 0 || pick) && !p.budgets.empty()) {
    const int points = options.frontier_points > 0 ? options.frontier_points : 50;
    run.frontier = first_budget_frontier(p, points, options.solver_options);
  }
  if (pick) {
    const int i =
        options.pick == "knee" ? pick_knee(run.frontier) : pick_within_loss(run.frontier, max_loss);
    MPQ_CHECK(i >= 0, "--pick ", options.pick, ": no point of the ", p.budgets[0].name,
              " frontier qualifies (",
              run.frontier.empty()
                  ? std::string("the frontier is empty")
                  : "lowest predicted loss " + std::to_string(run.frontier.back().objective),
              ")");
    Solution s = evaluate_choice(p, run.frontier[size_t(i)].choice);
    s.detail = "picked " + options.pick + ": point " + std::to_string(i + 1) + " of " +
               std::to_string(run.frontier.size()) + " on the " + p.budgets[0].name +
               " frontier (" + run.solver + " at the budgets: predicted loss " +
               std::to_string(run.solution.objective) + ")";
    run.solution = s;
    run.solver = "frontier pick";
  }

  plan_from_solution(&run, j, where);
  return run;
}

std::string weight_scheme(const Target& t) {
  std::string kind = t.zero_points ? "affine" : "sym";
  return kind + (t.per_channel ? "-channel" : "-tensor");
}

std::vector<FrontierPoint> first_budget_frontier(const Problem& p, int points,
                                                 const SolverOptions& options) {
  return p.budgets.size() == 1 ? pareto_frontier(p, 0, points, options)
                               : constrained_frontier(p, 0, std::min(points, 30), options);
}

std::string resolve_solver(const std::string& solver, const Problem& p) {
  if (solver != "auto") return solver;
  return p.budgets.size() == 1 ? "mckp" : "ilp";
}

nlohmann::json frontier_json(const SearchRun& run) {
  const Problem& p = run.built.problem;
  const BuiltBudget* budget = nullptr;
  for (const auto& b : run.built.budgets) {
    if (b.row == 0) budget = &b;
  }
  nlohmann::json points = nlohmann::json::array();
  if (!budget) return {{"format", "mpq-frontier"}, {"version", 1}, {"points", points}};
  double weights = 0;
  for (const auto& l : run.input.layers) weights += double(l.info.weight_elems);
  for (const auto& f : run.frontier) {
    nlohmann::json bits = nlohmann::json::object();
    double weighted_bits = 0;
    for (size_t i = 0; i < run.input.layers.size(); ++i) {
      const auto& l = run.input.layers[i];
      const Item& it = p.groups[size_t(run.built.group_of_layer[i])]
                           .items[size_t(f.choice[size_t(run.built.group_of_layer[i])])];
      bits[l.info.name] = {it.weight_bits, it.act_bits};
      weighted_bits += double(l.info.weight_elems) * it.weight_bits;
    }
    points.push_back({{"cost", f.cost + budget->fixed},
                      {"predicted_loss", f.objective},
                      {"average_weight_bits", weights > 0 ? weighted_bits / weights : 0.0},
                      {"bits", bits}});
  }
  return {{"format", "mpq-frontier"},
          {"version", 1},
          {"budget", cost_kind_info(budget->spec.kind).name},
          {"unit", cost_kind_info(budget->spec.kind).unit},
          {"limit", budget->limit},
          {"chosen",
           {{"cost", run.solution.choice.empty() ? 0.0 : run.solution.cost[0] + budget->fixed},
            {"predicted_loss", run.solution.objective}}},
          {"points", points}};
}

std::string format_text(const SearchRun& run) {
  std::ostringstream o;
  const Solution& s = run.solution;
  char buf[256];
  std::snprintf(
      buf, sizeof buf, "solver %s: %s, predicted loss %.6g (bound %.6g, gap %.3g), %.3f ms\n",
      run.solver.c_str(), status_name(s.status), s.objective, s.bound, s.gap, s.seconds * 1e3);
  o << buf;
  for (const auto& n : run.built.notes) o << "note: " << n << "\n";
  if (!run.plan.layers.empty()) {
    size_t width = 5;
    for (const auto& l : run.plan.layers) width = std::max(width, l.name.size());
    o << std::string(width - 5, ' ') << "layer   W   A        Omega  reason\n";
    for (const auto& l : run.plan.layers) {
      std::snprintf(buf, sizeof buf, "%*s  %2d  %2d  %11.4g  ", int(width), l.name.c_str(),
                    l.weight.bits, l.act.bits, l.extra["omega"].get<double>());
      o << buf << l.extra["reason"].get<std::string>() << "\n";
    }
  }
  for (const auto& b : run.plan.extra["budgets"]) {
    o << "budget " << b["budget"].get<std::string>();
    if (b.contains("text")) o << ": " << b["text"].get<std::string>();
    if (b.value("binding", false)) o << " (binding)";
    o << "\n";
  }
  return o.str();
}

}  // namespace mpq
