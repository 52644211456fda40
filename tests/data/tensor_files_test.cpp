// ONNX TensorProto .pb files as data: one file, and a folder concatenated in natural name order
// with labels.pb.

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "data/dataset.h"
#include "data_test_util.h"
#include "onnx/tensor_proto.h"

namespace mpq {
namespace {

using testing::temp_dir;

TEST(TensorFiles, FolderInNaturalOrder) {
  std::string dir = temp_dir();
  // Sample k has value k; files hold 0..2, 3..4, 5..6, 7 and are named so that plain string
  // order would put x10 before x2.
  at::Tensor all = at::arange(8, at::kFloat).reshape({8, 1}).expand({8, 2}).contiguous();
  save_tensor_pb(all.slice(0, 0, 3), "x", dir + "/x0.pb");
  save_tensor_pb(all.slice(0, 3, 5), "x", dir + "/x1.pb");
  save_tensor_pb(all.slice(0, 5, 7), "x", dir + "/x2.pb");
  save_tensor_pb(all.slice(0, 7, 8), "x", dir + "/x10.pb");
  save_tensor_pb(at::tensor({0, 1, 2, 3, 0, 1, 2, 3}, at::kLong), "y", dir + "/labels.pb");
  auto data = open_dataset(dir);
  EXPECT_EQ(data->size(), 8);
  EXPECT_EQ(data->sample_shape(), (std::vector<int64_t>{2}));
  EXPECT_EQ(data->num_classes(), 4);
  EXPECT_EQ(data->describe(), "TensorProto " + dir + " (8 samples, 2, 4 classes)");
  // Indices spanning all files, out of order and repeated.
  std::vector<int64_t> idx = {7, 0, 4, 5, 7, 2, 6, 1, 3};
  Batch b = data->read(idx);
  at::Tensor want = all.index_select(0, at::tensor(at::ArrayRef<int64_t>(idx), at::kLong));
  EXPECT_TRUE(at::equal(b.x, want));
  EXPECT_TRUE(at::equal(b.y, at::tensor(at::ArrayRef<int64_t>(idx), at::kLong) % 4));
  // The whole set through a shuffling loader.
  DataLoader loader(*data, 3, true, 11);
  at::Tensor seen = at::zeros({8}, at::kLong);
  while (loader.next(&b)) seen.index_add_(0, b.x.select(1, 0).to(at::kLong), at::ones_like(b.y));
  EXPECT_TRUE(at::equal(seen, at::ones({8}, at::kLong)));
}

TEST(TensorFiles, SingleFileWithNpyLabels) {
  std::string dir = temp_dir();
  at::Tensor x = at::arange(6, at::kByte).reshape({3, 1, 1, 2}) * 50;
  save_tensor_pb(x, "input", dir + "/input_0.pb");
  save_npy(dir + "/y.npy", at::tensor({1.0, 0.0, 1.0}, at::kDouble));  // integral floats are fine
  DataOptions o;
  o.spec = dir + "/input_0.pb";
  o.labels = dir + "/y.npy";
  auto data = open_dataset(o);
  EXPECT_EQ(data->sample_shape(), (std::vector<int64_t>{1, 1, 2}));
  Batch b = data->read({2});
  EXPECT_TRUE(at::allclose(b.x, x.slice(0, 2, 3).to(at::kFloat) / 255));  // uint8: auto 1/255
  EXPECT_TRUE(at::equal(b.y, at::tensor({int64_t(1)}, at::kLong)));
}

TEST(TensorFiles, FilesMustAgree) {
  std::string dir = temp_dir();
  save_tensor_pb(at::zeros({2, 3}), "x", dir + "/a.pb");
  save_tensor_pb(at::zeros({2, 4}), "x", dir + "/b.pb");
  EXPECT_MPQ_ERROR(open_dataset(dir), dir + "/b.pb");
  std::string dir2 = dir + "/labels_only";
  std::filesystem::create_directories(dir2);
  save_tensor_pb(at::zeros({2}, at::kLong), "y", dir2 + "/labels.pb");
  EXPECT_MPQ_ERROR(open_dataset(dir2), dir2);
}

}  // namespace
}  // namespace mpq
