// IDX files: raw and gzipped round trips, stored types, lazy reads, Fashion-MNIST itself.

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "core/fs.h"
#include "data/dataset.h"
#include "data_test_util.h"

namespace mpq {
namespace {

using testing::big_endian;
using testing::idx_bytes;
using testing::temp_dir;

// 5 images of 3x4 with pixel (n, r, c) = (n * 12 + r * 4 + c) * 4 and labels 2, 0, 1, 2, 0.
constexpr int64_t kN = 5, kH = 3, kW = 4;
std::string tiny_images() {
  std::string data;
  for (int i = 0; i < kN * kH * kW; ++i) data += char(i * 4);
  return idx_bytes(0x08, {kN, kH, kW}, data);
}
std::string tiny_labels() { return idx_bytes(0x08, {kN}, std::string("\x02\x00\x01\x02\x00", 5)); }
float pixel(int64_t n, int64_t r, int64_t c) { return float((n * 12 + r * 4 + c) * 4); }

void expect_tiny(const Dataset& data) {
  EXPECT_EQ(data.size(), kN);
  EXPECT_EQ(data.sample_shape(), (std::vector<int64_t>{1, kH, kW}));
  EXPECT_TRUE(data.has_labels());
  EXPECT_EQ(data.num_classes(), 3);
  Batch b = data.read({4, 0, 2, 2});
  ASSERT_EQ(b.x.sizes(), (std::vector<int64_t>{4, 1, kH, kW}));
  EXPECT_EQ(b.x.scalar_type(), at::kFloat);
  std::vector<int64_t> n = {4, 0, 2, 2};
  for (int64_t k = 0; k < 4; ++k) {
    for (int64_t r = 0; r < kH; ++r) {
      for (int64_t c = 0; c < kW; ++c) {
        EXPECT_FLOAT_EQ(b.x[k][0][r][c].item<float>(), pixel(n[k], r, c) / 255.0f);
      }
    }
  }
  EXPECT_TRUE(at::equal(b.y, at::tensor({0, 2, 1, 1}, at::kLong)));
}

TEST(Idx, RawRoundTripWithSiblingLabels) {
  std::string dir = temp_dir();
  testing::write_bytes(dir + "/tiny-images-idx3-ubyte", tiny_images());
  testing::write_bytes(dir + "/tiny-labels-idx1-ubyte", tiny_labels());
  auto data = open_dataset(dir + "/tiny-images-idx3-ubyte");
  expect_tiny(*data);
  EXPECT_EQ(data->describe(),
            "IDX " + dir + "/tiny-images-idx3-ubyte (5 samples, 1x3x4, 3 classes)");
}

TEST(Idx, GzipFolderWithSplit) {
  std::string dir = temp_dir();
  testing::write_gzip(dir + "/train-images-idx3-ubyte.gz", tiny_images());
  testing::write_gzip(dir + "/train-labels-idx1-ubyte.gz", tiny_labels());
  expect_tiny(*open_dataset(dir + ":train"));
  // Same bytes, gzipped or not.
  testing::write_bytes(dir + "/raw-images-idx3-ubyte", tiny_images());
  EXPECT_TRUE(at::equal(load_idx(dir + "/train-images-idx3-ubyte.gz"),
                        load_idx(dir + "/raw-images-idx3-ubyte")));
  // A folder without the requested split says which file it wanted.
  EXPECT_MPQ_ERROR(open_dataset(dir + ":test"), "t10k-images-idx3-ubyte");
}

TEST(Idx, StoredTypesAreByteSwapped) {
  std::string dir = temp_dir();
  std::vector<float> f = {1.5f, -2.25f, 1e-3f, 3e7f, 0.f, -0.5f};
  testing::write_bytes(dir + "/f-idx2-ubyte", idx_bytes(0x0D, {2, 3}, big_endian(f)));
  at::Tensor t = load_idx(dir + "/f-idx2-ubyte");
  EXPECT_EQ(t.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(t, at::tensor(at::ArrayRef<float>(f)).reshape({2, 3})));

  std::vector<int16_t> s = {-300, 2, 32767};
  testing::write_gzip(dir + "/s-idx1-ubyte.gz", idx_bytes(0x0B, {3}, big_endian(s)));
  EXPECT_TRUE(at::equal(load_idx(dir + "/s-idx1-ubyte.gz"), at::tensor(at::ArrayRef<int16_t>(s))));

  std::vector<double> d = {1.0 / 3, -7};
  std::vector<int32_t> i = {-70000, 1 << 30};
  std::vector<int8_t> c = {-128, 127};
  testing::write_bytes(dir + "/d-idx1-ubyte", idx_bytes(0x0E, {2}, big_endian(d)));
  testing::write_bytes(dir + "/i-idx1-ubyte", idx_bytes(0x0C, {2}, big_endian(i)));
  testing::write_bytes(dir + "/c-idx1-ubyte", idx_bytes(0x09, {2}, big_endian(c)));
  EXPECT_TRUE(at::equal(load_idx(dir + "/d-idx1-ubyte"), at::tensor(at::ArrayRef<double>(d))));
  EXPECT_TRUE(at::equal(load_idx(dir + "/i-idx1-ubyte"), at::tensor(at::ArrayRef<int32_t>(i))));
  EXPECT_TRUE(at::equal(load_idx(dir + "/c-idx1-ubyte"), at::tensor(at::ArrayRef<int8_t>(c))));
}

TEST(Idx, RawFilesAreReadLazily) {
  // Rewriting a sample after opening shows up in the next read: the reader seeks, it did not
  // load the file.
  std::string dir = temp_dir();
  std::string path = dir + "/tiny-images-idx3-ubyte";
  testing::write_bytes(path, tiny_images());
  auto data = open_dataset(path);
  {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(16 + 3 * kH * kW);
    f.put(char(255));
  }
  EXPECT_FLOAT_EQ(data->read({3}).x[0][0][0][0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(data->read({2}).x[0][0][0][0].item<float>(), pixel(2, 0, 0) / 255.0f);
  EXPECT_FALSE(data->has_labels());  // no sibling labels file
}

TEST(Idx, LimitAndPreprocess) {
  std::string dir = temp_dir();
  std::string path = dir + "/tiny-images-idx3-ubyte";
  testing::write_bytes(path, tiny_images());
  DataOptions o;
  o.spec = path;
  o.limit = 3;
  o.preprocess.mean = {0.5};
  o.preprocess.std = {0.25};
  o.preprocess.channels = 3;
  auto data = open_dataset(o);
  EXPECT_EQ(data->size(), 3);
  EXPECT_EQ(data->sample_shape(), (std::vector<int64_t>{3, kH, kW}));
  EXPECT_EQ(data->describe(), "IDX " + path + " (first 3 of 5 samples, 3x3x4, unlabelled)");
  Batch b = data->read({1});
  for (int64_t ch = 0; ch < 3; ++ch) {
    EXPECT_FLOAT_EQ(b.x[0][ch][2][3].item<float>(), (pixel(1, 2, 3) / 255.0f - 0.5f) / 0.25f);
  }
  EXPECT_FALSE(b.y.defined());
  EXPECT_MPQ_ERROR(data->read({3}), path);  // beyond the limit
}

// Values checked independently with Python's gzip module on the Debian package's files.
TEST(Idx, FashionMnist) {
  if (!is_directory("/usr/share/datasets/fashion-mnist")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  struct Split {
    const char* spec;
    int64_t size;
    std::vector<int64_t> first_labels;
    int64_t first_image_sum;
  };
  for (const Split& s :
       {Split{"fashion-mnist", 10000, {9, 2, 1, 1, 6, 1, 4, 6, 5, 7}, 33456},
        Split{"fashion-mnist:train", 60000, {9, 0, 0, 3, 0, 2, 7, 2, 5, 5}, 76247}}) {
    SCOPED_TRACE(s.spec);
    auto data = open_dataset(s.spec);
    EXPECT_EQ(data->size(), s.size);
    EXPECT_EQ(data->sample_shape(), (std::vector<int64_t>{1, 28, 28}));
    EXPECT_EQ(data->num_classes(), 10);
    Batch first = data->read({0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    EXPECT_TRUE(at::equal(first.y, at::tensor(at::ArrayRef<int64_t>(s.first_labels))));
    EXPECT_EQ((first.x[0] * 255).round().sum().item<double>(), double(s.first_image_sum));
    // Every label in 0..9, and each class exactly a tenth of the samples.
    at::Tensor counts = at::zeros({10}, at::kLong);
    DataLoader loader(*data, 4096);
    Batch b;
    while (loader.next(&b)) {
      EXPECT_GE(b.x.min().item<float>(), 0.0f);
      EXPECT_LE(b.x.max().item<float>(), 1.0f);
      counts += at::bincount(b.y, {}, 10);
    }
    EXPECT_TRUE(at::equal(counts, at::full({10}, s.size / 10, at::kLong)));
  }
  EXPECT_EQ(open_dataset("fashion-mnist:test")->describe(),
            "fashion-mnist test (10000 samples, 1x28x28, 10 classes)");
}

}  // namespace
}  // namespace mpq
