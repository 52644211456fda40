// LCPAQ's low-cost proxy search (methods.md §2, module 3): regularized evolution over the
// quantization hyper-parameters, each candidate scored by the KL of its PTQ model's outputs to
// the float model's on a couple of calibration batches. See proxy_search.h.
#include "pipeline/proxy_search.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "exec/executor.h"
#include "pipeline/quantize.h"
#include "search/solvers.h"
#include "sensitivity/orthogonality.h"

namespace mpq {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The first `n` samples of another data set: the proxy's batches.
class FirstSamples : public Dataset {
 public:
  FirstSamples(const Dataset& base, int64_t n) : base_(base), n_(std::min(n, base.size())) {}
  int64_t size() const override { return n_; }
  std::vector<int64_t> sample_shape() const override { return base_.sample_shape(); }
  bool has_labels() const override { return base_.has_labels(); }
  int64_t num_classes() const override { return base_.num_classes(); }
  Batch read(const std::vector<int64_t>& indices) const override { return base_.read(indices); }
  std::string describe() const override {
    return "the first " + std::to_string(n_) + " samples of " + base_.describe();
  }

 private:
  const Dataset& base_;
  int64_t n_;
};

struct ObserverChoice {
  const char* label;
  const char* name;
  double percentile;
};
const ObserverChoice kObservers[] = {
    {"mse", "mse", 99.99},
    {"minmax", "minmax", 99.99},
    {"percentile 99.9", "percentile", 99.9},
    {"percentile 99.99", "percentile", 99.99},
    {"percentile 99.999", "percentile", 99.999},
    {"kl", "kl", 99.99},
};
const char* const kScales[] = {"mse", "maxabs"};
const double kSplits[] = {1.0, 0.95, 0.9};
const double kBetas[] = {0.1, 1, 3.3, 10, 30, 100};
const char* const kPins[] = {"none", "first", "last", "first and last"};

enum class GeneKind { kBits, kPin, kObserver, kScale, kSplit, kBeta, kAct };

struct Gene {
  GeneKind kind;
  std::string name;
  int values = 1;   // bits: 2^widths - 1 masks, encoded as mask - 1
  int budget = -1;  // kSplit: the budget's index
};

// Everything a candidate needs that does not change between candidates.
struct Space {
  std::vector<Gene> genes;
  std::vector<int> widths;           // the sensitivity's weight widths, ascending
  std::vector<int> act_bits;         // the act gene's values
  std::vector<std::string> budgets;  // as written, for the split genes' settings
  double file_beta = 1;
  bool orthogonality = false;
  bool act_quantized = true;
};

// A candidate's hyper-parameters, decoded from its genes.
struct Decoded {
  std::vector<int> widths;
  int pin = 0;  // kPins
  std::string scale = "mse";
  size_t observer = 0;        // kObservers
  std::vector<double> split;  // per budget
  double beta = 0;            // 0: no beta gene
  int act_bits = 0;           // 0: no act gene
  nlohmann::json settings;    // the same, for the plan and the log
};

Decoded decode(const Space& space, const std::vector<int>& genes) {
  Decoded d;
  d.split.assign(space.budgets.size(), 1.0);
  for (size_t i = 0; i < genes.size(); ++i) {
    const Gene& g = space.genes[i];
    const int v = genes[i];
    switch (g.kind) {
      case GeneKind::kBits:
        for (size_t b = 0; b < space.widths.size(); ++b)
          if ((v + 1) & (1 << b)) d.widths.push_back(space.widths[b]);
        d.settings["bits"] = d.widths;
        break;
      case GeneKind::kPin:
        d.pin = v;
        d.settings["pin"] = kPins[v];
        break;
      case GeneKind::kScale:
        d.scale = kScales[v];
        d.settings["weight_scale"] = d.scale;
        break;
      case GeneKind::kObserver:
        d.observer = size_t(v);
        if (space.act_quantized || !space.act_bits.empty())
          d.settings["observer"] = kObservers[v].label;
        break;
      case GeneKind::kSplit:
        d.split[size_t(g.budget)] = kSplits[v];
        d.settings["split"][space.budgets[size_t(g.budget)]] = kSplits[v];
        break;
      case GeneKind::kBeta:
        d.beta = kBetas[v];
        d.settings["beta"] = d.beta;
        break;
      case GeneKind::kAct:
        d.act_bits = space.act_bits[size_t(v)];
        d.settings["act_bits"] = d.act_bits;
        break;
    }
  }
  return d;
}

int random_value(const Gene& g, std::mt19937_64& rng) {
  return int(std::uniform_int_distribution<int>(0, g.values - 1)(rng));
}

// One gene changed: the bit set gains or loses one width; others take another value.
std::vector<int> mutate(const Space& space, std::vector<int> genes, std::mt19937_64& rng) {
  std::vector<size_t> open;
  for (size_t i = 0; i < space.genes.size(); ++i)
    if (space.genes[i].values > 1) open.push_back(i);
  if (open.empty()) return genes;
  size_t i = open[std::uniform_int_distribution<size_t>(0, open.size() - 1)(rng)];
  const Gene& g = space.genes[i];
  if (g.kind == GeneKind::kBits) {
    int mask = genes[i] + 1;
    int flipped = 0;
    do {
      int bit = int(std::uniform_int_distribution<size_t>(0, space.widths.size() - 1)(rng));
      flipped = mask ^ (1 << bit);
    } while (flipped == 0);
    genes[i] = flipped - 1;
  } else {
    int v = int(std::uniform_int_distribution<int>(0, g.values - 2)(rng));
    genes[i] = v >= genes[i] ? v + 1 : v;
  }
  return genes;
}

// The proxy of one evaluation against the float model: the KL of the outputs (scores, per-step
// probabilities, maps); for embeddings, which have no KL, 1 - cosine similarity.
double proxy_value(const EvalResult& e) {
  if (e.has_kl) return e.kl;
  if (e.has_cosine) return 1.0 - e.cosine;
  return -e.sqnr_db;
}

}  // namespace

nlohmann::json with_ompq_beta(const nlohmann::json& sensitivity, double beta) {
  MPQ_CHECK(sensitivity.value("metric", "") == "orthogonality",
            "OMPQ's beta applies to orthogonality sensitivities, found '",
            sensitivity.value("metric", ""), "'");
  nlohmann::json s = sensitivity;
  auto& layers = s.at("layers");
  const size_t count = layers.size();
  std::vector<double> gamma(count);
  for (size_t i = 0; i < count; ++i) {
    const auto& extra = layers[i].at("extra");
    MPQ_CHECK(extra.contains("gamma"), "layer '", layers[i].value("name", ""),
              "': the orthogonality sensitivity has no gamma");
    gamma[i] = extra.at("gamma").get<double>();
  }
  const OmpqImportance importance = ompq_importance(gamma, beta);
  const std::vector<double>& theta = importance.theta;
  const std::vector<double>& cost = importance.c;
  for (size_t i = 0; i < count; ++i) {
    auto& l = layers[i];
    l["extra"]["theta"] = theta[i];
    l["extra"]["c"] = cost[i];
    for (auto& b : l.at("weight")) {
      b["omega"] = cost[i] * (1.0 - b.at("bits").get<double>() / 8.0);
      if (b.contains("parts")) {
        b["parts"]["theta"] = theta[i];
        b["parts"]["c"] = cost[i];
      }
    }
  }
  s["extra"]["beta"] = beta;
  return s;
}

ProxySearchResult run_proxy_search(const Graph& model, const nlohmann::json& sensitivity,
                                   const std::string& where, const Dataset& calibration,
                                   const Dataset* validation, const ProxySearchOptions& o) {
  MPQ_CHECK(o.score == "proxy" || o.score == "full",
            "--proxy-score: expected proxy or full, found '", o.score, "'");
  MPQ_CHECK(o.score == "proxy" || validation,
            "--proxy-score full: evaluation data are needed (--validate-data)");
  MPQ_CHECK(o.evaluations >= 1, "--proxy-evals: expected at least 1, found ", o.evaluations);
  MPQ_CHECK(o.population >= 2, "--proxy-population: expected at least 2, found ", o.population);
  MPQ_CHECK(o.tournament >= 1 && o.tournament <= o.population,
            "--proxy-tournament: expected 1..population (", o.population, "), found ",
            o.tournament);
  MPQ_CHECK(o.proxy_samples >= 1, "--proxy-samples: expected at least 1, found ", o.proxy_samples);
  const auto start = Clock::now();
  ProxySearchResult result;

  // The space.
  Space space;
  SearchRun base;  // the plain search: its input and plan give the layers and the reference plan
  base.input = search_input(sensitivity, where, o.search);
  for (const auto& l : base.input.layers) {
    for (const auto& [bits, omega] : l.weight_omega) {
      (void)omega;
      if (bits < 16 &&
          std::find(space.widths.begin(), space.widths.end(), bits) == space.widths.end())
        space.widths.push_back(bits);
    }
  }
  std::sort(space.widths.begin(), space.widths.end());
  MPQ_CHECK(!space.widths.empty() && space.widths.size() <= 12, where,
            ": expected 1-12 measured weight widths below 16 bits, found ", space.widths.size());
  space.orthogonality = sensitivity.value("metric", "") == "orthogonality";
  if (space.orthogonality && sensitivity.contains("extra"))
    space.file_beta = sensitivity.at("extra").value("beta", 1.0);
  for (const auto& b : base.input.budgets) space.budgets.push_back(b.text);
  space.act_bits = o.act_bits;
  std::sort(space.act_bits.begin(), space.act_bits.end());
  space.act_bits.erase(std::unique(space.act_bits.begin(), space.act_bits.end()),
                       space.act_bits.end());
  for (int a : space.act_bits)
    MPQ_CHECK(valid_bits(a), "--act-bits: expected 2..8, 16 or 32, found ", a);
  if (space.act_bits.size() == 1) base.input.target.act_bits = {{"default", space.act_bits}};
  space.genes.push_back({GeneKind::kBits, "bits", (1 << space.widths.size()) - 1});
  space.genes.push_back({GeneKind::kPin, "pin", 4});
  space.genes.push_back({GeneKind::kScale, "scale", 2});
  space.genes.push_back({GeneKind::kObserver, "observer", int(std::size(kObservers))});
  if (base.input.budgets.size() > 1) {
    for (size_t k = 0; k < base.input.budgets.size(); ++k)
      space.genes.push_back({GeneKind::kSplit, "split " + base.input.budgets[k].text,
                             int(std::size(kSplits)), int(k)});
  }
  if (space.orthogonality) space.genes.push_back({GeneKind::kBeta, "beta", int(std::size(kBetas))});
  if (space.act_bits.size() > 1)
    space.genes.push_back({GeneKind::kAct, "act", int(space.act_bits.size())});
  for (const auto& g : space.genes) result.genes.push_back(g.name);

  // The plain search's plan: the reference for the kept calibration (every layer, its schemes).
  base.built = build_problem(base.input);
  const Problem& base_problem = base.built.problem;
  base.solver = resolve_solver(o.search.solver, base_problem);
  base.solution = solve(base.solver, base_problem, o.search.solver_options);
  MPQ_CHECK(!base.solution.choice.empty(), where, ": solver ", base.solver,
            ": the budgets cannot be met together (", status_name(base.solution.status), ")");
  plan_from_solution(&base, sensitivity, where);
  // Budgets relative to the cheapest and dearest choice (0.3r, 0.5x) are resolved once, here:
  // a candidate with fewer widths must meet the same limit, not its own range's.
  double total_weights = 0;
  for (const auto& l : base.input.layers) total_weights += double(l.info.weight_elems);
  for (const auto& b : base.built.budgets) {
    BudgetSpec& spec = base.input.budgets[size_t(&b - base.built.budgets.data())];
    if (spec.mode == BudgetSpec::Mode::kAbsolute) continue;
    spec.mode = BudgetSpec::Mode::kAbsolute;
    spec.value = spec.kind == CostKind::kAvgBits ? b.limit / total_weights : b.limit;
  }
  Plan reference = base.plan;
  space.act_quantized = false;
  for (auto& l : reference.layers) {
    space.act_quantized |= l.act.quantized();
    if (!l.weight.quantized()) l.weight = weight_spec(8);
    l.weight.scheme = weight_scheme(base.input.target);
  }
  if (!space.act_quantized && space.act_bits.empty()) {
    // Float activations: the observer does not matter.
    for (auto& g : space.genes)
      if (g.kind == GeneKind::kObserver) g.values = 1;
  }

  // One calibration pass for every candidate.
  const auto calibration_start = Clock::now();
  std::vector<ObserverSetting> observers;
  for (const auto& c : kObservers) {
    ObserverSetting s{c.name, o.ptq.observer_options};
    s.options.percentile = c.percentile;
    observers.push_back(s);
  }
  PtqOptions ptq = o.ptq;
  ptq.method = "mse";
  ptq.progress = false;
  log_info("proxy search: calibrating on ",
           std::min<int64_t>(ptq.calibration_samples, calibration.size()), " samples");
  PtqCalibration kept(model, reference, calibration, ptq, observers);
  result.calibration_seconds = since(calibration_start);

  FirstSamples proxy_data(calibration, o.proxy_samples);
  Executor float_model(kept.float_graph());
  EvalOptions eo;
  eo.progress = false;
  eo.batch_size = 64;
  std::vector<at::Tensor> proxy_reference, validation_reference;
  EvalOptions proxy_eo = eo, val_eo = eo;
  proxy_eo.reference_outputs = &proxy_reference;
  val_eo.reference_outputs = &validation_reference;
  val_eo.batch_size = 100;
  std::unique_ptr<FirstSamples> val_subset;
  const Dataset* val_data = validation;
  if (validation && o.validation_samples > 0) {
    val_subset = std::make_unique<FirstSamples>(*validation, o.validation_samples);
    val_data = val_subset.get();
  }
  result.validated = validation != nullptr;
  result.labelled = validation && validation->has_labels();
  double validation_seconds = 0;

  // Orthogonality files re-weighted at each beta, with their search inputs, made once each.
  struct AtBeta {
    nlohmann::json sensitivity;
    SearchInput input;
  };
  std::map<double, AtBeta> at_beta;
  auto input_at = [&](double beta) -> const AtBeta& {
    auto it = at_beta.find(beta);
    if (it == at_beta.end()) {
      AtBeta a{with_ompq_beta(sensitivity, beta), {}};
      a.input = search_input(a.sensitivity, where, o.search);
      a.input.budgets = base.input.budgets;
      a.input.target = base.input.target;
      it = at_beta.emplace(beta, std::move(a)).first;
    }
    return it->second;
  };

  // Decodes, searches, quantizes and scores one candidate.
  auto score = [&](const std::vector<int>& genes) {
    const auto t0 = Clock::now();
    ProxyCandidate c;
    c.genes = genes;
    SearchRun run;
    const Decoded d = decode(space, genes);
    c.settings = d.settings;
    const nlohmann::json* sens = &sensitivity;
    const SearchInput* input = &base.input;
    if (d.beta > 0) {
      sens = &input_at(d.beta).sensitivity;
      input = &input_at(d.beta).input;
    }
    try {
      run.input = *input;
      Target& t = run.input.target;
      for (auto& [op, bits] : t.weight_bits) {
        std::vector<int> kept_bits;
        for (int b : bits)
          if (b >= 16 || std::find(d.widths.begin(), d.widths.end(), b) != d.widths.end())
            kept_bits.push_back(b);
        bits = kept_bits;
      }
      if (d.act_bits > 0)
        t.act_bits = {{"default", {d.act_bits}}};
      else if (space.act_bits.size() == 1)
        t.act_bits = {{"default", space.act_bits}};
      const auto& layers = run.input.layers;
      auto pin_layer = [&](const std::string& name) {
        LayerRule r;
        r.pattern = name;
        r.fixed_weight_bits = 8;
        t.pins.insert(t.pins.begin(), r);
      };
      if (d.pin == 1 || d.pin == 3) pin_layer(layers.front().info.name);
      if (d.pin == 2 || d.pin == 3) pin_layer(layers.back().info.name);
      run.built = build_problem(run.input);
      for (const auto& b : run.built.budgets) {
        if (b.row < 0) continue;
        size_t k = size_t(&b - run.built.budgets.data());
        double& limit = run.built.problem.budgets[size_t(b.row)].limit;
        double lowest = b.lowest - b.fixed;  // the variable part's least achievable
        limit = std::max(lowest, limit * d.split[k]);
      }
      run.solver = base.solver;
      run.solution = solve(run.solver, run.built.problem, o.search.solver_options);
      if (run.solution.choice.empty()) {
        c.why = std::string("the budgets cannot be met together (") +
                status_name(run.solution.status) + ")";
        return std::make_pair(c, run);
      }
      plan_from_solution(&run, *sens, where);
    } catch (const Error& e) {
      c.why = e.what();
      return std::make_pair(c, run);
    }
    c.feasible = true;
    c.predicted_loss = run.solution.objective;
    double bits = 0, elems = 0;
    for (size_t i = 0; i < run.input.layers.size(); ++i) {
      const double n = double(run.input.layers[i].info.weight_elems);
      bits += n * run.plan.layers[i].weight.bits;
      elems += n;
    }
    c.avg_weight_bits = elems > 0 ? bits / elems : 0;
    QuantizedModel q = kept.quantize(run.plan, d.scale, d.observer);
    EvalResult e =
        evaluate_simulated(q, model.source + " (candidate)", proxy_data, proxy_eo, &float_model);
    c.kl = proxy_value(e);
    c.score = c.kl;
    c.seconds = since(t0);
    if (validation) {
      const auto v0 = Clock::now();
      EvalResult v =
          evaluate_simulated(q, model.source + " (candidate)", *val_data, val_eo, &float_model);
      c.validated = true;
      c.val_top1 = v.labelled ? v.top1 : 0;
      c.val_kl = proxy_value(v);
      c.val_seconds = since(v0);
      if (o.score == "full") {
        c.score = v.labelled ? -v.top1 : c.val_kl;
        c.seconds += c.val_seconds;
      } else {
        validation_seconds += c.val_seconds;
      }
    }
    return std::make_pair(c, run);
  };

  // Regularized evolution.
  std::mt19937_64 rng(o.seed);
  std::set<std::vector<int>> seen;
  std::deque<size_t> population;  // candidate indices, oldest first
  SearchRun best_run;
  double best_score = std::numeric_limits<double>::infinity();
  const int max_attempts = 20 * o.evaluations + 100;
  int attempts = 0;
  Progress progress("proxy search", o.progress ? o.evaluations : 0);
  if (!o.progress) progress.finish();
  auto try_genes = [&](const std::vector<int>& genes) {
    ++attempts;
    if (!seen.insert(genes).second) return;
    auto [c, run] = score(genes);
    result.candidates.push_back(c);
    if (!c.feasible) {
      ++result.infeasible;
      return;
    }
    ++result.scored;
    if (o.progress) progress.advance(1);
    population.push_back(result.candidates.size() - 1);
    if (int(population.size()) > o.population) population.pop_front();
    if (c.score < best_score) {
      best_score = c.score;
      result.best = result.candidates.size() - 1;
      best_run = std::move(run);
    }
  };
  std::vector<int> plain(space.genes.size(), 0);
  plain[0] = (1 << space.widths.size()) - 2;  // every width
  for (size_t i = 0; i < space.genes.size(); ++i) {
    if (space.genes[i].kind == GeneKind::kBeta) {
      // The file's beta where it is one of the values, else the nearest.
      size_t nearest = 0;
      for (size_t k = 0; k < std::size(kBetas); ++k)
        if (std::abs(std::log(kBetas[k] / space.file_beta)) <
            std::abs(std::log(kBetas[nearest] / space.file_beta)))
          nearest = k;
      plain[i] = int(nearest);
    }
    if (space.genes[i].kind == GeneKind::kAct) plain[i] = int(space.act_bits.size()) - 1;
  }
  try_genes(plain);
  while (result.scored < std::min(o.population, o.evaluations) && attempts < max_attempts) {
    std::vector<int> genes(space.genes.size());
    for (size_t i = 0; i < genes.size(); ++i) genes[i] = random_value(space.genes[i], rng);
    try_genes(genes);
  }
  while (result.scored < o.evaluations && attempts < max_attempts && !population.empty()) {
    size_t parent =
        population[std::uniform_int_distribution<size_t>(0, population.size() - 1)(rng)];
    for (int k = 1; k < o.tournament; ++k) {
      size_t other =
          population[std::uniform_int_distribution<size_t>(0, population.size() - 1)(rng)];
      if (result.candidates[other].score < result.candidates[parent].score) parent = other;
    }
    try_genes(mutate(space, result.candidates[parent].genes, rng));
  }
  progress.finish();
  MPQ_CHECK(result.scored > 0, where, ": proxy search: no candidate meets the budgets (",
            result.infeasible, " tried; the first: ",
            result.candidates.empty() ? "none" : result.candidates.front().why, ")");

  // The best candidate: its plan with the search's provenance, its quantizer settings.
  const ProxyCandidate& best = result.candidates[result.best];
  result.search = std::move(best_run);
  const Decoded chosen = decode(space, best.genes);
  result.ptq = o.ptq;
  result.ptq.method = chosen.scale == "mse" ? "mse" : "rtn";
  result.ptq.weight_scale.method = chosen.scale;
  const ObserverChoice& oc = kObservers[chosen.observer];
  result.ptq.observer = oc.name;
  result.ptq.observer_options.percentile = oc.percentile;
  result.validation_seconds = validation_seconds;
  result.search_seconds = since(start) - validation_seconds;
  if (result.validated) {
    std::vector<double> proxy, truth;
    for (const auto& c : result.candidates) {
      if (!c.validated) continue;
      proxy.push_back(-c.kl);
      truth.push_back(result.labelled ? c.val_top1 : -c.val_kl);
    }
    if (proxy.size() >= 3) result.validation = correlate(proxy, truth);
  }
  nlohmann::json quantizer = {{"method", result.ptq.method},
                              {"weight_scale", result.ptq.weight_scale.method},
                              {"observer", result.ptq.observer}};
  if (result.ptq.observer == "percentile") quantizer["percentile"] = oc.percentile;
  result.search.plan.extra["quantizer"] = quantizer;
  result.search.plan.extra["proxy_search"] = {{"settings", best.settings},
                                              {"kl", best.kl},
                                              {"proxy_samples", proxy_data.size()},
                                              {"candidates", result.scored},
                                              {"infeasible", result.infeasible},
                                              {"seconds", result.search_seconds},
                                              {"score", o.score}};
  return result;
}

nlohmann::json to_json(const ProxySearchResult& r) {
  nlohmann::json candidates = nlohmann::json::array();
  for (const auto& c : r.candidates) {
    nlohmann::json j = {{"settings", c.settings}, {"genes", c.genes}, {"feasible", c.feasible}};
    if (!c.feasible) {
      j["why"] = c.why;
    } else {
      j["kl"] = c.kl;
      j["predicted_loss"] = c.predicted_loss;
      j["avg_weight_bits"] = c.avg_weight_bits;
      j["seconds"] = c.seconds;
      if (c.validated) {
        j["validation"] = {{"kl", c.val_kl}, {"seconds", c.val_seconds}};
        if (r.labelled) j["validation"]["top1"] = c.val_top1;
      }
    }
    candidates.push_back(j);
  }
  nlohmann::json j = {{"format", "mpq-proxy-search"},
                      {"version", 1},
                      {"genes", r.genes},
                      {"best", r.best},
                      {"scored", r.scored},
                      {"infeasible", r.infeasible},
                      {"calibration_seconds", r.calibration_seconds},
                      {"search_seconds", r.search_seconds},
                      {"candidates", candidates}};
  if (r.validated) {
    j["validation"] = {{"seconds", r.validation_seconds},
                       {"against", r.labelled ? "top1" : "kl"},
                       {"spearman", r.validation.spearman},
                       {"pearson", r.validation.pearson},
                       {"n", r.validation.n}};
  }
  return j;
}

std::string format_text(const ProxySearchResult& r) {
  std::ostringstream s;
  const ProxyCandidate& best = r.candidates[r.best];
  s << "proxy search: " << r.scored << " candidates scored (" << r.infeasible
    << " skipped: budgets not met) in " << r.search_seconds << " s (calibration "
    << r.calibration_seconds << " s)\n";
  s << "best: " << best.settings.dump() << "\n";
  s << "  proxy KL " << best.kl << ", average weight bits " << best.avg_weight_bits
    << ", predicted loss " << best.predicted_loss << "\n";
  const ProxyCandidate& plain = r.candidates.front();
  if (plain.feasible && r.best != 0)
    s << "  the plain search (first candidate): proxy KL " << plain.kl << "\n";
  if (r.validated) {
    s << "validation: " << r.validation.n << " candidates, Spearman(-proxy KL, "
      << (r.labelled ? "top-1" : "-KL") << ") " << r.validation.spearman << " ("
      << r.validation_seconds << " s)\n";
    if (r.labelled) {
      s << "  best candidate top-1 " << best.val_top1 << ", plain search " << plain.val_top1
        << "\n";
    }
  }
  s << format_text(r.search);
  return s.str();
}

}  // namespace mpq
