// The cost model (design.md "Budgets", methods.md §1, §2): what one layer costs at weight bits
// b_w and activation bits b_a, for every budget kind. One row per kind in cost_kind_table().
//
//   size         real bytes of the layer in the exported model: ceil(weights * b_w / 8) packed,
//                plus its scales (4 bytes each: one per output channel for per-channel schemes,
//                one for per-tensor), zero points (1 byte each, affine schemes only), the bias at
//                4 bytes per element; a float layer (b_w = 32) is 4 bytes per weight and bias.
//   weight-size  the papers' convention: weights * b_w / 8 bytes, nothing else (HAWQ, MPQCO, OMPQ
//                quote it in MB = 2^20 bytes).
//   bops         BitOps per sample: MACs * b_w * b_a (methods.md shared notation).
//   latency      from the target's latency table (per layer, or per op type per MAC), in ms.
//   energy       from the target's energy table, in the table's unit.
//   memory       peak activation memory: the largest activation a layer reads, input elements *
//                b_a / 8 bytes per sample. Aggregated by max, not sum: a memory budget removes
//                the items above it instead of adding a knapsack row.
//   avg-bits     parameter-weighted average weight bits: cost weights * b_w, limit = value *
//                total weights, so it is a sum like the others.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mpq {

struct Target;

// What the cost model needs to know about a layer (from `mpq inspect` / sensitivity.json).
struct LayerInfo {
  std::string name, op;      // node name; Conv, ConvTranspose, Gemm, MatMul
  int64_t weight_elems = 0;  // weight tensor elements
  int64_t bias_elems = 0;
  int64_t out_channels = 0;  // scales of a per-channel scheme
  int64_t macs = 0;          // multiply-accumulates per sample
  int64_t input_elems = 0;   // elements of the activation the layer reads, per sample
  int64_t output_elems = 0;
};

enum class CostKind { kSize, kWeightSize, kBops, kLatency, kEnergy, kMemory, kAvgBits };

struct CostKindInfo {
  CostKind kind;
  const char* name;  // as written in --budget: "size", "weight-size", "bops", ...
  const char* unit;  // base unit of the values: "B", "B", "BitOps", "ms", "", "B", "bit*weights"
  bool max_aggregate;  // memory: max over layers; all others: sum
  const char* summary;
};

const std::vector<CostKindInfo>& cost_kind_table();
const CostKindInfo& cost_kind_info(CostKind kind);
// Throws mpq::Error naming the text and listing the kinds.
CostKind parse_cost_kind(const std::string& name);

// The layer's cost at (weight_bits, act_bits); bits 32 = float. latency/energy read `target`'s
// tables and throw mpq::Error naming the target file, the layer and the bits when no entry
// covers them. Example: layer_cost(CostKind::kBops, info, 4, 8, target) == info.macs * 32.
double layer_cost(CostKind kind, const LayerInfo& layer, int weight_bits, int act_bits,
                  const Target& target);

}  // namespace mpq
