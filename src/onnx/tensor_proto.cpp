#include "onnx/tensor_proto.h"

#include <ATen/ATen.h>

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/fs.h"
#include "onnx/internal/proto.h"

namespace mpq {

at::ScalarType scalar_type_from_onnx(int32_t elem_type, const std::string& where) {
  switch (elem_type) {
    case kOnnxFloat:
      return at::kFloat;
    case kOnnxUint8:
      return at::kByte;
    case kOnnxInt8:
      return at::kChar;
    case kOnnxInt16:
      return at::kShort;
    case kOnnxInt32:
      return at::kInt;
    case kOnnxInt64:
      return at::kLong;
    case kOnnxBool:
      return at::kBool;
    case kOnnxFloat16:
      return at::kHalf;
    case kOnnxDouble:
      return at::kDouble;
    case kOnnxBfloat16:
      return at::kBFloat16;
    default:
      MPQ_FAIL(where, ": element type ", onnx_type_name(elem_type),
               " is not supported (expected float, double, float16, bfloat16, int8/16/32/64, "
               "uint8 or bool)");
  }
}

int32_t onnx_type_from_scalar(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return kOnnxFloat;
    case at::kByte:
      return kOnnxUint8;
    case at::kChar:
      return kOnnxInt8;
    case at::kShort:
      return kOnnxInt16;
    case at::kInt:
      return kOnnxInt32;
    case at::kLong:
      return kOnnxInt64;
    case at::kBool:
      return kOnnxBool;
    case at::kHalf:
      return kOnnxFloat16;
    case at::kDouble:
      return kOnnxDouble;
    case at::kBFloat16:
      return kOnnxBfloat16;
    default:
      MPQ_ASSERT(false, "no ONNX type for ", at::toString(type));
  }
  return kOnnxUndefined;
}

std::string onnx_type_name(int32_t elem_type) {
  if (elem_type == kOnnxUint4) return "UINT4";  // newer than the installed ONNX's enum
  if (elem_type == kOnnxInt4) return "INT4";
  if (onnx::TensorProto_DataType_IsValid(elem_type)) {
    return onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(elem_type));
  }
  return "type " + std::to_string(elem_type);
}

namespace internal {
namespace {

// Copies a typed repeated field into a tensor of `type`.
template <typename Field>
at::Tensor from_field(const Field& field, at::ScalarType type, at::IntArrayRef shape) {
  using T = typename Field::value_type;
  std::vector<T> values(field.begin(), field.end());
  at::ScalarType src = std::is_same_v<T, float>     ? at::kFloat
                       : std::is_same_v<T, double>  ? at::kDouble
                       : std::is_same_v<T, int64_t> ? at::kLong
                       : std::is_same_v<T, int32_t> ? at::kInt
                                                    : at::kLong;
  at::Tensor t = at::from_blob(values.data(), {int64_t(values.size())}, at::TensorOptions(src));
  return t.to(type).clone().reshape(shape);
}

std::string read_external(const onnx::TensorProto& proto, const std::string& base_dir,
                          const std::string& where) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : proto.external_data()) {
    if (kv.key() == "location") location = kv.value();
    if (kv.key() == "offset") offset = std::stoll(kv.value());
    if (kv.key() == "length") length = std::stoll(kv.value());
  }
  MPQ_CHECK(!location.empty(), where, ": tensor '", proto.name(),
            "' has external data without a location");
  MPQ_CHECK(location.find("..") == std::string::npos && location[0] != '/', where, ": tensor '",
            proto.name(), "': external data location '", location,
            "' must be a relative path inside the model's folder");
  std::string path = join_path(base_dir, location);
  std::ifstream in(path, std::ios::binary);
  MPQ_CHECK(in.good(), where, ": tensor '", proto.name(), "': external data file '", path,
            "' not found");
  in.seekg(0, std::ios::end);
  int64_t size = in.tellg();
  if (length < 0) length = size - offset;
  MPQ_CHECK(offset >= 0 && offset + length <= size, where, ": tensor '", proto.name(),
            "': external data [", offset, ", ", offset + length, ") lies outside '", path, "' (",
            size, " bytes)");
  std::string bytes(size_t(length), '\0');
  in.seekg(offset);
  in.read(bytes.data(), length);
  return bytes;
}

// Two 4-bit values per byte, the first in the low nibble; signed values sign-extend.
at::Tensor int4_from_proto(const onnx::TensorProto& proto, const std::string& base_dir,
                           const std::string& where, const std::string& label) {
  bool is_signed = proto.data_type() == kOnnxInt4;
  std::vector<int64_t> shape(proto.dims().begin(), proto.dims().end());
  int64_t numel = 1;
  for (int64_t d : shape) {
    MPQ_CHECK(d >= 0, label, ": negative dimension ", d);
    numel *= d;
  }
  std::string bytes;
  if (proto.data_location() == onnx::TensorProto::EXTERNAL) {
    bytes = read_external(proto, base_dir, where);
  } else if (proto.has_raw_data()) {
    bytes = proto.raw_data();
  } else {
    for (int32_t v : proto.int32_data()) bytes.push_back(char(uint8_t(v)));
  }
  MPQ_CHECK(int64_t(bytes.size()) == (numel + 1) / 2, label, ": expected ", (numel + 1) / 2,
            " bytes of 4-bit data for shape ", at::IntArrayRef(shape), ", found ", bytes.size());
  at::Tensor t = at::empty(shape, at::TensorOptions(is_signed ? at::kChar : at::kByte));
  auto* out = static_cast<uint8_t*>(t.data_ptr());
  for (int64_t i = 0; i < numel; ++i) {
    uint8_t nibble = (uint8_t(bytes[size_t(i / 2)]) >> (4 * (i % 2))) & 0xF;
    out[i] = is_signed && nibble >= 8 ? uint8_t(nibble | 0xF0) : nibble;
  }
  return t;
}

}  // namespace

at::Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& base_dir,
                             const std::string& where, int32_t* onnx_type) {
  std::string label = where + ": tensor '" + proto.name() + "'";
  if (onnx_type) *onnx_type = proto.data_type();
  if (proto.data_type() == kOnnxInt4 || proto.data_type() == kOnnxUint4) {
    return int4_from_proto(proto, base_dir, where, label);
  }
  at::ScalarType type = scalar_type_from_onnx(proto.data_type(), label);
  std::vector<int64_t> shape(proto.dims().begin(), proto.dims().end());
  int64_t numel = 1;
  for (int64_t d : shape) {
    MPQ_CHECK(d >= 0, label, ": negative dimension ", d);
    numel *= d;
  }
  at::TensorOptions opts(type);
  const std::string* raw = nullptr;
  std::string external;
  if (proto.data_location() == onnx::TensorProto::EXTERNAL) {
    external = read_external(proto, base_dir, where);
    raw = &external;
  } else if (proto.has_raw_data()) {
    raw = &proto.raw_data();
  }
  if (raw) {
    int64_t elem = int64_t(c10::elementSize(type));
    MPQ_CHECK(int64_t(raw->size()) == numel * elem, label, ": expected ", numel * elem,
              " bytes of data for shape ", at::IntArrayRef(shape), ", found ", raw->size());
    at::Tensor t = at::empty(shape, opts);
    if (numel > 0) std::memcpy(t.data_ptr(), raw->data(), raw->size());
    return t;
  }
  at::Tensor t;
  switch (proto.data_type()) {
    case kOnnxFloat:
      t = from_field(proto.float_data(), type, shape);
      break;
    case kOnnxDouble:
      t = from_field(proto.double_data(), type, shape);
      break;
    case kOnnxInt64:
      t = from_field(proto.int64_data(), type, shape);
      break;
    case kOnnxFloat16:
    case kOnnxBfloat16: {
      // Stored as raw 16-bit patterns in int32_data.
      std::vector<int16_t> bits(proto.int32_data().begin(), proto.int32_data().end());
      t = at::from_blob(bits.data(), {int64_t(bits.size())}, at::TensorOptions(at::kShort))
              .clone()
              .view(type)
              .reshape(shape);
      break;
    }
    default:
      t = from_field(proto.int32_data(), type, shape);
      break;
  }
  MPQ_CHECK(t.numel() == numel, label, ": expected ", numel, " values, found ", t.numel());
  return t;
}

void tensor_to_proto(const at::Tensor& tensor, const std::string& name, onnx::TensorProto* proto,
                     int32_t onnx_type) {
  at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
  proto->set_name(name);
  if (onnx_type == kOnnxInt4 || onnx_type == kOnnxUint4) {
    bool is_signed = onnx_type == kOnnxInt4;
    at::Tensor v = t.to(at::kLong).reshape({-1});
    int64_t lo = is_signed ? -8 : 0, n = v.numel();
    MPQ_CHECK(n == 0 || (v.min().item<int64_t>() >= lo && v.max().item<int64_t>() <= lo + 15),
              "tensor '", name, "': values do not fit ", is_signed ? "INT4" : "UINT4");
    std::string bytes(size_t((n + 1) / 2), '\0');
    const int64_t* p = v.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) bytes[size_t(i / 2)] |= char((p[i] & 0xF) << (4 * (i % 2)));
    proto->set_data_type(onnx_type);
    for (int64_t d : t.sizes()) proto->add_dims(d);
    proto->set_raw_data(bytes);
    return;
  }
  proto->set_data_type(onnx_type_from_scalar(t.scalar_type()));
  for (int64_t d : t.sizes()) proto->add_dims(d);
  proto->set_raw_data(std::string(static_cast<const char*>(t.data_ptr()), t.nbytes()));
}

}  // namespace internal

at::Tensor tensor_from_proto_bytes(const std::string& bytes, const std::string& base_dir,
                                   const std::string& where) {
  onnx::TensorProto proto;
  MPQ_CHECK(proto.ParseFromString(bytes), where, ": not a valid ONNX TensorProto file");
  return internal::tensor_from_proto(proto, base_dir, where);
}

at::Tensor load_tensor_pb(const std::string& path) {
  return tensor_from_proto_bytes(read_file(path), parent_dir(path), path);
}

std::string tensor_to_proto_bytes(const at::Tensor& tensor, const std::string& name) {
  onnx::TensorProto proto;
  internal::tensor_to_proto(tensor, name, &proto);
  return proto.SerializeAsString();
}

void save_tensor_pb(const at::Tensor& tensor, const std::string& name, const std::string& path) {
  write_file_atomic(path, tensor_to_proto_bytes(tensor, name));
}

}  // namespace mpq
