// `mpq search --proxy-search` (issue 9; methods.md §2, LCPAQ's low-cost proxy search): the
// quantization hyper-parameters around the bit allocation are searched, each candidate scored by a
// cheap proxy instead of a full evaluation.
//
// A candidate is one value per hyper-parameter (a gene):
//   bits      the candidate weight widths, a non-empty subset of the sensitivity's (a mask; a
//             mutation adds or removes one width);
//   pin       none, first, last or both of the first and last layers fixed at 8-bit weights;
//   observer  the activation range: minmax, percentile 99.9 / 99.99 / 99.999, mse or kl
//             (only when activations are quantized);
//   scale     the weight scale: maxabs (rtn) or mse (clipping that minimises the output error);
//   split     with several budgets, the share of each budget the solver may spend: 1, 0.95 or
//             0.9 of the part the choice changes (one gene per budget);
//   beta      OMPQ's beta in theta_i = exp(-beta gamma_i), when the sensitivity is orthogonality:
//             0.1, 1, 3.3, 10, 30 or 100 (the file's gamma, methods.md §4);
//   act       the activation width, when several are given.
// Each candidate runs the ordinary search (the solver under the budgets, with its bit set and
// pins) and PTQ of the chosen plan with its observer and weight scale; the proxy is the mean
// KL(p_float || p_quantized) of the outputs on the first `proxy_samples` calibration samples
// (for embedding outputs, which have no KL: 1 - cosine similarity).
// The calibration pass runs once for every candidate (quant/ptq.h PtqCalibration), and weights
// rounded at some width are kept, so a candidate costs one solve, the new layers' rounding and
// one forward pass of the proxy samples.
//
// Strategy: regularized (aging) evolution (Real et al., 2019). The first candidate is the plain
// search (all widths, no pins, mse observer and scale, full budgets, the file's beta), then
// `population` random ones; after that each step takes the best of `tournament` random members,
// changes one gene, scores the child and retires the oldest member. Candidates seen before are
// not scored again; candidates whose budgets no choice meets are skipped, counted apart.
//
// Validation (`validation` data): every scored candidate is also evaluated there (timed apart);
// the Spearman correlation of -KL with top-1 (or with -KL on that data when unlabelled) says how
// well the proxy ranks. score = "full" scores by that evaluation instead: the slow search the
// proxy replaces, for the wall-time comparison (bench/bench_proxy.cpp).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "onnx/graph.h"
#include "pipeline/search.h"
#include "pipeline/sensitivity.h"
#include "quant/ptq.h"

namespace mpq {

struct ProxySearchOptions {
  SearchOptions search;  // budgets, target, solver of each candidate's search
  int evaluations = 48;  // distinct feasible candidates scored
  int population = 12;
  int tournament = 4;
  uint64_t seed = 1;
  int64_t proxy_samples = 128;
  std::string score = "proxy";      // proxy | full (by the validation data's top-1 or KL)
  std::vector<int> act_bits;        // several: a gene; empty: the target's
  PtqOptions ptq;                   // calibration samples, batch size, bias correction
  int64_t validation_samples = -1;  // -1: all of the validation data
  bool progress = true;
};

struct ProxyCandidate {
  std::vector<int> genes;
  nlohmann::json settings;  // the decoded hyper-parameters
  bool feasible = false;
  std::string why;  // infeasible: the reason
  double kl = 0;    // the proxy
  double predicted_loss = 0;
  double avg_weight_bits = 0;
  double seconds = 0;  // solve + PTQ + proxy forward
  bool validated = false;
  double val_top1 = 0, val_kl = 0, val_seconds = 0;
  double score = 0;  // what the search minimised
};

struct ProxySearchResult {
  std::vector<ProxyCandidate> candidates;  // in the order scored; infeasible ones included
  size_t best = 0;
  SearchRun search;  // the best candidate's search; plan.extra["proxy_search"] records it
  PtqOptions ptq;    // the best candidate's quantizer settings
  std::vector<std::string> genes;  // gene names, in genome order
  double calibration_seconds = 0;  // the one calibration pass
  double search_seconds = 0;       // wall time of the search, calibration included, validation not
  double validation_seconds = 0;
  bool validated = false;
  bool labelled = false;   // validation top-1 (else KL on the validation data)
  Correlation validation;  // -KL (proxy) against top-1 (or -KL) on the validation data
  int scored = 0, infeasible = 0;
};

// `sensitivity`: the parsed sensitivity.json (`where`: its path); `calibration` feeds PTQ and the
// proxy; `validation` may be null unless score = "full". Throws mpq::Error for bad options, for
// data that do not fit the model, and when no candidate meets the budgets.
ProxySearchResult run_proxy_search(const Graph& model, const nlohmann::json& sensitivity,
                                   const std::string& where, const Dataset& calibration,
                                   const Dataset* validation, const ProxySearchOptions& options);

// The sensitivity file with OMPQ's importance recomputed at `beta` from each layer's gamma
// (orthogonality files only; methods.md §4 step 3-4).
nlohmann::json with_ompq_beta(const nlohmann::json& sensitivity, double beta);

// The candidates, the best one and the validation, for --proxy-log.
nlohmann::json to_json(const ProxySearchResult& result);
std::string format_text(const ProxySearchResult& result);

}  // namespace mpq
