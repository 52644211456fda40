// Reading target files (docs/targets.md) and answering what a target allows for one layer. The
// reader is strict on purpose: a target decides which bit widths the search may pick and what they
// cost, so a misspelt field or a bit width the quantizers cannot produce must stop the run with a
// one-line message naming the file and the JSON path ("pins[2].weight_bits"), never be skipped.
#include "search/target.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/cpu.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/int8_format.h"

namespace mpq {
namespace {

using nlohmann::json;

// The ops onnx/layers.h calls quantizable: a key outside this list would never match a layer, so
// it is a typo, not a harmless extra.
const char* const kOpTypes[] = {"Conv", "ConvTranspose", "Gemm", "MatMul"};
const char* const kBitsExpected = "an integer bit width (2-8, 16 or 32)";

// A JSON value as it appears in the file, cut short so the message stays one readable line.
std::string shown(const json& v) {
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    out += i == 0 ? "" : (i + 1 == names.size() ? " or " : ", ");
    out += names[i];
  }
  return out;
}

// The file (or other source) being read plus helpers that fail with "FILE: PATH: expected X,
// found Y".
struct Reader {
  std::string where;

  [[noreturn]] void fail(const std::string& path, const std::string& expected,
                         const json& found) const {
    MPQ_FAIL(where, ": ", path, path.empty() ? "" : ": ", "expected ", expected, ", found ",
             shown(found));
  }

  [[noreturn]] void missing(const std::string& path, const std::string& expected) const {
    MPQ_FAIL(where, ": ", path, ": expected ", expected, ", found none");
  }

  void object(const json& v, const std::string& path,
              const std::vector<std::string>& fields) const {
    if (!v.is_object()) fail(path, "an object with fields " + join(fields), v);
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (std::find(fields.begin(), fields.end(), it.key()) == fields.end()) {
        MPQ_FAIL(where, ": ", path.empty() ? "" : path + ": ", "unknown field '", it.key(),
                 "' (expected ", join(fields), ")");
      }
    }
  }

  bool boolean(const json& v, const std::string& path) const {
    if (!v.is_boolean()) fail(path, "true or false", v);
    return v.get<bool>();
  }

  std::string string(const json& v, const std::string& path) const {
    if (!v.is_string()) fail(path, "a string", v);
    return v.get<std::string>();
  }

  std::string pattern(const json& v, const std::string& path) const {
    std::string p = string(v, path);
    if (p.empty()) fail(path, "a layer name pattern (glob with * and ?)", v);
    return p;
  }

  int bits(const json& v, const std::string& path) const {
    // 8.0 is accepted: some JSON writers print every number as a float.
    if (!v.is_number() || (v.is_number_float() && std::floor(v.get<double>()) != v.get<double>())) {
      fail(path, kBitsExpected, v);
    }
    double d = v.get<double>();
    if (d < 0 || d > 64 || !valid_bits(static_cast<int>(d))) fail(path, kBitsExpected, v);
    return static_cast<int>(d);
  }

  std::vector<int> bits_list(const json& v, const std::string& path) const {
    if (!v.is_array() || v.empty()) fail(path, "a non-empty list of bit widths (2-8, 16, 32)", v);
    std::vector<int> out;
    for (size_t i = 0; i < v.size(); ++i) {
      out.push_back(bits(v[i], path + "[" + std::to_string(i) + "]"));
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  std::vector<std::string> pattern_list(const json& v, const std::string& path) const {
    if (!v.is_array() || v.empty()) fail(path, "a non-empty list of layer name patterns", v);
    std::vector<std::string> out;
    for (size_t i = 0; i < v.size(); ++i) {
      out.push_back(pattern(v[i], path + "[" + std::to_string(i) + "]"));
    }
    return out;
  }

  void op_key(const std::string& key, const std::string& path) const {
    std::vector<std::string> ops(std::begin(kOpTypes), std::end(kOpTypes));
    ops.push_back("default");
    if (std::find(ops.begin(), ops.end(), key) == ops.end()) {
      MPQ_FAIL(where, ": ", path, ": unknown op type '", key, "' (expected ", join(ops), ")");
    }
  }
};

std::string bits_key(int weight_bits) { return "w" + std::to_string(weight_bits); }
std::string bits_key(int weight_bits, int act_bits) {
  return bits_key(weight_bits) + "a" + std::to_string(act_bits);
}

// "w4a8" or "w4" -> true when well formed with valid bits; the canonical spelling is required so
// that lookups, which build the key from numbers, find it.
bool parse_bits_key(const std::string& key, int* weight_bits, int* act_bits) {
  auto number = [](const std::string& s, int* out) {
    bool digits = !s.empty() && s.size() <= 2 &&
                  std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) return false;
    *out = std::stoi(s);
    return valid_bits(*out) && std::to_string(*out) == s;
  };
  *act_bits = 0;
  if (key.size() < 2 || key[0] != 'w') return false;
  size_t a = key.find('a');
  if (a == std::string::npos) return number(key.substr(1), weight_bits);
  return number(key.substr(1, a - 1), weight_bits) && number(key.substr(a + 1), act_bits);
}

void read_bits_map(const Reader& r, const json& v, const std::string& path,
                   std::map<std::string, std::vector<int>>* out) {
  if (!v.is_object() || v.empty()) {
    r.fail(path, "an object mapping op types or \"default\" to lists of bit widths", v);
  }
  for (auto it = v.begin(); it != v.end(); ++it) {
    r.op_key(it.key(), path);
    (*out)[it.key()] = r.bits_list(it.value(), path + "." + it.key());
  }
}

std::map<std::string, double> read_cost_row(const Reader& r, const json& v, const std::string& path,
                                            double scale) {
  if (!v.is_object() || v.empty()) {
    r.fail(path, "an object mapping bit keys (\"w4a8\", \"w4\") to costs", v);
  }
  std::map<std::string, double> row;
  for (auto it = v.begin(); it != v.end(); ++it) {
    int w = 0, a = 0;
    if (!parse_bits_key(it.key(), &w, &a)) {
      MPQ_FAIL(r.where, ": ", path, ": bad key '", it.key(),
               "' (expected wBaB or wB with bits 2-8, 16 or 32, e.g. \"w4a8\" or \"w4\")");
    }
    const json& c = it.value();
    if (!c.is_number() || !std::isfinite(c.get<double>()) || c.get<double>() < 0) {
      r.fail(path + "." + it.key(), "a non-negative number", c);
    }
    row[it.key()] = c.get<double>() * scale;
  }
  return row;
}

CostTable read_table(const Reader& r, const json& v, const std::string& path, bool latency) {
  r.object(v, path, {"unit", "layers", "per_mac", "per_byte", "uncounted"});
  CostTable t;
  double scale = 1;
  if (latency) {
    std::string unit = v.contains("unit") ? r.string(v["unit"], path + ".unit") : "ms";
    if (unit == "s") {
      scale = 1e3;
    } else if (unit == "us") {
      scale = 1e-3;
    } else if (unit != "ms") {
      r.fail(path + ".unit", "\"ms\", \"us\" or \"s\"", v["unit"]);
    }
    t.unit = "ms";  // converted below, so every latency sum is in one unit
  } else if (v.contains("unit")) {
    t.unit = r.string(v["unit"], path + ".unit");
  }
  if (v.contains("layers")) {
    const json& layers = v["layers"];
    if (!layers.is_object()) {
      r.fail(path + ".layers", "an object mapping layer names to costs", layers);
    }
    for (auto it = layers.begin(); it != layers.end(); ++it) {
      t.layers[it.key()] = read_cost_row(r, it.value(), path + ".layers." + it.key(), scale);
    }
  }
  if (v.contains("per_mac")) {
    const json& ops = v["per_mac"];
    if (!ops.is_object()) {
      r.fail(path + ".per_mac", "an object mapping op types to costs per MAC", ops);
    }
    for (auto it = ops.begin(); it != ops.end(); ++it) {
      r.op_key(it.key(), path + ".per_mac");
      t.per_mac[it.key()] = read_cost_row(r, it.value(), path + ".per_mac." + it.key(), scale);
    }
  }
  if (v.contains("per_byte")) {
    const json& b = v["per_byte"];
    r.object(b, path + ".per_byte", {"weights", "activations"});
    auto coefficient = [&](const char* key) {
      if (!b.contains(key)) return 0.0;
      const json& c = b[key];
      if (!c.is_number() || !std::isfinite(c.get<double>()) || c.get<double>() < 0) {
        r.fail(path + ".per_byte." + key, "a non-negative number (cost per byte)", c);
      }
      return c.get<double>() * scale;
    };
    t.per_weight_byte = coefficient("weights");
    t.per_act_byte = coefficient("activations");
    t.has_per_byte = true;
  }
  if (v.contains("uncounted")) {
    t.uncounted = r.pattern_list(v["uncounted"], path + ".uncounted");
    for (const auto& [name, row] : t.layers) {
      for (const auto& p : t.uncounted) {
        MPQ_CHECK(!glob_match(p, name), r.where, ": ", path, ".layers.", name,
                  ": the layer has costs but also matches uncounted pattern '", p,
                  "' (expected one or the other)");
      }
    }
  }
  return t;
}

LayerRule read_pin(const Reader& r, const json& v, const std::string& path) {
  r.object(v, path, {"layers", "weight_bits", "act_bits", "float"});
  if (!v.contains("layers")) r.missing(path + ".layers", "a layer name pattern");
  LayerRule rule;
  rule.pattern = r.pattern(v["layers"], path + ".layers");
  if (v.contains("float")) rule.keep_float = r.boolean(v["float"], path + ".float");
  if (rule.keep_float && (v.contains("weight_bits") || v.contains("act_bits"))) {
    MPQ_FAIL(r.where, ": ", path, ": \"float\": true keeps the layer at 32 bits",
             "; expected no weight_bits or act_bits beside it");
  }
  if (v.contains("weight_bits")) {
    rule.fixed_weight_bits = r.bits(v["weight_bits"], path + ".weight_bits");
  }
  if (v.contains("act_bits")) rule.fixed_act_bits = r.bits(v["act_bits"], path + ".act_bits");
  return rule;
}

LayerRule read_override(const Reader& r, const json& v, const std::string& path) {
  r.object(v, path, {"layers", "weight_bits", "act_bits"});
  if (!v.contains("layers")) r.missing(path + ".layers", "a layer name pattern");
  LayerRule rule;
  rule.pattern = r.pattern(v["layers"], path + ".layers");
  MPQ_CHECK(v.contains("weight_bits") || v.contains("act_bits"), r.where, ": ", path,
            ": expected weight_bits or act_bits (or both), found neither");
  // One number fixes the choice, a list replaces the candidates.
  auto read = [&](const char* key, std::vector<int>* list, std::optional<int>* fixed) {
    if (!v.contains(key)) return;
    std::string at = path + "." + key;
    if (v[key].is_array()) {
      *list = r.bits_list(v[key], at);
    } else if (v[key].is_number()) {
      *fixed = r.bits(v[key], at);
    } else {
      r.fail(at, std::string(kBitsExpected) + " or a list of them", v[key]);
    }
  };
  read("weight_bits", &rule.weight_bits, &rule.fixed_weight_bits);
  read("act_bits", &rule.act_bits, &rule.fixed_act_bits);
  return rule;
}

const std::vector<int>& op_candidates(const Target& t,
                                      const std::map<std::string, std::vector<int>>& bits,
                                      const LayerInfo& layer, const char* field) {
  auto it = bits.find(layer.op);
  if (it == bits.end()) it = bits.find("default");
  MPQ_CHECK(it != bits.end() && !it->second.empty(),
            t.path.empty() ? "target '" + t.name + "'" : t.path, ": ", field,
            ": no candidates for layer '", layer.name, "' (op ", layer.op,
            "): expected an entry for ", layer.op, " or \"default\"");
  return it->second;
}

std::string target_where(const Target& t) {
  return t.path.empty() ? "target '" + t.name + "'" : t.path;
}

}  // namespace

bool valid_bits(int bits) { return (bits >= 2 && bits <= 8) || bits == 16 || bits == 32; }

Target default_target() {
  Target t;
  t.name = "default";
  t.description =
      "Built-in target: weights at 2, 3, 4, 5, 6 or 8 bits, activations at 8 bits, layers that "
      "read the same tensor tied; no latency or energy tables.";
  return t;
}

Target target_from_json(const std::string& json_text, const std::string& where) {
  Reader r{where};
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::parse_error& e) {
    MPQ_FAIL(where, ": not valid JSON (", e.what(), ")");
  }
  r.object(j, "",
           {"format", "version", "name", "description", "weight_bits", "act_bits", "pins",
            "overrides", "ties", "auto_ties", "weight_scheme", "kernels", "latency", "energy",
            "profile", "int8_format"});
  Target t = default_target();
  t.path = where;
  t.name = std::filesystem::path(where).stem().string();
  t.description.clear();
  if (j.contains("format") && r.string(j["format"], "format") != "mpq-target") {
    r.fail("format", "\"mpq-target\"", j["format"]);
  }
  if (j.contains("version") && !(j["version"].is_number_integer() && j["version"] == 1)) {
    r.fail("version", "1", j["version"]);
  }
  if (j.contains("name")) t.name = r.string(j["name"], "name");
  if (j.contains("description")) t.description = r.string(j["description"], "description");
  // Merged over the built-in map, so a file that only names Gemm keeps the default for the rest.
  if (j.contains("weight_bits")) read_bits_map(r, j["weight_bits"], "weight_bits", &t.weight_bits);
  if (j.contains("act_bits")) read_bits_map(r, j["act_bits"], "act_bits", &t.act_bits);
  auto rules = [&](const char* key,
                   LayerRule (*read)(const Reader&, const json&, const std::string&),
                   std::vector<LayerRule>* out) {
    if (!j.contains(key)) return;
    if (!j[key].is_array()) r.fail(key, "a list of objects", j[key]);
    for (size_t i = 0; i < j[key].size(); ++i) {
      out->push_back(read(r, j[key][i], std::string(key) + "[" + std::to_string(i) + "]"));
    }
  };
  rules("pins", read_pin, &t.pins);
  rules("overrides", read_override, &t.overrides);
  if (j.contains("ties")) {
    if (!j["ties"].is_array()) r.fail("ties", "a list of lists of layer name patterns", j["ties"]);
    for (size_t i = 0; i < j["ties"].size(); ++i) {
      t.ties.push_back(r.pattern_list(j["ties"][i], "ties[" + std::to_string(i) + "]"));
    }
  }
  if (j.contains("auto_ties")) {
    const json& a = j["auto_ties"];
    r.object(a, "auto_ties", {"same_input", "add", "concat"});
    if (a.contains("same_input")) {
      t.tie_same_input = r.boolean(a["same_input"], "auto_ties.same_input");
    }
    if (a.contains("add")) t.tie_add = r.boolean(a["add"], "auto_ties.add");
    if (a.contains("concat")) t.tie_concat = r.boolean(a["concat"], "auto_ties.concat");
  }
  if (j.contains("weight_scheme")) {
    const json& s = j["weight_scheme"];
    r.object(s, "weight_scheme", {"per_channel", "zero_points"});
    if (s.contains("per_channel")) {
      t.per_channel = r.boolean(s["per_channel"], "weight_scheme.per_channel");
    }
    if (s.contains("zero_points")) {
      t.zero_points = r.boolean(s["zero_points"], "weight_scheme.zero_points");
    }
  }
  if (j.contains("kernels")) {
    const json& k = j["kernels"];
    if (!k.is_array() || k.empty()) {
      r.fail("kernels", "a non-empty list of bit keys (\"w4a4\", \"w8\")", k);
    }
    for (size_t i = 0; i < k.size(); ++i) {
      std::string at = "kernels[" + std::to_string(i) + "]";
      int w = 0, a = 0;
      std::string key = r.string(k[i], at);
      if (!parse_bits_key(key, &w, &a)) r.fail(at, "wBaB or wB with bits 2-8, 16 or 32", k[i]);
      t.kernels.push_back(key);
    }
  }
  if (j.contains("int8_format")) {
    t.int8_format = r.string(j["int8_format"], "int8_format");
    resolve_int8_format(t.int8_format, host_cpu(), where);  // the name, checked now
  }
  if (j.contains("latency")) t.latency = read_table(r, j["latency"], "latency", /*latency=*/true);
  if (j.contains("energy")) t.energy = read_table(r, j["energy"], "energy", /*latency=*/false);
  return t;
}

Target load_target(const std::string& path) { return target_from_json(read_file(path), path); }

bool glob_match(const std::string& pattern, const std::string& name) {
  // Linear backtracking over the last '*': enough for globs, no exponential blow-up on "*a*a*a".
  size_t p = 0, n = 0, star = std::string::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p;
      ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (star != std::string::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool kernel_supported(const Target& target, int weight_bits, int act_bits) {
  if (target.kernels.empty()) return true;
  for (const auto& k : target.kernels) {
    if (k == bits_key(weight_bits, act_bits) || k == bits_key(weight_bits)) return true;
  }
  return false;
}

LayerCandidates layer_candidates(const Target& target, const LayerInfo& layer) {
  LayerCandidates c;
  c.weight_bits = op_candidates(target, target.weight_bits, layer, "weight_bits");
  c.act_bits = op_candidates(target, target.act_bits, layer, "act_bits");
  // The last matching pin wins, as in a file read top to bottom.
  const LayerRule* pin = nullptr;
  for (const auto& p : target.pins) {
    if (glob_match(p.pattern, layer.name)) pin = &p;
  }
  if (pin) {
    c.weight_bits = {pin->keep_float ? 32 : pin->fixed_weight_bits.value_or(c.weight_bits.back())};
    c.act_bits = {pin->keep_float ? 32 : pin->fixed_act_bits.value_or(c.act_bits.back())};
    c.reason = LayerCandidates::Reason::kPinned;
    c.rule = pin->pattern;
  }
  for (const auto& o : target.overrides) {
    if (!glob_match(o.pattern, layer.name)) continue;
    if (o.fixed_weight_bits) c.weight_bits = {*o.fixed_weight_bits};
    if (!o.weight_bits.empty()) c.weight_bits = o.weight_bits;
    if (o.fixed_act_bits) c.act_bits = {*o.fixed_act_bits};
    if (!o.act_bits.empty()) c.act_bits = o.act_bits;
    c.reason = LayerCandidates::Reason::kOverride;
    c.rule = o.pattern;
  }
  for (int w : c.weight_bits) {
    for (int a : c.act_bits) {
      if (c.reason != LayerCandidates::Reason::kSearched || kernel_supported(target, w, a)) {
        c.pairs.emplace_back(w, a);
      }
    }
  }
  MPQ_CHECK(!c.pairs.empty(), target_where(target), ": layer '", layer.name,
            "': no candidate pair of weight bits and activation bits is in kernels (expected one "
            "of ",
            join(target.kernels), ")");
  return c;
}

double table_cost(const Target& target, const CostTable& table, const char* table_name,
                  const LayerInfo& layer, int weight_bits, int act_bits) {
  const std::string full = bits_key(weight_bits, act_bits), any = bits_key(weight_bits);
  auto lookup = [&](const std::map<std::string, double>& row) -> const double* {
    auto it = row.find(full);
    if (it == row.end()) it = row.find(any);
    return it == row.end() ? nullptr : &it->second;
  };
  MPQ_CHECK(!table.empty(), target_where(target), ": the target has no ", table_name,
            " table (expected \"", table_name,
            "\" with \"layers\" or \"per_mac\", docs/targets.md)");
  auto own = table.layers.find(layer.name);
  if (own != table.layers.end()) {
    // A layer's own row is authoritative: falling back to per-MAC numbers for the missing bits
    // would mix measured and modelled costs in one layer's items.
    if (const double* v = lookup(own->second)) return *v;
    std::vector<std::string> keys;
    for (const auto& [key, value] : own->second) keys.push_back(key);
    MPQ_FAIL(target_where(target), ": ", table_name, ".layers.", layer.name, ": no entry for ",
             full, " (expected key '", full, "' or '", any, "', found ", join(keys), ")");
  }
  for (const auto& p : table.uncounted) {
    if (glob_match(p, layer.name)) return 0;
  }
  // Modelled: per MAC (the op's row, else "default") plus per byte moved.
  bool modelled = false;
  double cost = 0;
  for (const std::string& op : {layer.op, std::string("default")}) {
    auto it = table.per_mac.find(op);
    if (it == table.per_mac.end()) continue;
    if (const double* v = lookup(it->second)) {
      cost += *v * static_cast<double>(layer.macs);
      modelled = true;
      break;
    }
  }
  if (table.has_per_byte) {
    cost += table.per_weight_byte * double(layer.weight_elems) * weight_bits / 8.0 +
            table.per_act_byte * double(layer.input_elems + layer.output_elems) * act_bits / 8.0;
    modelled = true;
  }
  if (modelled) return cost;
  MPQ_FAIL(target_where(target), ": ", table_name, " table has no entry for layer '", layer.name,
           "' (op ", layer.op, ") at ", full, " (expected ", table_name, ".layers.", layer.name,
           ".", full, " or .", any, ", or ", table_name, ".per_mac.", layer.op, ".", full, " or .",
           any, ")");
}

}  // namespace mpq
