// The target description (methods.md §2, LCPAQ's hardware-aware module): which bit widths the
// hardware supports per op type, which layers are pinned, tied or overridden, and the per-layer or
// per-op latency and energy tables. A JSON file documented in docs/targets.md; examples in
// targets/. Every pattern is a glob over layer names ('*' any run of characters, '?' one).
//
// Precedence, lowest to highest: "default" candidates < per-op candidates < pins < overrides.
// A pinned layer is taken out of the search at a fixed setting (default: its highest candidate,
// or float with "float": true). An override sets fields of matching layers (candidates or fixed
// bits) and always wins over the solver and over everything above.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "search/cost.h"

namespace mpq {

// A per-layer or per-op cost table. Keys of a bit map: "w4a8" (weight and activation bits), or
// "w4" (any activation bits); the more specific key wins.
struct CostTable {
  std::string unit;  // "ms" for latency (others converted on load: "us", "s"), free for energy
  std::map<std::string, std::map<std::string, double>> layers;  // layer name -> bits -> cost
  // op type -> bits -> cost per MAC (a layer not in `layers` costs macs * this).
  std::map<std::string, std::map<std::string, double>> per_mac;
  // Patterns of layers the table's source left out (HAWQ-V3 times no first conv and no fc):
  // they cost 0, so totals match the source; any other layer without an entry is an error.
  std::vector<std::string> uncounted;
  // Cost per byte moved (a memory-bound device): weight_elems * b_w / 8 bytes of weights, and
  // (input_elems + output_elems) * b_a / 8 bytes of activations (the output written at the
  // layer's activation width). Added to the per-MAC cost for layers without their own row.
  double per_weight_byte = 0, per_act_byte = 0;
  bool has_per_byte = false;
  bool empty() const { return layers.empty() && per_mac.empty() && !has_per_byte; }
};

struct LayerRule {
  std::string pattern;
  std::vector<int> weight_bits, act_bits;                // candidates; empty = unchanged
  std::optional<int> fixed_weight_bits, fixed_act_bits;  // fix the choice (32 = float)
  bool keep_float = false;                               // pins: "float": true
};

struct Target {
  std::string name;
  std::string path;  // the file, for messages ("" = built in)
  std::string description;
  // Candidate bits per op type; key "default" applies to ops without their own entry.
  std::map<std::string, std::vector<int>> weight_bits{{"default", {2, 3, 4, 5, 6, 8}}};
  std::map<std::string, std::vector<int>> act_bits{{"default", {8}}};
  std::vector<LayerRule> pins, overrides;
  // Tie groups by pattern: every layer matching any pattern of one inner list takes one choice.
  std::vector<std::vector<std::string>> ties;
  // Automatic ties (found in the graph by the pipeline): layers reading the same tensor; layers
  // whose outputs meet in an Add / Concat (when the hardware needs equal scales there).
  bool tie_same_input = true, tie_add = false, tie_concat = false;
  // Weight scheme assumed by the size cost: per-channel scales (else one per tensor), and
  // whether zero points are stored.
  bool per_channel = true, zero_points = false;
  // The (weight, activation) pairs the hardware has kernels for, as table keys ("w4a4", or "w4"
  // for any activation bits); empty = every pair of candidates. Restricts searched layers only.
  std::vector<std::string> kernels;
  CostTable latency, energy;
  // The integer types the deployment CPU's int8 kernels compute exactly (core/int8_format.h:
  // auto, u8s8, s8s8, u8u8, reduce-range); "" = not said, the exporting machine decides.
  std::string int8_format;
};

// The built-in target: candidates {2,3,4,5,6,8} weights, {8} activations, automatic same-input
// ties, no tables.
Target default_target();

// Throws mpq::Error naming the file, the JSON path (e.g. "pins[2].weight_bits") and what was
// expected for a bad field; unknown top-level fields are errors too (typos must not pass).
Target load_target(const std::string& path);
Target target_from_json(const std::string& json_text, const std::string& where);

bool glob_match(const std::string& pattern, const std::string& name);

// Whether the target's kernels run weight_bits x act_bits (true when it lists no kernels).
bool kernel_supported(const Target& target, int weight_bits, int act_bits);

// Bit widths a target or plan may name: 2..8, 16, 32 (= float).
bool valid_bits(int bits);

// What the target allows for one layer after op defaults, pins and overrides.
struct LayerCandidates {
  std::vector<int> weight_bits, act_bits;  // ascending; a single entry when fixed
  enum class Reason { kSearched, kPinned, kOverride } reason = Reason::kSearched;
  std::string rule;  // the pattern that pinned or overrode it
  // The (weight, activation) pairs to offer: weight_bits x act_bits, filtered by the target's
  // kernels for searched layers (a pin or an override is taken as written); ascending.
  std::vector<std::pair<int, int>> pairs;
};
LayerCandidates layer_candidates(const Target& target, const LayerInfo& layer);

// Cost from a table: the layer's own entry (most specific key), else op per-MAC * macs; throws
// naming target.path, the table ("latency"), the layer and the bits when nothing covers them.
double table_cost(const Target& target, const CostTable& table, const char* table_name,
                  const LayerInfo& layer, int weight_bits, int act_bits);

}  // namespace mpq
