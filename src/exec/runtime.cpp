#include "exec/runtime.h"

#include <ATen/Parallel.h>
#include <c10/core/CPUAllocator.h>
#include <dlfcn.h>
#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <new>

namespace mpq {
namespace {
int64_t budget_bytes = int64_t(1024) << 20;

std::atomic<int64_t> live_bytes{0}, peak_bytes{0};
std::atomic<bool> counting{false};

// The CPU allocator every ATen tensor comes from (64-byte aligned, like c10's own), counting the
// bytes alive and their peak: oneDNN's reorders and kernels' scratch included, which node outputs
// alone do not show. The size sits in a header before the data, so that data and context are the
// same pointer (raw_allocate needs that).
class CountingAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const override {
    void* base = nullptr;
    if (posix_memalign(&base, kHeader, n + kHeader) != 0 || !base) throw std::bad_alloc();
    *static_cast<int64_t*>(base) = int64_t(n);
    void* data = static_cast<char*>(base) + kHeader;
    int64_t now = live_bytes += int64_t(n);
    int64_t peak = peak_bytes.load();
    while (now > peak && !peak_bytes.compare_exchange_weak(peak, now)) {
    }
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

 private:
  static constexpr size_t kHeader = 64;
  static void release(void* data) {
    if (!data) return;
    void* base = static_cast<char*>(data) - kHeader;
    live_bytes -= *static_cast<int64_t*>(base);
    free(base);
  }
};
}  // namespace

bool allocations_counted() { return counting.load(); }
int64_t allocated_bytes() { return live_bytes.load(); }
int64_t peak_allocated_bytes() { return peak_bytes.load(); }
void reset_peak_allocated() { peak_bytes.store(live_bytes.load()); }

void set_activation_budget(int64_t bytes) { budget_bytes = bytes; }
int64_t activation_budget() { return budget_bytes; }

void init_runtime(int threads) {
  // 1 GiB: larger blocks are still mapped directly (they are rare and page faults are amortised
  // over their size); smaller ones are reused from the heap.
  constexpr int kThreshold = 1 << 30;
  mallopt(M_MMAP_THRESHOLD, kThreshold);
  mallopt(M_TRIM_THRESHOLD, kThreshold);
  // oneDNN keeps up to 1024 primitives, each with the scratch memory of the batch it was made
  // for: measured on PaddleOCR's recognizer (47 convolutions), mpq quantize peaked at 1.83 GB with
  // the cache and 0.77 GB without, 9 % slower; resnet20 evaluates 25 % slower at batch 64. Memory
  // that grows with every new shape is worse, so no cache unless the user sets one.
  setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "0", /*overwrite=*/0);
  if (threads > 0) at::set_num_threads(threads);
  if (!counting.exchange(true)) {
    static CountingAllocator allocator;
    c10::SetCPUAllocator(&allocator, /*priority=*/1);
  }
  // ATen already spreads work over its OpenMP threads; OpenBLAS (pthread build) would start a pool
  // of its own whose spinning threads compete with them for the same cores (measured on 2 cores:
  // ResNet-20 at batch 1 ran 3-6x slower). One BLAS thread per caller avoids that. Looked up at
  // run time: the BLAS behind libtorch is whatever libblas.so.3 the system selects.
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    set(1);
}

}  // namespace mpq
