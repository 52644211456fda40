// The `delta-loss` metric: the measured truth every other metric is judged against. For each layer
// l and candidate b, only layer l's weight is replaced by W_l + dW_l(b) (delta_weight) and the
// model is evaluated on the options' samples: Omega_l(b) = loss_q - loss_float (cross-entropy, or
// label-free the loss of output_kind.h against the float model), parts {loss, top1, kl, sqnr_db}
// for class scores; other outputs {loss, sqnr_db} and kl, agreement or cosine as output_kind.h
// defines them for the kind. With act_bits, also each
// layer's input activation alone at each activation candidate (per-tensor affine, min-max range
// from the same samples), in LayerSensitivity::act. measure_config() evaluates any mixed
// configuration the same way (validation).
#pragma once

#include <map>
#include <memory>

#include "sensitivity/sensitivity.h"

namespace mpq {

SensitivityResult delta_loss_sensitivity(const SensitivityContext& context);

struct ConfigMeasure {
  double loss = 0, delta_loss = 0, top1 = 0, kl = 0, sqnr_db = 0;
};
// Measures mixed configurations (weight bits per layer name; layers left out, or at 32 bits, stay
// float) on the context's samples. The float pass runs once, in the constructor, and each
// (layer, bits) dW is made once; each measure() is one pass over the samples. The context must
// outlive the measurer. Example: ConfigMeasurer m(ctx); double d = m.measure({{"conv1", 4}}).loss;
class ConfigMeasurer {
 public:
  explicit ConfigMeasurer(const SensitivityContext& context);
  ~ConfigMeasurer();
  ConfigMeasure measure(const std::map<std::string, int>& weight_bits);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// One configuration: ConfigMeasurer(context).measure(weight_bits).
ConfigMeasure measure_config(const SensitivityContext& context,
                             const std::map<std::string, int>& weight_bits);

}  // namespace mpq
