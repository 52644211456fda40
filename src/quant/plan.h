// The plan: one quantization choice per layer (weight bits and scheme, activation bits and
// scheme, multipoint extra points). `mpq search` writes it, `mpq quantize --plan` and `mpq run`
// read it, and users edit it by hand; the format is documented in docs/plan.md. Fields a plan
// carries beyond these (the search's sensitivity, cost and reason per layer, totals, provenance)
// survive a load and save unchanged.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/int8_format.h"
#include "onnx/graph.h"
#include "quant/scheme.h"

namespace mpq {

struct LayerPlan {
  std::string name;  // the layer's node name (find_quantizable_layers)
  QuantSpec weight = weight_spec(8);
  QuantSpec act = activation_spec(8);  // the layer's input; bits 32 = left in float
  double extra_points = 0;  // multipoint: extra points as a fraction of the layer's channels
  nlohmann::json extra = nlohmann::json::object();  // other fields, kept as they are
};

struct Plan {
  std::vector<LayerPlan> layers;
  nlohmann::json extra = nlohmann::json::object();  // top-level fields other than "layers"
  const LayerPlan* find(const std::string& layer) const;
};

inline constexpr int kPlanVersion = 1;

// Every quantizable layer of `model` at the same bits with the default schemes.
// Example: Plan p = uniform_plan(g, 4, 8);
Plan uniform_plan(const Graph& model, int weight_bits, int act_bits);

// Parse errors name `where` (the file), the layer and the field.
Plan plan_from_json(const nlohmann::json& j, const std::string& where);
nlohmann::json to_json(const Plan& plan);
Plan load_plan(const std::string& path);
void save_plan(const std::string& path, const Plan& plan);  // atomic

// Checks the plan against the model: every layer it names exists and is quantizable, bits and
// schemes are valid, no layer appears twice. Layers the plan leaves out stay in float.
void check_plan(const Plan& plan, const Graph& model, const std::string& where);

// True when a layer can overflow 16-bit pairs in u8 x s8 kernels without VNNI (core/int8_format.h):
// signed 8-bit weights times activations quantized to at most 8 bits.
bool can_saturate(const LayerPlan& layer);
// reduce-range: those layers' weights at 7 bits; other formats: the plan unchanged.
Plan apply_int8_format(const Plan& plan, Int8Format format);

}  // namespace mpq
