// `mpq quantize`: a float model and a plan (or uniform bits) in, a QDQ ONNX file out, with real
// sizes on disk next to the papers' weights-only convention and, when asked, the simulated
// accuracy against the float model. `mpq verify`: an exported model run in ONNX Runtime and in
// mpq's executor on the same inputs, compared per output.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "onnx/graph.h"
#include "pipeline/eval.h"
#include "quant/export_qdq.h"
#include "quant/plan.h"
#include "quant/ptq.h"

namespace mpq {

// "4" -> {4, 32} (weights only), "4/8" -> {4, 8}; the error names `flag`.
std::pair<int, int> parse_bits(const std::string& text, const std::string& flag);

// The quantizer a plan names in its "quantizer" section ({"method", "observer", "weight_scale",
// "percentile"}, written by the proxy search), over PtqOptions' defaults; throws naming `where`
// for a field of the wrong type or value.
PtqOptions plan_quantizer(const Plan& plan, const std::string& where);

struct QuantizeResult {
  QuantizedModel model;
  SizeReport sizes;
  int64_t file_bytes = 0;        // the written file
  int64_t float_file_bytes = 0;  // the float model as mpq would write it
  double seconds = 0;            // calibration + quantization + export
  std::string int8_format;       // the integer types written (core/int8_format.h)
  std::string int8_reason;       // why, when "auto" chose
  // BitOps per sample (methods.md: sum_l MACs_l * b_w * b_a, float at 32 bits, a multipoint layer's
  // MACs times its points per channel); 0 when the input shape is not fixed.
  double bitops = 0, float_bitops = 0;
  bool evaluated = false;
  EvalResult float_eval, quant_eval;  // quant_eval compares against the float model
};

// Quantizes `model` and writes `output` (atomically) unless it is empty.
QuantizeResult run_quantize(const Graph& model, const Plan& plan, const Dataset* calibration,
                            const PtqOptions& ptq, const QdqOptions& qdq,
                            const std::string& output);
// The integer-type adjustment run_quantize applies to a plan (apply_int8_format with qdq's
// --int8 choice), for plans quantized elsewhere (a kept calibration).
Plan int8_plan(const Plan& plan, const QdqOptions& qdq);
// The export half of run_quantize, for a model quantized elsewhere (PtqCalibration::quantize of
// an int8_plan): the QDQ file (written unless `output` is empty), its sizes and BitOps.
QuantizeResult export_quantized(const Graph& model, QuantizedModel quantized, const QdqOptions& qdq,
                                const std::string& output);
// A quantized model run in mpq's executor with its static quantizers (simulate.h) over `data`;
// `reference` as in evaluate(). Example: evaluate_simulated(q.model, "q", *data, {}, nullptr).
EvalResult evaluate_simulated(const QuantizedModel& model, const std::string& label,
                              const Dataset& data, const EvalOptions& options,
                              const Executor* reference);

// Simulated accuracy of a quantized model, agreement against the float model.
void evaluate_quantized(const Graph& float_model, QuantizeResult* result, const Dataset& data,
                        const EvalOptions& options);

nlohmann::json to_json(const QuantizeResult& result);
std::string format_text(const QuantizeResult& result);

struct VerifyOptions {
  int64_t samples = 1000;
  int64_t batch_size = 500;  // samples per ONNX Runtime call at most (fewer within --memory)
  // The bounds an output must keep: max |ORT - mpq| / max |ORT| and, for class scores, top-1
  // agreement. Beyond them verify compares every quantized layer to name where ONNX Runtime's
  // kernels first compute something else than the simulation.
  double max_rel = 0.05;
  double min_agreement = 0.995;
  bool per_layer = false;  // compare every quantized layer even within the bounds
};

// One quantized layer's output (or the QuantizeLinear right after it) in ONNX Runtime and in mpq,
// on the samples of the batch whose outputs differed most.
struct LayerDiff {
  std::string layer;  // the node's name
  std::string value;  // the tensor compared
  double max_abs = 0;
  double max_rel = 0;  // max_abs / max |ONNX Runtime value|
};

struct OutputDiff {
  std::string name;
  double max_abs = 0;
  double max_rel = 0;  // max_abs / max |ONNX Runtime output|
  double mean_abs = 0;
  bool has_top1 = false;  // 2-D outputs: top-1 agreement over rows
  double top1_agreement = 0;
};

struct VerifyResult {
  std::string model;
  int64_t samples = 0;
  std::vector<OutputDiff> outputs;
  bool labelled = false;
  double top1_ort = 0, top1_mpq = 0;  // accuracy of the first output when labelled
  bool within_bounds = true;          // every output within VerifyOptions' bounds
  double max_rel_bound = 0;
  std::vector<LayerDiff> layers;  // graph order; empty unless compared
  std::string first_divergent;    // the first layer beyond max_rel ("" if none)
  std::string int8_format;        // from the model's metadata ("" if not an mpq export)
  std::string emulated_cpu;       // the CPU ONNX Runtime ran on under qemu ("" = this one)
};

// Throws when ONNX Runtime is not available or fails on the model.
VerifyResult verify_model(const std::string& path, const Dataset& data,
                          const VerifyOptions& options);
nlohmann::json to_json(const VerifyResult& result);
std::string format_text(const VerifyResult& result);

}  // namespace mpq
