#include "quant/plan.h"

#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/version.h"
#include "onnx/layers.h"

namespace mpq {
namespace {

using nlohmann::json;

const char* const kLayerFields[] = {"name",     "weight_bits", "weight_scheme",  "group_size",
                                    "act_bits", "act_scheme",  "act_group_size", "extra_points"};

template <typename T>
T field(const json& j, const char* key, const T& fallback, const std::string& where) {
  if (!j.contains(key)) return fallback;
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    MPQ_FAIL(where, ": field '", key, "': expected a ",
             std::is_same_v<T, std::string> ? "string" : "number", ", found ", j.at(key).dump());
  }
}

}  // namespace

const LayerPlan* Plan::find(const std::string& layer) const {
  for (const auto& l : layers) {
    if (l.name == layer) return &l;
  }
  return nullptr;
}

Plan uniform_plan(const Graph& model, int weight_bits, int act_bits) {
  Plan plan;
  for (const auto& layer : find_quantizable_layers(model)) {
    LayerPlan l;
    l.name = layer.name;
    l.weight = weight_spec(weight_bits);
    l.act = activation_spec(act_bits);
    plan.layers.push_back(l);
  }
  return plan;
}

Plan plan_from_json(const json& j, const std::string& where) {
  MPQ_CHECK(j.is_object(), where, ": expected a JSON object with a 'layers' array");
  MPQ_CHECK(j.contains("layers") && j.at("layers").is_array(), where,
            ": expected a 'layers' array, found none");
  if (j.contains("version")) {
    MPQ_CHECK(j.at("version").is_number_integer() && j.at("version").get<int>() <= kPlanVersion,
              where, ": version: expected an integer <= ", kPlanVersion, ", found ",
              j.at("version").dump());
  }
  Plan plan;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "layers") plan.extra[it.key()] = it.value();
  }
  size_t index = 0;
  for (const json& e : j.at("layers")) {
    std::string at = where + ": layers[" + std::to_string(index++) + "]";
    MPQ_CHECK(e.is_object() && e.contains("name") && e.at("name").is_string(), at,
              ": expected an object with a 'name' string, found ", e.dump());
    LayerPlan l;
    l.name = e.at("name").get<std::string>();
    at = where + ": layer '" + l.name + "'";
    l.weight.bits = field<int>(e, "weight_bits", 8, at);
    l.weight.scheme = field<std::string>(e, "weight_scheme", "sym-channel", at);
    l.weight.group_size = field<int64_t>(e, "group_size", 0, at);
    l.act.bits = field<int>(e, "act_bits", 8, at);
    l.act.scheme = field<std::string>(e, "act_scheme", "affine-tensor", at);
    l.act.group_size = field<int64_t>(e, "act_group_size", 0, at);
    l.extra_points = field<double>(e, "extra_points", 0.0, at);
    check_spec(l.weight, at + ": weight");
    check_spec(l.act, at + ": activation");
    MPQ_CHECK(l.act.info().granularity == Granularity::kTensor || !l.act.quantized(), at,
              ": act_scheme: expected a per-tensor scheme for activations, found '", l.act.scheme,
              "'");
    MPQ_CHECK(l.extra_points >= 0 && l.extra_points <= 7, at,
              ": extra_points: expected a fraction of the channels in [0, 7], found ",
              l.extra_points);
    for (auto f = e.begin(); f != e.end(); ++f) {
      bool known = false;
      for (const char* k : kLayerFields) known = known || f.key() == k;
      if (!known) l.extra[f.key()] = f.value();
    }
    plan.layers.push_back(std::move(l));
  }
  return plan;
}

json to_json(const Plan& plan) {
  json j = plan.extra;
  j["format"] = "mpq-plan";
  j["version"] = kPlanVersion;
  if (!j.contains("mpq_version")) j["mpq_version"] = kVersion;
  json layers = json::array();
  for (const auto& l : plan.layers) {
    json e = {{"name", l.name},
              {"weight_bits", l.weight.bits},
              {"weight_scheme", l.weight.scheme},
              {"act_bits", l.act.bits},
              {"act_scheme", l.act.scheme}};
    if (l.weight.group_size > 0) e["group_size"] = l.weight.group_size;
    if (l.extra_points > 0) e["extra_points"] = l.extra_points;
    for (auto f = l.extra.begin(); f != l.extra.end(); ++f) e[f.key()] = f.value();
    layers.push_back(e);
  }
  j["layers"] = layers;
  return j;
}

Plan load_plan(const std::string& path) {
  std::string text = read_file(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    MPQ_FAIL(path, ": not valid JSON: ", e.what());
  }
  return plan_from_json(j, path);
}

void save_plan(const std::string& path, const Plan& plan) {
  write_file_atomic(path, to_json(plan).dump(2) + "\n");
}

void check_plan(const Plan& plan, const Graph& model, const std::string& where) {
  std::set<std::string> known, seen;
  std::string names;
  for (const auto& l : find_quantizable_layers(model)) {
    known.insert(l.name);
    if (names.size() < 200) names += (names.empty() ? "" : ", ") + l.name;
  }
  for (const auto& l : plan.layers) {
    MPQ_CHECK(known.count(l.name), where, ": layer '", l.name, "': the model (", model.source,
              ") has no quantizable layer of that name; expected one of ", names,
              known.size() > 8 ? ", ..." : "");
    MPQ_CHECK(seen.insert(l.name).second, where, ": layer '", l.name, "' appears twice");
    check_spec(l.weight, where + ": layer '" + l.name + "': weight");
    check_spec(l.act, where + ": layer '" + l.name + "': activation");
  }
}

bool can_saturate(const LayerPlan& layer) {
  return layer.weight.quantized() && layer.weight.bits == 8 && layer.weight.info().is_signed &&
         layer.act.quantized() && layer.act.bits <= 8;
}

Plan apply_int8_format(const Plan& plan, Int8Format format) {
  if (format != Int8Format::kReduceRange) return plan;
  Plan out = plan;
  for (LayerPlan& l : out.layers)
    if (can_saturate(l)) l.weight.bits = 7;
  return out;
}

}  // namespace mpq
