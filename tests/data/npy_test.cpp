// .npy and .npz: round trips of every supported type, files written by NumPy (fixtures made with
// tests/data/fixtures/make_fixtures.py), stored and deflated archives, lazy reads.

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "core/fs.h"
#include "data/dataset.h"
#include "data_test_util.h"

namespace mpq {
namespace {

using testing::temp_dir;

std::string fixture(const std::string& name) {
  return std::string(MPQ_SOURCE_DIR) + "/tests/data/fixtures/" + name;
}

TEST(Npy, RoundTripEveryType) {
  std::string dir = temp_dir();
  at::manual_seed(3);
  at::Tensor base = at::randn({3, 5}) * 50;
  std::vector<at::ScalarType> types = {at::kFloat, at::kDouble, at::kHalf, at::kChar, at::kShort,
                                       at::kInt,   at::kLong,   at::kByte, at::kBool};
  for (at::ScalarType type : types) {
    SCOPED_TRACE(at::toString(type));
    for (const at::Tensor& t :
         {base.to(type), base.to(type)[1][2], base.to(type).slice(1, 0, 0), base.to(type).t()}) {
      std::string path = dir + "/t.npy";
      save_npy(path, t);
      at::Tensor back = load_npy(path);
      EXPECT_EQ(back.scalar_type(), type);
      EXPECT_EQ(back.sizes(), t.sizes());
      EXPECT_TRUE(at::equal(back, t));
      // NumPy's layout: the data starts on a 64-byte boundary.
      EXPECT_EQ((std::filesystem::file_size(path) - t.nbytes()) % 64, 0u);
    }
  }
  EXPECT_MPQ_ERROR(save_npy(dir + "/c.npy", at::zeros({2}, at::kComplexFloat)), dir + "/c.npy");
  // Nothing half-written is left behind.
  EXPECT_FALSE(file_exists(dir + "/c.npy"));
}

TEST(Npy, ReadsFilesWrittenByNumpy) {
  at::Tensor f = load_npy(fixture("numpy_f4.npy"));
  EXPECT_TRUE(at::equal(f, at::arange(12, at::kFloat).reshape({3, 4}) * 0.5 - 1));
  at::Tensor i = load_npy(fixture("numpy_i8.npy"));
  EXPECT_TRUE(at::equal(
      i, at::tensor({int64_t(3), int64_t(-1), int64_t(7), int64_t(1) << 40, -(int64_t(1) << 33)},
                    at::kLong)));
  at::Tensor be = load_npy(fixture("numpy_be_i4.npy"));  // '>i4': big endian
  EXPECT_EQ(be.scalar_type(), at::kInt);
  EXPECT_TRUE(at::equal(be, at::tensor({1, -2, 3, 65536, -70000, 0}, at::kInt).reshape({2, 3})));
  at::Tensor b = load_npy(fixture("numpy_bool.npy"));
  EXPECT_TRUE(at::equal(b, at::tensor({1, 0, 0, 1}, at::kByte).to(at::kBool)));
}

TEST(Npy, DatasetWithLabelsStreams) {
  std::string dir = temp_dir();
  at::Tensor x = at::arange(7 * 2 * 3, at::kFloat).reshape({7, 2, 3});
  at::Tensor y = at::tensor({1, 0, 4, 4, 2, 0, 1}, at::kInt);
  save_npy(dir + "/x.npy", x);
  save_npy(dir + "/y.npy", y);
  DataOptions o;
  o.spec = dir + "/x.npy";
  o.labels = dir + "/y.npy";
  o.preprocess.std = {2.0};  // float source: no automatic scale
  auto data = open_dataset(o);
  EXPECT_EQ(data->size(), 7);
  EXPECT_EQ(data->sample_shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(data->num_classes(), 5);
  EXPECT_EQ(data->describe(), "npy " + dir + "/x.npy (7 samples, 2x3, 5 classes)");
  Batch b = data->read({6, 2, 3});
  EXPECT_TRUE(at::allclose(b.x, x.index_select(0, at::tensor({6, 2, 3}, at::kLong)) / 2));
  EXPECT_TRUE(at::equal(b.y, at::tensor({1, 4, 4}, at::kLong)));

  // Overwriting sample 5's first value after opening shows in the next read.
  {
    std::fstream f(dir + "/x.npy", std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(128 + 5 * 6 * 4);
    float v = -1000;
    f.write(reinterpret_cast<const char*>(&v), 4);
  }
  EXPECT_FLOAT_EQ(data->read({5}).x[0][0][0].item<float>(), -500.0f);
}

TEST(Npz, StoredArchiveFromNumpy) {
  std::string path = fixture("stored.npz");  // np.savez(x=float32 [4,2,3], y=int64 [4])
  auto data = open_dataset(path);
  EXPECT_EQ(data->size(), 4);
  EXPECT_EQ(data->sample_shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(data->num_classes(), 3);
  Batch b = data->read({3, 0});
  at::Tensor x = at::arange(24, at::kFloat).reshape({4, 2, 3}) / 8;
  EXPECT_TRUE(at::equal(b.x, at::stack({x[3], x[0]})));
  EXPECT_TRUE(at::equal(b.y, at::tensor({2, 2}, at::kLong)));
  auto all = load_npz(path);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE(at::equal(all["x"], x));
  EXPECT_TRUE(at::equal(all["y"], at::tensor({2, 0, 1, 2}, at::kLong)));
}

TEST(Npz, CompressedArchiveFromNumpy) {
  // np.savez_compressed(images=uint8 [6,1,2,2] = arange * 10, labels=int32 [6])
  std::string path = fixture("compressed.npz");
  DataOptions o;
  o.spec = path;
  o.preprocess.mean = {0.5};
  auto data = open_dataset(o);
  EXPECT_EQ(data->size(), 6);
  EXPECT_EQ(data->sample_shape(), (std::vector<int64_t>{1, 2, 2}));
  EXPECT_EQ(data->num_classes(), 3);
  Batch b = data->read({5, 1});
  at::Tensor images = (at::arange(24, at::kFloat) * 10).reshape({6, 1, 2, 2});
  EXPECT_TRUE(at::allclose(b.x, at::stack({images[5], images[1]}) / 255 - 0.5));
  EXPECT_TRUE(at::equal(b.y, at::tensor({2, 1}, at::kLong)));
  auto all = load_npz(path);
  EXPECT_EQ(all["images"].scalar_type(), at::kByte);
  EXPECT_EQ(all["labels"].scalar_type(), at::kInt);
}

TEST(Npz, CorruptArchives) {
  std::string dir = temp_dir();
  std::string bytes = read_file(fixture("compressed.npz"));
  // Cut short: the end record is gone.
  testing::write_bytes(dir + "/cut.npz", bytes.substr(0, bytes.size() / 2));
  EXPECT_MPQ_ERROR(open_dataset(dir + "/cut.npz"), dir + "/cut.npz");
  // A flipped byte inside the first deflated entry.
  std::string flipped = bytes;
  flipped[60] = char(flipped[60] ^ 0x55);
  testing::write_bytes(dir + "/flip.npz", flipped);
  EXPECT_MPQ_ERROR(load_npz(dir + "/flip.npz"), dir + "/flip.npz:images");
  // Several arrays, none with a known name: the error lists what there is.
  EXPECT_MPQ_ERROR(open_dataset(fixture("unnamed.npz")), "found a, b");
  EXPECT_MPQ_ERROR(open_dataset(fixture("unnamed.npz")), fixture("unnamed.npz"));
  EXPECT_EQ(load_npz(fixture("unnamed.npz")).size(), 2u);
}

}  // namespace
}  // namespace mpq
