// Proto-level helpers shared by onnx/*.cpp (import, export, tensor files). Not for other modules.
#pragma once

#include <ATen/core/Tensor.h>
#include <onnx/onnx_pb.h>

#include <string>

namespace mpq::internal {

// INT4 and UINT4 tensors come back unpacked as int8 / uint8; `onnx_type` (if given) receives the
// stored element type so that export can pack them again.
at::Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& base_dir,
                             const std::string& where, int32_t* onnx_type = nullptr);
// onnx_type 0: the tensor's own type; kOnnxInt4 / kOnnxUint4: pack an int8 / uint8 tensor whose
// values fit 4 bits.
void tensor_to_proto(const at::Tensor& tensor, const std::string& name, onnx::TensorProto* proto,
                     int32_t onnx_type = 0);

}  // namespace mpq::internal
