#include "exec/op_context.h"

#include <ATen/ATen.h>

namespace mpq {
namespace {
const char* type_name(AttrType t) {
  switch (t) {
    case AttrType::kFloat:
      return "float";
    case AttrType::kInt:
      return "int";
    case AttrType::kString:
      return "string";
    case AttrType::kTensor:
      return "tensor";
    case AttrType::kGraph:
      return "graph";
    case AttrType::kFloats:
      return "floats";
    case AttrType::kInts:
      return "ints";
    case AttrType::kStrings:
      return "strings";
    default:
      return "undefined";
  }
}
}  // namespace

const at::Tensor& OpContext::input(int64_t i) const {
  check(has_input(i), "input ", i, " is required but missing");
  return inputs_[size_t(i)];
}

std::vector<int64_t> OpContext::input_ints(int64_t i) const {
  at::Tensor t = input(i).detach().to(at::kCPU).to(at::kLong).contiguous().reshape({-1});
  const int64_t* p = t.data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + t.numel());
}

std::vector<double> OpContext::input_doubles(int64_t i) const {
  at::Tensor t = input(i).detach().to(at::kCPU).to(at::kDouble).contiguous().reshape({-1});
  const double* p = t.data_ptr<double>();
  return std::vector<double>(p, p + t.numel());
}

const Attribute& OpContext::attr(const std::string& name, AttrType type) const {
  auto it = node_.attrs.find(name);
  check(it != node_.attrs.end(), "attribute '", name, "' is required but missing");
  check(it->second.type == type, "attribute '", name, "': expected ", type_name(type), ", found ",
        type_name(it->second.type));
  return it->second;
}

int64_t OpContext::attr_int(const std::string& name) const { return attr(name, AttrType::kInt).i; }

int64_t OpContext::attr_int(const std::string& name, int64_t fallback) const {
  return has_attr(name) ? attr(name, AttrType::kInt).i : fallback;
}

double OpContext::attr_float(const std::string& name, double fallback) const {
  return has_attr(name) ? attr(name, AttrType::kFloat).f : fallback;
}

std::string OpContext::attr_string(const std::string& name, const std::string& fallback) const {
  return has_attr(name) ? attr(name, AttrType::kString).s : fallback;
}

std::vector<int64_t> OpContext::attr_ints(const std::string& name,
                                          const std::vector<int64_t>& fallback) const {
  return has_attr(name) ? attr(name, AttrType::kInts).ints : fallback;
}

std::vector<double> OpContext::attr_floats(const std::string& name,
                                           const std::vector<double>& fallback) const {
  return has_attr(name) ? attr(name, AttrType::kFloats).floats : fallback;
}

at::Tensor OpContext::attr_tensor(const std::string& name) const {
  return attr(name, AttrType::kTensor).t;
}

}  // namespace mpq
