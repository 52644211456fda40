// Shared machinery of the data readers (not for other modules): an ArraySource is an N-D array
// whose first dimension indexes samples, read a few rows at a time. Each file format (idx.cpp,
// npy.cpp, npz.cpp, tensor_files.cpp) turns its files into ArraySources; dataset.cpp turns
// ArraySources plus labels into a Dataset and owns the preprocessing that image_folder.cpp also
// uses.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace mpq::internal {

class ArraySource {
 public:
  virtual ~ArraySource() = default;
  virtual int64_t rows() const = 0;
  // The shape of one row (the array's shape without its first dimension).
  virtual std::vector<int64_t> row_shape() const = 0;
  virtual at::ScalarType dtype() const = 0;
  // The rows at `indices` (each in [0, rows()), any order) as [indices.size(), ...row_shape].
  virtual at::Tensor read_rows(const std::vector<int64_t>& indices) const = 0;
  // What error messages name: the file, or "file:entry" inside an archive.
  virtual std::string where() const = 0;
};

// Rows read with pread from `path` at `offset` (the first byte of row 0), elements of `dtype`
// stored big endian when `big_endian`. The whole array must lie inside the file; the error
// names `where` and says how many bytes were expected and found.
std::unique_ptr<ArraySource> file_array(const std::string& path, const std::string& where,
                                        int64_t offset, at::ScalarType dtype,
                                        std::vector<int64_t> shape, bool big_endian);

// Rows of a tensor already in memory (at least 1-D).
std::unique_ptr<ArraySource> memory_array(const std::string& where, at::Tensor tensor);

// Reverses the byte order of each `elem_size`-byte element of `data` in place.
void swap_bytes(void* data, int64_t count, int64_t elem_size);

// The element count of `shape`; an error naming `where` if it overflows int64 (a corrupt header).
int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& where);

// "[2, 3]" for error messages; "2x3" for descriptions.
std::string shape_string(const std::vector<int64_t>& shape);
std::string shape_x(const std::vector<int64_t>& shape);

// Format readers.
std::unique_ptr<ArraySource> open_idx_array(const std::string& path);
bool is_idx_name(const std::string& path);

struct NpyHeader {
  at::ScalarType dtype;
  std::vector<int64_t> shape;
  bool big_endian = false;
  int64_t data_offset = 0;  // bytes from the start of the .npy data to the array
};
// Parses the header at the start of `data` (`size` bytes available).
NpyHeader parse_npy_header(const char* data, int64_t size, const std::string& where);
// An .npy array stored uncompressed at `offset` in `path` (a .npy file or a stored .npz entry).
std::unique_ptr<ArraySource> open_npy_array(const std::string& path, const std::string& where,
                                            int64_t offset, int64_t length);
// An .npy array held in memory (an inflated .npz entry).
at::Tensor npy_from_bytes(const std::string& bytes, const std::string& where);

// One array of an .npz archive (a zip file of .npy files), located from the central directory.
struct NpzEntry {
  std::string name;  // without ".npy"
  bool deflated = false;
  int64_t data_offset = 0;  // of the (possibly compressed) bytes in the archive
  int64_t compressed_size = 0, size = 0;
  uint32_t crc = 0;
};
std::vector<NpzEntry> list_npz(const std::string& path);
// The entry's .npy bytes (inflated if deflated).
std::string npz_entry_bytes(const std::string& path, const NpzEntry& entry);
// Stored entries stream from the archive; deflated ones are inflated into memory once.
std::unique_ptr<ArraySource> open_npz_entry(const std::string& path, const NpzEntry& entry);

std::unique_ptr<ArraySource> open_pb_array(const std::string& path);
// A folder of *.pb files concatenated along the first dimension; `labels_path` receives the
// folder's labels.pb if there is one.
std::unique_ptr<ArraySource> open_pb_folder(const std::string& dir, std::string* labels_path);

// Preprocessing shared by the array data sets and image folders.
void check_preprocess(const Preprocess& p, const std::string& where);
// Output H, W of resize then crop for an input of h x w; the error names `where` when the crop
// does not fit.
std::pair<int64_t, int64_t> resized_size(const Preprocess& p, int64_t h, int64_t w,
                                         const std::string& where);
// Resize and crop of float [B, C, H, W]; the identity when neither is set.
at::Tensor resize_crop(const at::Tensor& x, const Preprocess& p, const std::string& where);
// Scale, then (x - mean) / std per channel (dimension 1) of float [B, C, ...].
at::Tensor normalize(const at::Tensor& x, const Preprocess& p, bool uint8_source);
// Checks mean/std sizes against the channel count.
void check_channels(const Preprocess& p, int64_t channels, const std::string& where);

// Labels from a file (.npy, .pb or IDX) as int64 [N]; the error names the path.
at::Tensor load_labels(const std::string& path);
// Checks and converts an array of labels to int64 [N].
at::Tensor labels_from_tensor(const at::Tensor& t, const std::string& where);

std::unique_ptr<Dataset> open_image_folder(const std::string& dir, const Preprocess& p,
                                           int64_t limit);

}  // namespace mpq::internal
