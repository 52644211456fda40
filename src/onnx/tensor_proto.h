// ONNX TensorProto <-> ATen tensor, and ONNX element types <-> ATen scalar types. The proto class
// stays out of this header so that only onnx/*.cpp and data/*.cpp compile against protobuf.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace mpq {

// ONNX TensorProto.DataType values mpq understands.
enum OnnxType : int32_t {
  kOnnxUndefined = 0,
  kOnnxFloat = 1,
  kOnnxUint8 = 2,
  kOnnxInt8 = 3,
  kOnnxUint16 = 4,
  kOnnxInt16 = 5,
  kOnnxInt32 = 6,
  kOnnxInt64 = 7,
  kOnnxString = 8,
  kOnnxBool = 9,
  kOnnxFloat16 = 10,
  kOnnxDouble = 11,
  kOnnxUint32 = 12,
  kOnnxUint64 = 13,
  kOnnxBfloat16 = 16,
  kOnnxUint4 = 21,  // opset 21: two values per byte, low nibble first; held as uint8 / int8
  kOnnxInt4 = 22,
};

// The ATen type for an ONNX element type; throws naming `where` for types ATen lacks.
at::ScalarType scalar_type_from_onnx(int32_t elem_type, const std::string& where);
int32_t onnx_type_from_scalar(at::ScalarType type);
std::string onnx_type_name(int32_t elem_type);

// Parses serialized TensorProto bytes (a .pb file). `base_dir` resolves external data.
at::Tensor tensor_from_proto_bytes(const std::string& bytes, const std::string& base_dir,
                                   const std::string& where);
// Reads a TensorProto .pb file (ONNX's test-data format).
at::Tensor load_tensor_pb(const std::string& path);
// Serializes a tensor as TensorProto bytes with the given name.
std::string tensor_to_proto_bytes(const at::Tensor& tensor, const std::string& name);
void save_tensor_pb(const at::Tensor& tensor, const std::string& name, const std::string& path);

}  // namespace mpq
