// The one-line errors of bad input: each is an mpq::Error that names the file or spec and says
// what was expected and what was found.

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

std::string images_bytes() { return idx_bytes(0x08, {4, 2, 2}, std::string(16, '\x07')); }

TEST(DataErrors, MissingFiles) {
  std::string dir = temp_dir();
  EXPECT_MPQ_ERROR(open_dataset(dir + "/nope.npy"), dir + "/nope.npy");
  EXPECT_MPQ_ERROR(open_dataset(dir + "/nope.npy"), "not found");
  EXPECT_MPQ_ERROR(load_npy(dir + "/nope.npy"), dir + "/nope.npy");
  EXPECT_MPQ_ERROR(load_idx(dir + "/nope-idx1-ubyte"), dir + "/nope-idx1-ubyte");
  EXPECT_MPQ_ERROR(load_npz(dir + "/nope.npz"), dir + "/nope.npz");
  testing::write_bytes(dir + "/x-images-idx3-ubyte", images_bytes());
  DataOptions o;
  o.spec = dir + "/x-images-idx3-ubyte";
  o.labels = dir + "/missing-labels.npy";
  EXPECT_MPQ_ERROR(open_dataset(o), dir + "/missing-labels.npy");
}

TEST(DataErrors, TruncatedIdx) {
  std::string dir = temp_dir();
  std::string full = images_bytes();
  testing::write_bytes(dir + "/cut-images-idx3-ubyte", full.substr(0, full.size() - 3));
  EXPECT_MPQ_ERROR(open_dataset(dir + "/cut-images-idx3-ubyte"), dir + "/cut-images-idx3-ubyte");
  EXPECT_MPQ_ERROR(open_dataset(dir + "/cut-images-idx3-ubyte"), "truncated");
  testing::write_gzip(dir + "/cut-images-idx3-ubyte.gz", full.substr(0, full.size() - 3));
  EXPECT_MPQ_ERROR(load_idx(dir + "/cut-images-idx3-ubyte.gz"), "truncated");
  // A header cut inside the dimensions.
  testing::write_bytes(dir + "/head-idx3-ubyte", full.substr(0, 9));
  EXPECT_MPQ_ERROR(load_idx(dir + "/head-idx3-ubyte"), dir + "/head-idx3-ubyte");
  // A gzip stream cut short.
  testing::write_gzip(dir + "/full-idx3-ubyte.gz", full);
  std::string gz = read_file(dir + "/full-idx3-ubyte.gz");
  testing::write_bytes(dir + "/gzcut-idx3-ubyte.gz", gz.substr(0, gz.size() - 10));
  EXPECT_MPQ_ERROR(load_idx(dir + "/gzcut-idx3-ubyte.gz"), dir + "/gzcut-idx3-ubyte.gz");
}

TEST(DataErrors, WrongMagic) {
  std::string dir = temp_dir();
  std::string bytes = images_bytes();
  bytes[2] = '\x07';  // no such type code
  testing::write_bytes(dir + "/bad-images-idx3-ubyte", bytes);
  EXPECT_MPQ_ERROR(open_dataset(dir + "/bad-images-idx3-ubyte"), dir + "/bad-images-idx3-ubyte");
  EXPECT_MPQ_ERROR(open_dataset(dir + "/bad-images-idx3-ubyte"), "found 00 00 07 03");
  testing::write_bytes(dir + "/text.npy", "hello, world");
  EXPECT_MPQ_ERROR(open_dataset(dir + "/text.npy"), dir + "/text.npy");
  EXPECT_MPQ_ERROR(load_npy(dir + "/text.npy"), "not an .npy file");
  testing::write_bytes(dir + "/text.npz", "hello, world");
  EXPECT_MPQ_ERROR(open_dataset(dir + "/text.npz"), dir + "/text.npz");
  testing::write_bytes(dir + "/text.pb", "\xff\xff\xff hello");
  EXPECT_MPQ_ERROR(open_dataset(dir + "/text.pb"), dir + "/text.pb");
  // An unsupported .npy dtype.
  std::string npy = read_file(std::string(MPQ_SOURCE_DIR) + "/tests/data/fixtures/numpy_i8.npy");
  npy.replace(npy.find("<i8"), 3, "<u8");
  testing::write_bytes(dir + "/u8.npy", npy);
  EXPECT_MPQ_ERROR(load_npy(dir + "/u8.npy"), "'<u8' is not supported");
}

TEST(DataErrors, LabelsCountMismatch) {
  std::string dir = temp_dir();
  testing::write_bytes(dir + "/x-images-idx3-ubyte", images_bytes());
  testing::write_bytes(dir + "/x-labels-idx1-ubyte", idx_bytes(0x08, {3}, "\x01\x02\x03"));
  EXPECT_MPQ_ERROR(open_dataset(dir + "/x-images-idx3-ubyte"), dir + "/x-labels-idx1-ubyte");
  EXPECT_MPQ_ERROR(open_dataset(dir + "/x-images-idx3-ubyte"), "3 labels for 4 samples");
  DataOptions o;
  o.spec = dir + "/x-images-idx3-ubyte";
  save_npy(dir + "/y.npy", at::zeros({4, 3}, at::kLong));  // one-hot-like: wrong shape
  o.labels = dir + "/y.npy";
  EXPECT_MPQ_ERROR(open_dataset(o), dir + "/y.npy");
  save_npy(dir + "/y.npy", at::tensor({0.0, 1.5, 2.0, 1.0}));
  EXPECT_MPQ_ERROR(open_dataset(o), "fractional");
  save_npy(dir + "/y.npy", at::tensor({0, -1, 2, 1}, at::kInt));
  EXPECT_MPQ_ERROR(open_dataset(o), ">= 0");
}

TEST(DataErrors, BadSpecsAndOptions) {
  std::string dir = temp_dir();
  EXPECT_MPQ_ERROR(open_dataset(""), "empty data spec");
  EXPECT_MPQ_ERROR(open_dataset("fashion-mnist:valid"), "fashion-mnist:valid");
  testing::write_bytes(dir + "/data.csv", "1,2,3\n");
  EXPECT_MPQ_ERROR(open_dataset(dir + "/data.csv"), dir + "/data.csv");
  EXPECT_MPQ_ERROR(open_dataset(dir + "/data.csv"), "unknown data format");
  EXPECT_MPQ_ERROR(open_dataset(dir + ":train"), dir);  // a split of a folder without IDX files
  EXPECT_MPQ_ERROR(open_dataset(dir + "/absent:train"), dir + "/absent:train");

  testing::write_bytes(dir + "/x-images-idx3-ubyte", images_bytes());
  auto with = [&](const std::function<void(DataOptions&)>& set) {
    DataOptions o;
    o.spec = dir + "/x-images-idx3-ubyte";
    set(o);
    return o;
  };
  std::string spec = dir + "/x-images-idx3-ubyte";
  EXPECT_MPQ_ERROR(open_dataset(with([](DataOptions& o) { o.limit = 0; })), spec);
  EXPECT_MPQ_ERROR(open_dataset(with([](DataOptions& o) { o.preprocess.scale = 0; })), "scale");
  EXPECT_MPQ_ERROR(open_dataset(with([](DataOptions& o) { o.preprocess.channels = 2; })),
                   "channels");
  EXPECT_MPQ_ERROR(open_dataset(with([](DataOptions& o) { o.preprocess.std = {1, 0}; })), "std");
  EXPECT_MPQ_ERROR(open_dataset(with([](DataOptions& o) {
                     o.preprocess.mean = {1, 2};
                   })),
                   "mean has 2 values, expected 1 or one per channel (1)");
  EXPECT_MPQ_ERROR(open_dataset(with([](DataOptions& o) {
                     o.preprocess.crop = {1, 2, 3};
                   })),
                   "crop");
  EXPECT_MPQ_ERROR(open_dataset(with([](DataOptions& o) { o.preprocess.crop = {3, 3}; })), spec);

  // Resize of samples that are not CxHxW.
  save_npy(dir + "/flat.npy", at::zeros({3, 5}));
  DataOptions o;
  o.spec = dir + "/flat.npy";
  o.preprocess.resize = 8;
  EXPECT_MPQ_ERROR(open_dataset(o), "found 5");
  // Reading past the end.
  auto data = open_dataset(spec);
  EXPECT_MPQ_ERROR(data->read({0, 4}), "index 4 out of range [0, 4)");
}

}  // namespace
}  // namespace mpq
