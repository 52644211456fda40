// The cost of one layer at one bit-width pair, for every budget kind (the formulas are in
// cost.h). Every kind is one row of kKinds, so --budget parsing, --help and the tests walk the
// same list; a kind added to CostKind without a row fails the static_assert below.
#include "search/cost.h"

#include <cmath>

#include "core/error.h"
#include "search/target.h"

namespace mpq {
namespace {

const CostKindInfo kKinds[] = {
    {CostKind::kSize, "size", "B", false,
     "bytes in the exported model: packed weights, scales, zero points, bias"},
    {CostKind::kWeightSize, "weight-size", "B", false,
     "weights * bits / 8 only, the papers' model size (MB there = 2^20 bytes)"},
    {CostKind::kBops, "bops", "BitOps", false, "BitOps per sample: MACs * weight bits * act bits"},
    {CostKind::kLatency, "latency", "ms", false, "from the target's latency table"},
    {CostKind::kEnergy, "energy", "", false, "from the target's energy table, in its unit"},
    {CostKind::kMemory, "memory", "B", true,
     "largest activation a layer reads, bytes per sample (a max, not a sum)"},
    {CostKind::kAvgBits, "avg-bits", "bit*weights", false,
     "parameter-weighted average weight bits"},
};
static_assert(sizeof(kKinds) / sizeof(kKinds[0]) == static_cast<size_t>(CostKind::kAvgBits) + 1,
              "one row of kKinds per CostKind");

double packed_bytes(int64_t elems, int bits) {
  return std::ceil(static_cast<double>(elems) * bits / 8.0);
}

double size_bytes(const LayerInfo& layer, int weight_bits, const Target& target) {
  const double bias = 4.0 * static_cast<double>(layer.bias_elems);
  if (weight_bits == 32) return 4.0 * static_cast<double>(layer.weight_elems) + bias;
  const double scales =
      target.per_channel ? static_cast<double>(std::max<int64_t>(layer.out_channels, 1)) : 1.0;
  // A zero point has the type of the quantized weight: one byte up to 8 bits, two at 16.
  const double zero_points = target.zero_points ? scales * ((weight_bits + 7) / 8) : 0.0;
  return packed_bytes(layer.weight_elems, weight_bits) + 4.0 * scales + zero_points + bias;
}

}  // namespace

const std::vector<CostKindInfo>& cost_kind_table() {
  static const std::vector<CostKindInfo> table(std::begin(kKinds), std::end(kKinds));
  return table;
}

const CostKindInfo& cost_kind_info(CostKind kind) {
  for (const auto& k : cost_kind_table()) {
    if (k.kind == kind) return k;
  }
  MPQ_ASSERT(false, "cost kind ", static_cast<int>(kind), " has no row in kKinds");
}

CostKind parse_cost_kind(const std::string& name) {
  std::string names;
  for (const auto& k : cost_kind_table()) {
    if (name == k.name) return k.kind;
    names += std::string(names.empty() ? "" : ", ") + k.name;
  }
  MPQ_FAIL("unknown budget kind '", name, "' (expected one of ", names, ")");
}

double layer_cost(CostKind kind, const LayerInfo& layer, int weight_bits, int act_bits,
                  const Target& target) {
  MPQ_CHECK(valid_bits(weight_bits) && valid_bits(act_bits), "layer '", layer.name,
            "': expected bit widths 2-8, 16 or 32, found w", weight_bits, "a", act_bits);
  switch (kind) {
    case CostKind::kSize:
      return size_bytes(layer, weight_bits, target);
    case CostKind::kWeightSize:
      return static_cast<double>(layer.weight_elems) * weight_bits / 8.0;
    case CostKind::kBops:
      return static_cast<double>(layer.macs) * weight_bits * act_bits;
    case CostKind::kLatency:
      return table_cost(target, target.latency, "latency", layer, weight_bits, act_bits);
    case CostKind::kEnergy:
      return table_cost(target, target.energy, "energy", layer, weight_bits, act_bits);
    case CostKind::kMemory:
      return packed_bytes(layer.input_elems, act_bits);
    case CostKind::kAvgBits:
      return static_cast<double>(layer.weight_elems) * weight_bits;
  }
  MPQ_ASSERT(false, "cost kind ", static_cast<int>(kind), " not handled");
}

}  // namespace mpq
