// Content hashes that artifacts record to say what produced them (design.md: every artifact records
// the input model hash and data hash). FNV-1a, 64 bits: fast, stable across platforms, not
// cryptographic (it detects changed inputs, not tampering).
#pragma once

#include <cstdint>
#include <string>

namespace mpq {

// Example: hash_hex(fnv1a64(bytes)) -> "cbf29ce484222325".
uint64_t fnv1a64(const void* data, size_t size, uint64_t seed = 0xcbf29ce484222325ULL);
uint64_t fnv1a64(const std::string& bytes);
std::string hash_hex(uint64_t hash);
// The hash of a whole file, as 16 hex digits; the error names the path.
std::string hash_file(const std::string& path);

}  // namespace mpq
