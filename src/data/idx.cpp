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

// The IDX type codes (byte 3 of the magic number).
struct IdxType {
  unsigned char code;
  at::ScalarType type;
};
constexpr IdxType kIdxTypes[] = {{0x08, at::kByte}, {0x09, at::kChar},  {0x0B, at::kShort},
                                 {0x0C, at::kInt},  {0x0D, at::kFloat}, {0x0E, at::kDouble}};

bool idx_type(unsigned char code, at::ScalarType* type) {
  for (const IdxType& t : kIdxTypes) {
    if (t.code == code) {
      *type = t.type;
      return true;
    }
  }
  return false;
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

// `bytes` holds the first `available` bytes of the file.
IdxHeader parse_header(const unsigned char* bytes, int64_t available, const std::string& path) {
  MPQ_CHECK(available >= 4, path, ": truncated IDX file: expected a 4-byte magic number, found ",
            available, " bytes");
  at::ScalarType dtype;
  bool ok = bytes[0] == 0 && bytes[1] == 0 && idx_type(bytes[2], &dtype) && bytes[3] >= 1 &&
            bytes[3] <= kMaxRank;
  MPQ_CHECK(ok, path,
            ": not an IDX file: expected magic bytes 00 00 <type 08|09|0b|0c|0d|0e> <rank 1-",
            kMaxRank, ">, found ", hex_bytes(bytes, 4));
  IdxHeader h{dtype, {}, 4 + 4 * int64_t(bytes[3])};
  MPQ_CHECK(available >= h.data_offset, path, ": truncated IDX file: expected ", h.data_offset,
            " header bytes for rank ", int(bytes[3]), ", found ", available);
  for (int d = 0; d < bytes[3]; ++d) {
    const unsigned char* p = bytes + 4 + 4 * d;
    uint32_t v = (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
    h.shape.push_back(int64_t(v));
  }
  checked_numel(h.shape, path);
  return h;
}

bool is_gzip(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char m[2] = {0, 0};
  in.read(reinterpret_cast<char*>(m), 2);
  return in.gcount() == 2 && m[0] == 0x1f && m[1] == 0x8b;
}

// A gzip file read front to back; closes itself.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path), f_(gzopen(path.c_str(), "rb")) {
    MPQ_CHECK(f_ != nullptr, path, ": cannot open (", std::strerror(errno), ")");
    gzbuffer(f_, 1 << 17);
  }
  ~GzReader() { gzclose(f_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes; fewer only at the end of the data.
  int64_t read(void* dst, int64_t n) {
    int64_t done = 0;
    while (done < n) {
      // gzread counts in int; stay well inside it.
      unsigned chunk = unsigned(std::min<int64_t>(n - done, int64_t(1) << 30));
      int got = gzread(f_, static_cast<char*>(dst) + done, chunk);
      check();
      if (got <= 0) break;
      done += got;
    }
    return done;
  }
  // Reads to the end, so that zlib verifies the stream's length and CRC.
  void finish() {
    char buf[4096];
    while (gzread(f_, buf, sizeof(buf)) > 0) {
    }
    check();
  }

 private:
  void check() {
    int code = Z_OK;
    const char* msg = gzerror(f_, &code);
    MPQ_CHECK(code == Z_OK || code == Z_STREAM_END, path_, ": corrupt or truncated gzip data (",
              msg, ")");
  }
  std::string path_;
  gzFile f_;
};

}  // namespace

bool is_idx_name(const std::string& path) {
  static const std::regex kIdx(R"(idx[0-9]+-ubyte(\.gz)?$)");
  return std::regex_search(path, kIdx);
}

std::unique_ptr<ArraySource> open_idx_array(const std::string& path) {
  MPQ_CHECK(file_exists(path), path, ": file not found");
  MPQ_CHECK(!is_directory(path), path, ": expected an IDX file, found a folder");
  if (is_gzip(path)) {
    // Inflated straight into the tensor: the only copy of the data in memory.
    GzReader gz(path);
    unsigned char head[4 + 4 * kMaxRank];
    int64_t got = gz.read(head, 4);
    if (got == 4 && head[3] <= kMaxRank) got += gz.read(head + 4, 4 * int64_t(head[3]));
    IdxHeader h = parse_header(head, got, path);
    at::Tensor t = at::empty(h.shape, at::TensorOptions(h.dtype));
    int64_t need = int64_t(t.nbytes());
    int64_t found = gz.read(t.data_ptr(), need);
    MPQ_CHECK(found == need, path, ": truncated: shape ", shape_string(h.shape), " needs ", need,
              " bytes of data, found ", found);
    gz.finish();
    swap_bytes(t.data_ptr(), t.numel(), int64_t(t.element_size()));
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
