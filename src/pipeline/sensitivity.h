// `mpq sensitivity` (issue 5): a metric run with a cache and resume, and its validation against
// the measured truth.
//   cache:    results are stored under a key made of the model file's hash, the hash of the
//             samples the metric reads (their bytes and labels) and the options; a run with the
//             same key reads the stored result instead of computing it again;
//   resume:   while a metric runs it saves its state next to the cache entry (<key>.partial.json)
//             at each probe, batch or layer; a run that was interrupted continues from there;
//   validate: the metric's Omega against delta-loss (the measured loss change): Spearman rank
//             correlation over layers at each candidate bit width and over all (layer, bits)
//             pairs, and, for at least 20 random mixed configurations, how the sum of per-layer
//             predictions tracks the measured loss change (Pearson and Spearman).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "onnx/graph.h"
#include "sensitivity/sensitivity.h"

namespace mpq {

struct SensitivityRunOptions {
  bool use_cache = true;
  std::string cache_dir;  // "" = $MPQ_CACHE_DIR, else $XDG_CACHE_HOME/mpq, else ~/.cache/mpq
  bool validate = false;
  int64_t configs = 24;  // random mixed configurations for validation (at least 20)
  uint64_t config_seed = 1;
};

struct Correlation {
  double pearson = 0, spearman = 0;
  int64_t n = 0;
};

struct Validation {
  std::string metric;
  std::vector<int> bits;
  std::vector<Correlation> per_bits;        // across layers, one per candidate bit width
  Correlation pairs;                        // all (layer, bits) pairs together
  Correlation configs;                      // sum of predictions vs measured, random mixed configs
  std::vector<double> predicted, measured;  // per configuration
  std::vector<double> average_bits;         // per configuration
};

struct SensitivityRun {
  SensitivityResult result;
  bool from_cache = false;
  bool resumed = false;
  std::string cache_key;
  double seconds = 0;
  bool validated = false;
  Validation validation;
  // The model facts mpq search needs (pipeline/search.h model_facts), written into each layer
  // and the top level of sensitivity.json.
  nlohmann::json facts;
};

// model_path names the file `model` came from (its hash keys the cache).
SensitivityRun run_sensitivity_command(const Graph& model, const std::string& model_path,
                                       const Dataset& data, const SensitivityOptions& options,
                                       const SensitivityRunOptions& run);

// Pearson and Spearman (average ranks for ties) of two equally long series.
Correlation correlate(const std::vector<double>& x, const std::vector<double>& y);

nlohmann::json to_json(const Validation& v);
nlohmann::json to_json(const SensitivityRun& run);
std::string format_text(const SensitivityRun& run);

}  // namespace mpq
