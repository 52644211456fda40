// What this machine's CPU can do for integer kernels: its model name and the x86 features that
// decide how int8 matrix products are summed. The int8 kernels of ONNX Runtime (MLAS) and oneDNN
// multiply u8 activations by s8 weights: with VNNI (AVX512-VNNI, AVX-VNNI) or AMX every product
// is accumulated in 32 bits, exactly; with plain AVX2 or AVX-512 they use vpmaddubsw, which adds
// each pair of neighbouring u8 x s8 products into a saturating 16-bit lane, so 8-bit activations
// times 8-bit weights can overflow (255 * 127 * 2 > 32767). u8 x u8 products are widened to 16
// bits first and are exact everywhere. Other architectures (ARM's sdot/udot, ...) are exact.
#pragma once

#include <string>

namespace mpq {

struct CpuInfo {
  std::string model;  // "AMD EPYC 9R14", from /proc/cpuinfo or CPUID
  bool x86 = false;
  bool avx2 = false, fma = false, avx512f = false, avx512bw = false;
  bool avx512_vnni = false, avx_vnni = false, amx_int8 = false;
};

// Read once from CPUID (x86) or /proc/cpuinfo; AVX and AVX-512 only when the OS saves their state.
const CpuInfo& host_cpu();

// True when int8 kernels sum u8 x s8 products exactly on `cpu` (see above).
bool u8s8_exact(const CpuInfo& cpu);

// The kernel family ONNX Runtime's MLAS picks for int8 matrix products on `cpu`, as MLAS's dispatch
// reads CPUID: "amx", "avx512_vnni", "avx_vnni", "avx512_core", "avx2", "sse", or "not x86".
std::string mlas_int8_kernels(const CpuInfo& cpu);

// One line for logs: "AMD EPYC 9R14; x86-64 avx2 fma avx512f avx512bw avx512_vnni; MLAS int8:
// avx512_vnni (u8 x s8 exact)".
std::string describe(const CpuInfo& cpu);

}  // namespace mpq
