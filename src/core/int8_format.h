// How the QDQ export types its 8-bit integer tensors, for the integer kernels of the runtime that
// runs the model (issue 18). ONNX Runtime fuses DequantizeLinear -> Conv/MatMul into integer
// kernels (MLAS) whose arithmetic depends on the CPU (core/cpu.h): u8 x s8 products are exact with
// VNNI or AMX, but on x86 without VNNI neighbouring products are added in pairs into saturating
// 16-bit lanes, so a layer with 8-bit weights and 8-bit activations computes something else than
// the model mpq simulated and verified. The rows (ONNX Runtime's own quantization tool offers the
// same choices: activation and weight types, reduce_range):
//   u8s8          activations uint8 (int8 for signed grids), weights int8: the fastest kernels with
//                 VNNI; saturates without it.
//   s8s8          activations and weights int8 (ONNX Runtime's tool's default); MLAS shifts the
//                 activations to u8 on x86, so it saturates without VNNI like u8s8.
//   u8u8          every integer tensor uint8 (signed grids shifted by 2^(b-1), zero point with
//                 them): the same real values, and MLAS's u8 x u8 kernels widen to 16 bits before
//                 multiplying, so they are exact on every CPU.
//   reduce-range  u8s8 with 8-bit weights of layers with integer activations on a 7-bit grid
//                 (|w| <= 64, so a pair 2 * 255 * 64 fits 16 bits): exact everywhere, at 7-bit
//                 weight precision (the plan and the sizes say 7 bits for those layers).
// "auto" picks u8s8 where the CPU sums u8 x s8 exactly and u8u8 elsewhere; mpq resolves it on the
// machine it runs on unless a target description (docs/targets.md, "int8_format") or --int8 says
// which format the deployment CPU wants. Only the types change for u8u8 and s8s8: the simulation,
// sizes and accuracy are the same as u8s8's. The plan side of reduce-range is in quant/plan.h
// (apply_int8_format); the export side in quant/export_qdq.h.
#pragma once

#include <array>
#include <string>

#include "core/cpu.h"

namespace mpq {

enum class Int8Format { kU8S8, kS8S8, kU8U8, kReduceRange };

struct Int8FormatInfo {
  Int8Format format;
  const char* name;
  bool exact_everywhere;  // no 16-bit saturation on any CPU
  const char* description;
};

inline constexpr size_t kNumInt8Formats = 4;
const std::array<Int8FormatInfo, kNumInt8Formats>& int8_format_table();
const Int8FormatInfo& int8_format_info(Int8Format format);

// "auto" or a row's name -> the format; `cpu` decides "auto". Throws naming `where` (a flag or a
// target file) and the valid names for anything else.
// Example: resolve_int8_format("auto", host_cpu(), "--int8") == Int8Format::kU8S8 with VNNI.
Int8Format resolve_int8_format(const std::string& name, const CpuInfo& cpu,
                               const std::string& where);

// Why "auto" chose what it chose on `cpu`, for summaries: "this CPU sums u8 x s8 exactly (MLAS
// avx512_vnni)".
std::string auto_int8_reason(const CpuInfo& cpu);

}  // namespace mpq
