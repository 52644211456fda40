// `mpq search` (issue 6): from a sensitivity file, a target and budgets to a plan.
//   sensitivity.json carries, besides Omega per layer and bit width, each layer's shape facts
//   (weights, bias, output channels, MACs, activation sizes per sample) and the automatic ties
//   found in the graph (model_facts below), so the search needs no model and no libtorch work;
//   the plan gives each layer its bits, Omega, cost and the reason for the choice, and the
//   totals against each budget; it is the format `mpq quantize --plan` reads (docs/plan.md).
//   The frontier file holds the (cost, predicted loss) Pareto frontier of the first budget.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "onnx/graph.h"
#include "quant/plan.h"
#include "search/build.h"
#include "search/solvers.h"

namespace mpq {

// What the search needs from the model: per quantizable layer {name, op, weight_elems,
// bias_elems (a following BatchNormalization folds into one per output channel), out_channels,
// macs, input_elems, output_elems}, "ties" {same_input, add, concat}, "total_params" (every
// initializer element) and "float_params" (those export keeps in float: not layer weights or
// biases, not folded BatchNormalization). Runs the model once on zeros (inspect).
nlohmann::json model_facts(const Graph& model);

struct SearchOptions {
  std::string solver = "auto";       // auto: mckp for one summed budget, ilp for several
  std::vector<std::string> budgets;  // as written: "size=2.5MB"
  std::string target;                // a target file; "" = the built-in default
  SolverOptions solver_options;
  int frontier_points = 0;  // > 0: compute the frontier of the first summed budget
  // Choose the plan from that frontier instead of solving at the budgets: "knee" or "loss=X"
  // (the cheapest point with predicted loss <= X). With several budgets the frontier is the first
  // budget's with the others held (constrained_frontier); every point meets every budget.
  std::string pick;
};

struct SearchRun {
  std::string solver;  // the solver that ran
  SearchInput input;
  BuiltProblem built;
  Solution solution;
  Plan plan;
  std::vector<FrontierPoint> frontier;
};

// The search's input from a parsed sensitivity file (layers, Omegas, ties the target turns on,
// float tensors outside the layers), the target and the budgets; throws naming `where`.
SearchInput search_input(const nlohmann::json& sensitivity, const std::string& where,
                         const SearchOptions& options);

// A sensitivity file with every Omega 0 at `bits` (and `act_bits`), from model_facts: what
// build_problem needs to check the budgets before any sensitivity is measured.
// Example: build_problem(search_input(unmeasured_sensitivity(f, {2, 4, 8}, {}), path, o));
nlohmann::json unmeasured_sensitivity(const nlohmann::json& facts, const std::vector<int>& bits,
                                      const std::vector<int>& act_bits);

// `sensitivity`: the parsed sensitivity.json, `where`: its path (messages, provenance).
// Throws mpq::Error for bad input and for budgets no choice meets; an infeasible combination of
// budgets the solver finds (several budgets, each achievable alone) is reported in
// run.solution.status with an empty plan instead.
SearchRun run_search(const nlohmann::json& sensitivity, const std::string& where,
                     const SearchOptions& options);

// Fills run->plan (layers with bits, Omega, cost, candidates and reason; totals against the
// budgets; provenance) from run->solution, given run->input and run->built: what run_search does
// after solving, for callers that choose the bits another way (SDQ).
void plan_from_solution(SearchRun* run, const nlohmann::json& sensitivity,
                        const std::string& where);

// The frontier of the first summed budget with `points` points: exact from mckp's state lists
// with one budget; with several, the others held at their limits (at most 30 ilp points).
std::vector<FrontierPoint> first_budget_frontier(const Problem& p, int points,
                                                 const SolverOptions& options);

// The solver `solver` names for problem `p`: "auto" is mckp for one summed budget, ilp for several.
std::string resolve_solver(const std::string& solver, const Problem& p);

// The weight scheme a target's plans use: sym or affine, per channel or per tensor.
std::string weight_scheme(const Target& target);

nlohmann::json frontier_json(const SearchRun& run);
std::string format_text(const SearchRun& run);  // the summary printed on stdout

}  // namespace mpq
