// DataLoader and the seeded permutation behind it. The shuffle uses splitmix64 and an unbiased
// bounded draw of our own instead of std::shuffle / std::uniform_int_distribution, whose output
// differs between standard libraries: the same seed gives the same order on every machine, which
// is what makes sensitivity and calibration runs reproducible.

#include <ATen/ATen.h>

#include <numeric>

#include "core/error.h"
#include "data/dataset.h"

namespace mpq {
namespace {

// splitmix64 (Steele, Lea & Flood 2014; the seeding generator of xoshiro).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound) without modulo bias: rejects the top partial range.
  uint64_t below(uint64_t bound) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do {
      r = next();
    } while (r >= limit);
    return r % bound;
  }

 private:
  uint64_t state_;
};

}  // namespace

std::vector<int64_t> random_permutation(int64_t n, uint64_t seed) {
  MPQ_CHECK(n >= 0, "random_permutation: n must be >= 0, found ", n);
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), int64_t(0));
  SplitMix64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    std::swap(p[size_t(i)], p[size_t(rng.below(uint64_t(i) + 1))]);
  }
  return p;
}

DataLoader::DataLoader(const Dataset& data, int64_t batch_size, bool shuffle, uint64_t seed,
                       bool drop_last)
    : data_(data), batch_size_(batch_size), shuffle_(shuffle), seed_(seed), drop_last_(drop_last) {
  MPQ_CHECK(batch_size > 0, data.describe(), ": batch size must be positive, found ", batch_size);
  start_epoch(0);
}

int64_t DataLoader::num_batches() const {
  int64_t n = data_.size();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

void DataLoader::start_epoch(int64_t epoch) {
  if (shuffle_) {
    order_ = random_permutation(data_.size(), seed_ + uint64_t(epoch));
  } else {
    order_.resize(size_t(data_.size()));
    std::iota(order_.begin(), order_.end(), int64_t(0));
  }
  next_batch_ = 0;
}

bool DataLoader::next(Batch* batch) {
  if (next_batch_ >= num_batches()) return false;
  int64_t begin = next_batch_ * batch_size_;
  int64_t end = std::min(begin + batch_size_, int64_t(order_.size()));
  *batch = data_.read(std::vector<int64_t>(order_.begin() + begin, order_.begin() + end));
  ++next_batch_;
  return true;
}

}  // namespace mpq
