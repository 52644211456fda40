// Kernel latency through oneDNN (methods.md §2, LCPAQ's hardware-aware module). See onednn.h.
#include "hw/onednn.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <oneapi/dnnl/dnnl.hpp>
#include <sstream>
#include <unordered_map>

#include "core/error.h"

namespace mpq {
namespace {

using dnnl::memory;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// A plain user memory holding `values` converted to `type` (int8 types round and saturate).
memory user_memory(const memory::dims& dims, dt type, tag layout,
                   const std::vector<float>& values) {
  memory m({dims, type, layout}, cpu_engine());
  const size_t n = values.size();
  if (type == dt::f32) {
    std::memcpy(m.get_data_handle(), values.data(), n * sizeof(float));
  } else if (type == dt::u8) {
    auto* p = static_cast<uint8_t*>(m.get_data_handle());
    for (size_t i = 0; i < n; ++i)
      p[i] = uint8_t(std::clamp(std::nearbyint(values[i]), 0.f, 255.f));
  } else {
    auto* p = static_cast<int8_t*>(m.get_data_handle());
    for (size_t i = 0; i < n; ++i)
      p[i] = int8_t(std::clamp(std::nearbyint(values[i]), -128.f, 127.f));
  }
  return m;
}

// Deterministic values for timing: f32 in [-1, 1], u8 in [0, 255], s8 in the range the
// instruction set sums exactly ([-128, 127] or [-64, 63]).
std::vector<float> filler(int64_t n, dt type, uint64_t seed) {
  std::vector<float> v(size_t(std::max<int64_t>(n, 0)));
  const double levels = double(int64_t(1) << onednn_int8_weight_bits());
  uint64_t x = seed * 6364136223846793005ULL + 1442695040888963407ULL;
  for (auto& e : v) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    double u = double(x >> 11) / double(1ULL << 53);
    e = type == dt::f32  ? float(2 * u - 1)
        : type == dt::u8 ? float(std::floor(u * 256))
                         : float(std::floor(u * levels) - levels / 2);
  }
  return v;
}

// int8 weights outside the exact range would return the saturated sums, not the layer's output.
void check_int8_weights(const std::vector<float>& weights) {
  const int bits = onednn_int8_weight_bits();
  const float lo = -float(int64_t(1) << (bits - 1)), hi = -lo - 1;
  for (float w : weights) {
    MPQ_CHECK(w >= lo && w <= hi, "int8 weights: expected values in [", lo, ", ", hi,
              "] on oneDNN's ", onednn_isa(),
              " kernels (without VNNI, pairs of u8 x s8 products are summed in saturating 16-bit "
              "lanes), found ",
              w);
  }
}

int64_t product(const memory::dims& d) {
  int64_t p = 1;
  for (auto x : d) p *= x;
  return p;
}

// A primitive with its arguments in the primitive's own layouts, inputs reordered in.
struct Prepared {
  dnnl::primitive primitive;
  std::unordered_map<int, memory> args;
  std::string implementation;
  memory dst;  // in the primitive's layout
};

memory into(const memory& user, const memory::desc& want, dnnl::stream& s) {
  if (user.get_desc() == want) return user;
  memory m(want, cpu_engine());
  dnnl::reorder(user, m).execute(s, const_cast<memory&>(user), m);
  return m;
}

struct Types {
  dt src, wei, dst;
};
Types types_of(KernelType t) {
  return t == KernelType::kInt8 ? Types{dt::u8, dt::s8, dt::u8} : Types{dt::f32, dt::f32, dt::f32};
}

std::vector<float> default_scales(int64_t n, KernelType t) {
  // int8: a requantization scale that keeps typical accumulators inside u8.
  return std::vector<float>(size_t(n), t == KernelType::kInt8 ? 1.0f / 4096 : 1.0f);
}

memory::dims weight_dims(const ConvGeometry& g) {
  if (g.groups == 1) return {g.out_channels, g.in_channels, g.kernel_h, g.kernel_w};
  return {g.groups, g.out_channels / g.groups, g.in_channels / g.groups, g.kernel_h, g.kernel_w};
}

void check(const ConvGeometry& g) {
  MPQ_CHECK(g.batch > 0 && g.in_channels > 0 && g.out_channels > 0 && g.in_h > 0 && g.in_w > 0 &&
                g.kernel_h > 0 && g.kernel_w > 0 && g.stride_h > 0 && g.stride_w > 0 &&
                g.dilation_h > 0 && g.dilation_w > 0 && g.groups > 0 &&
                g.in_channels % g.groups == 0 && g.out_channels % g.groups == 0 && g.out_h() > 0 &&
                g.out_w() > 0,
            "profile: unsupported convolution geometry ", g.describe());
}

Prepared prepare_conv(const ConvGeometry& g, KernelType type, const std::vector<float>& src,
                      const std::vector<float>& weights, const std::vector<float>& bias,
                      const std::vector<float>& scales, dnnl::stream& s) {
  check(g);
  if (type == KernelType::kInt8) check_int8_weights(weights);
  Types t = types_of(type);
  memory::dims src_dims = {g.batch, g.in_channels, g.in_h, g.in_w};
  memory::dims wei_dims = weight_dims(g);
  memory::dims dst_dims = {g.batch, g.out_channels, g.out_h(), g.out_w()};
  memory::desc src_md(src_dims, t.src, tag::any), wei_md(wei_dims, t.wei, tag::any),
      bias_md({g.out_channels}, dt::f32, tag::x), dst_md(dst_dims, t.dst, tag::any);
  dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md, wei_md,
      bias_md, dst_md, {g.stride_h, g.stride_w}, {g.dilation_h - 1, g.dilation_w - 1},
      {g.pad_top, g.pad_left}, {g.pad_bottom, g.pad_right});
  dnnl::primitive_attr attr;
  if (type == KernelType::kInt8) attr.set_output_scales(1 << 1, scales);
  dnnl::convolution_forward::primitive_desc pd(desc, attr, cpu_engine());
  Prepared p;
  p.primitive = dnnl::convolution_forward(pd);
  p.implementation = pd.impl_info_str();
  p.args[DNNL_ARG_SRC] = into(user_memory(src_dims, t.src, tag::nchw, src), pd.src_desc(), s);
  p.args[DNNL_ARG_WEIGHTS] =
      into(user_memory(wei_dims, t.wei, g.groups == 1 ? tag::oihw : tag::goihw, weights),
           pd.weights_desc(), s);
  p.args[DNNL_ARG_BIAS] = user_memory({g.out_channels}, dt::f32, tag::x, bias);
  p.dst = memory(pd.dst_desc(), cpu_engine());
  p.args[DNNL_ARG_DST] = p.dst;
  s.wait();
  return p;
}

Prepared prepare_matmul(const MatMulGeometry& g, KernelType type, const std::vector<float>& src,
                        const std::vector<float>& weights, const std::vector<float>& bias,
                        const std::vector<float>& scales, dnnl::stream& s) {
  MPQ_CHECK(g.m > 0 && g.k > 0 && g.n > 0, "profile: unsupported matrix product ", g.describe());
  if (type == KernelType::kInt8) check_int8_weights(weights);
  Types t = types_of(type);
  memory::desc src_md({g.m, g.k}, t.src, tag::ab), wei_md({g.k, g.n}, t.wei, tag::any),
      bias_md({1, g.n}, dt::f32, tag::ab), dst_md({g.m, g.n}, t.dst, tag::ab);
  dnnl::matmul::desc desc(src_md, wei_md, bias_md, dst_md);
  dnnl::primitive_attr attr;
  if (type == KernelType::kInt8) attr.set_output_scales(1 << 1, scales);
  dnnl::matmul::primitive_desc pd(desc, attr, cpu_engine());
  Prepared p;
  p.primitive = dnnl::matmul(pd);
  p.implementation = pd.impl_info_str();
  p.args[DNNL_ARG_SRC] = user_memory({g.m, g.k}, t.src, tag::ab, src);
  p.args[DNNL_ARG_WEIGHTS] =
      into(user_memory({g.k, g.n}, t.wei, tag::ab, weights), pd.weights_desc(), s);
  p.args[DNNL_ARG_BIAS] = user_memory({1, g.n}, dt::f32, tag::ab, bias);
  p.dst = memory(pd.dst_desc(), cpu_engine());
  p.args[DNNL_ARG_DST] = p.dst;
  s.wait();
  return p;
}

Prepared prepare_conv_for_timing(const ConvGeometry& g, KernelType type, dnnl::stream& s,
                                 uint64_t seed) {
  Types t = types_of(type);
  return prepare_conv(g, type, filler(g.batch * g.in_channels * g.in_h * g.in_w, t.src, seed),
                      filler(product(weight_dims(g)), t.wei, seed + 1),
                      filler(g.out_channels, dt::f32, seed + 2),
                      default_scales(g.out_channels, type), s);
}

Prepared prepare_matmul_for_timing(const MatMulGeometry& g, KernelType type, dnnl::stream& s,
                                   uint64_t seed) {
  Types t = types_of(type);
  return prepare_matmul(g, type, filler(g.m * g.k, t.src, seed), filler(g.k * g.n, t.wei, seed + 1),
                        filler(g.n, dt::f32, seed + 2), default_scales(g.n, type), s);
}

// Times `run` (which executes and waits) as described in onednn.h.
KernelTiming time_runs(const std::function<void()>& run, const TimingOptions& o) {
  using clock = std::chrono::steady_clock;
  MPQ_CHECK(o.repeats > 0, "--repeats: expected a positive number, found ", o.repeats);
  for (int i = 0; i < std::max(o.warmup, 1); ++i) run();
  // One run's time: the fastest of a few (a single run can be caught by a context switch).
  double one = 1e30;
  for (int i = 0; i < 5; ++i) {
    auto t0 = clock::now();
    run();
    one = std::min(one, std::chrono::duration<double, std::milli>(clock::now() - t0).count());
  }
  KernelTiming k;
  k.runs_per_sample =
      std::max<int64_t>(1, int64_t(std::ceil(o.min_sample_ms / std::max(one, 1e-6))));
  std::vector<double> samples;
  for (int r = 0; r < o.repeats; ++r) {
    auto start = clock::now();
    for (int64_t i = 0; i < k.runs_per_sample; ++i) run();
    samples.push_back(std::chrono::duration<double, std::milli>(clock::now() - start).count() /
                      double(k.runs_per_sample));
  }
  std::sort(samples.begin(), samples.end());
  k.repeats = o.repeats;
  k.min_ms = samples.front();
  k.max_ms = samples.back();
  k.median_ms = samples.size() % 2
                    ? samples[samples.size() / 2]
                    : 0.5 * (samples[samples.size() / 2 - 1] + samples[samples.size() / 2]);
  return k;
}

// The output of a prepared primitive in plain layout as floats.
std::vector<float> read_output(const Prepared& p, const memory::dims& dims, tag layout, dt type,
                               dnnl::stream& s) {
  memory plain({dims, type, layout}, cpu_engine());
  dnnl::reorder(p.dst, plain).execute(s, const_cast<memory&>(p.dst), plain);
  s.wait();
  std::vector<float> out(size_t(product(dims)));
  if (type == dt::f32) {
    std::memcpy(out.data(), plain.get_data_handle(), out.size() * sizeof(float));
  } else {
    auto* q = static_cast<uint8_t*>(plain.get_data_handle());
    for (size_t i = 0; i < out.size(); ++i) out[i] = float(q[i]);
  }
  return out;
}

}  // namespace

int64_t ConvGeometry::out_h() const {
  return (in_h + pad_top + pad_bottom - ((kernel_h - 1) * dilation_h + 1)) / stride_h + 1;
}
int64_t ConvGeometry::out_w() const {
  return (in_w + pad_left + pad_right - ((kernel_w - 1) * dilation_w + 1)) / stride_w + 1;
}
int64_t ConvGeometry::macs() const {
  return batch * out_channels * out_h() * out_w() * (in_channels / groups) * kernel_h * kernel_w;
}

std::string ConvGeometry::describe() const {
  std::ostringstream o;
  o << batch << "x" << in_channels << "x" << in_h << "x" << in_w << " -> " << out_channels << ", "
    << kernel_h << "x" << kernel_w << " s" << stride_h << " p" << pad_top << " g" << groups;
  if (dilation_h > 1 || dilation_w > 1) o << " d" << dilation_h;
  return o.str();
}

std::string MatMulGeometry::describe() const {
  std::ostringstream o;
  o << m << "x" << k << " * " << k << "x" << n;
  return o.str();
}

namespace {

KernelTiming time_prepared(Prepared& p, dnnl::stream& s, const TimingOptions& o) {
  KernelTiming k = time_runs(
      [&] {
        p.primitive.execute(s, p.args);
        s.wait();
      },
      o);
  k.implementation = p.implementation;
  return k;
}

}  // namespace

KernelTiming time_conv(const ConvGeometry& g, KernelType type, const TimingOptions& o) {
  dnnl::stream s(cpu_engine());
  Prepared p = prepare_conv_for_timing(g, type, s, 7);
  return time_prepared(p, s, o);
}

KernelTiming time_matmul(const MatMulGeometry& g, KernelType type, const TimingOptions& o) {
  dnnl::stream s(cpu_engine());
  Prepared p = prepare_matmul_for_timing(g, type, s, 7);
  return time_prepared(p, s, o);
}

KernelTiming time_pass(const std::vector<Kernel>& pass, KernelType type, const TimingOptions& o) {
  dnnl::stream s(cpu_engine());
  std::vector<Prepared> prepared;
  for (const Kernel& kernel : pass) {
    const uint64_t seed = 7 + 3 * prepared.size();
    if (const auto* conv = std::get_if<ConvGeometry>(&kernel)) {
      prepared.push_back(prepare_conv_for_timing(*conv, type, s, seed));
    } else {
      prepared.push_back(
          prepare_matmul_for_timing(std::get<MatMulGeometry>(kernel), type, s, seed));
    }
  }
  KernelTiming k = time_runs(
      [&] {
        for (auto& p : prepared) p.primitive.execute(s, p.args);
        s.wait();
      },
      o);
  k.implementation = "pass of " + std::to_string(prepared.size()) + " kernels";
  return k;
}

std::vector<float> run_conv(const ConvGeometry& g, KernelType type, const std::vector<float>& src,
                            const std::vector<float>& weights, const std::vector<float>& bias,
                            const std::vector<float>& scales) {
  dnnl::stream s(cpu_engine());
  Prepared p = prepare_conv(g, type, src, weights, bias, scales, s);
  p.primitive.execute(s, p.args);
  s.wait();
  return read_output(p, {g.batch, g.out_channels, g.out_h(), g.out_w()}, tag::nchw,
                     types_of(type).dst, s);
}

std::vector<float> run_matmul(const MatMulGeometry& g, KernelType type,
                              const std::vector<float>& src, const std::vector<float>& weights,
                              const std::vector<float>& bias, const std::vector<float>& scales) {
  dnnl::stream s(cpu_engine());
  Prepared p = prepare_matmul(g, type, src, weights, bias, scales, s);
  p.primitive.execute(s, p.args);
  s.wait();
  return read_output(p, {g.m, g.n}, tag::ab, types_of(type).dst, s);
}

std::string onednn_isa() {
  using isa = dnnl::cpu_isa;
  switch (dnnl::get_effective_cpu_isa()) {
    case isa::sse41:
      return "sse41";
    case isa::avx:
      return "avx";
    case isa::avx2:
      return "avx2";
    case isa::avx2_vnni:
      return "avx2_vnni";
    case isa::avx512_mic:
      return "avx512_mic";
    case isa::avx512_mic_4ops:
      return "avx512_mic_4ops";
    case isa::avx512_core:
      return "avx512_core";
    case isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "unknown";
  }
}

int onednn_int8_weight_bits() {
  using isa = dnnl::cpu_isa;
  switch (dnnl::get_effective_cpu_isa()) {
    case isa::avx2_vnni:
    case isa::avx512_core_vnni:
    case isa::avx512_core_bf16:  // includes VNNI
    case isa::avx512_core_amx:
      return 8;
    default:
      return 7;
  }
}

std::string onednn_version() {
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch);
}

}  // namespace mpq
