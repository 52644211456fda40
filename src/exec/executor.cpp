#include "exec/executor.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "exec/runtime.h"
#include "onnx/tensor_proto.h"

namespace mpq {

Executor::Executor(const Graph& graph, const OpRegistry& ops)
    : graph_(graph), opset_(graph.opset()) {
  auto add_value = [&](const std::string& name) {
    auto it = ids_.find(name);
    if (it != ids_.end()) return it->second;
    int64_t id = int64_t(names_.size());
    ids_[name] = id;
    names_.push_back(name);
    return id;
  };
  for (const auto& in : graph.inputs) input_ids_.push_back(add_value(in.name));
  for (const auto& [name, tensor] : graph.initializers) {
    weights_.emplace_back(add_value(name), &tensor);
  }
  first_node_value_ = int64_t(names_.size());
  for (const auto& node : graph.nodes) {
    MPQ_CHECK(node.domain.empty(), graph.where(node), ": domain '", node.domain,
              "' is not supported (mpq runs the default ai.onnx domain)");
    const OpRow* row = ops.find(node.op_type, opset_);
    if (!row) {
      MPQ_CHECK(ops.knows(node.op_type), graph.where(node), ": op ", node.op_type,
                " is not supported by mpq (opset ", opset_, ")");
      MPQ_FAIL(graph.where(node), ": op ", node.op_type, " at opset ", opset_,
               " is not supported by mpq (other opsets of it are)");
    }
    Step step{&node, row->kernel, {}, {}, {}};
    for (const auto& in : node.inputs) step.inputs.push_back(in.empty() ? -1 : id(in));
    for (const auto& out : node.outputs) step.outputs.push_back(out.empty() ? -1 : add_value(out));
    steps_.push_back(std::move(step));
  }
  for (const auto& out : graph.outputs)
    MPQ_CHECK(ids_.count(out.name), graph.source, ": graph output '", out.name,
              "' is not produced by any node");
  // Free each intermediate after its last reader.
  std::map<int64_t, size_t> last;
  for (size_t s = 0; s < steps_.size(); ++s)
    for (int64_t v : steps_[s].inputs)
      if (v >= 0) last[v] = s;
  for (const auto& [v, s] : last) steps_[s].release.push_back(v);
}

int64_t Executor::id(const std::string& value) const {
  auto it = ids_.find(value);
  MPQ_CHECK(it != ids_.end(), graph_.source, ": value '", value, "' is not known to the graph");
  return it->second;
}

void Executor::set_weight_hook(const std::string& initializer, Hook hook) {
  MPQ_CHECK(graph_.is_initializer(initializer), graph_.source, ": no weight named '", initializer,
            "'");
  weight_hooks_[id(initializer)] = std::move(hook);
}

void Executor::set_value_hook(const std::string& value, Hook hook) {
  value_hooks_[id(value)] = std::move(hook);
}

void Executor::clear_hooks() {
  weight_hooks_.clear();
  value_hooks_.clear();
}

namespace {
std::string shape_string(const ValueInfo& info) {
  std::string s = "[";
  for (size_t i = 0; i < info.shape.size(); ++i) {
    if (i) s += ",";
    const Dim& d = info.shape[i];
    s += d.fixed() ? std::to_string(d.value) : (d.param.empty() ? "?" : d.param);
  }
  return s + "]";
}
}  // namespace

void Executor::check_input(size_t index, const at::Tensor& t) const {
  const ValueInfo& info = graph_.inputs.at(index);
  std::string label = graph_.source + ": input '" + info.name + "'";
  MPQ_CHECK(t.defined(), label, ": no tensor given");
  if (info.elem_type != 0) {
    at::ScalarType want = scalar_type_from_onnx(info.elem_type, label);
    bool both_float = at::isFloatingType(want) && at::isFloatingType(t.scalar_type());
    MPQ_CHECK(want == t.scalar_type() || both_float, label, ": expected element type ",
              onnx_type_name(info.elem_type), ", found ", at::toString(t.scalar_type()));
  }
  if (!info.has_shape) return;
  bool ok = int64_t(info.shape.size()) == t.dim();
  for (size_t i = 0; ok && i < info.shape.size(); ++i)
    if (info.shape[i].fixed() && info.shape[i].value != t.size(int64_t(i))) ok = false;
  MPQ_CHECK(ok, label, ": expected shape ", shape_string(info), ", found ", t.sizes());
}

std::vector<at::Tensor> Executor::run(const std::vector<at::Tensor>& inputs) const {
  MPQ_CHECK(inputs.size() == input_ids_.size(), graph_.source, ": expected ", input_ids_.size(),
            " input tensor(s), found ", inputs.size());
  std::vector<at::Tensor> values(names_.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    check_input(i, inputs[i]);
    values[size_t(input_ids_[i])] = inputs[i];
  }
  std::vector<int64_t> keep;
  for (const auto& out : graph_.outputs) keep.push_back(id(out.name));
  return execute(std::move(values), keep);
}

std::map<std::string, at::Tensor> Executor::run_named(
    const std::map<std::string, at::Tensor>& inputs, const std::vector<std::string>& fetch) const {
  std::vector<at::Tensor> values(names_.size());
  for (const auto& [name, tensor] : inputs) {
    size_t index = 0;
    while (index < graph_.inputs.size() && graph_.inputs[index].name != name) ++index;
    MPQ_CHECK(index < graph_.inputs.size(), graph_.source, ": the model has no input named '", name,
              "'");
    check_input(index, tensor);
    values[size_t(input_ids_[index])] = tensor;
  }
  for (size_t i = 0; i < input_ids_.size(); ++i)
    MPQ_CHECK(values[size_t(input_ids_[i])].defined(), graph_.source, ": input '",
              graph_.inputs[i].name, "' was not given");
  std::vector<std::string> names = fetch;
  if (names.empty())
    for (const auto& out : graph_.outputs) names.push_back(out.name);
  std::vector<int64_t> keep;
  for (const auto& n : names) keep.push_back(id(n));
  std::vector<at::Tensor> out = execute(std::move(values), keep);
  std::map<std::string, at::Tensor> result;
  for (size_t i = 0; i < names.size(); ++i) result[names[i]] = out[i];
  return result;
}

Executor::Footprint Executor::footprint(const std::vector<at::Tensor>& inputs) const {
  Footprint f;
  at::NoGradGuard no_grad;
  footprint_ = &f;
  reset_peak_allocated();
  const int64_t before = allocated_bytes();
  try {
    run(inputs);
  } catch (...) {
    footprint_ = nullptr;
    throw;
  }
  footprint_ = nullptr;
  // The allocator's count also sees the kernels' own buffers (oneDNN reorders, scratch).
  if (allocations_counted()) f.peak = std::max(f.peak, peak_allocated_bytes() - before);
  std::sort(f.largest.rbegin(), f.largest.rend());
  if (f.largest.size() > 5) f.largest.resize(5);
  return f;
}

int64_t batch_within(int64_t bytes_per_sample, int64_t budget_bytes, int64_t wanted) {
  if (bytes_per_sample <= 0) return std::max<int64_t>(1, wanted);
  return std::clamp<int64_t>(budget_bytes / bytes_per_sample, 1, std::max<int64_t>(1, wanted));
}

std::vector<at::Tensor> Executor::execute(std::vector<at::Tensor> values,
                                          const std::vector<int64_t>& keep) const {
  std::set<int64_t> kept(keep.begin(), keep.end());
  // Values that may still be read: the owners that in-place kernels must not disturb.
  std::vector<int64_t> live;
  int64_t live_bytes = 0;  // node outputs alive, for footprint()
  // Hooks may keep the tensors they see, so in-place kernels are only allowed without them.
  const bool inplace = !at::GradMode::is_enabled() && value_hooks_.empty();
  const Step* current = nullptr;
  std::function<bool(int64_t)> overwrite_check = [&](int64_t i) {
    int64_t v = current->inputs[size_t(i)];
    if (!inplace || v < 0 || kept.count(v) || is_graph_input_or_weight(v)) return false;
    if (std::count(current->inputs.begin(), current->inputs.end(), v) != 1) return false;
    if (std::find(current->release.begin(), current->release.end(), v) == current->release.end())
      return false;
    const at::Tensor& t = values[size_t(v)];
    if (!t.is_non_overlapping_and_dense()) return false;
    for (int64_t other : live)
      if (other != v && values[size_t(other)].defined() && values[size_t(other)].is_alias_of(t))
        return false;
    return true;
  };
  for (const auto& [vid, tensor] : weights_) {
    live.push_back(vid);
    auto hook = weight_hooks_.find(vid);
    values[size_t(vid)] =
        hook == weight_hooks_.end() ? *tensor : hook->second(names_[vid], *tensor);
  }
  for (int64_t vid : input_ids_) {
    live.push_back(vid);
    auto hook = value_hooks_.find(vid);
    if (hook != value_hooks_.end()) values[size_t(vid)] = hook->second(names_[vid], values[vid]);
  }
  for (const auto& step : steps_) {
    std::vector<at::Tensor> args;
    args.reserve(step.inputs.size());
    for (int64_t v : step.inputs) {
      if (v < 0) {
        args.emplace_back();
        continue;
      }
      MPQ_ASSERT(values[size_t(v)].defined(), "value '", names_[v], "' read before it was made");
      args.push_back(values[size_t(v)]);
    }
    OpContext ctx(graph_, *step.node, opset_, std::move(args));
    current = &step;
    ctx.set_overwrite_check(&overwrite_check);
    ctx.set_training(training_);
    auto start =
        profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    std::vector<at::Tensor> outs;
    try {
      outs = step.kernel(ctx);
    } catch (const c10::Error& e) {
      // An ATen check the kernel did not anticipate: name the node, keep ATen's first line.
      std::string msg = e.what_without_backtrace();
      MPQ_FAIL(graph_.where(*step.node), ": ", msg.substr(0, msg.find('\n')));
    }
    if (profiling_) {
      OpTime& t = profile_[step.node->op_type];
      t.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      t.calls++;
    }
    for (size_t o = 0; o < step.outputs.size(); ++o) {
      int64_t v = step.outputs[o];
      if (v < 0) continue;
      MPQ_ASSERT(o < outs.size() && outs[o].defined(), graph_.where(*step.node),
                 ": kernel produced no output ", o);
      auto hook = value_hooks_.find(v);
      values[size_t(v)] =
          hook == value_hooks_.end() ? std::move(outs[o]) : hook->second(names_[v], outs[o]);
      live.push_back(v);
      if (footprint_) {
        const int64_t bytes = int64_t(values[size_t(v)].nbytes());
        live_bytes += bytes;
        footprint_->total += bytes;
        footprint_->peak = std::max(footprint_->peak, live_bytes);
        footprint_->largest.push_back({bytes, names_[v]});
      }
    }
    for (int64_t v : step.release) {
      if (kept.count(v)) continue;
      if (footprint_ && !is_graph_input_or_weight(v) && values[size_t(v)].defined())
        live_bytes -= int64_t(values[size_t(v)].nbytes());
      values[size_t(v)].reset();
      live.erase(std::remove(live.begin(), live.end(), v), live.end());
    }
  }
  std::vector<at::Tensor> result;
  for (int64_t v : keep) {
    MPQ_CHECK(values[size_t(v)].defined(), graph_.source, ": value '", names_[v],
              "' was not computed");
    result.push_back(values[size_t(v)]);
  }
  return result;
}

}  // namespace mpq
