// Integer types of the QDQ export; see int8_format.h.
#include "core/int8_format.h"

#include "core/error.h"

namespace mpq {
namespace {

constexpr std::array<Int8FormatInfo, kNumInt8Formats> kFormats = {{
    {Int8Format::kU8S8, "u8s8", false,
     "activations uint8, weights int8 (exact with VNNI/AMX; saturates on x86 without VNNI)"},
    {Int8Format::kS8S8, "s8s8", false,
     "activations and weights int8 (exact with VNNI/AMX; saturates on x86 without VNNI)"},
    {Int8Format::kU8U8, "u8u8", true,
     "activations and weights uint8 (exact on every CPU; slower than u8s8 with VNNI)"},
    {Int8Format::kReduceRange, "reduce-range", true,
     "u8s8 with 7-bit weights where 8-bit weights meet integer activations (exact everywhere)"},
}};

}  // namespace

const std::array<Int8FormatInfo, kNumInt8Formats>& int8_format_table() { return kFormats; }

const Int8FormatInfo& int8_format_info(Int8Format format) {
  for (const auto& f : kFormats)
    if (f.format == format) return f;
  MPQ_ASSERT(false, "int8 format ", int(format), " has no row");
  return kFormats[0];
}

Int8Format resolve_int8_format(const std::string& name, const CpuInfo& cpu,
                               const std::string& where) {
  if (name == "auto") return u8s8_exact(cpu) ? Int8Format::kU8S8 : Int8Format::kU8U8;
  std::string names = "auto";
  for (const auto& f : kFormats) {
    if (name == f.name) return f.format;
    names += std::string(", ") + f.name;
  }
  MPQ_FAIL(where, ": int8 format: expected one of ", names, ", found '", name, "'");
}

std::string auto_int8_reason(const CpuInfo& cpu) {
  std::string kernels = "MLAS " + mlas_int8_kernels(cpu);
  if (u8s8_exact(cpu)) return "this CPU sums u8 x s8 exactly (" + kernels + ")";
  return "this CPU has no VNNI: u8 x s8 products are summed in saturating 16-bit pairs (" +
         kernels + ")";
}

}  // namespace mpq
