// ONNX's own backend node tests (Debian libonnx-testdata) run through mpq's importer and executor.
// Each case is a model.onnx plus test_data_set_*/input_*.pb and the expected output_*.pb. A case
// runs when mpq supports every op it uses; it is skipped (with the reason, printed at the end)
// when an op or a value type is outside what mpq supports, or when it is listed in
// node_skips.txt with a reason (a supported op used with an attribute value mpq rejects with a
// clear error). Every case that runs must match within ONNX's own tolerance (rtol 1e-3,
// atol 1e-7, relaxed per case only through a "tol" line in a *.skips file).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "exec/executor.h"
#include "onnx/io.h"
#include "onnx/tensor_proto.h"

namespace fs = std::filesystem;

namespace mpq {
namespace {

const char* kSuites[] = {"node", "pytorch-operator", "pytorch-converted", "simple"};
const char* kDataRoot = "/usr/share/libonnx-testdata/data";

struct Listing {
  std::map<std::string, std::string> skip;  // case -> reason
  std::map<std::string, double> tolerance;  // case -> atol override
};

// Reads every tests/conformance/*.skips file (one per op family, so families change independently).
Listing read_listing() {
  Listing l;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(std::string(MPQ_SOURCE_DIR) + "/tests/conformance"))
    if (e.path().extension() == ".skips") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::string line;
  for (const auto& file : files) {
    std::ifstream in(file);
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream s(line);
      std::string kind, name;
      s >> kind >> name;
      std::string rest;
      std::getline(s, rest);
      if (kind == "skip") l.skip[name] = rest.substr(rest.find_first_not_of(' '));
      if (kind == "tol") l.tolerance[name] = std::stod(rest);
    }
  }
  return l;
}

struct Case {
  std::string suite, name, dir;
};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const char* suite : kSuites) {
    fs::path root = fs::path(kDataRoot) / suite;
    if (!fs::exists(root)) continue;
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(root))
      if (fs::exists(e.path() / "model.onnx")) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    for (const auto& n : names) cases.push_back({suite, n, (root / n).string()});
  }
  return cases;
}

// Why mpq cannot run this case at all, or "" if every op and value type is supported.
std::string unsupported_reason(const std::string& model_path, Graph* graph) {
  try {
    *graph = import_onnx(model_path);
  } catch (const Error& e) {
    std::string msg = e.what();
    return "import: " + msg.substr(msg.find(": ") + 2);
  }
  for (const auto& v : graph->inputs) {
    if (!v.is_tensor) return "input '" + v.name + "' is not a tensor (sequence/optional/map)";
    if (v.elem_type != 0) {
      try {
        scalar_type_from_onnx(v.elem_type, "");
      } catch (const Error&) {
        return "input type " + onnx_type_name(v.elem_type);
      }
    }
  }
  for (const auto& v : graph->outputs)
    if (!v.is_tensor) return "output '" + v.name + "' is not a tensor (sequence/optional/map)";
  const auto& ops = OpRegistry::builtin();
  std::set<std::string> missing;
  for (const auto& n : graph->nodes)
    if (!n.domain.empty() || !ops.find(n.op_type, graph->opset()))
      missing.insert((n.domain.empty() ? "" : n.domain + ".") + n.op_type);
  if (!missing.empty()) {
    std::string s = "op not supported:";
    for (const auto& m : missing) s += " " + m;
    return s;
  }
  return "";
}

std::string compare(const at::Tensor& expected, const at::Tensor& got, double atol, double rtol) {
  std::ostringstream out;
  if (expected.sizes() != got.sizes()) {
    out << "shape: expected " << expected.sizes() << ", found " << got.sizes();
    return out.str();
  }
  if (expected.scalar_type() != got.scalar_type()) {
    out << "type: expected " << expected.scalar_type() << ", found " << got.scalar_type();
    return out.str();
  }
  if (expected.numel() == 0) return "";
  at::Tensor e = expected.to(at::kDouble), g = got.detach().to(at::kDouble);
  at::Tensor both_nan = at::isnan(e) & at::isnan(g);
  at::Tensor same_inf = at::isinf(e) & (e == g);
  at::Tensor diff = (e - g).abs();
  at::Tensor bad = (diff > atol + rtol * e.abs()) & ~both_nan & ~same_inf;
  if (bad.any().item<bool>()) {
    int64_t i = bad.reshape(-1).nonzero()[0].item<int64_t>();
    out << bad.sum().item<int64_t>() << " of " << e.numel()
        << " values differ; first at flat index " << i << ": expected "
        << e.reshape(-1)[i].item<double>() << ", found " << g.reshape(-1)[i].item<double>();
    return out.str();
  }
  return "";
}

class NodeTest : public ::testing::TestWithParam<Case> {};

std::vector<std::string>& skipped_log() {
  static std::vector<std::string> log;
  return log;
}

TEST_P(NodeTest, MatchesExpectedOutputs) {
  static const Listing listing = read_listing();
  const Case& c = GetParam();
  std::string key = c.suite + "/" + c.name;
  Graph graph;
  std::string reason = unsupported_reason(c.dir + "/model.onnx", &graph);
  if (reason.empty() && listing.skip.count(key)) reason = listing.skip.at(key);
  if (!reason.empty()) {
    skipped_log().push_back(key + ": " + reason);
    GTEST_SKIP() << reason;
  }
  double atol = listing.tolerance.count(key) ? listing.tolerance.at(key) : 1e-7;
  Executor exec(graph);
  int sets = 0;
  for (int s = 0;; ++s) {
    fs::path set = fs::path(c.dir) / ("test_data_set_" + std::to_string(s));
    if (!fs::exists(set)) break;
    ++sets;
    std::map<std::string, at::Tensor> inputs;
    // Inputs are matched to graph inputs in order; initializer-shadowed inputs were dropped.
    std::vector<at::Tensor> in_list;
    for (int i = 0; fs::exists(set / ("input_" + std::to_string(i) + ".pb")); ++i)
      in_list.push_back(load_tensor_pb((set / ("input_" + std::to_string(i) + ".pb")).string()));
    ASSERT_GE(in_list.size(), graph.inputs.size()) << key;
    for (size_t i = 0; i < graph.inputs.size(); ++i) inputs[graph.inputs[i].name] = in_list[i];
    std::map<std::string, at::Tensor> outputs;
    try {
      at::NoGradGuard no_grad;
      outputs = exec.run_named(inputs);
    } catch (const Error& e) {
      FAIL() << key << ": " << e.what();
    }
    for (size_t o = 0; o < graph.outputs.size(); ++o) {
      fs::path file = set / ("output_" + std::to_string(o) + ".pb");
      ASSERT_TRUE(fs::exists(file)) << file;
      at::Tensor expected = load_tensor_pb(file.string());
      std::string diff = compare(expected, outputs[graph.outputs[o].name], atol, 1e-3);
      EXPECT_EQ(diff, "") << key << " set " << s << " output '" << graph.outputs[o].name << "'";
    }
  }
  EXPECT_GT(sets, 0) << key << " has no test data";
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string s = info.param.suite + "_" + info.param.name;
  for (char& ch : s)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(Onnx, NodeTest, ::testing::ValuesIn(all_cases()), case_name);

// Prints the skipped cases with their reasons once all cases have run.
class SkipReport : public ::testing::Environment {
 public:
  void TearDown() override {
    std::map<std::string, int> by_reason;
    for (const auto& s : skipped_log()) by_reason[s.substr(s.find(": ") + 2)]++;
    std::string path = std::string(MPQ_TEST_TMP) + "/conformance_skipped.txt";
    std::ofstream out(path);
    for (const auto& s : skipped_log()) out << s << "\n";
    std::printf("[conformance] %zu cases skipped (list: %s); by reason:\n", skipped_log().size(),
                path.c_str());
    for (const auto& [r, n] : by_reason) std::printf("  %4d  %s\n", n, r.c_str());
  }
};
const auto* kSkipReport = ::testing::AddGlobalTestEnvironment(new SkipReport);

}  // namespace
}  // namespace mpq
