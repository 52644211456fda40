// Proto-level helpers shared by onnx/*.cpp (import, export, tensor files). Not for other modules.
#pragma once

#include <ATen/core/Tensor.h>
#include <onnx/onnx_pb.h>

#include <string>

namespace mpq::internal {

at::Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& base_dir,
                             const std::string& where);
void tensor_to_proto(const at::Tensor& tensor, const std::string& name, onnx::TensorProto* proto);

}  // namespace mpq::internal
