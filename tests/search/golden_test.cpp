// Golden instance for the bit-allocation solvers (methods.md §2): HAWQ-V3's published ResNet-18
// ILP (19 layers, three tied pairs, weight bits {4, 8}) with the answers of an exhaustive search,
// stored in tests/search/data/hawq_v3_resnet18_ilp.json (its "what" note gives the source). The
// exact solvers must reproduce the bits of every layer and the published totals; greedy must stay
// within the gap it reports.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "search/problem.h"
#include "search/solvers.h"

namespace mpq {
namespace {

using nlohmann::json;

const char* const kMeasures[] = {"size", "bops", "latency"};
constexpr int kBits[] = {4, 8};

// One layer's cost of each measure at `bits`, in the units of the file's "budgets" notes.
double layer_cost(const json& layer, const std::string& measure, int bits) {
  if (measure == "size") return layer["params"].get<double>() * bits / 8 / (1 << 20);
  if (measure == "bops") {
    return layer["macs"].get<double>() / 1e6 * (bits == 8 ? 1.0 / 16 : 1.0 / 64);
  }
  return layer["t4_latency_ms_int" + std::to_string(bits)].get<double>();
}

double layer_omega(const json& layer, int bits) {
  return layer["avg_hessian_trace"].get<double>() *
         layer["sq_err_w" + std::to_string(bits)].get<double>();
}

class HawqV3 {
 public:
  HawqV3() {
    std::ifstream in(MPQ_SOURCE_DIR "/tests/search/data/hawq_v3_resnet18_ilp.json");
    EXPECT_TRUE(in.good()) << "cannot read the golden file";
    data_ = json::parse(in);
    // A tied layer joins the group of the first layer of its tie; groups keep layer order.
    std::map<std::string, std::string> tie_head;
    for (const json& tie : data_["ties"]) {
      for (const json& name : tie) tie_head[name.get<std::string>()] = tie[0].get<std::string>();
    }
    std::map<std::string, int> group_of;
    const json& layers = data_["layers"];
    for (size_t l = 0; l < layers.size(); ++l) {
      const std::string name = layers[l]["name"];
      const std::string head = tie_head.count(name) ? tie_head[name] : name;
      if (!group_of.count(head)) {
        group_of[head] = static_cast<int>(groups_.size());
        groups_.push_back({});
      }
      layer_group_.push_back(group_of[head]);
      groups_[group_of[head]].push_back(static_cast<int>(l));
    }
  }

  const json& data() const { return data_; }
  int layers() const { return static_cast<int>(layer_group_.size()); }
  int groups() const { return static_cast<int>(groups_.size()); }

  // The problem with the named budgets at their interpolation `r` between all-4 and all-8 bits.
  Problem problem(const std::vector<std::string>& measures, double r) const {
    Problem p;
    const json& layers = data_["layers"];
    for (const std::vector<int>& members : groups_) {
      Group g;
      g.name = layers[members[0]]["name"];
      for (int l : members) g.layers.push_back(layers[l]["name"]);
      for (int bits : kBits) {
        Item item;
        item.weight_bits = bits;
        for (int l : members) item.omega += layer_omega(layers[l], bits);
        for (const std::string& m : measures) {
          double c = 0;
          for (int l : members) c += layer_cost(layers[l], m, bits);
          item.cost.push_back(c);
        }
        g.items.push_back(item);
      }
      p.groups.push_back(g);
    }
    for (const std::string& m : measures) {
      p.budgets.push_back({m, total(m, 4) + (total(m, 8) - total(m, 4)) * r});
    }
    return p;
  }

  double total(const std::string& measure, int bits) const {
    double s = 0;
    for (const json& layer : data_["layers"]) s += layer_cost(layer, measure, bits);
    return s;
  }

  // Per-layer bits of a choice (items are {4, 8} in that order).
  std::vector<int> bits(const std::vector<int>& choice) const {
    std::vector<int> out;
    for (int g : layer_group_) out.push_back(kBits[choice.at(g)]);
    return out;
  }

  double measure_of(const std::vector<int>& layer_bits, const std::string& measure) const {
    double s = 0;
    for (size_t l = 0; l < layer_bits.size(); ++l) {
      s += layer_cost(data_["layers"][l], measure, layer_bits[l]);
    }
    return s;
  }

  // The file's "objective": sum over 8-bit layers of trace * (d8 - d4), relative to all-4-bit.
  double relative_objective(const std::vector<int>& layer_bits) const {
    double s = 0;
    for (size_t l = 0; l < layer_bits.size(); ++l) {
      const json& layer = data_["layers"][l];
      if (layer_bits[l] == 8) s += layer_omega(layer, 8) - layer_omega(layer, 4);
    }
    return s;
  }

 private:
  json data_;
  std::vector<std::vector<int>> groups_;  // layer indices per group
  std::vector<int> layer_group_;
};

const HawqV3& hawq() {
  static const HawqV3 instance;
  return instance;
}

TEST(GoldenHawqV3, ShapeAndLimits) {
  const HawqV3& h = hawq();
  EXPECT_EQ(h.layers(), 19);
  EXPECT_EQ(h.groups(), 16);
  for (const char* m : kMeasures) {
    const json& expected = h.data()["expected"][m];
    const Problem p = h.problem({m}, expected["r"].get<double>());
    EXPECT_NEAR(p.budgets[0].limit, expected["limit"].get<double>(), 5e-5) << m;
  }
}

class GoldenSingleBudget : public testing::TestWithParam<std::string> {};

TEST_P(GoldenSingleBudget, ExactSolversReproduceTheFile) {
  const HawqV3& h = hawq();
  const std::string measure = GetParam();
  const json& expected = h.data()["expected"][measure];
  const Problem p = h.problem({measure}, expected["r"].get<double>());
  const std::vector<int> want = expected["bits"].get<std::vector<int>>();
  for (const char* solver : {"ilp", "mckp", "brute"}) {
    SCOPED_TRACE(std::string(solver) + " on " + measure);
    const Solution s = solve(solver, p);
    ASSERT_EQ(s.status, SolveStatus::kOptimal) << status_name(s.status) << ": " << s.detail;
    const std::vector<int> got = h.bits(s.choice);
    EXPECT_EQ(got, want);
    EXPECT_NEAR(h.relative_objective(got), expected["objective"].get<double>(), 5e-6);
    // Solution::objective is on the absolute omegas: the file's number plus the all-4-bit sum.
    const double all4 = evaluate_choice(p, std::vector<int>(p.groups.size(), 0)).objective;
    EXPECT_NEAR(s.objective - all4, expected["objective"].get<double>(), 5e-6);
    EXPECT_NEAR(h.measure_of(got, "size"), expected["size_MiB"].get<double>(), 5e-5);
    EXPECT_NEAR(h.measure_of(got, "bops"), expected["bops_units"].get<double>(), 5e-4);
    EXPECT_NEAR(h.measure_of(got, "latency"), expected["latency_ms"].get<double>(), 5e-5);
    EXPECT_NEAR(s.cost.at(0), h.measure_of(got, measure), 1e-9);
    EXPECT_LE(s.cost.at(0), p.budgets[0].limit);
  }
}

TEST_P(GoldenSingleBudget, GreedyStaysWithinItsGap) {
  const HawqV3& h = hawq();
  const std::string measure = GetParam();
  const json& expected = h.data()["expected"][measure];
  const Problem p = h.problem({measure}, expected["r"].get<double>());
  const Solution exact = solve("brute", p);
  const Solution g = solve("greedy", p);
  ASSERT_FALSE(g.choice.empty()) << g.detail;
  EXPECT_TRUE(is_feasible(p, g.choice));
  EXPECT_GE(g.gap, 0);
  EXPECT_GE(g.objective, exact.objective - 1e-12);
  EXPECT_LE(g.objective - g.gap, exact.objective + 1e-12);  // the bound it reports is valid
  if (measure != "bops") {
    // The file's note: greedy reaches the optimum for size and latency at r = 0.5.
    EXPECT_EQ(h.bits(g.choice), expected["bits"].get<std::vector<int>>());
    EXPECT_NEAR(h.relative_objective(h.bits(g.choice)), expected["objective"].get<double>(), 5e-6);
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenSingleBudget, testing::Values("size", "bops", "latency"),
                         [](const testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(GoldenHawqV3, ThreeBudgetsIlpEqualsBruteForce) {
  const HawqV3& h = hawq();
  const Problem p = h.problem({"size", "bops", "latency"}, 0.5);
  const Solution exact = solve("brute", p);
  const Solution ilp = solve("ilp", p);
  ASSERT_EQ(exact.status, SolveStatus::kOptimal);
  ASSERT_EQ(ilp.status, SolveStatus::kOptimal) << ilp.detail;
  EXPECT_EQ(ilp.choice, exact.choice);
  EXPECT_NEAR(ilp.objective, exact.objective, 1e-12);
  EXPECT_DOUBLE_EQ(ilp.bound, ilp.objective);
  EXPECT_EQ(ilp.gap, 0);
  EXPECT_TRUE(is_feasible(p, ilp.choice));
  // Three budgets at once cannot do better than any one of them alone.
  for (const char* m : kMeasures) {
    EXPECT_GE(h.relative_objective(h.bits(ilp.choice)),
              h.data()["expected"][m]["objective"].get<double>() - 5e-6)
        << m;
  }
}

}  // namespace
}  // namespace mpq
