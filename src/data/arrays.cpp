// ArraySources: rows read from a file by pread (the streaming path) or from a tensor in memory.

#include "data/internal/arrays.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "core/error.h"

namespace mpq::internal {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

std::string shape_x(const std::vector<int64_t>& shape) {
  if (shape.empty()) return "scalar";
  std::ostringstream out;
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? "x" : "") << shape[i];
  return out.str();
}

int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& where) {
  int64_t n = 1;
  for (int64_t d : shape) {
    MPQ_CHECK(d >= 0 && !__builtin_mul_overflow(n, d, &n) && n < (int64_t(1) << 56), where,
              ": shape ", shape_string(shape), " is too large (corrupt header?)");
  }
  return n;
}

void swap_bytes(void* data, int64_t count, int64_t elem_size) {
  auto* p = static_cast<unsigned char*>(data);
  for (int64_t i = 0; i < count; ++i, p += elem_size) {
    for (int64_t a = 0, b = elem_size - 1; a < b; ++a, --b) std::swap(p[a], p[b]);
  }
}

namespace {

void check_indices(const std::vector<int64_t>& indices, int64_t rows, const std::string& where) {
  for (int64_t i : indices) {
    MPQ_CHECK(i >= 0 && i < rows, where, ": sample index ", i, " out of range [0, ", rows, ")");
  }
}

class FileArray : public ArraySource {
 public:
  FileArray(const std::string& path, const std::string& where, int64_t offset, at::ScalarType dtype,
            std::vector<int64_t> shape, bool big_endian)
      : path_(path),
        where_(where),
        offset_(offset),
        dtype_(dtype),
        shape_(std::move(shape)),
        big_endian_(big_endian) {
    MPQ_CHECK(!shape_.empty(), where_,
              ": expected an array with a sample dimension, found a scalar");
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    MPQ_CHECK(fd_ >= 0, path, ": cannot open (", std::strerror(errno), ")");
    struct stat st;
    MPQ_CHECK(::fstat(fd_, &st) == 0, path, ": cannot stat (", std::strerror(errno), ")");
    elem_size_ = int64_t(c10::elementSize(dtype_));
    row_bytes_ = elem_size_;
    for (size_t i = 1; i < shape_.size(); ++i) row_bytes_ *= shape_[i];
    int64_t need = offset_ + shape_[0] * row_bytes_;
    if (int64_t(st.st_size) < need) {
      ::close(fd_);
      MPQ_FAIL(where_, ": truncated: shape ", shape_string(shape_), " needs ",
               shape_[0] * row_bytes_, " bytes of data from offset ", offset_, ", found ",
               std::max<int64_t>(0, int64_t(st.st_size) - offset_));
    }
  }
  ~FileArray() override { ::close(fd_); }
  FileArray(const FileArray&) = delete;
  FileArray& operator=(const FileArray&) = delete;

  int64_t rows() const override { return shape_[0]; }
  std::vector<int64_t> row_shape() const override {
    return std::vector<int64_t>(shape_.begin() + 1, shape_.end());
  }
  at::ScalarType dtype() const override { return dtype_; }
  std::string where() const override { return where_; }

  at::Tensor read_rows(const std::vector<int64_t>& indices) const override {
    check_indices(indices, rows(), where_);
    std::vector<int64_t> shape = row_shape();
    shape.insert(shape.begin(), int64_t(indices.size()));
    at::Tensor out = at::empty(shape, at::TensorOptions(dtype_));
    if (row_bytes_ == 0 || indices.empty()) return out;
    char* dst = static_cast<char*>(out.data_ptr());
    // Runs of consecutive indices become one read: sequential loaders read whole batches at once.
    size_t i = 0;
    while (i < indices.size()) {
      size_t j = i + 1;
      while (j < indices.size() && indices[j] == indices[j - 1] + 1) ++j;
      read_exact(dst + i * row_bytes_, (j - i) * row_bytes_, offset_ + indices[i] * row_bytes_);
      i = j;
    }
    if (big_endian_ && elem_size_ > 1) swap_bytes(dst, out.numel(), elem_size_);
    return out;
  }

 private:
  void read_exact(char* dst, int64_t bytes, int64_t at) const {
    while (bytes > 0) {
      ssize_t n = ::pread(fd_, dst, size_t(bytes), off_t(at));
      if (n < 0 && errno == EINTR) continue;
      MPQ_CHECK(n > 0, path_, ": read failed at byte ", at, " (",
                n == 0 ? "unexpected end of file" : std::strerror(errno), ")");
      dst += n;
      bytes -= n;
      at += n;
    }
  }

  std::string path_, where_;
  int64_t offset_;
  at::ScalarType dtype_;
  std::vector<int64_t> shape_;
  bool big_endian_;
  int fd_ = -1;
  int64_t elem_size_ = 0, row_bytes_ = 0;
};

class MemoryArray : public ArraySource {
 public:
  MemoryArray(const std::string& where, at::Tensor tensor)
      : where_(where), tensor_(tensor.contiguous()) {
    MPQ_CHECK(tensor_.dim() >= 1, where_,
              ": expected an array with a sample dimension, found a scalar");
  }
  int64_t rows() const override { return tensor_.size(0); }
  std::vector<int64_t> row_shape() const override {
    return std::vector<int64_t>(tensor_.sizes().begin() + 1, tensor_.sizes().end());
  }
  at::ScalarType dtype() const override { return tensor_.scalar_type(); }
  std::string where() const override { return where_; }
  at::Tensor read_rows(const std::vector<int64_t>& indices) const override {
    check_indices(indices, rows(), where_);
    at::Tensor idx = at::tensor(at::ArrayRef<int64_t>(indices), at::TensorOptions(at::kLong));
    return tensor_.index_select(0, idx);
  }

 private:
  std::string where_;
  at::Tensor tensor_;
};

}  // namespace

std::unique_ptr<ArraySource> file_array(const std::string& path, const std::string& where,
                                        int64_t offset, at::ScalarType dtype,
                                        std::vector<int64_t> shape, bool big_endian) {
  return std::make_unique<FileArray>(path, where, offset, dtype, std::move(shape), big_endian);
}

std::unique_ptr<ArraySource> memory_array(const std::string& where, at::Tensor tensor) {
  return std::make_unique<MemoryArray>(where, std::move(tensor));
}

}  // namespace mpq::internal
