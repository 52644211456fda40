// Text recognition scored the way OCR is scored: a model whose first output is per-step class
// probabilities (or scores) [N, T, C] over a charset is decoded greedily as CTC (the most likely
// class per step, repeats merged, the blank class dropped) and compared with the true text of each
// sample: character accuracy = 1 - (sum of edit distances) / (sum of true lengths), counted in
// Unicode code points, and line accuracy = the fraction of lines read exactly.
// The charset file has one symbol per line (PaddleOCR's ppocr_keys_v1.txt, en_dict.txt, ...);
// class 0 is the CTC blank and class k >= 1 is line k; a model with one class more than that has
// a space as its last class (PaddleOCR's use_space_char). The labels file has one UTF-8 line per
// sample, in the data's order.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mpq {

struct CtcTask {
  std::string charset_path, labels_path;
  std::vector<std::string> classes;  // classes[0] = "" (blank)
  std::vector<std::string> labels;   // per sample
};

// Reads the charset and the labels and checks them against the model's class count: throws
// naming the file, what was expected and what was found.
// Example: CtcTask t = load_ctc_task("keys.txt", "labels.txt", 6625);
CtcTask load_ctc_task(const std::string& charset, const std::string& labels, int64_t classes);

// The greedy CTC reading of one sample's output [T, C].
std::string ctc_greedy_decode(const at::Tensor& steps, const std::vector<std::string>& classes);

// Levenshtein distance between the code points of two UTF-8 strings.
int64_t edit_distance(const std::string& a, const std::string& b);

// Sums over samples for the two accuracies.
struct CtcScore {
  int64_t lines = 0, exact = 0;
  int64_t chars = 0, edits = 0;
  void add(const std::string& read, const std::string& truth);
  double char_accuracy() const;
  double line_accuracy() const;
};

}  // namespace mpq
