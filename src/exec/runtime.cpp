#include "exec/runtime.h"

#include <ATen/Parallel.h>
#include <malloc.h>

namespace mpq {

void init_runtime(int threads) {
  // 1 GiB: larger blocks are still mapped directly (they are rare and page faults are amortised
  // over their size); smaller ones are reused from the heap.
  constexpr int kThreshold = 1 << 30;
  mallopt(M_MMAP_THRESHOLD, kThreshold);
  mallopt(M_TRIM_THRESHOLD, kThreshold);
  if (threads > 0) at::set_num_threads(threads);
}

}  // namespace mpq
