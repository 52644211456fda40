// IDX files (the MNIST family: a big-endian header of magic, rank and dimensions, then the array
// in big-endian C order). Uncompressed files stream: rows are read by seeking. A gzipped file
// cannot be seeked into, so it is inflated into memory once when opened (Fashion-MNIST's largest
// file is 47 MB inflated); gunzip a file that does not fit in memory to stream it.

#include <ATen/ATen.h>
#include <zlib.h>

#include <cstring>
#include <fstream>
#include <numeric>
#include <regex>

#include "core/error.h"
#include "core/fs.h"
#include "data/internal/arrays.h"

namespace mpq::internal {
namespace {

constexpr int kMaxRank = 8;

bool idx_type(unsigned char code, at::ScalarType* type) {
  switch (code) {
    case 0x08: *type = at::kByte; return true;
    case 0x09: *type = at::kChar; return true;
    case 0x0B: *type = at::kShort; return true;
    case 0x0C: *type = at::kInt; return true;
    case 0x0D: *type = at::kFloat; return true;
    case 0x0E: *type = at::kDouble; return true;
    default: return false;
  }
}

std::string hex_bytes(const unsigned char* p, int64_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (int64_t i = 0; i < n; ++i) {
    if (i) s += ' ';
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 15];
  }
  return s;
}

struct IdxHeader {
  at::ScalarType dtype;
  std::vector<int64_t> shape;
  int64_t data_offset;
};

// `bytes` holds at least the start of the file (`file_size` bytes in all).
IdxHeader parse_header(const unsigned char* bytes, int64_t available, const std::string& path) {
  MPQ_CHECK(available >= 4, path, ": truncated IDX file: expected a 4-byte magic number, found ",
            available, " bytes");
  at::ScalarType dtype;
  bool ok = bytes[0] == 0 && bytes[1] == 0 && idx_type(bytes[2], &dtype) && bytes[3] >= 1 &&
            bytes[3] <= kMaxRank;
  MPQ_CHECK(ok, path, ": not an IDX file: expected magic bytes 00 00 <type 08|09|0b|0c|0d|0e> "
            "<rank 1-", kMaxRank, ">, found ", hex_bytes(bytes, 4));
  IdxHeader h{dtype, {}, 4 + 4 * int64_t(bytes[3])};
  MPQ_CHECK(available >= h.data_offset, path, ": truncated IDX file: expected ", h.data_offset,
            " header bytes for rank ", int(bytes[3]), ", found ", available);
  for (int d = 0; d < bytes[3]; ++d) {
    const unsigned char* p = bytes + 4 + 4 * d;
    uint32_t v = (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
    h.shape.push_back(int64_t(v));
  }
  return h;
}

bool is_gzip(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char m[2] = {0, 0};
  in.read(reinterpret_cast<char*>(m), 2);
  return in.gcount() == 2 && m[0] == 0x1f && m[1] == 0x8b;
}

std::string gunzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  MPQ_CHECK(f != nullptr, path, ": cannot open (", std::strerror(errno), ")");
  gzbuffer(f, 1 << 17);
  std::string out;
  constexpr size_t kChunk = size_t(1) << 20;
  while (true) {
    size_t at = out.size();
    out.resize(at + kChunk);
    int n = gzread(f, out.data() + at, unsigned(kChunk));
    if (n < 0) {
      int code = 0;
      std::string msg = gzerror(f, &code);
      gzclose(f);
      MPQ_FAIL(path, ": corrupt gzip data (", msg, ")");
    }
    out.resize(at + size_t(n));
    if (size_t(n) < kChunk) break;
  }
  int code = 0;
  std::string msg = gzerror(f, &code);
  gzclose(f);
  // zlib reports a gzip stream cut short only through gzerror after the last read.
  MPQ_CHECK(code == Z_OK || code == Z_STREAM_END, path, ": corrupt or truncated gzip data (", msg,
            ")");
  return out;
}

}  // namespace

bool is_idx_name(const std::string& path) {
  static const std::regex kIdx(R"(idx[0-9]+-ubyte(\.gz)?$)");
  return std::regex_search(path, kIdx);
}

std::unique_ptr<ArraySource> open_idx_array(const std::string& path) {
  MPQ_CHECK(file_exists(path), path, ": file not found");
  MPQ_CHECK(!is_directory(path), path, ": expected an IDX file, found a folder");
  if (is_gzip(path)) {
    std::string bytes = gunzip(path);
    auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    IdxHeader h = parse_header(p, int64_t(bytes.size()), path);
    int64_t numel = std::accumulate(h.shape.begin(), h.shape.end(), int64_t(1),
                                    std::multiplies<int64_t>());
    int64_t need = numel * int64_t(c10::elementSize(h.dtype));
    int64_t found = int64_t(bytes.size()) - h.data_offset;
    MPQ_CHECK(found >= need, path, ": truncated: shape ", shape_string(h.shape), " needs ", need,
              " bytes of data, found ", found);
    at::Tensor t = at::empty(h.shape, at::TensorOptions(h.dtype));
    std::memcpy(t.data_ptr(), p + h.data_offset, size_t(need));
    swap_bytes(t.data_ptr(), numel, int64_t(c10::elementSize(h.dtype)));
    return memory_array(path, t);
  }
  unsigned char head[4 + 4 * kMaxRank];
  std::ifstream in(path, std::ios::binary);
  MPQ_CHECK(in.good(), path, ": cannot open (", std::strerror(errno), ")");
  in.read(reinterpret_cast<char*>(head), sizeof(head));
  IdxHeader h = parse_header(head, int64_t(in.gcount()), path);
  return file_array(path, path, h.data_offset, h.dtype, h.shape, /*big_endian=*/true);
}

}  // namespace mpq::internal

namespace mpq {

at::Tensor load_idx(const std::string& path) {
  auto array = internal::open_idx_array(path);
  std::vector<int64_t> all(size_t(array->rows()));
  std::iota(all.begin(), all.end(), int64_t(0));
  return array->read_rows(all);
}

}  // namespace mpq
