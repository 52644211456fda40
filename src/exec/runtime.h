// Process-wide runtime settings for running models on the CPU: the ATen thread count, one thread
// for OpenBLAS inside ATen's threads, and the allocator behaviour libtorch's CPU tensors need.
// glibc returns freed blocks above 128 KiB to the kernel and maps them again on the next
// allocation, so every intermediate activation of a model costs page faults (measured: a 16-channel
// 28x28 conv at batch 1 took 3x longer). Raising the mmap and trim thresholds keeps those blocks in
// the heap, as jemalloc or tcmalloc would.
#pragma once

#include <cstdint>

namespace mpq {

// Call once at start-up, before any tensor work. Example: init_runtime(2);
void init_runtime(int threads);

// The activation memory one pass over a batch may hold, in bytes (default 1 GiB; mpq
// --memory). Calibration, sensitivity and evaluation choose their batch sizes from it
// (batch_within in exec/executor.h), so peak memory depends on the model, not on the data's size.
void set_activation_budget(int64_t bytes);
int64_t activation_budget();

// After init_runtime, every CPU tensor's bytes are counted: those alive now and their peak since
// reset_peak_allocated() (Executor::footprint measures a run this way). Before it, false and 0.
bool allocations_counted();
int64_t allocated_bytes();
int64_t peak_allocated_bytes();
void reset_peak_allocated();

}  // namespace mpq
