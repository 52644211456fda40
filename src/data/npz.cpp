// NumPy .npz archives: zip files of .npy entries. np.savez stores entries (they stream straight
// from the archive, like an .npy file); np.savez_compressed deflates them (inflated into memory
// once with zlib's raw inflate). Entries are found through the central directory, because
// NumPy writes zip64 local headers whose size fields are placeholders. Multi-disk archives and
// zip64 archives (over 4 GiB or 65535 entries) are not supported.

#include <ATen/ATen.h>
#include <zlib.h>

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/fs.h"
#include "data/internal/arrays.h"

namespace mpq::internal {
namespace {

constexpr uint32_t kEndSig = 0x06054b50, kCentralSig = 0x02014b50, kLocalSig = 0x04034b50;
constexpr int64_t kEndSize = 22, kCentralSize = 46, kLocalSize = 30;

uint32_t le16(const char* p) {
  auto u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t(u[0]) | (uint32_t(u[1]) << 8);
}
uint32_t le32(const char* p) { return le16(p) | (le16(p + 2) << 16); }
uint64_t le64(const char* p) { return uint64_t(le32(p)) | (uint64_t(le32(p + 4)) << 32); }

std::string read_at(std::ifstream& in, const std::string& path, int64_t offset, int64_t n) {
  std::string bytes(size_t(n), '\0');
  in.clear();
  in.seekg(offset);
  in.read(bytes.data(), n);
  MPQ_CHECK(in.gcount() == n, path, ": truncated zip archive: expected ", n, " bytes at offset ",
            offset, ", found ", in.gcount());
  return bytes;
}

}  // namespace

std::vector<NpzEntry> list_npz(const std::string& path) {
  MPQ_CHECK(file_exists(path), path, ": file not found");
  MPQ_CHECK(!is_directory(path), path, ": expected an .npz file, found a folder");
  std::ifstream in(path, std::ios::binary);
  MPQ_CHECK(in.good(), path, ": cannot open (", std::strerror(errno), ")");
  in.seekg(0, std::ios::end);
  int64_t file_size = in.tellg();

  // The end record is the last 22 bytes plus a comment of up to 65535 bytes.
  int64_t tail_size = std::min<int64_t>(file_size, kEndSize + 65535);
  std::string tail = read_at(in, path, file_size - tail_size, tail_size);
  int64_t end = -1;
  for (int64_t i = tail_size - kEndSize; i >= 0; --i) {
    if (le32(tail.data() + i) == kEndSig) {
      end = i;
      break;
    }
  }
  MPQ_CHECK(end >= 0, path, ": not an .npz file (expected a zip archive, found no zip end record)");
  const char* e = tail.data() + end;
  int64_t count = le16(e + 10), dir_size = le32(e + 12), dir_offset = le32(e + 16);
  MPQ_CHECK(count != 0xffff && dir_offset != 0xffffffff, path,
            ": zip64 archives are not supported");
  MPQ_CHECK(dir_offset + dir_size <= file_size, path,
            ": truncated zip archive (central directory at ", dir_offset, "+", dir_size,
            ", file size ", file_size, ")");
  std::string dir = read_at(in, path, dir_offset, dir_size);

  std::vector<NpzEntry> entries;
  int64_t p = 0;
  for (int64_t k = 0; k < count; ++k) {
    MPQ_CHECK(p + kCentralSize <= dir_size && le32(dir.data() + p) == kCentralSig, path,
              ": corrupt zip central directory (entry ", k, ")");
    const char* c = dir.data() + p;
    uint32_t flags = le16(c + 8), method = le16(c + 10);
    int64_t name_len = le16(c + 28), extra_len = le16(c + 30), comment_len = le16(c + 32);
    MPQ_CHECK(p + kCentralSize + name_len + extra_len + comment_len <= dir_size, path,
              ": corrupt zip central directory (entry ", k, ")");
    std::string name(c + kCentralSize, size_t(name_len));
    NpzEntry entry;
    entry.crc = le32(c + 16);
    uint64_t csize = le32(c + 20), usize = le32(c + 24), local = le32(c + 42);
    // Sizes that overflow 32 bits live in the zip64 extra field, in this order.
    const char* x = c + kCentralSize + name_len;
    for (int64_t q = 0; q + 4 <= extra_len;) {
      uint32_t id = le16(x + q), len = le16(x + q + 2);
      if (id == 0x0001) {
        const char* v = x + q + 4;
        const char* v_end = v + len;
        if (usize == 0xffffffff && v + 8 <= v_end) usize = le64(v), v += 8;
        if (csize == 0xffffffff && v + 8 <= v_end) csize = le64(v), v += 8;
        if (local == 0xffffffff && v + 8 <= v_end) local = le64(v), v += 8;
      }
      q += 4 + len;
    }
    p += kCentralSize + name_len + extra_len + comment_len;
    if (name.empty() || name.back() == '/') continue;
    MPQ_CHECK(name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0, path, ": entry '",
              name, "' is not an .npy array (expected an archive from np.savez)");
    MPQ_CHECK(!(flags & 1), path, ": entry '", name, "' is encrypted");
    MPQ_CHECK(method == 0 || method == 8, path, ": entry '", name, "' uses zip compression method ",
              method, " (expected 0 stored or 8 deflated)");
    entry.name = name.substr(0, name.size() - 4);
    entry.deflated = method == 8;
    entry.compressed_size = int64_t(csize);
    entry.size = int64_t(usize);

    std::string lh = read_at(in, path, int64_t(local), kLocalSize);
    MPQ_CHECK(le32(lh.data()) == kLocalSig, path, ": corrupt zip archive: entry '", name,
              "' has no local header at offset ", local);
    entry.data_offset = int64_t(local) + kLocalSize + le16(lh.data() + 26) + le16(lh.data() + 28);
    MPQ_CHECK(entry.data_offset + entry.compressed_size <= file_size, path,
              ": truncated zip archive: entry '", name, "' needs bytes up to ",
              entry.data_offset + entry.compressed_size, ", file size ", file_size);
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::string npz_entry_bytes(const std::string& path, const NpzEntry& entry) {
  std::string where = path + ":" + entry.name;
  std::ifstream in(path, std::ios::binary);
  MPQ_CHECK(in.good(), path, ": cannot open (", std::strerror(errno), ")");
  std::string packed = read_at(in, path, entry.data_offset, entry.compressed_size);
  if (!entry.deflated) return packed;
  std::string out(size_t(entry.size), '\0');
  z_stream z{};
  MPQ_CHECK(inflateInit2(&z, -MAX_WBITS) == Z_OK, where, ": zlib inflateInit2 failed");
  // zlib counts in 32-bit units; feed and drain in chunks so entries over 4 GiB inflate too.
  constexpr int64_t kChunk = int64_t(1) << 30;
  int64_t in_pos = 0, out_pos = 0;
  int rc = Z_OK;
  while (true) {
    if (z.avail_in == 0 && in_pos < int64_t(packed.size())) {
      z.next_in = reinterpret_cast<Bytef*>(packed.data() + in_pos);
      z.avail_in = uInt(std::min(kChunk, int64_t(packed.size()) - in_pos));
      in_pos += z.avail_in;
    }
    if (z.avail_out == 0 && out_pos < int64_t(out.size())) {
      z.next_out = reinterpret_cast<Bytef*>(out.data() + out_pos);
      z.avail_out = uInt(std::min(kChunk, int64_t(out.size()) - out_pos));
      out_pos += z.avail_out;
    }
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc == Z_OK) continue;
    // No progress is possible only when a chunk boundary needs refilling; otherwise the data is
    // cut short or longer than the directory says.
    bool refill = (z.avail_in == 0 && in_pos < int64_t(packed.size())) ||
                  (z.avail_out == 0 && out_pos < int64_t(out.size()));
    if (rc == Z_BUF_ERROR && refill) continue;
    break;
  }
  int64_t produced = int64_t(z.total_out);
  std::string zmsg = z.msg ? std::string(", ") + z.msg : std::string();
  inflateEnd(&z);
  MPQ_CHECK(rc == Z_STREAM_END && produced == entry.size, where,
            ": corrupt deflated entry (expected ", entry.size, " bytes, inflated ", produced, zmsg,
            ")");
  uLong crc = crc32_z(0L, reinterpret_cast<const Bytef*>(out.data()), out.size());
  MPQ_CHECK(crc == entry.crc, where, ": CRC mismatch (the archive is corrupt)");
  return out;
}

std::unique_ptr<ArraySource> open_npz_entry(const std::string& path, const NpzEntry& entry) {
  std::string where = path + ":" + entry.name;
  if (!entry.deflated) return open_npy_array(path, where, entry.data_offset, entry.size);
  return memory_array(where, npy_from_bytes(npz_entry_bytes(path, entry), where));
}

}  // namespace mpq::internal

namespace mpq {

std::map<std::string, at::Tensor> load_npz(const std::string& path) {
  std::map<std::string, at::Tensor> out;
  for (const auto& entry : internal::list_npz(path)) {
    out[entry.name] =
        internal::npy_from_bytes(internal::npz_entry_bytes(path, entry), path + ":" + entry.name);
  }
  return out;
}

}  // namespace mpq
