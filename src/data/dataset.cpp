// open_dataset: turns a spec into a Dataset by looking at what the path holds; the Dataset over
// arrays (IDX, .npy, .npz, .pb) with their labels; and the preprocessing that array data sets and
// image folders share.

#include "data/dataset.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "data/internal/arrays.h"
#include "onnx/tensor_proto.h"

namespace mpq {
namespace internal {

// ---- Preprocessing -------------------------------------------------------------------------

void check_preprocess(const Preprocess& p, const std::string& where) {
  MPQ_CHECK(p.scale == -1 || (p.scale > 0 && std::isfinite(p.scale)), where,
            ": preprocess scale must be positive or -1 (automatic), found ", p.scale);
  for (double s : p.std) {
    MPQ_CHECK(s != 0 && std::isfinite(s), where, ": preprocess std must be non-zero, found ", s);
  }
  for (double m : p.mean) {
    MPQ_CHECK(std::isfinite(m), where, ": preprocess mean must be finite, found ", m);
  }
  MPQ_CHECK(p.resize >= 0, where, ": preprocess resize must be >= 0, found ", p.resize);
  MPQ_CHECK(p.crop.size() <= 2, where, ": preprocess crop takes {H, W} or {S}, found ",
            p.crop.size(), " values");
  for (int64_t c : p.crop) {
    MPQ_CHECK(c > 0, where, ": preprocess crop sizes must be positive, found ", c);
  }
  MPQ_CHECK(p.channels == 0 || p.channels == 1 || p.channels == 3, where,
            ": preprocess channels must be 1 (grey), 3 (RGB) or 0 (as stored), found ", p.channels);
}

void check_channels(const Preprocess& p, int64_t channels, const std::string& where) {
  for (const auto* v : {&p.mean, &p.std}) {
    MPQ_CHECK(v->empty() || v->size() == 1 || int64_t(v->size()) == channels, where,
              ": preprocess ", v == &p.mean ? "mean" : "std", " has ", v->size(),
              " values, expected 1 or one per channel (", channels, ")");
  }
}

std::pair<int64_t, int64_t> resized_size(const Preprocess& p, int64_t h, int64_t w,
                                         const std::string& where) {
  if (p.resize > 0) {
    // As torchvision's Resize(int): the shorter side becomes `resize`, the longer one keeps the
    // aspect ratio, truncated.
    if (h <= w) {
      w = p.resize * w / h;
      h = p.resize;
    } else {
      h = p.resize * h / w;
      w = p.resize;
    }
  }
  if (!p.crop.empty()) {
    int64_t ch = p.crop[0], cw = p.crop.size() > 1 ? p.crop[1] : p.crop[0];
    MPQ_CHECK(ch <= h && cw <= w, where, ": crop ", ch, "x", cw, " is larger than the ",
              p.resize > 0 ? "resized " : "", "image (", h, "x", w, ")");
    h = ch;
    w = cw;
  }
  return {h, w};
}

namespace {

// torchvision's CenterCrop offset: int(round(diff / 2)) with Python's round-half-to-even.
int64_t crop_offset(int64_t diff) {
  int64_t half = diff / 2;
  if (diff % 2 == 0) return half;
  return half % 2 == 0 ? half : half + 1;
}

}  // namespace

at::Tensor resize_crop(const at::Tensor& x, const Preprocess& p, const std::string& where) {
  if (p.resize <= 0 && p.crop.empty()) return x;
  MPQ_ASSERT(x.dim() == 4);
  at::Tensor y = x;
  int64_t h = x.size(2), w = x.size(3);
  Preprocess resize_only;
  resize_only.resize = p.resize;
  auto [oh, ow] = resized_size(resize_only, h, w, where);
  if (oh != h || ow != w) {
    // Antialiased like PIL and torchvision >= 0.17, so that a downscaled image matches what a
    // model was trained on; for upscaling it equals plain bilinear.
    y = at::_upsample_bilinear2d_aa(y.contiguous(), {oh, ow}, /*align_corners=*/false);
  }
  if (!p.crop.empty()) {
    auto [ch, cw] = resized_size(p, h, w, where);
    y = y.slice(2, crop_offset(oh - ch), crop_offset(oh - ch) + ch)
            .slice(3, crop_offset(ow - cw), crop_offset(ow - cw) + cw);
  }
  return y.contiguous();
}

at::Tensor normalize(const at::Tensor& x, const Preprocess& p, bool uint8_source) {
  double scale = p.scale == -1 ? (uint8_source ? 1.0 / 255.0 : 1.0) : p.scale;
  at::Tensor y = x;
  if (scale != 1.0) y = y * scale;
  // [1, C, 1, ...] so that it broadcasts over the batch and the spatial dimensions.
  auto per_channel = [&](const std::vector<double>& v) {
    std::vector<float> f(v.begin(), v.end());
    at::Tensor t = at::tensor(at::ArrayRef<float>(f), at::TensorOptions(at::kFloat));
    if (f.size() == 1) return t.reshape({});
    std::vector<int64_t> shape(size_t(x.dim()), 1);
    shape[1] = int64_t(f.size());
    return t.reshape(shape);
  };
  if (!p.mean.empty()) y = y - per_channel(p.mean);
  if (!p.std.empty()) y = y / per_channel(p.std);
  return y.contiguous();
}

// ---- Labels --------------------------------------------------------------------------------

at::Tensor labels_from_tensor(const at::Tensor& t, const std::string& where) {
  std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
  MPQ_CHECK(t.dim() == 1 || (t.dim() == 2 && t.size(1) == 1), where,
            ": expected one class label per sample (shape [N] or [N, 1]), found shape ",
            shape_string(shape));
  MPQ_CHECK(t.scalar_type() != at::kBool, where, ": expected integer class labels, found bool");
  at::Tensor y = t.reshape({t.size(0)});
  if (at::isFloatingType(y.scalar_type())) {
    at::Tensor d = y.to(at::kDouble);
    MPQ_CHECK(at::equal(d, d.round()), where,
              ": expected integer class labels, found fractional values");
  }
  y = y.to(at::kLong).contiguous();
  if (y.numel() > 0) {
    int64_t lo = y.min().item<int64_t>();
    MPQ_CHECK(lo >= 0, where, ": class labels must be >= 0, found ", lo);
  }
  return y;
}

namespace {

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext;
}

at::Tensor read_all(const ArraySource& a) {
  std::vector<int64_t> all(size_t(a.rows()));
  std::iota(all.begin(), all.end(), int64_t(0));
  return a.read_rows(all);
}

}  // namespace

at::Tensor load_labels(const std::string& path) {
  MPQ_CHECK(file_exists(path), path, ": labels file not found");
  MPQ_CHECK(!is_directory(path), path, ": expected a labels file, found a folder");
  std::string ext = lower_extension(path);
  at::Tensor t;
  if (ext == ".npy") {
    t = load_npy(path);
  } else if (ext == ".pb") {
    t = load_tensor_pb(path);
  } else {
    t = load_idx(path);
  }
  return labels_from_tensor(t, path);
}

// ---- The Dataset over arrays ---------------------------------------------------------------

namespace {

class ArrayDataset : public Dataset {
 public:
  // `add_channel`: samples are HxW images (IDX) that become 1xHxW.
  ArrayDataset(std::string name, std::unique_ptr<ArraySource> x, at::Tensor labels,
               const std::string& labels_where, const Preprocess& p, int64_t limit,
               bool add_channel)
      : name_(std::move(name)), x_(std::move(x)), labels_(labels), p_(p) {
    std::string where = x_->where();
    rows_ = x_->rows();
    if (labels_.defined()) {
      MPQ_CHECK(labels_.size(0) == rows_, labels_where, ": ", labels_.size(0), " labels for ",
                rows_, " samples in ", where, " (expected one label per sample)");
      num_classes_ = rows_ > 0 ? labels_.max().item<int64_t>() + 1 : 0;
    }
    stored_shape_ = x_->row_shape();
    if (add_channel && stored_shape_.size() == 2) stored_shape_.insert(stored_shape_.begin(), 1);
    shape_ = stored_shape_;
    bool spatial = p.resize > 0 || !p.crop.empty() || p.channels != 0;
    if (spatial) {
      MPQ_CHECK(shape_.size() == 3, where,
                ": preprocess resize, crop and channels need samples of shape CxHxW, found ",
                shape_x(shape_));
      if (p.channels != 0 && p.channels != shape_[0]) {
        MPQ_CHECK(shape_[0] == 1 && p.channels == 3, where, ": cannot convert samples with ",
                  shape_[0], " channels to ", p.channels, " (only 1 -> 3 is supported)");
        repeat_channels_ = true;
        shape_[0] = 3;
      }
      auto [h, w] = resized_size(p, shape_[1], shape_[2], where);
      shape_[1] = h;
      shape_[2] = w;
    }
    check_channels(p, shape_.empty() ? 1 : shape_[0], where);
    MPQ_CHECK(!shape_.empty() || (p.mean.size() <= 1 && p.std.size() <= 1), where,
              ": per-channel mean/std need samples with a channel dimension, found scalars");
    size_ = limit < 0 ? rows_ : std::min(limit, rows_);
  }

  int64_t size() const override { return size_; }
  std::vector<int64_t> sample_shape() const override { return shape_; }
  bool has_labels() const override { return labels_.defined(); }
  int64_t num_classes() const override { return num_classes_; }

  Batch read(const std::vector<int64_t>& indices) const override {
    for (int64_t i : indices) {
      MPQ_CHECK(i >= 0 && i < size_, x_->where(), ": sample index ", i, " out of range [0, ", size_,
                ")");
    }
    Batch b;
    at::Tensor x = x_->read_rows(indices).to(at::kFloat);
    std::vector<int64_t> shape = stored_shape_;
    shape.insert(shape.begin(), int64_t(indices.size()));
    x = x.reshape(shape);
    if (repeat_channels_) x = x.expand({x.size(0), 3, x.size(2), x.size(3)});
    if (x.dim() == 4) x = resize_crop(x, p_, x_->where());
    b.x = normalize(x, p_, x_->dtype() == at::kByte);
    if (labels_.defined()) {
      b.y = labels_.index_select(
          0, at::tensor(at::ArrayRef<int64_t>(indices), at::TensorOptions(at::kLong)));
    }
    return b;
  }

  std::string describe() const override {
    std::ostringstream out;
    out << name_ << " (";
    if (size_ < rows_) out << "first " << size_ << " of ";
    out << rows_ << " samples, " << shape_x(shape_) << ", ";
    if (labels_.defined()) {
      out << num_classes_ << " classes)";
    } else {
      out << "unlabelled)";
    }
    return out.str();
  }

 private:
  std::string name_;
  std::unique_ptr<ArraySource> x_;
  at::Tensor labels_;
  Preprocess p_;
  int64_t rows_ = 0, size_ = 0, num_classes_ = 0;
  std::vector<int64_t> stored_shape_, shape_;
  bool repeat_channels_ = false;
};

const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

// The sibling labels file of an IDX images file, or "" when there is none. A gzipped images
// file looks for gzipped labels first.
std::string idx_sibling_labels(const std::string& images) {
  std::string dir = parent_dir(images);
  std::string name = std::filesystem::path(images).filename().string();
  bool gz = name.size() > 3 && name.compare(name.size() - 3, 3, ".gz") == 0;
  if (gz) name.resize(name.size() - 3);
  for (const auto& [from, to] :
       {std::pair<std::string, std::string>{"-images-idx3-ubyte", "-labels-idx1-ubyte"},
        {"images.idx3-ubyte", "labels.idx1-ubyte"}}) {
    size_t pos = name.find(from);
    if (pos == std::string::npos) continue;
    std::string base = join_path(dir, name.substr(0, pos) + to + name.substr(pos + from.size()));
    for (const std::string& candidate : gz ? std::vector<std::string>{base + ".gz", base}
                                           : std::vector<std::string>{base, base + ".gz"}) {
      if (file_exists(candidate) && !is_directory(candidate)) return candidate;
    }
  }
  return "";
}

std::unique_ptr<Dataset> make_idx_dataset(const std::string& name, const std::string& images,
                                          const DataOptions& o) {
  auto x = open_idx_array(images);
  std::string labels_path = o.labels.empty() ? idx_sibling_labels(images) : o.labels;
  at::Tensor y = labels_path.empty() ? at::Tensor() : load_labels(labels_path);
  return std::make_unique<ArrayDataset>(name, std::move(x), y, labels_path, o.preprocess, o.limit,
                                        /*add_channel=*/true);
}

// The images file of `split` in a folder of IDX files, or "".
std::string find_idx_images(const std::string& dir, const std::string& split) {
  std::vector<std::string> prefixes = split == "train" ? std::vector<std::string>{"train"}
                                                       : std::vector<std::string>{"t10k", "test"};
  for (const auto& prefix : prefixes) {
    for (const char* name : {"-images-idx3-ubyte.gz", "-images-idx3-ubyte", "-images.idx3-ubyte"}) {
      std::string path = join_path(dir, prefix + name);
      if (file_exists(path)) return path;
    }
  }
  return "";
}

bool folder_has(const std::string& dir, bool (*pred)(const std::filesystem::directory_entry&)) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec), end;
  MPQ_CHECK(!ec, dir, ": cannot list the folder (", ec.message(), ")");
  for (; it != end; it.increment(ec)) {
    if (pred(*it)) return true;
  }
  return false;
}

std::unique_ptr<Dataset> open_folder(const std::string& dir, const std::string& split,
                                     const std::string& name, const DataOptions& o) {
  bool has_idx = folder_has(dir, [](const std::filesystem::directory_entry& e) {
    return e.is_regular_file() && is_idx_name(e.path().filename().string());
  });
  if (has_idx) {
    std::string images = find_idx_images(dir, split);
    std::string want = split == "train" ? "train" : "t10k";
    MPQ_CHECK(!images.empty(), dir, ": no IDX images for the ", split.empty() ? "test" : split,
              " split (expected ", want, "-images-idx3-ubyte or ", want, "-images-idx3-ubyte.gz)");
    return make_idx_dataset(
        name.empty() ? "IDX " + dir + " " + (split.empty() ? "test" : split) : name, images, o);
  }
  MPQ_CHECK(split.empty(), dir, ": a :", split, " split needs a folder of IDX files, found none");
  bool has_pb = folder_has(dir, [](const std::filesystem::directory_entry& e) {
    std::string n = e.path().filename().string();
    return e.is_regular_file() && n.size() > 3 && n.substr(n.size() - 3) == ".pb";
  });
  if (has_pb) {
    std::string labels_path;
    auto x = open_pb_folder(dir, &labels_path);
    if (!o.labels.empty()) labels_path = o.labels;
    at::Tensor y = labels_path.empty() ? at::Tensor() : load_labels(labels_path);
    return std::make_unique<ArrayDataset>("TensorProto " + dir, std::move(x), y, labels_path,
                                          o.preprocess, o.limit, false);
  }
  bool has_dirs = folder_has(dir, [](const std::filesystem::directory_entry& e) {
    return e.is_directory() && e.path().filename().string()[0] != '.';
  });
  MPQ_CHECK(has_dirs, dir,
            ": expected IDX files, .pb files or one sub-folder per class, found none");
  MPQ_CHECK(o.labels.empty(), o.labels, ": a labels file cannot be used with the image folder ",
            dir, " (its labels are its sub-folders)");
  return open_image_folder(dir, o.preprocess, o.limit);
}

std::unique_ptr<Dataset> open_npz(const std::string& path, const DataOptions& o) {
  std::vector<NpzEntry> entries = list_npz(path);
  auto find = [&](std::initializer_list<const char*> names) -> const NpzEntry* {
    for (const char* n : names) {
      for (const auto& e : entries) {
        if (e.name == n) return &e;
      }
    }
    return nullptr;
  };
  const NpzEntry* x = find({"x", "data", "images", "inputs"});
  const NpzEntry* y = find({"y", "labels", "targets"});
  if (!x && entries.size() == 1 && !y) x = &entries[0];
  if (!x) {
    std::string found;
    for (const auto& e : entries) found += (found.empty() ? "" : ", ") + e.name;
    MPQ_FAIL(path, ": expected an array named x, data, images or inputs, found ",
             found.empty() ? "no arrays" : found);
  }
  at::Tensor labels;
  std::string labels_where;
  if (!o.labels.empty()) {
    labels = load_labels(o.labels);
    labels_where = o.labels;
  } else if (y) {
    labels_where = path + ":" + y->name;
    labels = labels_from_tensor(read_all(*open_npz_entry(path, *y)), labels_where);
  }
  return std::make_unique<ArrayDataset>("npz " + path, open_npz_entry(path, *x), labels,
                                        labels_where, o.preprocess, o.limit, false);
}

bool starts_with_two_zero_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char m[2] = {1, 1};
  in.read(m, 2);
  return in.gcount() == 2 && m[0] == 0 && m[1] == 0;
}

}  // namespace
}  // namespace internal

std::unique_ptr<Dataset> open_dataset(const DataOptions& o) {
  using namespace internal;
  const std::string& spec = o.spec;
  MPQ_CHECK(!spec.empty(),
            "empty data spec (expected fashion-mnist[:train|:test], a data file or a folder)");
  MPQ_CHECK(o.limit == -1 || o.limit > 0, spec,
            ": limit must be a positive sample count or -1 (all), found ", o.limit);
  check_preprocess(o.preprocess, spec);

  const std::string kFashion = "fashion-mnist";
  if (spec == kFashion || spec.rfind(kFashion + ":", 0) == 0) {
    std::string split = spec == kFashion ? "test" : spec.substr(kFashion.size() + 1);
    MPQ_CHECK(split == "train" || split == "test", spec, ": unknown split '", split,
              "' (expected fashion-mnist:train or fashion-mnist:test)");
    MPQ_CHECK(is_directory(kFashionDir), spec, ": ", kFashionDir,
              " not found (install the Debian package dataset-fashion-mnist)");
    return open_folder(kFashionDir, split, "fashion-mnist " + split, o);
  }

  std::string path = spec, split;
  if (!file_exists(path)) {
    size_t colon = spec.rfind(':');
    std::string suffix = colon == std::string::npos ? "" : spec.substr(colon + 1);
    if ((suffix == "train" || suffix == "test") && is_directory(spec.substr(0, colon))) {
      path = spec.substr(0, colon);
      split = suffix;
    } else {
      MPQ_FAIL(spec,
               ": file not found (expected fashion-mnist[:train|:test], a data file or a folder)");
    }
  }
  if (is_directory(path)) return open_folder(path, split, "", o);

  std::string ext = lower_extension(path);
  if (ext == ".npy") {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    auto x = open_npy_array(path, path, 0, int64_t(in.tellg()));
    at::Tensor y = o.labels.empty() ? at::Tensor() : load_labels(o.labels);
    return std::make_unique<ArrayDataset>("npy " + path, std::move(x), y, o.labels, o.preprocess,
                                          o.limit, false);
  }
  if (ext == ".npz") return open_npz(path, o);
  if (ext == ".pb") {
    auto x = open_pb_array(path);
    at::Tensor y = o.labels.empty() ? at::Tensor() : load_labels(o.labels);
    return std::make_unique<ArrayDataset>("TensorProto " + path, std::move(x), y, o.labels,
                                          o.preprocess, o.limit, false);
  }
  MPQ_CHECK(is_idx_name(path) || ext == ".idx" || starts_with_two_zero_bytes(path), path,
            ": unknown data format (expected .npy, .npz, .pb, an IDX file such as "
            "train-images-idx3-ubyte[.gz], or a folder)");
  return make_idx_dataset("IDX " + path, path, o);
}

std::unique_ptr<Dataset> open_dataset(const std::string& spec) {
  DataOptions o;
  o.spec = spec;
  return open_dataset(o);
}

}  // namespace mpq
