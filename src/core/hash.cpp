#include "core/hash.h"

#include <cstdio>

#include "core/fs.h"

namespace mpq {

uint64_t fnv1a64(const void* data, size_t size, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = seed;
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t fnv1a64(const std::string& bytes) { return fnv1a64(bytes.data(), bytes.size()); }

std::string hash_hex(uint64_t hash) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(hash));
  return buf;
}

std::string hash_file(const std::string& path) { return hash_hex(fnv1a64(read_file(path))); }

}  // namespace mpq
