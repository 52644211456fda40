#include "exec/runtime.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>

namespace mpq {

void init_runtime(int threads) {
  // 1 GiB: larger blocks are still mapped directly (they are rare and page faults are amortised
  // over their size); smaller ones are reused from the heap.
  constexpr int kThreshold = 1 << 30;
  mallopt(M_MMAP_THRESHOLD, kThreshold);
  mallopt(M_TRIM_THRESHOLD, kThreshold);
  if (threads > 0) at::set_num_threads(threads);
  // ATen already spreads work over its OpenMP threads; OpenBLAS (pthread build) would start a pool
  // of its own whose spinning threads compete with them for the same cores (measured on 2 cores:
  // ResNet-20 at batch 1 ran 3-6x slower). One BLAS thread per caller avoids that. Looked up at
  // run time: the BLAS behind libtorch is whatever libblas.so.3 the system selects.
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    set(1);
}

}  // namespace mpq
