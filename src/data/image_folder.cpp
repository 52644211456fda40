// Image folders (torchvision's ImageFolder layout): ROOT/CLASS/IMAGE.png|jpg|jpeg, classes
// numbered in sorted order of their folder names, images in sorted order of file names within a
// class. Opening lists the files and reads the first image's header; every read decodes its
// images (stb_image), so the folder never has to fit in memory.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "data/internal/arrays.h"

// Static, so that another module compiling stb_image into the same program cannot clash.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_FAILURE_USERMSG
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

namespace mpq::internal {
namespace {

namespace fs = std::filesystem;

bool is_image_name(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

// Grey and grey+alpha are 1 channel, RGB and RGBA are 3: alpha is dropped.
int64_t colour_channels(int stored) { return stored <= 2 ? 1 : 3; }

std::vector<std::string> sorted_entries(const std::string& dir, bool want_dirs) {
  std::vector<std::string> names;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  MPQ_CHECK(!ec, dir, ": cannot list the folder (", ec.message(), ")");
  for (; it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    bool ok = want_dirs ? it->is_directory() : it->is_regular_file() && is_image_name(name);
    if (ok) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

class ImageFolder : public Dataset {
 public:
  ImageFolder(const std::string& dir, const Preprocess& p, int64_t limit) : dir_(dir), p_(p) {
    check_preprocess(p, dir);
    classes_ = sorted_entries(dir, /*want_dirs=*/true);
    MPQ_CHECK(!classes_.empty(), dir, ": expected one sub-folder per class, found none");
    for (size_t c = 0; c < classes_.size(); ++c) {
      std::string class_dir = join_path(dir, classes_[c]);
      std::vector<std::string> files = sorted_entries(class_dir, /*want_dirs=*/false);
      MPQ_CHECK(!files.empty(), class_dir, ": class folder holds no PNG or JPEG images");
      for (const auto& f : files) {
        files_.push_back(join_path(class_dir, f));
        labels_.push_back(int64_t(c));
      }
    }
    int w = 0, h = 0, n = 0;
    MPQ_CHECK(stbi_info(files_[0].c_str(), &w, &h, &n), files_[0],
              ": cannot read the image header (", stbi_failure_reason(), ")");
    channels_ = p.channels != 0 ? p.channels : colour_channels(n);
    check_channels(p, channels_, dir);
    auto [oh, ow] = resized_size(p, h, w, files_[0]);
    shape_ = {channels_, oh, ow};
    rows_ = int64_t(files_.size());
    size_ = limit < 0 ? rows_ : std::min(limit, rows_);
  }

  int64_t size() const override { return size_; }
  std::vector<int64_t> sample_shape() const override { return shape_; }
  bool has_labels() const override { return true; }
  int64_t num_classes() const override { return int64_t(classes_.size()); }

  Batch read(const std::vector<int64_t>& indices) const override {
    for (int64_t i : indices) {
      MPQ_CHECK(i >= 0 && i < size_, dir_, ": sample index ", i, " out of range [0, ", size_, ")");
    }
    // Decoding dominates; images decode in parallel on ATen's threads (an error in any of them
    // is rethrown here unchanged).
    std::vector<at::Tensor> images(indices.size());
    at::parallel_for(0, int64_t(indices.size()), 1, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k)
        images[size_t(k)] = load(files_[size_t(indices[size_t(k)])]);
    });
    std::vector<int64_t> labels;
    for (int64_t i : indices) labels.push_back(labels_[size_t(i)]);
    Batch b;
    if (images.empty()) {
      std::vector<int64_t> shape = shape_;
      shape.insert(shape.begin(), 0);
      b.x = at::empty(shape, at::TensorOptions(at::kFloat));
    } else {
      b.x = normalize(at::cat(images, 0), p_, /*uint8_source=*/true);
    }
    b.y = at::tensor(at::ArrayRef<int64_t>(labels), at::TensorOptions(at::kLong));
    return b;
  }

  std::string describe() const override {
    std::ostringstream out;
    out << "image folder " << dir_ << " (";
    if (size_ < rows_) out << "first " << size_ << " of ";
    out << rows_ << " samples, " << shape_x(shape_) << ", " << classes_.size() << " classes)";
    return out.str();
  }

 private:
  // Decodes one image to float [1, C, H, W] in 0..255, resized and cropped.
  at::Tensor load(const std::string& path) const {
    int w = 0, h = 0, n = 0;
    // With channels as stored, decode as stored and drop alpha; otherwise stb converts (its
    // grey is the ITU-R BT.601 luma of RGB).
    int want = int(p_.channels);
    stbi_uc* data = stbi_load(path.c_str(), &w, &h, &n, want);
    MPQ_CHECK(data != nullptr, path, ": cannot decode the image (", stbi_failure_reason(), ")");
    std::unique_ptr<stbi_uc, void (*)(void*)> owned(data, stbi_image_free);
    int stride = want != 0 ? want : n;
    at::Tensor img = at::from_blob(data, {h, w, stride}, at::TensorOptions(at::kByte))
                         .slice(2, 0, want != 0 ? want : colour_channels(n))
                         .permute({2, 0, 1})
                         .to(at::kFloat)
                         .unsqueeze(0);
    if (want == 0 && colour_channels(n) != channels_) {
      MPQ_FAIL(path, ": image has ", colour_channels(n), " channel(s) but ", files_[0], " has ",
               channels_, " (set preprocess channels to 1 or 3 to convert)");
    }
    img = resize_crop(img, p_, path);
    MPQ_CHECK(img.size(2) == shape_[1] && img.size(3) == shape_[2], path, ": image is ",
              img.size(2), "x", img.size(3),
              " after preprocessing, but the data set's samples are ", shape_[1], "x", shape_[2],
              " (set crop so that all images have one size)");
    return img;
  }

  std::string dir_;
  Preprocess p_;
  std::vector<std::string> classes_, files_;
  std::vector<int64_t> labels_;
  int64_t channels_ = 0, rows_ = 0, size_ = 0;
  std::vector<int64_t> shape_;
};

}  // namespace

std::unique_ptr<Dataset> open_image_folder(const std::string& dir, const Preprocess& p,
                                           int64_t limit) {
  return std::make_unique<ImageFolder>(dir, p, limit);
}

}  // namespace mpq::internal
