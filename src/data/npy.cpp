// NumPy .npy files: a magic string, a version, a Python-dict header ({'descr': '<f4',
// 'fortran_order': False, 'shape': (2, 3), }) and the raw array. As a data set an .npy file
// streams (rows are read by seeking); load_npy reads a whole file for tensor exchange.

#include <ATen/ATen.h>

#include <cstring>
#include <fstream>
#include <regex>

#include "core/error.h"
#include "core/fs.h"
#include "data/internal/arrays.h"

namespace mpq::internal {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the .npy and .npz readers assume a little-endian host");

constexpr char kMagic[] = "\x93NUMPY";
constexpr int64_t kMagicSize = 6;

const char* kSupported = "float16/32/64, int8/16/32/64, uint8 or bool";

// The element types mpq exchanges: NumPy's descr kind and size, and the ATen type.
struct NpyType {
  char kind;
  int size;
  at::ScalarType type;
};
constexpr NpyType kNpyTypes[] = {{'f', 2, at::kHalf}, {'f', 4, at::kFloat}, {'f', 8, at::kDouble},
                                 {'i', 1, at::kChar}, {'i', 2, at::kShort}, {'i', 4, at::kInt},
                                 {'i', 8, at::kLong}, {'u', 1, at::kByte},  {'b', 1, at::kBool}};

bool npy_type(char kind, int size, at::ScalarType* type) {
  for (const NpyType& t : kNpyTypes) {
    if (t.kind == kind && t.size == size) {
      *type = t.type;
      return true;
    }
  }
  return false;
}

// "<f4" for little-endian float32, "|u1" where byte order does not apply; "" if unsupported.
std::string npy_descr(at::ScalarType type) {
  for (const NpyType& t : kNpyTypes) {
    if (t.type == type)
      return std::string(1, t.size == 1 ? '|' : '<') + t.kind + std::to_string(t.size);
  }
  return "";
}

// The value text after 'key': in a header dict, e.g. "'<f4'" or "(2, 3)" or "False".
std::string dict_value(const std::string& header, const std::string& key,
                       const std::string& where) {
  std::regex re("['\"]" + key + "['\"]\\s*:\\s*(\\([^)]*\\)|'[^']*'|\"[^\"]*\"|\\w+|\\[)");
  std::smatch m;
  MPQ_CHECK(std::regex_search(header, m, re), where, ": .npy header has no '", key,
            "' entry (found \"", header, "\")");
  return m[1].str();
}

}  // namespace

NpyHeader parse_npy_header(const char* data, int64_t size, const std::string& where) {
  MPQ_CHECK(size >= kMagicSize + 4 && std::memcmp(data, kMagic, kMagicSize) == 0, where,
            ": not an .npy file (expected the magic string \\x93NUMPY at the start)");
  int major = static_cast<unsigned char>(data[6]);
  MPQ_CHECK(major >= 1 && major <= 3, where, ": .npy version ", major, " is not supported (1-3)");
  auto u8 = [&](int64_t i) { return uint32_t(static_cast<unsigned char>(data[i])); };
  int64_t header_len, start;
  if (major == 1) {
    header_len = u8(8) | (u8(9) << 8);
    start = 10;
  } else {
    MPQ_CHECK(size >= 12, where, ": truncated .npy header");
    header_len = u8(8) | (u8(9) << 8) | (u8(10) << 16) | (int64_t(u8(11)) << 24);
    start = 12;
  }
  MPQ_CHECK(size >= start + header_len, where, ": truncated .npy header: expected ",
            start + header_len, " bytes, found ", size);
  std::string header(data + start, size_t(header_len));

  NpyHeader h;
  h.data_offset = start + header_len;
  std::string descr = dict_value(header, "descr", where);
  MPQ_CHECK(descr.size() >= 4 && (descr[0] == '\'' || descr[0] == '"'), where,
            ": structured .npy dtype ", descr, " is not supported (expected ", kSupported, ")");
  descr = descr.substr(1, descr.size() - 2);
  char order = descr[0];
  int elem = std::atoi(descr.c_str() + 2);
  bool ok = (order == '<' || order == '>' || order == '|' || order == '=') &&
            npy_type(descr[1], elem, &h.dtype);
  MPQ_CHECK(ok, where, ": .npy dtype '", descr, "' is not supported (expected ", kSupported, ")");
  h.big_endian = order == '>' && elem > 1;

  std::string shape = dict_value(header, "shape", where);
  MPQ_CHECK(shape.front() == '(', where, ": .npy shape ", shape, " is not a tuple");
  static const std::regex kInt("([0-9]+)L?");
  for (std::sregex_iterator it(shape.begin(), shape.end(), kInt), end; it != end; ++it) {
    h.shape.push_back(std::stoll((*it)[1].str()));
  }
  checked_numel(h.shape, where);
  bool fortran = dict_value(header, "fortran_order", where) == "True";
  int64_t non_unit = 0;
  for (int64_t d : h.shape) non_unit += d != 1;
  MPQ_CHECK(!fortran || non_unit <= 1, where,
            ": Fortran-order .npy arrays are not supported (save with np.ascontiguousarray)");
  return h;
}

std::unique_ptr<ArraySource> open_npy_array(const std::string& path, const std::string& where,
                                            int64_t offset, int64_t length) {
  std::ifstream in(path, std::ios::binary);
  MPQ_CHECK(in.good(), path, ": cannot open (", std::strerror(errno), ")");
  in.seekg(offset);
  // Headers are padded to 64 bytes and hold one short dict; 64 KiB is always enough.
  std::string head(size_t(std::min<int64_t>(length, 1 << 16)), '\0');
  in.read(head.data(), std::streamsize(head.size()));
  NpyHeader h = parse_npy_header(head.data(), int64_t(in.gcount()), where);
  int64_t need = checked_numel(h.shape, where) * int64_t(c10::elementSize(h.dtype));
  MPQ_CHECK(h.data_offset + need <= length, where, ": truncated: shape ", shape_string(h.shape),
            " needs ", need, " bytes of data, found ", length - h.data_offset);
  return file_array(path, where, offset + h.data_offset, h.dtype, h.shape, h.big_endian);
}

at::Tensor npy_from_bytes(const std::string& bytes, const std::string& where) {
  NpyHeader h = parse_npy_header(bytes.data(), int64_t(bytes.size()), where);
  at::Tensor t = at::empty(h.shape, at::TensorOptions(h.dtype));
  int64_t need = int64_t(t.nbytes());
  int64_t found = int64_t(bytes.size()) - h.data_offset;
  MPQ_CHECK(found >= need, where, ": truncated: shape ", shape_string(h.shape), " needs ", need,
            " bytes of data, found ", found);
  if (need > 0) std::memcpy(t.data_ptr(), bytes.data() + h.data_offset, size_t(need));
  if (h.big_endian) swap_bytes(t.data_ptr(), t.numel(), int64_t(t.element_size()));
  return t;
}

}  // namespace mpq::internal

namespace mpq {

at::Tensor load_npy(const std::string& path) {
  return internal::npy_from_bytes(read_file(path), path);
}

void save_npy(const std::string& path, const at::Tensor& tensor) {
  at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
  std::string descr = internal::npy_descr(t.scalar_type());
  MPQ_CHECK(!descr.empty(), path, ": cannot save a ", at::toString(t.scalar_type()),
            " tensor as .npy (expected ", internal::kSupported, ")");
  std::string shape = "(";
  for (int64_t i = 0; i < t.dim(); ++i) {
    shape += std::to_string(t.size(i)) + (t.dim() == 1 ? "," : i + 1 < t.dim() ? ", " : "");
  }
  shape += ")";
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // NumPy pads the header with spaces and a newline so the data starts 64-byte aligned.
  int64_t total = internal::kMagicSize + 4 + int64_t(header.size()) + 1;
  header.append(size_t((64 - total % 64) % 64), ' ');
  header += '\n';
  MPQ_ASSERT(header.size() < 65536);
  std::string bytes(internal::kMagic, internal::kMagicSize);
  bytes += '\x01';
  bytes += '\x00';
  bytes += char(header.size() & 0xff);
  bytes += char(header.size() >> 8);
  bytes += header;
  bytes.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  write_file_atomic(path, bytes);
}

}  // namespace mpq
