// Text recognition scored in mpq itself (pipeline/ctc.h): greedy CTC decoding, edit distance in
// code points, and `mpq eval --task ctc --charset --labels` on a sequence model, with the one-line
// errors for a charset that does not match the output's classes and labels of the wrong count; a
// model with a node the opset upgrade cannot carry.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/cli_util.h"
#include "core/fs.h"
#include "data/dataset.h"
#include "exec/executor.h"
#include "onnx/builder.h"
#include "pipeline/ctc.h"
#include "support/test_util.h"

namespace mpq {
namespace {

using test::expect_one_line_error;
using test::mpq;

TEST(Ctc, GreedyDecodingMergesRepeatsAndDropsBlanks) {
  std::vector<std::string> classes = {"", "a", "b", "\xe4\xb8\xad"};  // blank, a, b, 中
  // Steps: a a blank a b b 中 blank -> "aab中".
  std::vector<int64_t> best = {1, 1, 0, 1, 2, 2, 3, 0};
  at::Tensor steps = at::zeros({int64_t(best.size()), 4});
  for (size_t t = 0; t < best.size(); ++t) steps[int64_t(t)][best[t]] = 1;
  EXPECT_EQ(ctc_greedy_decode(steps, classes), "aab\xe4\xb8\xad");
}

TEST(Ctc, EditDistanceCountsCodePoints) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3);
  EXPECT_EQ(edit_distance("", "abc"), 3);
  EXPECT_EQ(edit_distance("\xe4\xb8\xad\xe6\x96\x87", "\xe4\xb8\xad"), 1);  // 中文 vs 中
  CtcScore s;
  s.add("hello", "hello");
  s.add("wor1d", "world");
  EXPECT_DOUBLE_EQ(s.line_accuracy(), 0.5);
  EXPECT_DOUBLE_EQ(s.char_accuracy(), 1.0 - 1.0 / 10.0);
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const auto& l : lines) out << l << "\n";
}

TEST(CliCtc, EvalReadsTheTextAndNamesBadFiles) {
  std::string dir = test::temp_dir();
  std::string model = dir + "/seqnet.onnx", x = dir + "/x.npy";
  ProcessResult r =
      mpq({"-q", "zoo", "seqnet", "--dynamic-hw", "--width-mult", "0.5", "-o", model});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  at::manual_seed(3);
  at::Tensor images = at::rand({6, 1, 16, 20});
  save_npy(x, images);
  // The model's own readings as labels, with a charset of the right size.
  at::Tensor y;
  {
    at::NoGradGuard no_grad;
    y = Executor(import_onnx(model)).run({images})[0];  // [N, T, C]
  }
  const int64_t classes = y.size(-1);
  std::vector<std::string> symbols, all = {""};
  for (int64_t k = 1; k < classes; ++k) {
    symbols.push_back(std::string(1, char('a' + (k - 1) % 26)) + std::to_string(k));
    all.push_back(symbols.back());
  }
  std::vector<std::string> labels;
  for (int64_t i = 0; i < y.size(0); ++i) labels.push_back(ctc_greedy_decode(y[i], all));
  const std::string charset = dir + "/keys.txt", text = dir + "/labels.txt";
  write_lines(charset, symbols);
  write_lines(text, labels);
  std::vector<std::string> eval = {"-q",        "eval",  model,      "--data", x,
                                   "--charset", charset, "--labels", text,     "--json"};
  r = mpq(eval);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto e = nlohmann::json::parse(r.output);
  EXPECT_DOUBLE_EQ(e["char_accuracy"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(e["line_accuracy"].get<double>(), 1.0);

  // One line read wrong: exactly its edits count.
  std::vector<std::string> wrong = labels;
  wrong[0] += "zz";
  write_lines(text, wrong);
  r = mpq(eval);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  e = nlohmann::json::parse(r.output);
  int64_t chars = 0;
  for (const auto& l : wrong) chars += int64_t(l.size());
  EXPECT_NEAR(e["char_accuracy"].get<double>(), 1.0 - 2.0 / double(chars), 1e-12);
  EXPECT_NEAR(e["line_accuracy"].get<double>(), 5.0 / 6.0, 1e-12);

  // Labels of the wrong count.
  write_lines(text, {labels[0], labels[1]});
  expect_one_line_error(mpq(eval), {"--labels", text, "2 lines", "6 samples"});
  write_lines(text, labels);
  // A charset that does not match the output's classes.
  symbols.pop_back();
  symbols.pop_back();
  write_lines(charset, symbols);
  expect_one_line_error(mpq(eval), {"--charset", charset, std::to_string(classes - 3) + " symbols",
                                    std::to_string(classes) + " output classes"});
  // Missing files and a missing --labels.
  expect_one_line_error(
      mpq({"-q", "eval", model, "--data", x, "--charset", dir + "/none.txt", "--labels", text}),
      {"--charset", "none.txt", "cannot open"});
  expect_one_line_error(mpq({"-q", "eval", model, "--data", x, "--charset", charset}),
                        {"--task ctc needs --labels"});
}

// A node the export's opset upgrade cannot carry stops quantize before calibration, naming it.
TEST(CliUpgrade, ANodeWithoutAnUpgradeStopsBeforeAnyWork) {
  std::string dir = test::temp_dir();
  GraphBuilder b("bn8", 8);
  b.set_weights_as_constants(true);
  std::string in = b.input("x", {1, 2, 4, 4});
  std::string y = b.node("Conv", {in, b.weight("w", at::randn({2, 2, 1, 1}))}, {}, "conv");
  b.output(b.node("BatchNormalization",
                  {y, b.weight("s", at::ones({2})), b.weight("b", at::zeros({2})),
                   b.weight("m", at::zeros({2})), b.weight("v", at::ones({2}))},
                  {{"spatial", attr(int64_t(0))}}, "per_position_bn"));
  const std::string model = dir + "/bn8.onnx", x = dir + "/x.npy";
  Graph g = b.build();
  g.outputs[0].elem_type = 1;  // IR version 3 wants the output's type and shape
  g.outputs[0].has_shape = true;
  g.outputs[0].shape = {Dim{1, ""}, Dim{2, ""}, Dim{4, ""}, Dim{4, ""}};
  export_onnx(g, model);
  save_npy(x, at::rand({4, 2, 4, 4}));
  expect_one_line_error(mpq({"-q", "quantize", model, "--data", x, "--bits", "8/8", "--no-fold-bn",
                             "-o", dir + "/q.onnx"}),
                        {"per_position_bn", "BatchNormalization", "spatial=0", "13"});
  EXPECT_FALSE(file_exists(dir + "/q.onnx"));
}

}  // namespace
}  // namespace mpq
