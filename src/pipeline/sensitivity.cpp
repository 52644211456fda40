#include "pipeline/sensitivity.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/version.h"
#include "pipeline/inspect.h"
#include "pipeline/search.h"
#include "sensitivity/delta_loss.h"

namespace mpq {
namespace {

std::string default_cache_dir() {
  if (const char* d = std::getenv("MPQ_CACHE_DIR"); d && *d) return d;
  if (const char* d = std::getenv("XDG_CACHE_HOME"); d && *d) return join_path(d, "mpq");
  if (const char* h = std::getenv("HOME"); h && *h) return join_path(join_path(h, ".cache"), "mpq");
  return ".mpq-cache";
}

// The hash of the samples a metric reads: their values and labels, in order.
std::string data_hash(const Dataset& data, const SensitivityOptions& o) {
  uint64_t h = fnv1a64(data.describe());
  for (const Batch& b : SampleBatches(data, o)) {
    at::Tensor x = b.x.contiguous();
    h = fnv1a64(x.data_ptr(), size_t(x.nbytes()), h);
    if (b.y.defined()) {
      at::Tensor y = b.y.to(at::kLong).contiguous();
      h = fnv1a64(y.data_ptr(), size_t(y.nbytes()), h);
    }
  }
  return hash_hex(h);
}

std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]]) ++j;
    double rank = 0.5 * double(i + j) + 1;  // average rank of the tie
    for (size_t k = i; k <= j; ++k) r[idx[k]] = rank;
    i = j + 1;
  }
  return r;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  size_t n = x.size();
  if (n < 2) return NAN;
  double mx = std::accumulate(x.begin(), x.end(), 0.0) / double(n);
  double my = std::accumulate(y.begin(), y.end(), 0.0) / double(n);
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  if (sxx == 0 || syy == 0) return NAN;
  return sxy / std::sqrt(sxx * syy);
}

SensitivityResult compute(const Graph& model, const std::string& model_hash, const Dataset& data,
                          const SensitivityOptions& o, const SensitivityRunOptions& run,
                          SensitivityRun* out) {
  SensitivityContext context = make_context(model, &data, o);
  int64_t samples = std::min<int64_t>(o.samples, data.size());
  std::string dhash = data_hash(data, o);
  // The context's options: "auto" resolved, so the output kind is part of the key.
  nlohmann::json key_json = {{"model", model_hash},
                             {"data", dhash},
                             {"options", options_json(context.options, samples)},
                             {"format", 1}};
  out->cache_key = hash_hex(fnv1a64(key_json.dump()));
  std::string dir = run.cache_dir.empty() ? default_cache_dir() : run.cache_dir;
  std::string final_path = join_path(dir, "sensitivity-" + out->cache_key + ".json");
  std::string partial_path = join_path(dir, "sensitivity-" + out->cache_key + ".partial.json");
  if (run.use_cache && file_exists(final_path)) {
    try {
      SensitivityResult cached = load_sensitivity(final_path);
      out->from_cache = true;
      return cached;
    } catch (const Error& e) {
      log_info("warning: ", "ignoring the unreadable cache entry ", final_path, ": ", e.what());
    }
  }
  if (run.use_cache) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    MPQ_CHECK(!ec, "cache folder ", dir, ": cannot create it (", ec.message(),
              "); set --cache-dir or use --no-cache");
    if (file_exists(partial_path)) {
      try {
        context.resume.state = nlohmann::json::parse(read_file(partial_path));
        out->resumed = true;
        log_info("resuming ", o.metric, " from ", partial_path);
      } catch (const std::exception& e) {
        log_info("warning: ", "ignoring the unreadable partial state ", partial_path, ": ",
                 e.what());
      }
    }
    context.resume.save = [partial_path](const nlohmann::json& state) {
      write_file_atomic(partial_path, state.dump());
    };
  }
  auto start = std::chrono::steady_clock::now();
  SensitivityResult r = run_sensitivity(context);
  out->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.info["mpq_version"] = kVersion;
  r.info["model_hash"] = model_hash;
  r.info["data"] = data.describe();
  r.info["data_hash"] = dhash;
  r.info["seconds"] = out->seconds;
  if (run.use_cache) {
    write_file_atomic(final_path, to_json(r).dump(1) + "\n");
    std::remove(partial_path.c_str());
  }
  return r;
}

const BitSensitivity& at_bits(const std::vector<BitSensitivity>& v, int bits,
                              const std::string& w) {
  for (const auto& b : v) {
    if (b.bits == bits) return b;
  }
  MPQ_FAIL(w, ": no entry for ", bits, " bits");
}

Validation validate(const Graph& model, const std::string& model_hash, const Dataset& data,
                    const SensitivityOptions& o, const SensitivityRunOptions& run,
                    const SensitivityResult& metric) {
  MPQ_CHECK(run.configs >= 20, "--configs: validation needs at least 20 configurations, found ",
            run.configs);
  SensitivityOptions truth_options = o;
  truth_options.metric = "delta-loss";
  truth_options.act_bits.clear();
  if (o.metric == "orthogonality") truth_options.samples = std::max<int64_t>(o.samples, 512);
  SensitivityRun truth_run;
  SensitivityResult truth = o.metric == "delta-loss" && o.act_bits.empty()
                                ? metric
                                : compute(model, model_hash, data, truth_options, run, &truth_run);
  Validation v;
  v.metric = o.metric;
  v.bits = o.bits;
  std::vector<double> all_x, all_y;
  for (int b : o.bits) {
    std::vector<double> x, y;
    for (size_t l = 0; l < metric.layers.size(); ++l) {
      x.push_back(at_bits(metric.layers[l].weight, b, metric.layers[l].name).omega);
      y.push_back(at_bits(truth.layers[l].weight, b, truth.layers[l].name).omega);
    }
    v.per_bits.push_back(correlate(x, y));
    all_x.insert(all_x.end(), x.begin(), x.end());
    all_y.insert(all_y.end(), y.begin(), y.end());
  }
  v.pairs = correlate(all_x, all_y);

  SensitivityContext context = make_context(model, &data, truth_options);
  ConfigMeasurer measurer(context);
  std::mt19937_64 rng(run.config_seed);
  Progress progress("validate", o.progress ? run.configs : 0);
  if (!o.progress) progress.finish();
  for (int64_t c = 0; c < run.configs; ++c) {
    std::map<std::string, int> bits;
    double predicted = 0, weighted_bits = 0, params = 0;
    for (size_t l = 0; l < metric.layers.size(); ++l) {
      int b = o.bits[size_t(rng() % o.bits.size())];
      bits[metric.layers[l].name] = b;
      predicted += at_bits(metric.layers[l].weight, b, metric.layers[l].name).omega;
      weighted_bits += double(b) * double(metric.layers[l].params);
      params += double(metric.layers[l].params);
    }
    ConfigMeasure m = measurer.measure(bits);
    v.predicted.push_back(predicted);
    v.measured.push_back(m.delta_loss);
    v.average_bits.push_back(weighted_bits / params);
    if (o.progress) progress.advance();
  }
  progress.finish();
  v.configs = correlate(v.predicted, v.measured);
  return v;
}

}  // namespace

Correlation correlate(const std::vector<double>& x, const std::vector<double>& y) {
  MPQ_ASSERT(x.size() == y.size(), "correlate: sizes differ");
  return {pearson(x, y), pearson(ranks(x), ranks(y)), int64_t(x.size())};
}

SensitivityRun run_sensitivity_command(const Graph& model, const std::string& model_path,
                                       const Dataset& data, const SensitivityOptions& options,
                                       const SensitivityRunOptions& run) {
  SensitivityRun out;
  std::string model_hash = hash_file(model_path);
  out.result = compute(model, model_hash, data, options, run, &out);
  out.result.info["model"] = model_path;
  // MACs at the data's size: a model with a symbolic height and width has none of its own.
  out.facts = model_facts(with_sample_shape(model, data.sample_shape()));
  if (run.validate) {
    out.validation = validate(model, model_hash, data, options, run, out.result);
    out.validated = true;
  }
  return out;
}

namespace {

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

nlohmann::json corr_json(const Correlation& c) {
  return {{"pearson", number(c.pearson)}, {"spearman", number(c.spearman)}, {"n", c.n}};
}

std::string corr_cell(double v) {
  if (!std::isfinite(v)) return "n/a";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

}  // namespace

nlohmann::json to_json(const Validation& v) {
  nlohmann::json per_bits = nlohmann::json::array();
  for (size_t i = 0; i < v.bits.size(); ++i) {
    nlohmann::json j = corr_json(v.per_bits[i]);
    j["bits"] = v.bits[i];
    per_bits.push_back(j);
  }
  nlohmann::json configs = nlohmann::json::array();
  for (size_t i = 0; i < v.predicted.size(); ++i) {
    configs.push_back({{"predicted", v.predicted[i]},
                       {"measured", v.measured[i]},
                       {"average_bits", v.average_bits[i]}});
  }
  return {{"metric", v.metric},
          {"truth", "delta-loss"},
          {"per_bits", per_bits},
          {"pairs", corr_json(v.pairs)},
          {"configs", corr_json(v.configs)},
          {"configurations", configs}};
}

nlohmann::json to_json(const SensitivityRun& run) {
  nlohmann::json j = to_json(run.result);
  j["info"]["cache_key"] = run.cache_key;
  j["info"]["from_cache"] = run.from_cache;
  if (run.facts.is_object()) {
    std::map<std::string, const nlohmann::json*> by_name;
    for (const auto& l : run.facts.at("layers")) by_name[l.at("name").get<std::string>()] = &l;
    for (auto& l : j["layers"]) {
      auto it = by_name.find(l.at("name").get<std::string>());
      if (it == by_name.end()) continue;
      for (const auto& [key, value] : it->second->items()) {
        if (key != "name" && key != "op") l[key] = value;
      }
    }
    j["ties"] = run.facts.at("ties");
    j["total_params"] = run.facts.at("total_params");
    j["float_params"] = run.facts.at("float_params");
  }
  if (run.validated) j["validation"] = to_json(run.validation);
  return j;
}

std::string format_text(const SensitivityRun& run) {
  const SensitivityResult& r = run.result;
  std::ostringstream s;
  s << "metric " << r.metric << (run.from_cache ? " (from cache)" : "")
    << (run.resumed ? " (resumed)" : "") << ", " << r.layers.size() << " layers";
  if (!run.from_cache) {
    char buf[32];
    std::snprintf(buf, sizeof buf, ", %.1f s", run.seconds);
    s << buf;
  }
  s << "\n";
  s << "layer";
  std::vector<int> bits;
  if (!r.layers.empty()) {
    for (const auto& b : r.layers[0].weight) bits.push_back(b.bits);
  }
  for (int b : bits) s << " | W" << b;
  s << "\n";
  for (const auto& l : r.layers) {
    s << l.name;
    for (const auto& b : l.weight) {
      char buf[48];
      if (b.std_error > 0) {
        std::snprintf(buf, sizeof buf, " | %.3g ±%.2g", b.omega, b.std_error);
      } else {
        std::snprintf(buf, sizeof buf, " | %.3g", b.omega);
      }
      s << buf;
    }
    s << "\n";
  }
  if (run.validated) {
    const Validation& v = run.validation;
    s << "\nvalidation against delta-loss (Spearman / Pearson)\n";
    for (size_t i = 0; i < v.bits.size(); ++i) {
      s << "  layers at W" << v.bits[i] << ": " << corr_cell(v.per_bits[i].spearman) << " / "
        << corr_cell(v.per_bits[i].pearson) << "\n";
    }
    s << "  all (layer, bits) pairs: " << corr_cell(v.pairs.spearman) << " / "
      << corr_cell(v.pairs.pearson) << "\n";
    s << "  " << v.configs.n << " random mixed configurations, sum of predictions vs measured: "
      << corr_cell(v.configs.spearman) << " / " << corr_cell(v.configs.pearson) << "\n";
  }
  return s.str();
}

}  // namespace mpq
