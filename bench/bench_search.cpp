// Speed and answer quality of the bit-allocation solvers (methods.md §1, §2, §4) on random
// problems shaped like real ones: 50, 200 and 1000 groups of 7 items (bit widths 2, 3, 4, 5, 6,
// 8, 16; omega falls roughly as 4^-b, costs rise with b; both with noise), fixed seeds. One
// budget (size) for greedy, mckp, lp and ilp; three (size, BOPs, latency) for ilp; and a
// 200-point Pareto frontier. Each time is the median of several runs (more for fast solvers).
// Peer: the same ILPs as HAWQ-V3 writes them, in PuLP with COIN-OR CBC (bench/ilp_pulp.py,
// Debian python3-pulp), timed in the same run; mpq's ilp time over PuLP's is printed. Without
// PuLP the peer column says so. The papers' own figures are printed as reference lines.
// Usage: bench_search [--groups 50,200,1000] [--json F]   (F = "-": JSON to stdout, no table)
// Environment: MPQ_PULP_PYTHON = the Python with pulp (default /usr/bin/python3).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "core/fs.h"
#include "core/process.h"
#include "search/problem.h"
#include "search/solvers.h"

using namespace mpq;

namespace {

constexpr int kBits[] = {2, 3, 4, 5, 6, 8, 16};
constexpr double kGreedyGoal = 1e-3, kMckpGoal = 10e-3, kIlpGoal = 1.0;  // seconds, at 200 groups

Problem random_problem(int groups, int budgets, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  Problem p;
  for (int g = 0; g < groups; ++g) {
    Group group;
    group.name = "layer" + std::to_string(g);
    group.layers = {group.name};
    const double sensitivity = std::exp(6 * u(rng) - 3);
    const double params = std::exp(std::log(1e4) + 5 * u(rng));
    const double macs = params * std::exp(2 + 3 * u(rng));
    const double latency = 0.05 + 0.3 * u(rng);
    for (int b : kBits) {
      Item item;
      item.weight_bits = b;
      item.omega = sensitivity * std::pow(4.0, -b) * 1e4 * (1 + 0.3 * u(rng));
      const double all[] = {params * b / 8 / (1 << 20), macs * b * 8 / 1e9,
                            latency * (0.5 + 0.08 * b) * (1 + 0.1 * u(rng))};
      for (int k = 0; k < budgets; ++k) item.cost.push_back(all[k]);
      group.items.push_back(item);
    }
    p.groups.push_back(group);
  }
  const char* names[] = {"size", "bops", "latency"};
  // Where each limit lies between its min and max: all three bind at every size.
  const double room[] = {0.3, 0.3, 0.35};
  for (int k = 0; k < budgets; ++k) p.budgets.push_back({names[k], 0});
  const std::vector<double> lo = min_costs(p), hi = max_costs(p);
  for (int k = 0; k < budgets; ++k) p.budgets[k].limit = lo[k] + (hi[k] - lo[k]) * room[k];
  return p;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Fast solvers get more repetitions so the median is stable; slow ones are not run for minutes.
int repetitions(double first_seconds) {
  if (first_seconds < 1e-3) return 51;
  if (first_seconds < 1e-2) return 21;
  if (first_seconds < 0.1) return 9;
  return 3;
}

struct Row {
  std::string solver;
  int groups = 0;
  int budgets = 0;
  double seconds = 0;  // median
  int runs = 0;
  Solution solution;
  double gap_vs_best = 0;    // (objective - best known) / best known
  double peer_seconds = -1;  // ilp rows: PuLP + CBC on the same instance; < 0 = not run
  double peer_objective = 0;
  std::string peer_status;
};

// The HAWQ-V3-style PuLP model of `p` solved by bench/ilp_pulp.py; false when PuLP is missing.
bool run_peer(const Problem& p, int repetitions, Row* row) {
  static const std::string python = [] {
    const char* env = std::getenv("MPQ_PULP_PYTHON");
    return std::string(env ? env : "/usr/bin/python3");
  }();
  nlohmann::json instance;
  for (const Group& g : p.groups) {
    nlohmann::json items = nlohmann::json::array();
    for (const Item& it : g.items) items.push_back({{"omega", it.omega}, {"cost", it.cost}});
    instance["groups"].push_back({{"items", items}});
  }
  for (const Budget& b : p.budgets) instance["limits"].push_back(b.limit);
  const std::string path = "/tmp/mpq_bench_search_instance.json";
  write_file_atomic(path, instance.dump());
  ProcessResult r = run_process({python, std::string(MPQ_SOURCE_DIR) + "/bench/ilp_pulp.py", path,
                                 std::to_string(repetitions)});
  if (r.exit_code != 0) {
    static bool warned = false;
    if (!warned) std::fprintf(stderr, "bench_search: PuLP peer not run: %s\n", r.output.c_str());
    warned = true;
    return false;
  }
  nlohmann::json j = nlohmann::json::parse(r.output.substr(r.output.rfind('{')));
  row->peer_seconds = j.at("seconds").get<double>();
  row->peer_status = j.at("status").get<std::string>();
  row->peer_objective = j.at("objective").is_number() ? j.at("objective").get<double>() : NAN;
  return true;
}

Row measure(const std::string& solver, const Problem& p) {
  Row row;
  row.solver = solver;
  row.groups = static_cast<int>(p.groups.size());
  row.budgets = static_cast<int>(p.budgets.size());
  std::vector<double> times;
  auto start = std::chrono::steady_clock::now();
  row.solution = solve(solver, p);
  times.push_back(bench::seconds_since(start));
  row.runs = repetitions(times[0]);
  for (int r = 1; r < row.runs; ++r) {
    start = std::chrono::steady_clock::now();
    solve(solver, p);
    times.push_back(bench::seconds_since(start));
  }
  row.seconds = median(times);
  return row;
}

std::string format_time(double s) {
  char buf[32];
  if (s < 1e-3) {
    std::snprintf(buf, sizeof(buf), "%.1f us", s * 1e6);
  } else if (s < 1) {
    std::snprintf(buf, sizeof(buf), "%.2f ms", s * 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%.2f s", s);
  }
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes = {50, 200, 1000};
  std::string json_path;
  bench::ArgReader args(argc, argv);
  while (args.next()) {
    if (args.is("--groups")) {
      sizes.clear();
      for (const std::string& s : bench::split_commas(args.value())) sizes.push_back(std::stoi(s));
    } else if (args.is("--json")) {
      json_path = args.value();
    } else {
      std::fprintf(stderr, "usage: bench_search [--groups 50,200,1000] [--json F]\n");
      return 2;
    }
  }
  const bool table = json_path != "-";

  std::vector<Row> rows;
  struct FrontierTiming {
    int groups;
    double seconds;
    size_t points;
  };
  std::vector<FrontierTiming> frontiers;
  for (int groups : sizes) {
    std::fprintf(stderr, "bench_search: %d groups\n", groups);
    const Problem one = random_problem(groups, 1, 1000 + groups);
    const Problem three = random_problem(groups, 3, 1000 + groups);
    const size_t first = rows.size();
    for (const char* solver : {"greedy", "mckp", "lp", "ilp"}) rows.push_back(measure(solver, one));
    rows.push_back(measure("ilp", three));
    for (size_t i = first; i < rows.size(); ++i) {
      if (rows[i].solver == "ilp") {
        run_peer(rows[i].budgets == 1 ? one : three, std::min(rows[i].runs, 5), &rows[i]);
      }
    }
    // Best known: the least objective any solver found on the same instance.
    for (int budgets : {1, 3}) {
      double best = INFINITY;
      for (size_t i = first; i < rows.size(); ++i) {
        if (rows[i].budgets == budgets && !rows[i].solution.choice.empty()) {
          best = std::min(best, rows[i].solution.objective);
        }
      }
      for (size_t i = first; i < rows.size(); ++i) {
        if (rows[i].budgets == budgets && !rows[i].solution.choice.empty()) {
          rows[i].gap_vs_best = (rows[i].solution.objective - best) / std::abs(best);
        }
      }
    }
    std::vector<double> times;
    size_t points = 0;
    for (int r = 0; r < 5; ++r) {
      const auto start = std::chrono::steady_clock::now();
      points = pareto_frontier(one, 0, 200).size();
      times.push_back(bench::seconds_since(start));
    }
    frontiers.push_back({groups, median(times), points});
  }

  auto find = [&](const std::string& solver, int groups, int budgets) -> const Row* {
    for (const Row& r : rows) {
      if (r.solver == solver && r.groups == groups && r.budgets == budgets) return &r;
    }
    return nullptr;
  };
  const Row* greedy200 = find("greedy", 200, 1);
  const Row* mckp200 = find("mckp", 200, 1);
  const Row* ilp200 = find("ilp", 200, 3);
  auto met = [](const Row* r, double goal) -> std::string {
    if (r == nullptr) return "not measured";
    return r->seconds <= goal ? "met" : "NOT met";
  };

  if (table) {
    std::printf(
        "| solver | groups | budgets | median time | runs | status | objective | gap "
        "(bound) | vs best known | PuLP+CBC (HAWQ-V3 style) | mpq/PuLP |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (const Row& r : rows) {
      std::string peer = "-", ratio = "-";
      if (r.peer_seconds >= 0) {
        char buf[96];
        std::snprintf(buf, sizeof(buf), "%s, %s, %.6g", format_time(r.peer_seconds).c_str(),
                      r.peer_status.c_str(), r.peer_objective);
        peer = buf;
        std::snprintf(buf, sizeof(buf), "%.3g", r.seconds / r.peer_seconds);
        ratio = buf;
      }
      std::printf("| %s | %d | %d | %s | %d | %s | %.6g | %.3g | %+.3g %% | %s | %s |\n",
                  r.solver.c_str(), r.groups, r.budgets, format_time(r.seconds).c_str(), r.runs,
                  status_name(r.solution.status), r.solution.objective, r.solution.gap,
                  100 * r.gap_vs_best, peer.c_str(), ratio.c_str());
    }
    std::printf("\n| pareto_frontier (200 points, 1 budget) | groups | median time | points |\n");
    std::printf("|---|---|---|---|\n");
    for (const FrontierTiming& f : frontiers) {
      std::printf("| mckp states | %d | %s | %zu |\n", f.groups, format_time(f.seconds).c_str(),
                  f.points);
    }
    std::printf(
        "\ngoals at 200 groups: greedy <= 1 ms: %s (%s); mckp <= 10 ms: %s (%s); ilp with "
        "three budgets <= 1 s: %s (%s)\n",
        met(greedy200, kGreedyGoal).c_str(),
        greedy200 ? format_time(greedy200->seconds).c_str() : "-", met(mckp200, kMckpGoal).c_str(),
        mckp200 ? format_time(mckp200->seconds).c_str() : "-", met(ilp200, kIlpGoal).c_str(),
        ilp200 ? format_time(ilp200->seconds).c_str() : "-");
    if (greedy200 != nullptr && mckp200 != nullptr) {
      std::printf(
          "greedy vs mckp's optimum at 200 groups: objective %.6g vs %.6g, gap %+.4f %%%s\n",
          greedy200->solution.objective, mckp200->solution.objective,
          100 * (greedy200->solution.objective - mckp200->solution.objective) /
              std::abs(mckp200->solution.objective),
          mckp200->solution.status == SolveStatus::kOptimal ? "" : " (mckp not optimal)");
    }
    std::printf(
        "reference (published, other hardware): OMPQ reports a 9 s bit-width search; HAWQ-V3 "
        "about 1 s for its ILP\n");
  }

  if (!json_path.empty()) {
    nlohmann::json out;
    for (const Row& r : rows) {
      out["solvers"].push_back({{"solver", r.solver},
                                {"groups", r.groups},
                                {"budgets", r.budgets},
                                {"median_seconds", r.seconds},
                                {"runs", r.runs},
                                {"status", status_name(r.solution.status)},
                                {"objective", r.solution.objective},
                                {"gap", r.solution.gap},
                                {"gap_vs_best_relative", r.gap_vs_best},
                                {"detail", r.solution.detail}});
      if (r.peer_seconds >= 0) {
        out["solvers"].back()["pulp"] = {{"median_seconds", r.peer_seconds},
                                         {"status", r.peer_status},
                                         {"objective", r.peer_objective},
                                         {"ratio", r.seconds / r.peer_seconds}};
      }
    }
    for (const FrontierTiming& f : frontiers) {
      out["pareto_frontier"].push_back(
          {{"groups", f.groups}, {"median_seconds", f.seconds}, {"points", f.points}});
    }
    out["goals"] = {{"greedy_200_le_1ms", met(greedy200, kGreedyGoal)},
                    {"mckp_200_le_10ms", met(mckp200, kMckpGoal)},
                    {"ilp_200_3budgets_le_1s", met(ilp200, kIlpGoal)}};
    if (greedy200 != nullptr && mckp200 != nullptr) {
      out["greedy_gap_vs_mckp_200_relative"] =
          (greedy200->solution.objective - mckp200->solution.objective) /
          std::abs(mckp200->solution.objective);
    }
    out["reference"] = {{"ompq_search_seconds", 9.0}, {"hawq_v3_ilp_seconds", 1.0}};
    const std::string text = out.dump(2) + "\n";
    if (json_path == "-") {
      std::fputs(text.c_str(), stdout);
    } else {
      write_file_atomic(json_path, text);
    }
  }
  return 0;
}
