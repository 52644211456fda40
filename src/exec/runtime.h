// Process-wide runtime settings for running models on the CPU: the ATen thread count, one thread
// for OpenBLAS inside ATen's threads, and the allocator behaviour libtorch's CPU tensors need.
// glibc returns freed blocks above 128 KiB to the kernel and maps them again on the next
// allocation, so every intermediate activation of a model costs page faults (measured: a 16-channel
// 28x28 conv at batch 1 took 3x longer). Raising the mmap and trim thresholds keeps those blocks in
// the heap, as jemalloc or tcmalloc would.
#pragma once

namespace mpq {

// Call once at start-up, before any tensor work. Example: init_runtime(2);
void init_runtime(int threads);

}  // namespace mpq
