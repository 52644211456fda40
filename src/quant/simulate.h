// Simulated quantization: runs a QuantizedModel in mpq's executor with float arithmetic on the
// quantized values (fake quantization), so accuracy, sensitivity and training see exactly what the
// exported QDQ model computes. Weights are replaced through weight hooks, each quantized layer's
// input through a value hook on its "<layer>/input_quant" Identity (ptq.h).
//   static:          weights are the PTQ result (integer weights times scales, or multipoint sums);
//   differentiable:  weights are fake-quantized from the current float initializers on every run
//                    with the PTQ scales, straight-through gradients (scheme.h) reaching the float
//                    weights, for sensitivity and quantization-aware training.
// Activations use straight-through fake quantization in both modes.
#pragma once

#include "exec/executor.h"
#include "quant/ptq.h"

namespace mpq {

enum class SimulationMode { kStatic, kDifferentiable };

// `executor` must run `model.graph`; the model must outlive it. Replaces any hooks it had.
// Example: Executor ex(q.graph); attach_quantizers(&ex, q); auto y = ex.run({x});
void attach_quantizers(Executor* executor, const QuantizedModel& model,
                       SimulationMode mode = SimulationMode::kStatic);

}  // namespace mpq
