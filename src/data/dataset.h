// Data readers: the calibration, training and evaluation samples that every stage of mpq feeds
// through a model. One interface (Dataset: random access by sample index, float32 NCHW-style
// batches plus int64 class labels) over the formats the field uses: IDX files (the MNIST family,
// gzipped or not), image folders (one sub-folder per class, PNG/JPEG), NumPy .npy/.npz and ONNX
// TensorProto .pb files. Readers are lazy where the format allows it (uncompressed IDX, .npy and
// stored .npz entries are read by seeking to the requested samples; image folders decode per
// read; a folder of .pb files loads one file at a time), so a data set larger than memory is read
// batch by batch through DataLoader, whose shuffled order depends only on the seed.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mpq {

// One batch: x is float32 [B, ...sample_shape]; y is int64 [B] class labels, undefined if the
// data set is unlabelled.
struct Batch {
  at::Tensor x;
  at::Tensor y;
};

// Random access to samples by index. Implementations are safe to call read() on from several
// threads at once.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  // After preprocessing, e.g. {1, 28, 28}.
  virtual std::vector<int64_t> sample_shape() const = 0;
  virtual bool has_labels() const = 0;
  // 0 if unknown or unlabelled.
  virtual int64_t num_classes() const = 0;
  // x: float32 [indices.size(), ...sample_shape]. Indices may repeat and come in any order.
  // Example: Batch b = data.read({0, 5, 2});
  virtual Batch read(const std::vector<int64_t>& indices) const = 0;
  // Example: "fashion-mnist test (10000 samples, 1x28x28, 10 classes)".
  virtual std::string describe() const = 0;
};

// Applied in this order: decode -> resize shorter side -> centre crop -> scale -> (x - mean) / std.
// Resize and crop need samples of shape CxHxW (image folders, IDX images, CxHxW arrays).
struct Preprocess {
  double scale = -1;              // -1: automatic (1/255 for uint8 sources, 1 otherwise)
  std::vector<double> mean, std;  // per channel, or one value for all; empty = none
  int64_t resize = 0;         // resize the shorter side to this (bilinear, antialiased), 0 = keep
  std::vector<int64_t> crop;  // centre crop {H, W} (or {S} for SxS); empty = none
  int64_t channels = 0;       // 1 grey or 3 RGB; 0 = as stored (image folders: error if mixed;
                              // arrays convert only 1 -> 3)
};

struct DataOptions {
  std::string spec;    // see open_dataset
  std::string labels;  // optional separate labels file (.npy, IDX, .pb)
  Preprocess preprocess;
  int64_t limit = -1;  // use only the first N samples (-1: all)
};

// Opens a data set. Spec forms:
//   "fashion-mnist", "fashion-mnist:train", "fashion-mnist:test" (default test), read from
//       /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist);
//   "DIR" or "DIR:train" / "DIR:test": a folder of IDX files ({train,t10k}-{images-idx3,
//       labels-idx1}-ubyte[.gz]);
//   an IDX images file (gzipped or not), labels from `labels` or the sibling found by replacing
//       "-images-idx3-ubyte" with "-labels-idx1-ubyte";
//   an image folder: one sub-folder per class (classes sorted by name), PNG/JPEG files;
//   "x.npy" (labels from `labels`); "data.npz" (arrays named x/data/images/inputs and
//       y/labels/targets, or a single array);
//   a .pb file, or a folder of *.pb files (TensorProto, first dimension = samples, concatenated in
//       natural file-name order: input_2.pb before input_10.pb; labels.pb in the folder holds the
//       labels).
// Errors name the path and say what was expected and what was found.
// Example: DataOptions o; o.spec = "fashion-mnist:train"; o.limit = 512; open_dataset(o);
std::unique_ptr<Dataset> open_dataset(const DataOptions& options);
// The same with default options. Example: auto data = open_dataset("fashion-mnist:train");
std::unique_ptr<Dataset> open_dataset(const std::string& spec);

// Batches over a data set in a deterministic order: identity, or a permutation drawn from
// seed + epoch with mpq's own PRNG (the same on every machine and standard library). Reads one
// batch per next() call, so memory stays at one batch whatever the data set's size. Keeps a
// reference to `data`, which must outlive the loader.
// Example: DataLoader loader(*data, 64, true, 7); Batch b; while (loader.next(&b)) { ... }
class DataLoader {
 public:
  DataLoader(const Dataset& data, int64_t batch_size, bool shuffle = false, uint64_t seed = 0,
             bool drop_last = false);
  int64_t num_batches() const;
  // Restarts at the first batch; reshuffles with seed + epoch when shuffling. The constructor
  // starts epoch 0.
  void start_epoch(int64_t epoch);
  // False at the end of the epoch.
  bool next(Batch* batch);
  // The sample order of the current epoch.
  const std::vector<int64_t>& order() const { return order_; }

 private:
  const Dataset& data_;
  int64_t batch_size_;
  bool shuffle_;
  uint64_t seed_;
  bool drop_last_;
  std::vector<int64_t> order_;
  int64_t next_batch_ = 0;
};

// A permutation of 0..n-1 from a Fisher-Yates shuffle driven by splitmix64: the same sequence for
// the same (n, seed) on every platform. Example: random_permutation(10, 42).
std::vector<int64_t> random_permutation(int64_t n, uint64_t seed);

// .npy files (also the exchange format with ONNX Runtime's node binding): float16/32/64,
// int8/16/32/64, uint8 and bool; C order. Loading accepts either byte order, saving writes
// little endian. save_npy writes atomically (temporary file + rename).
at::Tensor load_npy(const std::string& path);
void save_npy(const std::string& path, const at::Tensor& tensor);

// All arrays of an .npz archive (np.savez or np.savez_compressed), keyed by name without ".npy".
std::map<std::string, at::Tensor> load_npz(const std::string& path);

// A whole IDX file (gzipped or not) as a tensor of its stored type and shape.
at::Tensor load_idx(const std::string& path);

}  // namespace mpq
