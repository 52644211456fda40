// `mpq profile`: per-layer kernel latency on this CPU through oneDNN, written as a target's
// latency table (methods.md §2). See profile.h.
#include "pipeline/profile.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>

#include "core/cpu.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/int8_format.h"
#include "core/log.h"
#include "exec/executor.h"
#include "onnx/io.h"
#include "onnx/layers.h"
#include "pipeline/inspect.h"
#include "pipeline/onnxruntime.h"
#include "search/target.h"

namespace mpq {
namespace {

std::vector<int64_t> ints_attr(const Node& n, const char* name, std::vector<int64_t> fallback) {
  auto it = n.attrs.find(name);
  return it == n.attrs.end() ? fallback : it->second.ints;
}

// The convolution a Conv node runs at the shapes it had; false (with the reason) when oneDNN's
// 2-D convolution does not describe it.
bool conv_geometry(const Node& n, const LayerSummary& l, ConvGeometry* g, std::string* why) {
  const auto& x = l.input_shape;
  const auto& w = l.weight_shape;
  const auto& y = l.output_shape;
  if (x.size() != 4 || w.size() != 4 || y.size() != 4) {
    *why = "not a 2-D convolution (input rank " + std::to_string(x.size()) + ")";
    return false;
  }
  g->batch = x[0], g->in_channels = x[1], g->in_h = x[2], g->in_w = x[3];
  g->out_channels = w[0], g->kernel_h = w[2], g->kernel_w = w[3];
  g->groups = n.attrs.count("group") ? n.attrs.at("group").i : 1;
  auto strides = ints_attr(n, "strides", {1, 1}), dilations = ints_attr(n, "dilations", {1, 1});
  g->stride_h = strides[0], g->stride_w = strides[1];
  g->dilation_h = dilations[0], g->dilation_w = dilations[1];
  // The leading pads as written (or SAME's split); the trailing ones from the output size.
  auto pads = ints_attr(n, "pads", {});
  std::string auto_pad = n.attrs.count("auto_pad") ? n.attrs.at("auto_pad").s : "NOTSET";
  auto total = [](int64_t in, int64_t out, int64_t k, int64_t s, int64_t d) {
    return std::max<int64_t>(0, (out - 1) * s + (k - 1) * d + 1 - in);
  };
  int64_t th = total(g->in_h, y[2], g->kernel_h, g->stride_h, g->dilation_h);
  int64_t tw = total(g->in_w, y[3], g->kernel_w, g->stride_w, g->dilation_w);
  if (pads.size() == 4) {
    g->pad_top = pads[0], g->pad_left = pads[1];
  } else if (auto_pad == "SAME_LOWER") {
    g->pad_top = th - th / 2, g->pad_left = tw - tw / 2;
  } else if (auto_pad == "SAME_UPPER") {
    g->pad_top = th / 2, g->pad_left = tw / 2;
  }
  g->pad_bottom = std::max<int64_t>(0, th - g->pad_top);
  g->pad_right = std::max<int64_t>(0, tw - g->pad_left);
  if (g->out_h() != y[2] || g->out_w() != y[3]) {
    *why = "output " + std::to_string(y[2]) + "x" + std::to_string(y[3]) +
           " does not follow from the geometry " + g->describe();
    return false;
  }
  return true;
}

bool matmul_geometry(const Node& n, const QuantLayer& q, const LayerSummary& l, MatMulGeometry* g,
                     std::string* why) {
  const auto& w = l.weight_shape;
  if (w.size() != 2) {
    *why = "weight of rank " + std::to_string(w.size());
    return false;
  }
  if (l.op == "Gemm") {
    bool trans_a = n.attrs.count("transA") && n.attrs.at("transA").i;
    bool trans_b = n.attrs.count("transB") && n.attrs.at("transB").i;
    if (trans_a) {
      *why = "Gemm with transA";
      return false;
    }
    g->k = trans_b ? w[1] : w[0];
    g->n = trans_b ? w[0] : w[1];
  } else {
    if (q.weight_input != 1) {
      *why = "MatMul with the weight as its first input";
      return false;
    }
    g->k = w[0], g->n = w[1];
  }
  int64_t in = 1;
  for (int64_t d : l.input_shape) in *= d;
  g->m = in / g->k;
  return true;
}

nlohmann::json timing_json(const KernelTiming& k) {
  return {{"median_ms", k.median_ms},
          {"min_ms", k.min_ms},
          {"max_ms", k.max_ms},
          {"repeats", k.repeats},
          {"runs_per_sample", k.runs_per_sample},
          {"implementation", k.implementation}};
}

// The base target's JSON (the file as written, or the built-in default's fields).
nlohmann::json base_target(const std::string& path) {
  if (path.empty()) {
    return {{"format", "mpq-target"},
            {"version", 1},
            {"name", "default"},
            {"weight_bits", {{"default", {2, 3, 4, 5, 6, 8}}}},
            {"act_bits", {{"default", {8}}}},
            {"auto_ties", {{"same_input", true}, {"add", false}, {"concat", false}}},
            {"weight_scheme", {{"per_channel", true}, {"zero_points", false}}}};
  }
  load_target(path);  // the checks and messages of a target file
  return nlohmann::json::parse(read_file(path));
}

// The whole float model, every op, in ONNX Runtime: milliseconds per run.
void time_whole_model(const Graph& g, const std::vector<std::vector<int64_t>>& shapes,
                      double seconds, ProfileResult* r) {
  if (!onnxruntime_available(&r->ort_why)) return;
  if (shapes.size() != 1) {
    r->ort_why =
        "the whole-model check feeds one input; the model has " + std::to_string(shapes.size());
    return;
  }
  try {
    TempDir dir("profile");
    const std::string path = join_path(dir.path(), "model.onnx");
    export_onnx(g, path);
    r->ort_f32_ms =
        1000 * time_onnxruntime(path, {at::randn(shapes[0])}, at::get_num_threads(), seconds);
    r->ort = true;
  } catch (const Error& e) {
    r->ort_why = e.what();
  }
}

}  // namespace

ProfileResult profile_model(const Graph& g, const std::string& model_path,
                            const ProfileOptions& o) {
  ProfileResult r;
  r.model = model_path;
  nlohmann::json target = base_target(o.target);
  ModelSummary s = inspect_model(g, o.input_shapes);
  std::map<std::string, QuantLayer> quant;
  for (const auto& q : find_quantizable_layers(g)) quant[q.name] = q;
  const int64_t batch =
      s.input_shapes.empty() || s.input_shapes[0].empty() ? 1 : s.input_shapes[0][0];
  std::vector<Kernel> pass;
  nlohmann::json latency = nlohmann::json::object(), details = nlohmann::json::object(),
                 not_timed = nlohmann::json::object();
  Progress progress("profile", int64_t(s.layers.size()));
  for (const LayerSummary& l : s.layers) {
    const QuantLayer& q = quant.at(l.name);
    const Node& n = g.nodes[size_t(q.node)];
    LayerProfile lp;
    lp.name = l.name;
    lp.op = l.op;
    lp.macs = l.macs;
    ConvGeometry conv;
    MatMulGeometry mm;
    bool is_conv = l.op == "Conv";
    if (is_conv) {
      lp.timed = conv_geometry(n, l, &conv, &lp.why_not);
      if (lp.timed) lp.shape = conv.describe();
    } else if (l.op == "Gemm" || l.op == "MatMul") {
      lp.timed = matmul_geometry(n, q, l, &mm, &lp.why_not);
      if (lp.timed) lp.shape = mm.describe();
    } else {
      lp.why_not = l.op + " has no oneDNN kernel timed here";
    }
    if (lp.timed) {
      if (is_conv) {
        lp.f32 = time_conv(conv, KernelType::kFloat32, o.timing);
        lp.int8 = time_conv(conv, KernelType::kInt8, o.timing);
        lp.kernel_macs = conv.macs() / std::max<int64_t>(conv.batch, 1);
        pass.push_back(conv);
      } else {
        lp.f32 = time_matmul(mm, KernelType::kFloat32, o.timing);
        lp.int8 = time_matmul(mm, KernelType::kInt8, o.timing);
        lp.kernel_macs = mm.macs() / std::max<int64_t>(batch, 1);
        pass.push_back(mm);
      }
      r.sum_f32_ms += lp.f32.median_ms;
      r.sum_int8_ms += lp.int8.median_ms;
      nlohmann::json entry = nlohmann::json::object();
      for (int b = 2; b <= 8; ++b) entry["w" + std::to_string(b)] = lp.int8.median_ms;
      entry["w32"] = lp.f32.median_ms;
      latency[l.name] = entry;
      details[l.name] = {{"op", l.op},
                         {"shape", lp.shape},
                         {"macs", l.macs},
                         {"f32", timing_json(lp.f32)},
                         {"int8", timing_json(lp.int8)}};
    } else {
      not_timed[l.name] = lp.why_not;
    }
    r.layers.push_back(lp);
    progress.advance();
  }
  progress.finish();
  MPQ_CHECK(!pass.empty(), model_path, ": no layer could be timed (", not_timed.dump(), ")");
  r.pass_f32 = time_pass(pass, KernelType::kFloat32, o.timing);
  r.pass_int8 = time_pass(pass, KernelType::kInt8, o.timing);

  // The rest of the model in mpq's executor (float): op types other than the layers'.
  {
    Executor exec(g);
    std::vector<at::Tensor> inputs;
    for (const auto& shape : s.input_shapes) inputs.push_back(at::zeros(shape));
    at::NoGradGuard no_grad;
    exec.run(inputs);
    exec.set_profiling(true);
    const int runs = std::max(3, o.timing.repeats);
    for (int i = 0; i < runs; ++i) exec.run(inputs);
    for (const auto& [op, t] : exec.profile())
      if (op != "Conv" && op != "Gemm" && op != "MatMul" && op != "ConvTranspose")
        r.other_ops_ms += 1000 * t.seconds / runs;
  }

  const char* wait = std::getenv("OMP_WAIT_POLICY");
  r.wait_policy = wait ? wait : "";
  if (o.onnxruntime) {
    time_whole_model(g, s.input_shapes, o.ort_seconds, &r);
  } else {
    r.ort_why = "not asked for";
  }

  nlohmann::json kernels = nlohmann::json::array();
  for (int w = 2; w <= 8; ++w)
    for (int a = 2; a <= 8; ++a)
      kernels.push_back("w" + std::to_string(w) + "a" + std::to_string(a));
  const std::string base_name = target.value("name", "default");
  target["name"] = base_name + "-this-cpu";
  target["description"] =
      "Latency measured on this CPU by mpq profile (" + onednn_version() + ", " +
      std::to_string(at::get_num_threads()) + " threads, batch " +
      std::to_string(s.input_shapes.empty() || s.input_shapes[0].empty() ? 1
                                                                         : s.input_shapes[0][0]) +
      ") for " + model_path + ": the median of " + std::to_string(o.timing.repeats) +
      " samples per kernel. Weights of 2-8 bits with activations of 2-8 bits run on the int8 "
      "kernel (u8 x s8, values in 8-bit containers; " +
      std::to_string(onednn_int8_weight_bits()) + "-bit weights, the widest that " + onednn_isa() +
      " sums exactly), float layers (w32) on the f32 kernel; "
      "16-bit widths have no kernel here. Candidates, pins and ties are those of '" +
      base_name + "'.";
  target["kernels"] = kernels;
  // The integer types this CPU computes exactly, for exports aimed at it (core/int8_format.h).
  target["int8_format"] = int8_format_info(resolve_int8_format("auto", host_cpu(), "profile")).name;
  target["latency"] = {{"unit", "ms"}, {"layers", latency}};
  const double error_int8 = 100 * (r.sum_int8_ms - r.pass_int8.median_ms) / r.pass_int8.median_ms;
  const double error_f32 = 100 * (r.sum_f32_ms - r.pass_f32.median_ms) / r.pass_f32.median_ms;
  target["profile"] = {{"tool", "mpq profile"},
                       {"onednn", onednn_version()},
                       {"onednn_isa", onednn_isa()},
                       {"int8_weight_bits", onednn_int8_weight_bits()},
                       {"threads", at::get_num_threads()},
                       {"omp_wait_policy", r.wait_policy},
                       {"model", model_path},
                       {"model_hash", file_exists(model_path) ? hash_file(model_path) : ""},
                       {"input_shapes", s.input_shapes},
                       {"no_kernel", {"w16", "a16"}},
                       {"layers", details},
                       {"not_timed", not_timed},
                       {"check",
                        {{"sum_of_layers_int8_ms", r.sum_int8_ms},
                         {"pass_int8_ms", r.pass_int8.median_ms},
                         {"error_int8_percent", error_int8},
                         {"sum_of_layers_f32_ms", r.sum_f32_ms},
                         {"pass_f32_ms", r.pass_f32.median_ms},
                         {"error_f32_percent", error_f32},
                         {"other_ops_ms_mpq_float", r.other_ops_ms}}}};
  auto& check = target["profile"]["check"];
  if (r.ort) {
    check["whole_model_onnxruntime"] = {
        {"f32_ms", r.ort_f32_ms},
        {"error_f32_percent", 100 * (r.sum_f32_ms - r.ort_f32_ms) / r.ort_f32_ms}};
  } else {
    check["whole_model_onnxruntime"] = {{"skipped", r.ort_why}};
  }
  r.target = target;
  return r;
}

std::string format_text(const ProfileResult& r) {
  std::ostringstream o;
  size_t width = 5;
  for (const auto& l : r.layers) width = std::max(width, l.name.size());
  char line[512];
  std::string policy = r.wait_policy;
  std::transform(policy.begin(), policy.end(), policy.begin(), ::toupper);
  if (policy == "PASSIVE")
    o << "warning: OMP_WAIT_POLICY=PASSIVE puts oneDNN's threads to sleep between kernels; "
         "small kernels then time their wake-up (unset it for mpq profile)\n";
  std::snprintf(line, sizeof line, "%-*s  %-8s %-34s %10s %10s %7s\n", int(width), "layer", "op",
                "shape", "f32 ms", "int8 ms", "f32/i8");
  o << line;
  for (const auto& l : r.layers) {
    if (!l.timed) {
      std::snprintf(line, sizeof line, "%-*s  %-8s not timed: %s\n", int(width), l.name.c_str(),
                    l.op.c_str(), l.why_not.c_str());
    } else {
      std::snprintf(line, sizeof line, "%-*s  %-8s %-34s %10.4f %10.4f %7.2f\n", int(width),
                    l.name.c_str(), l.op.c_str(), l.shape.c_str(), l.f32.median_ms,
                    l.int8.median_ms, l.f32.median_ms / l.int8.median_ms);
    }
    o << line;
  }
  std::snprintf(line, sizeof line,
                "sum of layers: f32 %.4f ms, int8 %.4f ms; the same kernels back to back: f32 "
                "%.4f ms (sum off by %+.1f %%), int8 %.4f ms (sum off by %+.1f %%)\n",
                r.sum_f32_ms, r.sum_int8_ms, r.pass_f32.median_ms,
                100 * (r.sum_f32_ms - r.pass_f32.median_ms) / r.pass_f32.median_ms,
                r.pass_int8.median_ms,
                100 * (r.sum_int8_ms - r.pass_int8.median_ms) / r.pass_int8.median_ms);
  o << line;
  std::snprintf(line, sizeof line,
                "other ops (not Conv/Gemm/MatMul) in mpq's float executor: %.4f ms per run\n",
                r.other_ops_ms);
  o << line;
  if (r.ort) {
    std::snprintf(line, sizeof line,
                  "whole float model in ONNX Runtime (every op): %.4f ms (f32 sum of layers off "
                  "by %+.1f %%)\n",
                  r.ort_f32_ms, 100 * (r.sum_f32_ms - r.ort_f32_ms) / r.ort_f32_ms);
  } else {
    std::snprintf(line, sizeof line, "whole model in ONNX Runtime: skipped (%s)\n",
                  r.ort_why.c_str());
  }
  o << line;
  return o.str();
}

}  // namespace mpq
