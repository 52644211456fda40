// Image folders: class numbering, NCHW layout, resize against a plain reference implementation,
// centre crop, normalisation, channel conversion, and the errors of inconsistent folders.

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "data/dataset.h"
#include "data_test_util.h"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace mpq {
namespace {

using testing::temp_dir;

// An 8-bit image, row-major h x w x c.
struct Image {
  int h, w, c;
  std::vector<unsigned char> pixels;
  unsigned char& at(int y, int x, int ch) { return pixels[size_t((y * w + x) * c + ch)]; }
};

Image make_image(int h, int w, int c, const std::function<int(int, int, int)>& value) {
  Image img{h, w, c, std::vector<unsigned char>(size_t(h * w * c))};
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int ch = 0; ch < c; ++ch) img.at(y, x, ch) = (unsigned char)value(y, x, ch);
    }
  }
  return img;
}

void write_png(const std::string& path, const Image& img) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  ASSERT_TRUE(stbi_write_png(path.c_str(), img.w, img.h, img.c, img.pixels.data(), img.w * img.c))
      << path;
}

// Antialiased bilinear resampling along one axis, written from its definition: output pixel i
// has centre c = (i + 0.5) * in / out in input coordinates and weighs input pixel j by the
// triangle max(0, 1 - |j + 0.5 - c| / s), s = max(1, in / out), normalised to sum 1. For
// upscaling (s = 1) this is plain bilinear interpolation with clamped edges.
std::vector<double> resample(const std::vector<double>& in, int64_t out) {
  int64_t n = int64_t(in.size());
  double scale = double(n) / double(out), s = std::max(1.0, scale);
  std::vector<double> result(static_cast<size_t>(out));
  for (int64_t i = 0; i < out; ++i) {
    double c = (double(i) + 0.5) * scale, sum = 0, total = 0;
    for (int64_t j = 0; j < n; ++j) {
      double wgt = std::max(0.0, 1.0 - std::abs(double(j) + 0.5 - c) / s);
      sum += wgt * in[size_t(j)];
      total += wgt;
    }
    result[size_t(i)] = sum / total;
  }
  return result;
}

// Separable 2-D resize of a grey image given as rows.
std::vector<std::vector<double>> resize_ref(const std::vector<std::vector<double>>& img, int64_t oh,
                                            int64_t ow) {
  std::vector<std::vector<double>> rows;
  for (const auto& r : img) rows.push_back(resample(r, ow));
  std::vector<std::vector<double>> out(static_cast<size_t>(oh),
                                       std::vector<double>(static_cast<size_t>(ow)));
  for (int64_t x = 0; x < ow; ++x) {
    std::vector<double> col;
    for (const auto& r : rows) col.push_back(r[size_t(x)]);
    std::vector<double> rc = resample(col, oh);
    for (int64_t y = 0; y < oh; ++y) out[size_t(y)][size_t(x)] = rc[size_t(y)];
  }
  return out;
}

TEST(ImageFolder, ClassesLabelsAndLayout) {
  std::string dir = temp_dir();
  // Pixel (y, x, ch) = 10y + x + 30ch + 80 * (which image).
  auto value = [](int k) {
    return [k](int y, int x, int ch) { return 10 * y + x + 30 * ch + 80 * k; };
  };
  write_png(dir + "/b_dog/x.png", make_image(2, 3, 3, value(0)));
  write_png(dir + "/a_cat/img1.png", make_image(2, 3, 3, value(1)));
  write_png(dir + "/a_cat/img0.PNG", make_image(2, 3, 3, value(2)));
  std::filesystem::create_directories(dir + "/.hidden");
  testing::write_bytes(dir + "/a_cat/notes.txt", "not an image");

  auto data = open_dataset(dir);
  EXPECT_EQ(data->size(), 3);
  EXPECT_EQ(data->num_classes(), 2);
  EXPECT_EQ(data->sample_shape(), (std::vector<int64_t>{3, 2, 3}));
  EXPECT_EQ(data->describe(), "image folder " + dir + " (3 samples, 3x2x3, 2 classes)");
  DataOptions o;
  o.spec = dir;
  o.preprocess.scale = 1;
  data = open_dataset(o);
  Batch b = data->read({0, 1, 2});
  // Sorted: a_cat/img0.PNG, a_cat/img1.png, b_dog/x.png.
  EXPECT_TRUE(at::equal(b.y, at::tensor({0, 0, 1}, at::kLong)));
  std::vector<int> which = {2, 1, 0};
  for (int n = 0; n < 3; ++n) {
    for (int ch = 0; ch < 3; ++ch) {
      for (int y = 0; y < 2; ++y) {
        for (int x = 0; x < 3; ++x) {
          EXPECT_EQ(b.x[n][ch][y][x].item<float>(), float(value(which[size_t(n)])(y, x, ch)));
        }
      }
    }
  }
}

TEST(ImageFolder, ResizeMatchesReference) {
  struct Case {
    int h, w;
    int64_t resize, oh, ow;
  };
  // Upscale, exact 2x downscale, fractional downscale, portrait.
  for (const Case& c :
       {Case{2, 3, 4, 4, 6}, Case{8, 12, 4, 4, 6}, Case{5, 7, 3, 3, 4}, Case{9, 4, 3, 6, 3}}) {
    SCOPED_TRACE(std::to_string(c.h) + "x" + std::to_string(c.w));
    std::string dir = temp_dir();
    Image img = make_image(c.h, c.w, 1, [](int y, int x, int) { return (y * 37 + x * 91) % 256; });
    write_png(dir + "/only/a.png", img);
    DataOptions o;
    o.spec = dir;
    o.preprocess.resize = c.resize;
    o.preprocess.scale = 1;
    auto data = open_dataset(o);
    ASSERT_EQ(data->sample_shape(), (std::vector<int64_t>{1, c.oh, c.ow}));
    at::Tensor x = data->read({0}).x;
    std::vector<std::vector<double>> rows(size_t(c.h), std::vector<double>(size_t(c.w)));
    for (int y = 0; y < c.h; ++y) {
      for (int xx = 0; xx < c.w; ++xx) rows[size_t(y)][size_t(xx)] = img.at(y, xx, 0);
    }
    auto ref = resize_ref(rows, c.oh, c.ow);
    for (int64_t y = 0; y < c.oh; ++y) {
      for (int64_t xx = 0; xx < c.ow; ++xx) {
        EXPECT_NEAR(x[0][0][y][xx].item<float>(), ref[size_t(y)][size_t(xx)], 1e-3)
            << "at " << y << "," << xx;
      }
    }
  }
}

TEST(ImageFolder, CentreCropAndNormalisation) {
  std::string dir = temp_dir();
  auto v = [](int y, int x, int ch) { return 40 * ch + 6 * y + x; };
  write_png(dir + "/c/a.png", make_image(4, 6, 3, v));
  DataOptions o;
  o.spec = dir;
  o.preprocess.crop = {2, 2};
  o.preprocess.mean = {0.1, 0.2, 0.3};
  o.preprocess.std = {0.5, 0.25, 2};
  auto data = open_dataset(o);
  EXPECT_EQ(data->sample_shape(), (std::vector<int64_t>{3, 2, 2}));
  at::Tensor x = data->read({0}).x;
  // Rows 1..2, columns 2..3.
  for (int ch = 0; ch < 3; ++ch) {
    for (int y = 0; y < 2; ++y) {
      for (int xx = 0; xx < 2; ++xx) {
        float expected = float((v(y + 1, xx + 2, ch) / 255.0 - o.preprocess.mean[size_t(ch)]) /
                               o.preprocess.std[size_t(ch)]);
        EXPECT_NEAR(x[0][ch][y][xx].item<float>(), expected, 1e-5);
      }
    }
  }
  // Odd margins round half to even like torchvision: 5 - 2 = 3 -> offset round(1.5) = 2;
  // 7 - 2 = 5 -> offset round(2.5) = 2.
  std::string dir2 = temp_dir() + "/odd";
  write_png(dir2 + "/c/a.png", make_image(5, 7, 1, [](int y, int x, int) { return 10 * y + x; }));
  o.spec = dir2;
  o.preprocess = Preprocess();
  o.preprocess.crop = {2};
  o.preprocess.scale = 1;
  x = open_dataset(o)->read({0}).x;
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_EQ(x[0][0][0][0].item<float>(), 22.0f);
  // A crop larger than the image.
  o.preprocess.crop = {6, 6};
  EXPECT_MPQ_ERROR(open_dataset(o), dir2 + "/c/a.png");
}

TEST(ImageFolder, ChannelConversion) {
  std::string dir = temp_dir();
  write_png(dir + "/a/grey.png", make_image(2, 2, 1, [](int, int, int) { return 90; }));
  write_png(dir + "/b/rgb.png", make_image(2, 2, 3, [](int, int, int ch) {
              return std::vector<int>{200, 100, 50}[size_t(ch)];
            }));
  write_png(dir + "/b/rgba.png", make_image(2, 2, 4, [](int, int, int ch) {
              return std::vector<int>{200, 100, 50, 7}[size_t(ch)];
            }));
  DataOptions o;
  o.spec = dir;
  o.preprocess.scale = 1;
  // As stored: the first image is grey, so an RGB image is an error naming it.
  auto stored = open_dataset(o);
  EXPECT_EQ(stored->sample_shape(), (std::vector<int64_t>{1, 2, 2}));
  EXPECT_MPQ_ERROR(stored->read({0, 1}), dir + "/b/rgb.png");
  // RGB: grey is replicated, alpha dropped.
  o.preprocess.channels = 3;
  Batch b = open_dataset(o)->read({0, 1, 2});
  EXPECT_TRUE(at::equal(b.x[0], at::full({3, 2, 2}, 90.0f)));
  at::Tensor rgb = at::tensor({200.0f, 100.0f, 50.0f}).reshape({3, 1, 1}).expand({3, 2, 2});
  EXPECT_TRUE(at::equal(b.x[1], rgb));
  EXPECT_TRUE(at::equal(b.x[2], rgb));
  // Grey: stb's luma (77 R + 150 G + 29 B) >> 8 = 124.
  o.preprocess.channels = 1;
  b = open_dataset(o)->read({0, 1});
  EXPECT_TRUE(at::equal(b.x[1], at::full({1, 2, 2}, 124.0f)));
}

TEST(ImageFolder, SizesMustAgreeAfterPreprocessing) {
  std::string dir = temp_dir();
  write_png(dir + "/a/small.png", make_image(4, 4, 1, [](int, int, int) { return 1; }));
  write_png(dir + "/a/wide.png", make_image(4, 8, 1, [](int, int, int) { return 2; }));
  auto data = open_dataset(dir);
  EXPECT_MPQ_ERROR(data->read({1}), dir + "/a/wide.png");
  DataOptions o;
  o.spec = dir;
  o.preprocess.resize = 4;
  o.preprocess.crop = {4, 4};
  Batch b = open_dataset(o)->read({0, 1});
  EXPECT_EQ(b.x.sizes(), (std::vector<int64_t>{2, 1, 4, 4}));
}

TEST(ImageFolder, Jpeg) {
  std::string dir = temp_dir();
  Image img = make_image(16, 16, 3, [](int, int, int ch) { return 60 + 70 * ch; });
  std::filesystem::create_directories(dir + "/k");
  ASSERT_TRUE(stbi_write_jpg((dir + "/k/a.jpg").c_str(), 16, 16, 3, img.pixels.data(), 100));
  DataOptions o;
  o.spec = dir;
  o.preprocess.scale = 1;
  at::Tensor x = open_dataset(o)->read({0}).x;
  at::Tensor want = at::tensor({60.0f, 130.0f, 200.0f}).reshape({1, 3, 1, 1});
  EXPECT_LE((x - want).abs().max().item<float>(), 3.0f);
}

TEST(ImageFolder, Errors) {
  std::string dir = temp_dir();
  std::filesystem::create_directories(dir + "/empty_root");
  EXPECT_MPQ_ERROR(open_dataset(dir + "/empty_root"), dir + "/empty_root");
  write_png(dir + "/root/a/x.png", make_image(2, 2, 1, [](int, int, int) { return 0; }));
  std::filesystem::create_directories(dir + "/root/b");
  EXPECT_MPQ_ERROR(open_dataset(dir + "/root"), dir + "/root/b");
  std::filesystem::create_directories(dir + "/bad/a");
  testing::write_bytes(dir + "/bad/a/x.png", "garbage, not a PNG");
  EXPECT_MPQ_ERROR(open_dataset(dir + "/bad"), dir + "/bad/a/x.png");
  DataOptions o;
  o.spec = dir + "/root";
  o.labels = dir + "/labels.npy";
  EXPECT_MPQ_ERROR(open_dataset(o), "labels");
}

}  // namespace
}  // namespace mpq
