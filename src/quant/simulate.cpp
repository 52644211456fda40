#include "quant/simulate.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace mpq {

void attach_quantizers(Executor* ex, const QuantizedModel& model, SimulationMode mode) {
  MPQ_ASSERT(&ex->graph() == &model.graph, "the executor must run the quantized model's graph");
  ex->clear_hooks();
  for (const QuantizedLayer& ql : model.layers) {
    if (ql.weight_quantized) {
      if (mode == SimulationMode::kStatic || ql.multipoint) {
        at::Tensor w_hat = ql.weight_hat;
        ex->set_weight_hook(ql.layer.weight, [w_hat](const std::string&, const at::Tensor& w) {
          return w_hat.to(w.scalar_type());
        });
      } else {
        const QuantizedLayer* l = &ql;
        ex->set_weight_hook(ql.layer.weight, [l](const std::string&, const at::Tensor& w) {
          return from_rows(fake_quantize(to_rows(w, l->layout), l->weight_params), l->layout);
        });
      }
    }
    if (ql.act_quantized) {
      QParams p = ql.act_params;
      ex->set_value_hook(ql.act_value, [p](const std::string&, const at::Tensor& x) {
        return fake_quantize(x, p);
      });
    }
  }
}

}  // namespace mpq
