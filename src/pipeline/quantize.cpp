#include "pipeline/quantize.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/cpu.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/int8_format.h"
#include "core/log.h"
#include "exec/executor.h"
#include "exec/runtime.h"
#include "onnx/io.h"
#include "onnx/passes/fold_batchnorm.h"
#include "pipeline/inspect.h"
#include "pipeline/onnxruntime.h"
#include "quant/simulate.h"

namespace mpq {
namespace {

int parse_int(const std::string& text, const std::string& flag, const std::string& whole) {
  size_t used = 0;
  int v = 0;
  try {
    v = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  MPQ_CHECK(used == text.size() && !text.empty(), flag,
            ": expected W or W/A with integer bit widths (e.g. 4 or 4/8), found '", whole, "'");
  return v;
}

std::string kib(double bytes) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(1) << bytes / 1024.0 << " KiB";
  return o.str();
}

void add_bitops(const Graph& model, QuantizeResult* r) {
  ModelSummary summary;
  try {
    summary = inspect_model(model);
  } catch (const Error&) {
    return;  // symbolic input dimensions: no MACs to count
  }
  for (const LayerSummary& l : summary.layers) {
    double macs = double(l.macs);
    r->float_bitops += macs * 32 * 32;
    const QuantizedLayer* q = r->model.find(l.name);
    if (!q) {
      r->bitops += macs * 32 * 32;
      continue;
    }
    double wb = q->weight_quantized ? q->plan.weight.bits : 32;
    double ab = q->act_quantized ? q->plan.act.bits : 32;
    if (q->multipoint) {
      macs *= double(q->points.count.sum().item<int64_t>()) / double(q->points.count.numel());
    }
    r->bitops += macs * wb * ab;
  }
}

// The nodes whose integer kernels verify localises: Conv, ConvTranspose, MatMul and Gemm with an
// input computed by DequantizeLinear (or listed as quantized in mpq's metadata). The value compared
// is the QuantizeLinear that alone reads the node's output, where there is one (a runtime fuses
// node and Q into one kernel, so the float output is not there to fetch), else the output.
std::vector<std::pair<std::string, std::string>> quantized_layer_taps(const Graph& g) {
  std::set<std::string> listed;
  auto meta = g.metadata.find("mpq.quantization");
  if (meta != g.metadata.end()) {
    auto j = nlohmann::json::parse(meta->second, nullptr, false);
    if (j.is_object() && j.contains("layers") && j["layers"].is_object())
      for (const auto& item : j["layers"].items()) listed.insert(item.key());
  }
  std::vector<std::pair<std::string, std::string>> taps;
  for (const Node& n : g.nodes) {
    if (n.op_type != "Conv" && n.op_type != "ConvTranspose" && n.op_type != "MatMul" &&
        n.op_type != "Gemm")
      continue;
    bool dequantized = listed.count(n.name) > 0;
    for (const auto& in : n.inputs) {
      int64_t p = in.empty() ? -1 : g.producer(in);
      dequantized |= p >= 0 && g.nodes[size_t(p)].op_type == "DequantizeLinear";
    }
    if (!dequantized || n.outputs.empty() || n.outputs[0].empty()) continue;
    std::string value = n.outputs[0];
    std::vector<int64_t> readers = g.consumers(value);
    if (readers.size() == 1 && g.nodes[size_t(readers[0])].op_type == "QuantizeLinear" &&
        !g.is_graph_output(value))
      value = g.nodes[size_t(readers[0])].outputs[0];
    taps.emplace_back(n.name, value);
  }
  return taps;
}

// Every tap of `path` in ONNX Runtime and in `ex` on `x` (a copy of the model with the taps as
// extra outputs runs in ONNX Runtime; the executor fetches them by name).
std::vector<LayerDiff> compare_layers(const Graph& g, const Executor& ex, const at::Tensor& x) {
  auto taps = quantized_layer_taps(g);
  if (taps.empty()) return {};
  std::vector<std::string> names;
  for (const auto& tap : taps) names.push_back(tap.second);
  std::map<std::string, at::Tensor> ours = ex.run_named({{g.inputs[0].name, x}}, names);
  Graph probe = g;
  for (const auto& [layer, value] : taps) {
    if (probe.is_graph_output(value)) continue;
    ValueInfo v;
    v.name = value;
    v.elem_type = 1;  // float, unless a QuantizeLinear's zero point says otherwise
    const Node& producer = g.nodes[size_t(g.producer(value))];
    if (producer.op_type == "QuantizeLinear") {
      v.elem_type = 2;  // uint8 without a zero point
      if (producer.inputs.size() > 2 && g.is_initializer(producer.inputs[2]))
        v.elem_type = g.initializers.at(producer.inputs[2]).scalar_type() == at::kChar ? 3 : 2;
    }
    v.has_shape = true;
    for (int64_t d = 0; d < ours.at(value).dim(); ++d) {
      Dim dim;
      dim.param = "d" + std::to_string(d);
      v.shape.push_back(dim);
    }
    probe.outputs.push_back(v);
  }
  TempDir dir("verify");
  const std::string file = join_path(dir.path(), "probe.onnx");
  export_onnx(probe, file);
  std::vector<at::Tensor> ort = run_onnxruntime(file, {x});
  std::vector<LayerDiff> diffs;
  for (const auto& [layer, value] : taps) {
    size_t k = 0;
    while (k < probe.outputs.size() && probe.outputs[k].name != value) ++k;
    MPQ_ASSERT(k < ort.size(), "no ONNX Runtime value for ", value);
    at::Tensor a = ort[k].to(at::kDouble), m = ours.at(value).to(at::kDouble);
    if (a.sizes() != m.sizes()) continue;
    LayerDiff d;
    d.layer = layer;
    d.value = value;
    d.max_abs = a.numel() ? (a - m).abs().max().item<double>() : 0;
    double scale = a.numel() ? a.abs().max().item<double>() : 0;
    d.max_rel = scale > 0 ? d.max_abs / scale : d.max_abs;
    diffs.push_back(d);
  }
  return diffs;
}

}  // namespace

std::pair<int, int> parse_bits(const std::string& text, const std::string& flag) {
  size_t slash = text.find('/');
  int w = parse_int(text.substr(0, slash), flag, text);
  int a = slash == std::string::npos ? 32 : parse_int(text.substr(slash + 1), flag, text);
  for (int b : {w, a}) {
    MPQ_CHECK((b >= 2 && b <= 8) || b == 16 || b == 32, flag,
              ": bit widths: expected 2-8, 16 or 32 (float), found ", b, " in '", text, "'");
  }
  return {w, a};
}

PtqOptions plan_quantizer(const Plan& plan, const std::string& where) {
  PtqOptions o;
  if (!plan.extra.contains("quantizer")) return o;
  const nlohmann::json& q = plan.extra.at("quantizer");
  MPQ_CHECK(q.is_object(), where, ": quantizer: expected an object, found ", q.type_name());
  auto text = [&](const char* field, std::string* out) {
    if (!q.contains(field)) return;
    MPQ_CHECK(q.at(field).is_string(), where, ": quantizer.", field, ": expected a string, found ",
              q.at(field).dump());
    *out = q.at(field).get<std::string>();
  };
  text("method", &o.method);
  text("observer", &o.observer);
  text("weight_scale", &o.weight_scale.method);
  bool known = false;
  for (const auto& m : ptq_methods()) known |= m == o.method;
  MPQ_CHECK(known, where, ": quantizer.method: expected rtn, mse or multipoint, found '", o.method,
            "'");
  if (q.contains("percentile")) {
    MPQ_CHECK(q.at("percentile").is_number(), where,
              ": quantizer.percentile: expected a number, found ", q.at("percentile").dump());
    o.observer_options.percentile = q.at("percentile").get<double>();
  }
  return o;
}

QuantizeResult run_quantize(const Graph& model, const Plan& plan, const Dataset* calibration,
                            const PtqOptions& ptq, const QdqOptions& qdq,
                            const std::string& output) {
  auto start = std::chrono::steady_clock::now();
  check_exportable(model);  // before calibration
  const Int8Format format = resolve_int8_format(qdq.int8_format, host_cpu(), "--int8");
  QuantizeResult r = export_quantized(
      model, quantize_ptq(model, apply_int8_format(plan, format), calibration, ptq), qdq, output);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

Plan int8_plan(const Plan& plan, const QdqOptions& qdq) {
  return apply_int8_format(plan, resolve_int8_format(qdq.int8_format, host_cpu(), "--int8"));
}

QuantizeResult export_quantized(const Graph& model, QuantizedModel quantized, const QdqOptions& qdq,
                                const std::string& output) {
  auto start = std::chrono::steady_clock::now();
  QuantizeResult r;
  const Int8Format format = resolve_int8_format(qdq.int8_format, host_cpu(), "--int8");
  r.model = std::move(quantized);
  r.int8_format = int8_format_info(format).name;
  if (qdq.int8_format == "auto") r.int8_reason = "auto: " + auto_int8_reason(host_cpu());
  Graph q = export_qdq(r.model, qdq, &r.sizes);
  std::string bytes = export_onnx_bytes(q);
  r.file_bytes = int64_t(bytes.size());
  r.float_file_bytes = int64_t(export_onnx_bytes(model).size());
  if (!output.empty()) write_file_atomic(output, bytes);
  add_bitops(model, &r);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

EvalResult evaluate_simulated(const QuantizedModel& model, const std::string& label,
                              const Dataset& data, const EvalOptions& options,
                              const Executor* reference) {
  Executor quantized(model.graph);
  attach_quantizers(&quantized, model);
  return evaluate(quantized, label, data, options, reference);
}

void evaluate_quantized(const Graph& float_model, QuantizeResult* r, const Dataset& data,
                        const EvalOptions& options) {
  Graph folded = float_model;
  fold_batchnorm(&folded);
  Executor reference(folded);
  r->float_eval = evaluate(reference, float_model.source, data, options, nullptr);
  r->quant_eval =
      evaluate_simulated(r->model, float_model.source + " (quantized)", data, options, &reference);
  r->evaluated = true;
}

nlohmann::json to_json(const QuantizeResult& r) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : r.model.layers) {
    nlohmann::json e = {{"name", l.layer.name},
                        {"weight_bits", l.weight_quantized ? l.plan.weight.bits : 32},
                        {"weight_scheme", l.plan.weight.scheme},
                        {"act_bits", l.act_quantized ? l.plan.act.bits : 32}};
    if (l.multipoint) e["extra_points"] = extra_points(l.points);
    if (l.bias_shift > 0) e["bias_correction_max"] = l.bias_shift;
    layers.push_back(e);
  }
  nlohmann::json j = {{"info", r.model.info},
                      {"layers", layers},
                      {"size",
                       {{"file_bytes", r.file_bytes},
                        {"float_file_bytes", r.float_file_bytes},
                        {"weight_bytes", r.sizes.weight_bytes},
                        {"param_bytes", r.sizes.param_bytes},
                        {"float_bytes", r.sizes.float_bytes},
                        {"paper_mb", r.sizes.paper_bytes / double(1 << 20)},
                        {"float_paper_mb", r.sizes.float_paper_bytes / double(1 << 20)},
                        {"weight_bits_average", r.sizes.weight_bits_average}}},
                      {"int8_format", r.int8_format},
                      {"bitops", r.bitops},
                      {"float_bitops", r.float_bitops},
                      {"seconds", r.seconds}};
  if (r.evaluated) {
    j["float"] = to_json(r.float_eval);
    j["quantized"] = to_json(r.quant_eval);
  }
  return j;
}

std::string format_text(const QuantizeResult& r) {
  std::ostringstream o;
  int64_t quantized = 0, multipoint = 0, extra = 0;
  for (const auto& l : r.model.layers) {
    quantized += l.weight_quantized || l.act_quantized;
    multipoint += l.multipoint;
    if (l.multipoint) extra += extra_points(l.points);
  }
  o << "method        " << r.model.info.value("method", "") << " (" << quantized
    << " layers quantized";
  if (multipoint) o << ", " << extra << " extra points";
  o << ")";
  const std::string observer = r.model.info.value("observer", "");
  if (!observer.empty()) o << ", observer " << observer;
  o << ", weight scale " << r.model.info.value("weight_scale", "") << "\n";
  o << "int8 types    " << r.int8_format;
  if (!r.int8_reason.empty()) o << " (" << r.int8_reason << ")";
  o << "\n";
  o << std::fixed << std::setprecision(2);
  o << "weight bits   " << r.sizes.weight_bits_average << " average over quantizable weights\n";
  o << "size on disk  " << kib(double(r.file_bytes)) << " (float model "
    << kib(double(r.float_file_bytes)) << ", "
    << double(r.float_file_bytes) / double(std::max<int64_t>(r.file_bytes, 1)) << "x smaller)\n";
  o << "  integers    " << kib(double(r.sizes.weight_bytes)) << ", scales etc. "
    << kib(double(r.sizes.param_bytes)) << ", float tensors " << kib(double(r.sizes.float_bytes))
    << "\n";
  o << std::setprecision(4) << "papers' size  " << r.sizes.paper_bytes / double(1 << 20)
    << " MB weights only (float " << r.sizes.float_paper_bytes / double(1 << 20) << " MB)\n";
  if (r.bitops > 0) {
    o << std::setprecision(3) << "BitOps        " << r.bitops / 1e9 << " G per sample (float "
      << r.float_bitops / 1e9 << " G)\n";
  }
  o << std::setprecision(2) << "time          " << r.seconds << " s\n";
  if (r.evaluated) {
    const EvalResult& q = r.quant_eval;
    if (q.labelled) {
      o << "float top-1   " << 100 * r.float_eval.top1 << " %\n";
      o << "quant top-1   " << 100 * q.top1 << " % (";
    } else {
      o << "quant vs float (" << q.output << " output: ";
    }
    if (q.has_agreement) o << "agreement with float " << 100 * q.agreement << " %, ";
    if (q.has_cosine)
      o << std::setprecision(4) << "cosine " << q.cosine << ", " << std::setprecision(2);
    o << "SQNR " << q.sqnr_db << " dB)\n";
  }
  return o.str();
}

VerifyResult verify_model(const std::string& path, const Dataset& data,
                          const VerifyOptions& options) {
  MPQ_CHECK(options.samples > 0, "--samples: expected a positive number, found ", options.samples);
  MPQ_CHECK(options.batch_size > 0, "--batch-size: expected a positive number, found ",
            options.batch_size);
  std::string why;
  MPQ_CHECK(onnxruntime_available(&why), "verify needs ONNX Runtime: ", why);
  Graph g = import_onnx(path);
  MPQ_CHECK(g.inputs.size() == 1, path, ": verify feeds one input; the model has ",
            g.inputs.size());
  Executor ex(g);
  std::vector<int64_t> one = data.sample_shape();
  one.insert(one.begin(), 1);
  try {
    ex.check_input(0, at::zeros(one));
  } catch (const Error& e) {
    MPQ_FAIL("data ", data.describe(), " does not fit ", path, ": ", e.what());
  }
  VerifyResult r;
  r.model = path;
  r.labelled = data.has_labels();
  size_t outputs = g.outputs.size();
  r.outputs.resize(outputs);
  std::vector<double> ref_max(outputs, 0), sum_abs(outputs, 0), agree(outputs, 0), rows(outputs, 0);
  std::vector<double> count(outputs, 0);
  double correct_ort = 0, correct_mpq = 0;
  double worst = -1;
  at::Tensor worst_batch;  // the inputs whose outputs differed most, for the per-layer comparison
  int64_t n = std::min(options.samples, data.size());
  // Batches within the activation budget: mpq's run of the QDQ graph, and ONNX Runtime's of the
  // same batch beside it (taken as about as large).
  const int64_t batch = batch_within(3 * ex.footprint({data.read({0}).x}).peak, activation_budget(),
                                     std::min(options.batch_size, n));
  DataLoader loader(data, batch);
  Progress progress("verify", n);
  c10::InferenceMode inference;
  Batch b;
  while (r.samples < n && loader.next(&b)) {
    at::Tensor x = b.x;
    if (r.samples + x.size(0) > n) x = x.narrow(0, 0, n - r.samples);
    std::vector<at::Tensor> ort = run_onnxruntime(path, {x});
    std::vector<at::Tensor> ours = ex.run({x});
    MPQ_CHECK(ort.size() == outputs, path, ": ONNX Runtime returned ", ort.size(),
              " outputs, expected ", outputs);
    for (size_t k = 0; k < outputs; ++k) {
      at::Tensor a = ort[k].to(at::kDouble), m = ours[k].to(at::kDouble);
      MPQ_CHECK(a.sizes() == m.sizes(), path, ": output '", g.outputs[k].name,
                "': ONNX Runtime gives shape ", a.sizes(), ", mpq ", m.sizes());
      at::Tensor diff = (a - m).abs();
      if (k == 0 && diff.numel()) {
        double rel = diff.max().item<double>() / std::max(a.abs().max().item<double>(), 1e-30);
        if (rel > worst) {
          worst = rel;
          worst_batch = x.narrow(0, 0, std::min<int64_t>(x.size(0), 64)).clone();
        }
      }
      OutputDiff& d = r.outputs[k];
      d.name = g.outputs[k].name;
      if (diff.numel()) d.max_abs = std::max(d.max_abs, diff.max().item<double>());
      if (a.numel()) ref_max[k] = std::max(ref_max[k], a.abs().max().item<double>());
      sum_abs[k] += diff.sum().item<double>();
      count[k] += double(diff.numel());
      if (a.dim() == 2 && a.size(0) == x.size(0)) {
        d.has_top1 = true;
        agree[k] += a.argmax(1).eq(m.argmax(1)).sum().item<double>();
        rows[k] += double(a.size(0));
      }
    }
    if (r.labelled && r.outputs[0].has_top1) {
      at::Tensor y = b.y.narrow(0, 0, x.size(0));
      correct_ort += ort[0].argmax(1).eq(y).sum().item<double>();
      correct_mpq += ours[0].argmax(1).eq(y).sum().item<double>();
    }
    r.samples += x.size(0);
    progress.advance(x.size(0));
  }
  progress.finish();
  for (size_t k = 0; k < outputs; ++k) {
    OutputDiff& d = r.outputs[k];
    d.max_rel = ref_max[k] > 0 ? d.max_abs / ref_max[k] : d.max_abs;
    d.mean_abs = count[k] > 0 ? sum_abs[k] / count[k] : 0;
    d.top1_agreement = rows[k] > 0 ? agree[k] / rows[k] : 0;
  }
  r.labelled = r.labelled && r.outputs[0].has_top1;
  if (r.labelled) {
    r.top1_ort = correct_ort / double(r.samples);
    r.top1_mpq = correct_mpq / double(r.samples);
  }
  r.max_rel_bound = options.max_rel;
  r.emulated_cpu = onnxruntime_cpu();
  for (const OutputDiff& d : r.outputs) {
    r.within_bounds = r.within_bounds && d.max_rel <= options.max_rel &&
                      (!d.has_top1 || d.top1_agreement >= options.min_agreement);
  }
  auto meta = g.metadata.find("mpq.quantization");
  if (meta != g.metadata.end()) {
    auto j = nlohmann::json::parse(meta->second, nullptr, false);
    if (j.is_object() && j.contains("info") && j["info"].contains("int8_format"))
      r.int8_format = j["info"]["int8_format"].get<std::string>();
  }
  if ((!r.within_bounds || options.per_layer) && worst_batch.defined()) {
    r.layers = compare_layers(g, ex, worst_batch);
    for (const LayerDiff& d : r.layers) {
      if (d.max_rel > options.max_rel) {
        r.first_divergent = d.layer;
        break;
      }
    }
  }
  return r;
}

nlohmann::json to_json(const VerifyResult& r) {
  nlohmann::json outs = nlohmann::json::array();
  for (const auto& d : r.outputs) {
    nlohmann::json e = {
        {"name", d.name}, {"max_abs", d.max_abs}, {"max_rel", d.max_rel}, {"mean_abs", d.mean_abs}};
    if (d.has_top1) e["top1_agreement"] = d.top1_agreement;
    outs.push_back(e);
  }
  nlohmann::json j = {{"model", r.model},
                      {"samples", r.samples},
                      {"outputs", outs},
                      {"within_bounds", r.within_bounds},
                      {"max_rel_bound", r.max_rel_bound},
                      {"cpu", describe(host_cpu())}};
  if (!r.emulated_cpu.empty()) j["emulated_cpu"] = r.emulated_cpu;
  if (!r.int8_format.empty()) j["int8_format"] = r.int8_format;
  if (r.labelled) j["top1"] = {{"onnxruntime", r.top1_ort}, {"mpq", r.top1_mpq}};
  if (!r.layers.empty()) {
    nlohmann::json layers = nlohmann::json::array();
    for (const LayerDiff& d : r.layers)
      layers.push_back(
          {{"layer", d.layer}, {"value", d.value}, {"max_abs", d.max_abs}, {"max_rel", d.max_rel}});
    j["layers"] = layers;
    j["first_divergent_layer"] = r.first_divergent;
  }
  return j;
}

std::string format_text(const VerifyResult& r) {
  std::ostringstream o;
  o << r.model << ": ONNX Runtime vs mpq on " << r.samples << " samples\n";
  o << "output            max abs      max rel      mean abs     top-1 agreement\n";
  for (const auto& d : r.outputs) {
    o << std::left << std::setw(16) << d.name << std::right << std::scientific
      << std::setprecision(3) << std::setw(11) << d.max_abs << std::setw(13) << d.max_rel
      << std::setw(13) << d.mean_abs << std::fixed << std::setprecision(2);
    if (d.has_top1) o << std::setw(14) << 100 * d.top1_agreement << " %";
    o << "\n";
  }
  if (r.labelled) {
    o << std::fixed << std::setprecision(2) << "top-1 accuracy: ONNX Runtime " << 100 * r.top1_ort
      << " %, mpq " << 100 * r.top1_mpq << " %\n";
  }
  if (!r.layers.empty()) {
    o << "layer outputs (the batch that differed most):\n";
    for (const LayerDiff& d : r.layers) {
      o << "  " << std::left << std::setw(28) << d.layer << std::right << std::scientific
        << std::setprecision(3) << " max rel " << d.max_rel
        << (d.max_rel > r.max_rel_bound ? "  beyond the bound" : "") << "\n";
    }
    o << std::fixed;
  }
  if (r.within_bounds) {
    o << "ONNX Runtime agrees with mpq's simulation within the bounds\n";
  } else {
    o << std::setprecision(3)
      << "ONNX Runtime differs from mpq's simulation beyond the bounds (max rel " << r.max_rel_bound
      << ")";
    if (!r.first_divergent.empty()) o << ", first at layer '" << r.first_divergent << "'";
    o << "\n";
    const bool emulated = !r.emulated_cpu.empty();
    if ((r.int8_format == "u8s8" || r.int8_format == "s8s8") &&
        (emulated || !u8s8_exact(host_cpu()))) {
      o << "the model's int8 types are " << r.int8_format << ", whose products "
        << (emulated ? "a CPU without VNNI (ONNX Runtime ran on an emulated " + r.emulated_cpu + ")"
                     : std::string("this CPU (no VNNI)"))
        << " sums in saturating 16-bit pairs: export with --int8 u8u8 or reduce-range\n";
    }
  }
  return o.str();
}

}  // namespace mpq
