// CPU features for int8 kernels; see cpu.h.
#include "core/cpu.h"

#include <fstream>
#include <sstream>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define MPQ_X86 1
#endif

namespace mpq {
namespace {

std::string model_from_proc() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    for (const char* key : {"model name", "Model", "Hardware"}) {
      if (line.rfind(key, 0) == 0) {
        auto colon = line.find(':');
        if (colon != std::string::npos) {
          std::string v = line.substr(colon + 1);
          v.erase(0, v.find_first_not_of(" \t"));
          return v;
        }
      }
    }
  }
  return "unknown";
}

CpuInfo detect() {
  CpuInfo c;
  c.model = model_from_proc();
#ifdef MPQ_X86
  c.x86 = true;
  unsigned a = 0, b = 0, cx = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &cx, &d)) return c;
  const bool osxsave = (cx >> 27) & 1, avx = (cx >> 28) & 1;
  c.fma = (cx >> 12) & 1;
  unsigned long long xcr0 = 0;
  if (osxsave) {
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
  }
  const bool ymm = avx && (xcr0 & 0x6) == 0x6;     // SSE and AVX state
  const bool zmm = ymm && (xcr0 & 0xe0) == 0xe0;   // opmask, ZMM_Hi256, Hi16_ZMM
  const bool tiles = (xcr0 & 0x60000) == 0x60000;  // AMX TILECFG, TILEDATA
  if (__get_cpuid_max(0, nullptr) < 7) return c;
  __cpuid_count(7, 0, a, b, cx, d);
  c.avx2 = ymm && ((b >> 5) & 1);
  c.avx512f = zmm && ((b >> 16) & 1);
  c.avx512bw = zmm && ((b >> 30) & 1);
  c.avx512_vnni = zmm && ((cx >> 11) & 1);
  c.amx_int8 = tiles && ((d >> 25) & 1);
  unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  __cpuid_count(7, 1, a1, b1, c1, d1);
  c.avx_vnni = ymm && ((a1 >> 4) & 1);
#endif
  return c;
}

}  // namespace

const CpuInfo& host_cpu() {
  static const CpuInfo info = detect();
  return info;
}

bool u8s8_exact(const CpuInfo& cpu) {
  if (!cpu.x86) return true;
  return cpu.amx_int8 || cpu.avx512_vnni || cpu.avx_vnni;
}

std::string mlas_int8_kernels(const CpuInfo& cpu) {
  if (!cpu.x86) return "not x86";
  if (cpu.amx_int8) return "amx";
  if (cpu.avx512_vnni && cpu.avx512bw) return "avx512_vnni";
  if (cpu.avx_vnni) return "avx_vnni";
  if (cpu.avx512bw) return "avx512_core";
  if (cpu.avx2) return "avx2";
  return "sse";
}

std::string describe(const CpuInfo& cpu) {
  std::ostringstream o;
  o << cpu.model << ";";
  if (cpu.x86) {
    o << " x86-64";
    const std::pair<bool, const char*> flags[] = {{cpu.avx2, "avx2"},
                                                  {cpu.fma, "fma"},
                                                  {cpu.avx512f, "avx512f"},
                                                  {cpu.avx512bw, "avx512bw"},
                                                  {cpu.avx512_vnni, "avx512_vnni"},
                                                  {cpu.avx_vnni, "avx_vnni"},
                                                  {cpu.amx_int8, "amx_int8"}};
    for (const auto& [on, name] : flags)
      if (on) o << " " << name;
  } else {
    o << " not x86";
  }
  o << "; MLAS int8: " << mlas_int8_kernels(cpu)
    << (u8s8_exact(cpu) ? " (u8 x s8 exact)" : " (u8 x s8 saturates in 16-bit pairs)");
  return o.str();
}

}  // namespace mpq
