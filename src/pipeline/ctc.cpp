#include "pipeline/ctc.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <fstream>

#include "core/error.h"

namespace mpq {
namespace {

std::vector<std::string> read_lines(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  MPQ_CHECK(in.good(), what, " ", path, ": cannot open (expected a text file, one entry per line)");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

// Code points of a UTF-8 string (invalid bytes count as one code point each).
std::u32string code_points(const std::string& s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (i + size_t(len) > s.size()) len = 1;
    char32_t cp = len == 1 ? c : c & (0xFF >> (len + 1));
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.push_back(cp);
    i += size_t(len);
  }
  return out;
}

}  // namespace

CtcTask load_ctc_task(const std::string& charset, const std::string& labels, int64_t classes) {
  MPQ_CHECK(!charset.empty(), "--task ctc needs --charset FILE (one symbol per line)");
  MPQ_CHECK(!labels.empty(),
            "--task ctc needs --labels FILE (the text of each sample, one per line)");
  CtcTask t;
  t.charset_path = charset;
  t.labels_path = labels;
  std::vector<std::string> symbols = read_lines(charset, "--charset");
  MPQ_CHECK(!symbols.empty(), "--charset ", charset, ": expected one symbol per line, found none");
  const int64_t n = int64_t(symbols.size());
  MPQ_CHECK(classes == n + 1 || classes == n + 2, "--charset ", charset, ": ", n,
            " symbols do not match the model's ", classes, " output classes (expected ", n + 1,
            ": a blank and the symbols, or ", n + 2, " with a trailing space class)");
  t.classes.push_back("");
  for (auto& s : symbols) t.classes.push_back(std::move(s));
  if (classes == n + 2) t.classes.push_back(" ");
  t.labels = read_lines(labels, "--labels");
  return t;
}

std::string ctc_greedy_decode(const at::Tensor& steps, const std::vector<std::string>& classes) {
  MPQ_CHECK(steps.dim() == 2 && steps.size(1) == int64_t(classes.size()),
            "CTC decoding: expected [steps, ", classes.size(), "] scores, found ", steps.sizes());
  at::Tensor best = steps.argmax(1).to(at::kLong).contiguous();
  const int64_t* k = best.data_ptr<int64_t>();
  std::string text;
  int64_t previous = -1;
  for (int64_t t = 0; t < best.numel(); ++t) {
    if (k[t] != previous && k[t] != 0) text += classes[size_t(k[t])];
    previous = k[t];
  }
  return text;
}

int64_t edit_distance(const std::string& a, const std::string& b) {
  std::u32string x = code_points(a), y = code_points(b);
  std::vector<int64_t> row(y.size() + 1);
  for (size_t j = 0; j <= y.size(); ++j) row[j] = int64_t(j);
  for (size_t i = 1; i <= x.size(); ++i) {
    int64_t diagonal = row[0];
    row[0] = int64_t(i);
    for (size_t j = 1; j <= y.size(); ++j) {
      int64_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (x[i - 1] == y[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[y.size()];
}

void CtcScore::add(const std::string& read, const std::string& truth) {
  ++lines;
  exact += read == truth ? 1 : 0;
  chars += int64_t(code_points(truth).size());
  edits += edit_distance(read, truth);
}

double CtcScore::char_accuracy() const {
  return chars > 0 ? 1.0 - double(edits) / double(chars) : (edits == 0 ? 1.0 : 0.0);
}

double CtcScore::line_accuracy() const { return lines > 0 ? double(exact) / double(lines) : 0; }

}  // namespace mpq
