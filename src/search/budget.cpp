// --budget parsing, limit resolution and printing of costs with units (budget.h). Units are one
// table per kind so that the error for a bad unit lists exactly what that kind accepts, and so
// that weight-size can follow the papers (MB = 2^20 bytes) without changing size.
#include "search/budget.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace mpq {
namespace {

struct Unit {
  const char* name;
  double factor;  // to the kind's base unit
  bool listed;    // shown in messages; aliases ("kB") and the bare number are not
};

const std::vector<Unit>& units(CostKind kind) {
  static const std::vector<Unit> bytes = {
      {"", 1, false},        {"B", 1, true},           {"KB", 1e3, true},
      {"kB", 1e3, false},    {"MB", 1e6, true},        {"GB", 1e9, true},
      {"KiB", 1024.0, true}, {"MiB", 1048576.0, true}, {"GiB", 1073741824.0, true}};
  // HAWQ, MPQCO and OMPQ quote weight sizes in MB meaning 2^20 bytes; copying their numbers into
  // --budget must mean what the papers meant.
  static const std::vector<Unit> paper_bytes = {{"", 1, false},
                                                {"B", 1, true},
                                                {"KB", 1024.0, true},
                                                {"MB", 1048576.0, true},
                                                {"GB", 1073741824.0, true},
                                                {"KiB", 1024.0, true},
                                                {"MiB", 1048576.0, true},
                                                {"GiB", 1073741824.0, true}};
  static const std::vector<Unit> counts = {{"", 1, false},   {"K", 1e3, true}, {"k", 1e3, false},
                                           {"M", 1e6, true}, {"G", 1e9, true}, {"T", 1e12, true}};
  static const std::vector<Unit> times = {
      {"", 1, false}, {"s", 1e3, true}, {"ms", 1, true}, {"us", 1e-3, true}};
  static const std::vector<Unit> plain = {{"", 1, false}};
  switch (kind) {
    case CostKind::kSize:
    case CostKind::kMemory:
      return bytes;
    case CostKind::kWeightSize:
      return paper_bytes;
    case CostKind::kBops:
      return counts;
    case CostKind::kLatency:
      return times;
    case CostKind::kEnergy:
    case CostKind::kAvgBits:
      return plain;
  }
  MPQ_ASSERT(false, "cost kind ", static_cast<int>(kind), " has no units");
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Length of the leading decimal number in s ([+-]digits[.digits][e[+-]digits]), 0 if none. The
// exponent is taken only when digits follow, so "2e" reads as 2 with unit "e" (then an error).
size_t number_length(const std::string& s) {
  auto digits = [&](size_t i) {
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i;
  };
  size_t i = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  size_t int_end = digits(i);
  size_t end = int_end;
  if (end < s.size() && s[end] == '.') end = digits(end + 1);
  if (end == i || (int_end == i && end == i + 1)) return 0;  // no digit at all
  if (end < s.size() && (s[end] == 'e' || s[end] == 'E')) {
    size_t j = end + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    size_t k = digits(j);
    if (k > j) end = k;
  }
  return end;
}

// Three significant digits, the precision budgets and reports need ("2.50", "12.0", "512").
std::string sig3(double v) {
  if (v == 0) return "0";
  int decimals = 2 - static_cast<int>(std::floor(std::log10(std::fabs(v))));
  decimals = std::max(0, std::min(decimals, 9));
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  // Rounding up into the next decade (0.9997 -> "1.000") would show a fourth digit.
  if (decimals > 0 && std::fabs(std::stod(buf)) >= std::pow(10.0, 3 - decimals)) {
    std::snprintf(buf, sizeof(buf), "%.*f", decimals - 1, v);
  }
  return buf;
}

// v with the largest prefix that keeps the number below `base` (after rounding to 3 digits).
std::string with_prefix(double v, double base, const std::vector<const char*>& prefixes,
                        const char* unit, bool integral_base) {
  size_t i = 0;
  double scaled = v;
  while (i + 1 < prefixes.size() && std::fabs(std::stod(sig3(scaled))) >= 1000) {
    scaled /= base;
    ++i;
  }
  std::string number = sig3(scaled);
  // Whole bytes and whole BitOps read better without decimals ("512 B", not "512." or "5.00 B").
  if (i == 0 && integral_base && scaled == std::floor(scaled)) {
    number = std::to_string(static_cast<int64_t>(scaled));
  }
  return number + " " + prefixes[i] + unit;
}

}  // namespace

BudgetSpec parse_budget(const std::string& text) {
  auto fail = [&](const auto&... message) { MPQ_FAIL("--budget '", text, "': ", message...); };
  size_t eq = text.find('=');
  if (eq == std::string::npos) fail("expected KIND=VALUE (e.g. size=2.5MB, bops=0.5r)");
  BudgetSpec spec;
  spec.text = text;
  const std::string kind = trim(text.substr(0, eq));
  const CostKindInfo* info = nullptr;
  std::string kinds;
  for (const auto& k : cost_kind_table()) {
    if (kind == k.name) info = &k;
    kinds += std::string(kinds.empty() ? "" : ", ") + k.name;
  }
  if (!info) fail("unknown kind '", kind, "' (expected one of ", kinds, ")");
  spec.kind = info->kind;

  const std::string value = trim(text.substr(eq + 1));
  size_t n = number_length(value);
  if (n == 0) fail("expected a number after '=', found '", value, "'");
  const char* first = value.data() + (value[0] == '+' ? 1 : 0);
  auto [end, ec] = std::from_chars(first, value.data() + n, spec.value);
  if (ec != std::errc() || end != value.data() + n || !std::isfinite(spec.value)) {
    fail("expected a finite number, found '", value.substr(0, n), "'");
  }
  if (spec.value < 0) fail("expected a non-negative value, found ", value.substr(0, n));
  const std::string unit = trim(value.substr(n));

  if (unit == "r") {
    spec.mode = BudgetSpec::Mode::kFraction;
    if (spec.value > 1) fail("expected a fraction r in [0, 1], found ", value.substr(0, n));
    return spec;
  }
  if (unit == "x") {
    spec.mode = BudgetSpec::Mode::kMultiple;
    return spec;
  }
  std::string listed;
  for (const Unit& u : units(spec.kind)) {
    if (unit == u.name) {
      spec.value *= u.factor;
      return spec;
    }
    if (u.listed) listed += std::string(u.name) + ", ";
  }
  fail("unknown unit '", unit, "' for ", info->name, " (expected ",
       listed.empty() ? "a plain number, " : listed, "r or x)");
  return spec;  // not reached: fail throws
}

double resolve_limit(const BudgetSpec& spec, double lowest, double highest, double total_weights) {
  switch (spec.mode) {
    case BudgetSpec::Mode::kFraction:
      return lowest + spec.value * (highest - lowest);
    case BudgetSpec::Mode::kMultiple:
      return spec.value * highest;
    case BudgetSpec::Mode::kAbsolute:
      break;
  }
  if (spec.kind != CostKind::kAvgBits) return spec.value;
  // avg-bits=3.5 is bits per weight; its costs are weights * bits, so the limit scales.
  MPQ_ASSERT(total_weights > 0, "resolve_limit for avg-bits needs the total weight count");
  return spec.value * total_weights;
}

std::string format_cost(CostKind kind, double value, double total_weights) {
  if (!std::isfinite(value)) return value > 0 ? "inf" : (value < 0 ? "-inf" : "nan");
  switch (kind) {
    case CostKind::kSize:
    case CostKind::kMemory:
      return with_prefix(value, 1000, {"", "K", "M", "G", "T"}, "B", true);
    case CostKind::kWeightSize:
      return with_prefix(value, 1024, {"", "Ki", "Mi", "Gi", "Ti"}, "B", true);
    case CostKind::kBops:
      return with_prefix(value, 1000, {"", "K", "M", "G", "T", "P"}, "BitOps", true);
    case CostKind::kLatency:
      if (value != 0 && std::fabs(std::stod(sig3(value))) < 1) return sig3(value * 1e3) + " us";
      if (std::fabs(std::stod(sig3(value))) >= 1000) return sig3(value / 1e3) + " s";
      return sig3(value) + " ms";
    case CostKind::kEnergy:
      return sig3(value);
    case CostKind::kAvgBits:
      if (total_weights > 0) return sig3(value / total_weights) + " bits";
      return with_prefix(value, 1000, {"", "K", "M", "G", "T"}, "bit*weights", true);
  }
  MPQ_ASSERT(false, "cost kind ", static_cast<int>(kind), " cannot be formatted");
}

}  // namespace mpq
