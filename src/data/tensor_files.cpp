// ONNX TensorProto .pb files (the format of ONNX's test data) as data: one file whose first
// dimension indexes samples, or a folder of them concatenated along that dimension. Protobuf
// cannot be read in part, so a folder streams one file at a time: opening reads each file once
// to learn its sample count, and reads keep only the most recently used file in memory.

#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <mutex>

#include "core/error.h"
#include "core/fs.h"
#include "data/internal/arrays.h"
#include "onnx/tensor_proto.h"

namespace mpq::internal {
namespace {

// "input_2.pb" < "input_10.pb": digit runs compare as numbers, the rest byte by byte.
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) &&
        std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t i2 = i, j2 = j;
      while (i2 < a.size() && std::isdigit(static_cast<unsigned char>(a[i2]))) ++i2;
      while (j2 < b.size() && std::isdigit(static_cast<unsigned char>(b[j2]))) ++j2;
      std::string da = a.substr(i, i2 - i), db = b.substr(j, j2 - j);
      da.erase(0, std::min(da.find_first_not_of('0'), da.size()));
      db.erase(0, std::min(db.find_first_not_of('0'), db.size()));
      if (da.size() != db.size()) return da.size() < db.size();
      if (da != db) return da < db;
      i = i2;
      j = j2;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  if ((a.size() - i) != (b.size() - j)) return a.size() - i < b.size() - j;
  return a < b;  // equal up to leading zeros: any fixed order
}

class PbFolder : public ArraySource {
 public:
  PbFolder(const std::string& dir, std::vector<std::string> files)
      : dir_(dir), files_(std::move(files)) {
    int64_t total = 0;
    for (size_t f = 0; f < files_.size(); ++f) {
      at::Tensor t = load_tensor_pb(files_[f]);
      MPQ_CHECK(t.dim() >= 1, files_[f],
                ": expected a tensor whose first dimension indexes samples, found a scalar");
      std::vector<int64_t> row(t.sizes().begin() + 1, t.sizes().end());
      if (f == 0) {
        row_shape_ = row;
        dtype_ = t.scalar_type();
      } else {
        MPQ_CHECK(row == row_shape_ && t.scalar_type() == dtype_, files_[f], ": samples of shape ",
                  shape_string(row), " ", at::toString(t.scalar_type()), " differ from ", files_[0],
                  "'s ", shape_string(row_shape_), " ", at::toString(dtype_));
      }
      starts_.push_back(total);
      total += t.size(0);
    }
    starts_.push_back(total);
  }

  int64_t rows() const override { return starts_.back(); }
  std::vector<int64_t> row_shape() const override { return row_shape_; }
  at::ScalarType dtype() const override { return dtype_; }
  std::string where() const override { return dir_; }

  at::Tensor read_rows(const std::vector<int64_t>& indices) const override {
    std::vector<int64_t> shape = row_shape_;
    shape.insert(shape.begin(), int64_t(indices.size()));
    at::Tensor out = at::empty(shape, at::TensorOptions(dtype_));
    // Group by file so a batch spanning files loads each once, in file order.
    std::vector<std::pair<int64_t, int64_t>> by_file;  // (file, position in indices)
    for (size_t k = 0; k < indices.size(); ++k) {
      int64_t i = indices[k];
      MPQ_CHECK(i >= 0 && i < rows(), dir_, ": sample index ", i, " out of range [0, ", rows(),
                ")");
      int64_t f = std::upper_bound(starts_.begin(), starts_.end(), i) - starts_.begin() - 1;
      by_file.emplace_back(f, int64_t(k));
    }
    std::stable_sort(by_file.begin(), by_file.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t a = 0; a < by_file.size();) {
      int64_t f = by_file[a].first;
      size_t b = a;
      std::vector<int64_t> pos, local;
      for (; b < by_file.size() && by_file[b].first == f; ++b) {
        pos.push_back(by_file[b].second);
        local.push_back(indices[size_t(by_file[b].second)] - starts_[size_t(f)]);
      }
      if (cached_file_ != f) {
        cached_ = load_tensor_pb(files_[size_t(f)]);
        cached_file_ = f;
        MPQ_CHECK(cached_.size(0) == starts_[size_t(f) + 1] - starts_[size_t(f)], files_[size_t(f)],
                  ": the file changed while it was being read");
      }
      auto opts = at::TensorOptions(at::kLong);
      out.index_copy_(0, at::tensor(at::ArrayRef<int64_t>(pos), opts),
                      cached_.index_select(0, at::tensor(at::ArrayRef<int64_t>(local), opts)));
      a = b;
    }
    return out;
  }

 private:
  std::string dir_;
  std::vector<std::string> files_;
  std::vector<int64_t> starts_;  // first sample of each file, then the total
  std::vector<int64_t> row_shape_;
  at::ScalarType dtype_ = at::kFloat;
  mutable std::mutex mutex_;
  mutable int64_t cached_file_ = -1;
  mutable at::Tensor cached_;
};

}  // namespace

std::unique_ptr<ArraySource> open_pb_array(const std::string& path) {
  MPQ_CHECK(file_exists(path), path, ": file not found");
  return memory_array(path, load_tensor_pb(path));
}

std::unique_ptr<ArraySource> open_pb_folder(const std::string& dir, std::string* labels_path) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (!e.is_regular_file() || name.size() < 4 || name.substr(name.size() - 3) != ".pb") continue;
    if (name == "labels.pb") {
      *labels_path = e.path().string();
    } else {
      names.push_back(name);
    }
  }
  MPQ_CHECK(!names.empty(), dir, ": expected .pb tensor files (besides labels.pb), found none");
  std::sort(names.begin(), names.end(), natural_less);
  std::vector<std::string> files;
  for (const auto& n : names) files.push_back(join_path(dir, n));
  return std::make_unique<PbFolder>(dir, std::move(files));
}

}  // namespace mpq::internal
