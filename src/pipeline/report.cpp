// The report of `mpq run` (report.h, docs/report.md). The content is built once as a small
// document (sections of text, tables, fact lists and plots) and written twice: as HTML with the
// plots inline, and as Markdown that links the plots' SVG files. Every field is read through
// Field, so a missing or mistyped one is a one-line error naming the file and the field, raised
// before anything is written.
#include "pipeline/report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/version.h"
#include "pipeline/internal/svg_plot.h"

namespace mpq {
namespace {

using internal::format_bytes;
using internal::format_percent;
using internal::format_seconds;
using internal::format_si;
using internal::format_sig;
using internal::Marker;
using internal::Plot;
using internal::Series;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Reading: a field of an artifact, with errors that name the file and the field's path.

class Field {
 public:
  Field(const json* j, const std::string& file, std::string path)
      : j_(j), file_(&file), path_(std::move(path)) {}

  bool present() const { return j_ != nullptr && !j_->is_null(); }
  Field operator[](const std::string& key) const {
    const json* child = nullptr;
    if (present()) {
      if (!j_->is_object()) fail_type("an object");
      auto it = j_->find(key);
      if (it != j_->end()) child = &*it;
    }
    return Field(child, *file_, path_.empty() ? key : path_ + "." + key);
  }
  bool has(const std::string& key) const { return (*this)[key].present(); }
  std::vector<std::string> keys() const {  // of an object; none when absent
    std::vector<std::string> out;
    if (!present()) return out;
    if (!j_->is_object()) fail_type("an object");
    for (auto it = j_->begin(); it != j_->end(); ++it) out.push_back(it.key());
    return out;
  }
  // The elements of an array (absent: none when `optional`, else an error).
  std::vector<Field> items(bool optional = false) const {
    std::vector<Field> out;
    if (!present() && optional) return out;
    need();
    if (!j_->is_array()) fail_type("an array");
    for (size_t i = 0; i < j_->size(); ++i) {
      out.emplace_back(&(*j_)[i], *file_, path_ + "[" + std::to_string(i) + "]");
    }
    return out;
  }
  double num() const {
    need();
    if (!j_->is_number()) fail_type("a number");
    return j_->get<double>();
  }
  std::optional<double> opt_num() const {
    if (!present()) return std::nullopt;
    return num();
  }
  std::string str() const {
    need();
    if (!j_->is_string()) fail_type("a string");
    return j_->get<std::string>();
  }
  std::string opt_str(const std::string& fallback = "") const {
    return present() ? str() : fallback;
  }
  bool flag() const {
    need();
    if (!j_->is_boolean()) fail_type("true or false");
    return j_->get<bool>();
  }
  std::optional<bool> opt_flag() const {
    if (!present()) return std::nullopt;
    return flag();
  }
  void need() const { MPQ_CHECK(present(), *file_, ": field '", path_, "' is missing"); }
  [[noreturn]] void fail_type(const char* expected) const {
    MPQ_FAIL(*file_, ": field '", path_, "': expected ", expected, ", found ", j_->type_name());
  }
  const std::string& file() const { return *file_; }
  const std::string& path() const { return path_; }

 private:
  const json* j_;
  const std::string* file_;
  std::string path_;
};

struct Inputs {
  const json& run;
  const json& plan;
  const json& sensitivity;
  const json& frontier;
  std::string run_file = "run.json", plan_file = "plan.json", sensitivity_file = "sensitivity.json",
              frontier_file = "frontier.json";
};

Field root(const json& doc, const std::string& file, bool optional) {
  if (optional && doc.is_null()) return Field(nullptr, file, "");
  MPQ_CHECK(doc.is_object(), file, ": expected a JSON object, found ", doc.type_name());
  return Field(&doc, file, "");
}

// One evaluated model: float, mixed, a uniform baseline or a frontier point.
struct Measured {
  std::string name;
  std::optional<double> top1, chars, agreement, cosine, kl, sqnr_db, size, weight_size, bitops,
      avg_bits, predicted_loss;
  int weight_bits = 0, act_bits = 0;
};

Measured read_measured(const Field& f, const std::string& name) {
  f.need();
  Measured m;
  m.name = name;
  m.top1 = f["top1"].opt_num();
  m.chars = f["char_accuracy"].opt_num();
  m.agreement = f["agreement"].opt_num();
  m.cosine = f["cosine"].opt_num();
  m.kl = f["kl"].opt_num();
  m.sqnr_db = f["sqnr_db"].opt_num();
  m.size = f["size_bytes"].opt_num();
  m.weight_size = f["weight_size_bytes"].opt_num();
  m.bitops = f["bitops"].opt_num();
  m.avg_bits = f["avg_weight_bits"].opt_num();
  m.predicted_loss = f["predicted_loss"].opt_num();
  return m;
}

// The quality measure the report plots: the task metric (top-1 with labels, the character
// accuracy of a text recognizer), else agreement with the float model, else (embeddings) the mean
// cosine similarity to it, else the outputs' SQNR.
struct Quality {
  enum Kind { kTop1, kChars, kAgreement, kCosine, kSqnr } kind = kTop1;
  std::string name, axis;
  // A task metric: the float model has a value of its own.
  bool task() const { return kind == kTop1 || kind == kChars; }
  std::optional<double> of(const Measured& m) const {
    return kind == kTop1        ? m.top1
           : kind == kChars     ? m.chars
           : kind == kAgreement ? m.agreement
           : kind == kCosine    ? m.cosine
                                : m.sqnr_db;
  }
  // In the plots' units (percent or dB).
  std::optional<double> plotted(const Measured& m) const {
    auto v = of(m);
    if (v && kind != kSqnr) *v *= 100;
    return v;
  }
  std::string text(std::optional<double> v) const {
    if (!v) return "—";
    return kind == kSqnr ? format_sig(*v, 3) + " dB" : format_percent(*v);
  }
};

// ---------------------------------------------------------------------------------------------
// The document.

struct Table {
  std::string id;
  std::vector<std::string> header;
  std::string align;  // one letter per column: 'l' or 'r'
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row_class;  // per row: "" or a CSS class
  void add(std::vector<std::string> row, const std::string& cls = "") {
    rows.push_back(std::move(row));
    row_class.push_back(cls);
  }
};

struct Block {
  enum Kind { kText, kNote, kTable, kPlot, kFacts } kind = kText;
  std::string text;  // kText, kNote: `code` and **bold** spans
  Table table;
  size_t plot = 0;
  std::vector<std::pair<std::string, std::string>> facts;
};

struct Section {
  std::string id, title;
  std::vector<Block> blocks;
  void text(const std::string& t) { blocks.push_back({Block::kText, t, {}, 0, {}}); }
  void note(const std::string& t) { blocks.push_back({Block::kNote, t, {}, 0, {}}); }
  void table(Table t) { blocks.push_back({Block::kTable, "", std::move(t), 0, {}}); }
  void plot(size_t i) { blocks.push_back({Block::kPlot, "", {}, i, {}}); }
  void facts(std::vector<std::pair<std::string, std::string>> f) {
    blocks.push_back({Block::kFacts, "", {}, 0, std::move(f)});
  }
};

struct Doc {
  std::string title, subtitle;
  std::vector<Section> sections;
  std::vector<ReportPlot> plots;
};

// ---------------------------------------------------------------------------------------------
// Formatting.

std::string format_int(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f", std::fabs(v));
  std::string digits = buf, out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (v < 0 ? "-" : "") + out;
}

std::string opt_text(std::optional<double> v, std::string (*f)(double)) { return v ? f(*v) : "—"; }
std::string bytes_text(double v) { return format_bytes(v); }
std::string si_text(double v) { return format_si(v); }
std::string bits_text(double v) { return format_sig(v, 3); }
std::string omega_text(double v) { return format_sig(v, 3); }

// A cost in a budget's unit ("B", "BitOps", "ms", "bit*weights", ...).
std::string cost_text(double v, const std::string& unit) {
  if (unit == "B") return format_bytes(v);
  if (unit == "BitOps") {  // "41.8 GBitOps", "500 BitOps"
    std::string s = format_si(v);
    return s + (std::isdigit(static_cast<unsigned char>(s.back())) ? " BitOps" : "BitOps");
  }
  return format_sig(v, 4) + (unit.empty() ? "" : " " + unit);
}

// The cost unit of a budget kind, for the per-layer cost columns (cost_kind_table()'s units).
std::string kind_unit(const std::string& kind) {
  if (kind == "size" || kind == "weight-size" || kind == "memory") return "B";
  if (kind == "bops") return "BitOps";
  if (kind == "latency") return "ms";
  if (kind == "avg-bits") return "bit*weights";
  return "";
}

std::string file_name(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string wa_name(int w, int a) { return "w" + std::to_string(w) + "a" + std::to_string(a); }

const char* kPalette[] = {"#d62728", "#ff7f0e", "#bcbd22", "#2ca02c", "#17becf",
                          "#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
const char* kFrontierColor = "#1f77b4";
const char* kUniformColor = "#ff7f0e";
const char* kChosenColor = "#d62728";

Series named_series(const std::string& name) {
  Series s;
  s.name = name;
  return s;
}

// Values for a log axis: those <= 0 are drawn at a floor a decade below the smallest positive
// value. Returns how many were clamped (the caption says so).
int clamp_for_log(std::vector<double>* v, double floor) {
  int clamped = 0;
  for (double& x : *v) {
    if (std::isfinite(x) && x <= 0) {
      x = floor;
      ++clamped;
    }
  }
  return clamped;
}

double log_floor(const std::vector<std::vector<double>*>& all) {
  double smallest = INFINITY;
  for (const auto* v : all) {
    for (double x : *v) {
      if (std::isfinite(x) && x > 0) smallest = std::min(smallest, x);
    }
  }
  return std::isfinite(smallest) ? smallest / 10 : 1e-9;
}

// ---------------------------------------------------------------------------------------------
// Building the document.

class Builder {
 public:
  explicit Builder(const Inputs& in)
      : run_(root(in.run, in.run_file, false)),
        plan_(root(in.plan, in.plan_file, false)),
        sens_(root(in.sensitivity, in.sensitivity_file, true)),
        front_(root(in.frontier, in.frontier_file, true)) {}

  Doc build() {
    read();
    headline();
    model();
    budgets();
    layers();
    frontier();
    sensitivity();
    verification();
    stages();
    provenance();
    return std::move(doc_);
  }

 private:
  void read() {
    std::string format = run_["format"].str();
    MPQ_CHECK(format == "mpq-run", run_.file(), ": field 'format': expected \"mpq-run\", found \"",
              format, "\"");
    double version = run_["version"].num();
    MPQ_CHECK(version == 1, run_.file(), ": field 'version': expected 1, found ", version);
    model_path_ = run_["model"]["path"].str();
    float_ = read_measured(run_["float"], "float");
    mixed_ = read_measured(run_["mixed"], "mixed");
    for (const Field& u : run_["uniform"].items(true)) {
      Measured m = read_measured(u, "");
      m.weight_bits = int(u["weight_bits"].num());
      m.act_bits = int(u["act_bits"].opt_num().value_or(8));
      m.name = wa_name(m.weight_bits, m.act_bits);
      uniform_.push_back(m);
    }
    std::sort(uniform_.begin(), uniform_.end(),
              [](const Measured& a, const Measured& b) { return a.weight_bits < b.weight_bits; });
    int k = 0;
    for (const Field& f : run_["frontier_eval"].items(true)) {
      frontier_eval_.push_back(read_measured(f, "frontier #" + std::to_string(++k)));
    }

    // Quality: labelled data (or top-1 present) -> top-1; else agreement, else SQNR.
    std::optional<bool> labelled = run_["data"]["labelled"].opt_flag();
    if (mixed_.chars) {
      quality_.kind = Quality::kChars;
      quality_.name = "character accuracy";
      quality_.axis = "character accuracy (%)";
      run_["float"]["char_accuracy"].num();
    } else if (labelled.value_or(mixed_.top1.has_value())) {
      quality_.kind = Quality::kTop1;
      quality_.name = "top-1";
      quality_.axis = "top-1 accuracy (%)";
      run_["mixed"]["top1"].num();  // required: the errors name the field
      run_["float"]["top1"].num();
    } else if (mixed_.agreement) {
      quality_.kind = Quality::kAgreement;
      quality_.name = "agreement";
      quality_.axis = "top-1 agreement with float (%)";
    } else if (mixed_.cosine) {
      quality_.kind = Quality::kCosine;
      quality_.name = "cosine";
      quality_.axis = "cosine similarity to float (%)";
    } else {
      MPQ_CHECK(mixed_.sqnr_db, run_.file(),
                ": field 'mixed.agreement' is missing (unlabelled data: the report measures "
                "quality by agreement or sqnr_db against the float model)");
      quality_.kind = Quality::kSqnr;
      quality_.name = "SQNR";
      quality_.axis = "output SQNR vs float (dB)";
    }

    budgets_ = run_.has("budgets") ? run_["budgets"] : plan_["budgets"];
    for (const Field& l : plan_["layers"].items()) {
      l["name"].str();
      l["weight_bits"].num();
    }
  }

  Section& section(const std::string& id, const std::string& title) {
    doc_.sections.push_back({id, title, {}});
    return doc_.sections.back();
  }

  // What the headline compares the mixed model with: the largest uniform model whose cost in the
  // first budget's measure does not exceed the mixed model's.
  std::optional<double> budget_measure(const Measured& m) const {
    return budget_kind_ == "size" ? m.size : budget_kind_ == "bops" ? m.bitops : m.weight_size;
  }
  std::string budget_measure_name() const {
    return budget_kind_ == "size" ? "size" : budget_kind_ == "bops" ? "BitOps" : "weight size";
  }

  // A uniform point's label in the plots: "w4", or "w4a6" where activations are not 8 bits.
  static std::string short_name(const Measured& m) {
    return m.act_bits == 8 ? "w" + std::to_string(m.weight_bits) : m.name;
  }

  void headline() {
    std::vector<Field> budgets = budgets_.items();
    budget_kind_ = budgets.empty() ? "size" : budgets[0]["kind"].opt_str("size");
    const Measured* same = nullptr;
    auto mixed_cost = budget_measure(mixed_);
    // A uniform model fits the budget when its cost, scaled as the mixed model's measured cost
    // is to the budget's total, stays within the budget's limit: at avg-bits=3 uniform W3 fits
    // even though the mixed model's total sits a hair below 3 bits.
    double headroom = 1;
    if (!budgets.empty()) {
      double total = budgets[0]["total"].opt_num().value_or(0);
      double limit = budgets[0]["limit"].opt_num().value_or(0);
      if (total > 0 && limit > 0) headroom = limit / total;
    }
    for (const auto& u : uniform_) {
      auto c = budget_measure(u);
      if (!c || !mixed_cost || *c > *mixed_cost * headroom * (1 + 1e-9)) continue;
      if (!same || *c > *budget_measure(*same)) same = &u;
    }
    doc_.title = "mpq run: " + file_name(model_path_);
    doc_.subtitle = "`" + model_path_ + "` · method " + run_["method"]["name"].opt_str("?") +
                    " · " + run_["data"]["evaluation"].opt_str("evaluation data not recorded");

    Section& s = section("summary", "Summary");
    std::string budget_list;
    for (const Field& b : budgets) {
      budget_list += (budget_list.empty() ? "" : ", ") + std::string("`") + b["budget"].str() + "`";
    }
    std::ostringstream t;
    t << "Mixed precision under " << (budget_list.empty() ? "no budget" : budget_list) << ": "
      << quality_.name << " " << quality_.text(quality_.of(mixed_));
    if (quality_.task()) {
      t << " (float " << quality_.text(quality_.of(float_)) << ")";
    } else {
      t << " against the float model (the data has no labels)";
    }
    if (mixed_.size && float_.size && *mixed_.size > 0) {
      t << ", " << format_sig(*float_.size / *mixed_.size, 3) << "× smaller than float";
    }
    if (same) {
      auto q = quality_.of(*same);
      t << "; uniform " << same->name << " at no more " << budget_measure_name() << ": "
        << quality_.text(q);
    }
    t << ".";
    s.text(t.str());

    Table table;
    table.id = "headline";
    bool top1 = quality_.task();
    table.header = {"model", quality_.name};
    if (top1) table.header.push_back("Δ vs float");
    if (!top1) table.header.insert(table.header.end(), {"KL", "SQNR"});
    table.header.insert(table.header.end(), {"size", "× smaller", "weight size", "BitOps",
                                             "avg weight bits", "predicted Δloss"});
    table.align = "l" + std::string(table.header.size() - 1, 'r');
    auto row = [&](const Measured& m, const std::string& label, const std::string& cls) {
      std::vector<std::string> r = {label, quality_.text(quality_.of(m))};
      if (top1) {
        auto v = quality_.of(m), f = quality_.of(float_);
        r.push_back(v && f && &m != &float_ ? format_sig(100 * (*v - *f), 3) + " pp" : "");
      } else {
        r.push_back(opt_text(m.kl, omega_text));
        r.push_back(m.sqnr_db ? format_sig(*m.sqnr_db, 3) + " dB" : "—");
      }
      r.push_back(opt_text(m.size, bytes_text));
      r.push_back(m.size && float_.size && *m.size > 0 ? format_sig(*float_.size / *m.size, 3) + "×"
                                                       : "—");
      r.push_back(opt_text(m.weight_size, bytes_text));
      r.push_back(opt_text(m.bitops, si_text));
      r.push_back(opt_text(m.avg_bits, bits_text));
      r.push_back(opt_text(m.predicted_loss, omega_text));
      table.add(r, cls);
    };
    row(float_, "float", "");
    if (same) row(*same, "uniform " + same->name + " (same " + budget_measure_name() + ")", "");
    row(mixed_, "mixed (" + run_["method"]["name"].opt_str("this run") + ")", "chosen");
    s.table(table);
    s.note(same ? "The uniform row is the largest uniform-precision model that meets the first "
                  "budget (its " +
                      budget_measure_name() + " measured like the mixed model's)."
                : "No uniform-precision model meets the first budget (" + budget_measure_name() +
                      ").");
  }

  void model() {
    Section& s = section("model", "Model");
    Field m = run_["model"];
    std::vector<std::pair<std::string, std::string>> f = {{"file", "`" + model_path_ + "`"}};
    if (m.has("hash")) f.push_back({"hash", "`" + m["hash"].str() + "`"});
    if (m.has("params")) f.push_back({"parameters", format_int(m["params"].num())});
    if (m.has("macs")) f.push_back({"MACs per sample", format_si(m["macs"].num())});
    f.push_back(
        {"quantized layers", format_int(double(plan_["layers"].items().size())) +
                                 (m.has("layers") ? " of " + format_int(m["layers"].num()) : "")});
    if (float_.size) f.push_back({"float size", format_bytes(*float_.size)});
    if (float_.bitops) f.push_back({"float BitOps", format_si(*float_.bitops)});
    if (quality_.task())
      f.push_back({"float " + quality_.name, quality_.text(quality_.of(float_))});
    s.facts(f);
  }

  void budgets() {
    Section& s = section("budgets", "Budgets");
    s.text(
        "Every budget applies at once. A budget **binds** when the plan's total is at its limit: "
        "loosening it would let the search lower the predicted loss.");
    Table t;
    t.id = "budgets-table";
    t.header = {"budget", "kind", "limit", "total", "use", "lowest – highest", "binding"};
    t.align = "llrrrrl";
    for (const Field& b : budgets_.items()) {
      std::string unit = b["unit"].opt_str();
      double limit = b["limit"].num(), total = b["total"].num();
      bool binding = b["binding"].flag();
      auto lo = b["lowest"].opt_num(), hi = b["highest"].opt_num();
      t.add({b["budget"].str(), b["kind"].opt_str(), cost_text(limit, unit), cost_text(total, unit),
             limit > 0 ? format_percent(total / limit, 1) : "—",
             lo && hi ? cost_text(*lo, unit) + " – " + cost_text(*hi, unit) : "—",
             binding ? "yes" : "no"},
            binding ? "binding" : "");
    }
    s.table(t);
  }

  void layers() {
    Section& s = section("layers", "Per-layer plan");
    std::vector<Field> layers = plan_["layers"].items();
    // Cost columns: the budgets' kinds first, then any other kind the plan lists.
    std::vector<std::string> kinds;
    for (const Field& b : budgets_.items()) {
      std::string k = b["kind"].opt_str();
      if (!k.empty() && std::find(kinds.begin(), kinds.end(), k) == kinds.end()) kinds.push_back(k);
    }
    std::map<int, int> histogram;
    for (const Field& l : layers) {
      histogram[int(l["weight_bits"].num())]++;
      for (const auto& k : l["cost"].keys()) {
        if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) kinds.push_back(k);
      }
    }
    std::string h;
    for (const auto& [bits, n] : histogram) {
      h += (h.empty() ? "" : ", ") + std::to_string(n) + " at " +
           (bits >= 32 ? std::string("float") : std::to_string(bits) + " bits");
    }
    std::string metric = sens_.present() ? sens_["metric"].opt_str() : "";
    s.text(std::to_string(layers.size()) + " layers: " + h + ". Ω is the sensitivity" +
           (metric.empty() ? "" : " (" + metric + ")") +
           " at the chosen bits: the predicted increase of the loss from quantizing the layer.");
    Table t;
    t.id = "layers-table";
    t.header = {"#", "layer", "W bits", "A bits", "weight scheme", "Ω"};
    for (const auto& k : kinds) t.header.push_back("cost: " + k);
    t.header.push_back("reason");
    t.align = "rlrrlr" + std::string(kinds.size(), 'r') + "l";
    int i = 0;
    for (const Field& l : layers) {
      double wb = l["weight_bits"].num(), ab = l["act_bits"].opt_num().value_or(8);
      std::vector<std::string> r = {std::to_string(i++),
                                    l["name"].str(),
                                    wb >= 32 ? "float" : format_sig(wb, 3),
                                    ab >= 32 ? "float" : format_sig(ab, 3),
                                    l["weight_scheme"].opt_str("sym-channel"),
                                    opt_text(l["omega"].opt_num(), omega_text)};
      for (const auto& k : kinds) {
        auto c = l["cost"][k].opt_num();
        r.push_back(c ? cost_text(*c, kind_unit(k)) : "—");
      }
      r.push_back(l["reason"].opt_str("—"));
      t.add(r, "layer");
    }
    s.table(t);
  }

  // One quality-against-cost plot: frontier points, uniform points, the chosen point, float.
  std::optional<size_t> measured_plot(const std::string& file, const std::string& what,
                                      std::optional<double> Measured::*x, bool bytes) {
    Plot p;
    p.width = 540;
    p.height = 340;
    p.title = quality_.name + " against " + what;
    p.x.label = bytes ? what + " (bytes)" : what + " per sample";
    p.y.label = quality_.axis;
    p.x.format = bytes ? internal::format_bytes : internal::format_si;
    double lo = INFINITY, hi = 0;
    auto add = [&](Series* s, const Measured& m) {
      auto xv = m.*x;
      auto yv = quality_.plotted(m);
      if (!xv || !yv) return;
      s->x.push_back(*xv);
      s->y.push_back(*yv);
      s->tips.push_back(m.name + ": " + quality_.text(quality_.of(m)) + ", " +
                        (bytes ? format_bytes(*xv) : format_si(*xv) + " BitOps"));
      lo = std::min(lo, *xv);
      hi = std::max(hi, *xv);
    };
    Series front = named_series("frontier (measured)");
    front.color = kFrontierColor;
    std::vector<const Measured*> sorted;
    for (const auto& m : frontier_eval_) sorted.push_back(&m);
    std::sort(sorted.begin(), sorted.end(), [&](const Measured* a, const Measured* b) {
      return (a->*x).value_or(0) < (b->*x).value_or(0);
    });
    for (const auto* m : sorted) add(&front, *m);
    Series uni = named_series("uniform");
    uni.color = kUniformColor;
    uni.dashed = true;
    uni.marker = Marker::kSquare;
    for (const auto& m : uniform_) {
      size_t before = uni.x.size();
      add(&uni, m);
      if (uni.x.size() > before) uni.labels.push_back(short_name(m));
    }
    Series chosen = named_series("mixed (chosen)");
    chosen.color = kChosenColor;
    chosen.line = false;
    chosen.marker = Marker::kDiamond;
    chosen.marker_size = 6;
    add(&chosen, mixed_);
    if (chosen.x.empty() && uni.x.empty() && front.x.empty()) return std::nullopt;
    p.x.log = hi > 8 * lo;
    for (Series* s : {&front, &uni, &chosen}) {
      if (!s->x.empty()) p.series.push_back(*s);
    }
    if (quality_.task() && quality_.of(float_)) {
      double v = *quality_.of(float_);
      p.ref_lines.push_back({100 * v, "float " + format_percent(v)});
    }
    doc_.plots.push_back({file, p.title, internal::svg_plot(p)});
    return doc_.plots.size() - 1;
  }

  // Predicted loss along frontier.json's points against the frontier budget's cost.
  std::optional<size_t> predicted_plot(std::string* caption) {
    if (!front_.present()) return std::nullopt;
    std::string kind = front_["budget"].opt_str(), unit = front_["unit"].opt_str();
    bool avg = kind == "avg-bits";
    Plot p;
    p.width = 540;
    p.height = 340;
    p.title = "predicted loss along the frontier";
    p.y.label = "predicted Δloss (Σ Ω)";
    Series line = named_series("frontier (predicted)");
    line.color = kFrontierColor;
    line.marker_size = 2.5;
    for (const Field& f : front_["points"].items()) {
      double cost = f["cost"].num(), loss = f["predicted_loss"].num();
      auto avg_bits = f["average_weight_bits"].opt_num();
      line.x.push_back(avg && avg_bits ? *avg_bits : cost);
      line.y.push_back(loss);
    }
    Series chosen = named_series("chosen");
    chosen.color = kChosenColor;
    chosen.line = false;
    chosen.marker = Marker::kDiamond;
    chosen.marker_size = 6;
    if (front_["chosen"].present() && !avg) {
      chosen.x.push_back(front_["chosen"]["cost"].num());
      chosen.y.push_back(front_["chosen"]["predicted_loss"].num());
    } else if (avg && mixed_.avg_bits && mixed_.predicted_loss) {
      chosen.x.push_back(*mixed_.avg_bits);
      chosen.y.push_back(*mixed_.predicted_loss);
    }
    // The uniform models on the same axes where their measure is the frontier's.
    Series uni = named_series("uniform");
    uni.color = kUniformColor;
    uni.line = false;
    uni.marker = Marker::kSquare;
    for (const auto& m : uniform_) {
      std::optional<double> xv = kind == "size"          ? m.size
                                 : kind == "weight-size" ? m.weight_size
                                 : kind == "bops"        ? m.bitops
                                 : avg                   ? m.avg_bits
                                                         : std::nullopt;
      if (!xv || !m.predicted_loss) continue;
      uni.x.push_back(*xv);
      uni.y.push_back(*m.predicted_loss);
      uni.labels.push_back(short_name(m));
    }
    if (line.x.empty()) return std::nullopt;
    if (line.x.size() > 40) line.marker = Marker::kNone;
    double floor = log_floor({&line.y, &chosen.y, &uni.y});
    int clamped = clamp_for_log(&line.y, floor) + clamp_for_log(&chosen.y, floor) +
                  clamp_for_log(&uni.y, floor);
    p.y.log = true;
    double lo = *std::min_element(line.x.begin(), line.x.end());
    double hi = *std::max_element(line.x.begin(), line.x.end());
    p.x.log = lo > 0 && hi > 8 * lo;
    if (avg) {
      p.x.label = "average weight bits";
    } else {
      p.x.label =
          (kind.empty() ? std::string("cost") : kind) + (unit.empty() ? "" : " (" + unit + ")");
      if (unit == "B") p.x.format = internal::format_bytes;
      if (unit == "BitOps") p.x.format = internal::format_si;
    }
    p.series.push_back(line);
    if (!uni.x.empty()) p.series.push_back(uni);
    if (!chosen.x.empty()) p.series.push_back(chosen);
    *caption =
        "Predicted loss (the sum of the layers' Ω) of every point of the Pareto frontier "
        "of the `" +
        (kind.empty() ? std::string("first") : kind) +
        "` budget, from frontier.json; the uniform points at their measured " +
        (avg ? "average bits" : kind) + ".";
    if (clamped) {
      *caption += " " + std::to_string(clamped) + " value(s) ≤ 0 are drawn at " +
                  format_sig(floor, 2) + " on the log axis.";
    }
    doc_.plots.push_back({"report_frontier_predicted.svg", p.title, internal::svg_plot(p)});
    return doc_.plots.size() - 1;
  }

  void frontier() {
    Section& s = section("frontier", "Pareto frontier");
    s.text("Measured " + quality_.name +
           " of models quantized at several points of the Pareto frontier, of the uniform-"
           "precision models and of the chosen mixed-precision model, against size and "
           "against BitOps.");
    auto a = measured_plot("report_frontier_size.svg", "size", &Measured::size, true);
    auto b = measured_plot("report_frontier_bitops.svg", "BitOps", &Measured::bitops, false);
    if (a) s.plot(*a);
    if (b) s.plot(*b);
    std::string caption;
    auto c = predicted_plot(&caption);
    if (c) {
      s.plot(*c);
      s.note(caption);
    }
    Table t;
    t.id = "frontier-table";
    t.header = {"point", "predicted Δloss", quality_.name, "size", "BitOps", "avg weight bits"};
    bool extra = quality_.kind == Quality::kTop1 && mixed_.agreement;
    if (extra) t.header.insert(t.header.end(), {"agreement", "KL", "SQNR"});
    t.align = "l" + std::string(t.header.size() - 1, 'r');
    std::vector<std::pair<const Measured*, std::string>> rows;
    for (const auto& m : frontier_eval_) rows.push_back({&m, ""});
    for (const auto& m : uniform_) rows.push_back({&m, "uniform"});
    rows.push_back({&mixed_, "chosen"});
    std::stable_sort(rows.begin(), rows.end(), [](const auto& x, const auto& y) {
      return x.first->size.value_or(0) < y.first->size.value_or(0);
    });
    for (const auto& [m, cls] : rows) {
      std::string name = cls == "uniform"  ? "uniform " + m->name
                         : cls == "chosen" ? "mixed (chosen)"
                                           : m->name;
      std::vector<std::string> r = {name,
                                    opt_text(m->predicted_loss, omega_text),
                                    quality_.text(quality_.of(*m)),
                                    opt_text(m->size, bytes_text),
                                    opt_text(m->bitops, si_text),
                                    opt_text(m->avg_bits, bits_text)};
      if (extra) {
        r.push_back(m->agreement ? format_percent(*m->agreement) : "—");
        r.push_back(opt_text(m->kl, omega_text));
        r.push_back(m->sqnr_db ? format_sig(*m->sqnr_db, 3) + " dB" : "—");
      }
      t.add(r, cls);
    }
    s.table(t);
  }

  void sensitivity() {
    section("sensitivity", "Per-layer sensitivity");
    if (!sens_.present()) {
      doc_.sections.back().text("This run has no sensitivity file.");
      return;
    }
    std::string metric = sens_["metric"].opt_str();
    std::vector<std::string> names;
    std::map<int, std::vector<double>> omega;  // bits -> per layer (NaN where not measured)
    std::vector<Field> layers = sens_["layers"].items();
    for (size_t i = 0; i < layers.size(); ++i) {
      names.push_back(layers[i]["name"].str());
      for (const Field& w : layers[i]["weight"].items(true)) {
        int bits = int(w["bits"].num());
        auto& v = omega[bits];
        v.resize(layers.size(), NAN);
        v[i] = w["omega"].num();
      }
    }
    std::map<std::string, double> chosen_bits;
    for (const Field& l : plan_["layers"].items()) {
      chosen_bits[l["name"].str()] = l["weight_bits"].num();
    }
    Series chosen = named_series("chosen (plan)");
    chosen.color = "#000000";
    chosen.line = false;
    chosen.hollow = true;
    chosen.marker_size = 6.5;
    for (size_t i = 0; i < names.size(); ++i) {
      auto it = chosen_bits.find(names[i]);
      auto col = it == chosen_bits.end() ? omega.end() : omega.find(int(it->second));
      chosen.x.push_back(double(i));
      chosen.y.push_back(col == omega.end() ? NAN : col->second[i]);
      chosen.tips.push_back(
          names[i] + ": " +
          (col == omega.end() ? "float or not measured" : "w" + std::to_string(col->first)));
    }
    std::vector<std::vector<double>*> all = {&chosen.y};
    for (auto& [bits, v] : omega) {
      v.resize(names.size(), NAN);
      all.push_back(&v);
    }
    double floor = log_floor(all);
    int clamped = 0;
    for (auto* v : all) clamped += v == &chosen.y ? 0 : clamp_for_log(v, floor);
    clamp_for_log(&chosen.y, floor);  // the same values again: not counted twice
    Plot p;
    p.title = "Ω per layer and weight bits" + (metric.empty() ? "" : " (" + metric + ")");
    p.x.label = "layer";
    p.x.categories = names;
    p.y.label = "Ω (predicted Δloss, log)";
    p.y.log = true;
    p.width = 1080;
    p.height = 400;
    size_t c = 0;
    for (const auto& [bits, v] : omega) {
      Series s = named_series("w" + std::to_string(bits));
      s.color = kPalette[c++ % (sizeof kPalette / sizeof *kPalette)];
      s.marker_size = 3;
      for (size_t i = 0; i < v.size(); ++i) {
        s.x.push_back(double(i));
        s.y.push_back(v[i]);
        s.tips.push_back(names[i] + " w" + std::to_string(bits) + ": Ω = " + format_sig(v[i], 3));
      }
      p.series.push_back(s);
    }
    p.series.push_back(chosen);
    doc_.plots.push_back({"report_sensitivity.svg", p.title, internal::svg_plot(p)});
    Section& s = doc_.sections.back();
    s.text("Ω (" + (metric.empty() ? std::string("the sensitivity metric") : metric) +
           ") of each layer at each candidate weight width, from sensitivity.json; the ring marks "
           "the width the plan chose.");
    s.plot(doc_.plots.size() - 1);
    if (clamped) {
      s.note(std::to_string(clamped) +
             " value(s) ≤ 0 (possible for measured or sampled "
             "metrics at high bit widths) are drawn at " +
             format_sig(floor, 2) + " on the log axis.");
    }
  }

  void verification() {
    Section& s = section("verification", "Verification against ONNX Runtime");
    Field v = run_["verify"];
    if (!v.present()) {
      std::string why = run_["verify_skipped"].opt_str();
      s.text(why.empty() ? "Not run." : "Skipped: " + why + ".");
      return;
    }
    bool passed = v["passed"].flag();
    s.text(std::string(passed ? "**Passed**" : "**Failed**") +
           ": the exported model run by ONNX Runtime " +
           (passed ? "agrees with mpq's own simulation of the quantized model within"
                   : "differs from mpq's own simulation of the quantized model by more than") +
           " the expected bounds, on " + format_int(v["samples"].num()) + " samples.");
    s.facts({{"max relative difference", format_sig(v["max_rel_diff"].num(), 3)},
             {"top-1 agreement", format_percent(v["top1_agreement"].num())}});
    Table t;
    t.id = "verify-table";
    t.header = {"output", "max abs diff", "max rel diff", "top-1 agreement"};
    t.align = "lrrr";
    for (const Field& o : v["outputs"].items(true)) {
      auto agreement = o["top1_agreement"].opt_num();
      t.add({o["name"].str(), format_sig(o["max_abs"].num(), 3), format_sig(o["max_rel"].num(), 3),
             agreement ? format_percent(*agreement) : "—"});
    }
    if (!t.rows.empty()) s.table(t);
  }

  void stages() {
    Section& s = section("stages", "Stages");
    Table t;
    t.id = "stages-table";
    t.header = {"stage", "time", "artifact", "cached"};
    t.align = "lrll";
    double total = 0;
    for (const Field& st : run_["stages"].items(true)) {
      double sec = st["seconds"].num();
      total += sec;
      auto cached = st["from_cache"].opt_flag();
      t.add({st["name"].str(), format_seconds(sec), st["artifact"].opt_str(),
             cached ? (*cached ? "yes" : "no") : ""});
    }
    if (t.rows.empty()) {
      s.text("No stage timings recorded.");
      return;
    }
    t.add({"total", format_seconds(total), "", ""}, "total");
    s.table(t);
  }

  void provenance() {
    Section& s = section("provenance", "Provenance");
    std::vector<std::pair<std::string, std::string>> f;
    auto add = [&](const std::string& key, const std::string& value) {
      if (!value.empty()) f.push_back({key, value});
    };
    Field m = run_["model"], d = run_["data"], me = run_["method"];
    add("model",
        "`" + model_path_ + "`" + (m.has("hash") ? " (hash `" + m["hash"].str() + "`)" : ""));
    add("calibration data", d["calibration"].opt_str());
    add("evaluation data", d["evaluation"].opt_str());
    if (d.has("eval_samples")) add("evaluation samples", format_int(d["eval_samples"].num()));
    if (auto l = d["labelled"].opt_flag())
      add("labelled", *l ? "yes" : "no (quality against the float model)");
    add("method", me["name"].opt_str());
    add("sensitivity metric", me["metric"].opt_str());
    add("solver", me["solver"].opt_str());
    add("quantizer", me["quantizer"].opt_str());
    Field search = plan_["search"];
    if (search.present()) {
      std::string st = search["solver"].opt_str();
      if (search.has("status")) st += (st.empty() ? "" : ": ") + search["status"].str();
      if (auto gap = search["gap"].opt_num()) st += ", gap " + format_sig(*gap, 3);
      add("search", st);
    }
    if (sens_.present()) {
      Field info = sens_["info"];
      std::string sd = info["data_hash"].opt_str();
      if (auto n = info["options"]["samples"].opt_num()) {
        sd += (sd.empty() ? "" : ", ") + format_int(*n) + " samples";
      }
      if (!sd.empty()) add("sensitivity data", sd);
    }
    add("mpq version (run)", run_["mpq_version"].opt_str());
    add("mpq version (report)", kVersion);
    std::string files;
    Field fl = run_["files"];
    for (const char* k : {"model", "plan", "sensitivity", "frontier"}) {
      if (fl.has(k)) files += (files.empty() ? "" : ", ") + std::string("`") + fl[k].str() + "`";
    }
    add("files", files);
    s.facts(f);
  }

  Field run_, plan_, sens_, front_;
  Field budgets_{nullptr, run_.file(), "budgets"};
  std::string model_path_, budget_kind_ = "size";
  Measured float_, mixed_;
  std::vector<Measured> uniform_, frontier_eval_;
  Quality quality_;
  Doc doc_;
};

Doc build_doc(const Inputs& in) { return Builder(in).build(); }

// ---------------------------------------------------------------------------------------------
// Writing: HTML and Markdown.

std::string html_escape(const std::string& s) { return internal::xml_escape(s); }

// `code` and **bold** spans to HTML (the text is escaped first).
std::string inline_html(const std::string& text) {
  std::string s = html_escape(text), out;
  bool code = false, bold = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '`') {
      out += code ? "</code>" : "<code>";
      code = !code;
    } else if (!code && s.compare(i, 2, "**") == 0) {
      out += bold ? "</strong>" : "<strong>";
      bold = !bold;
      ++i;
    } else {
      out += s[i];
    }
  }
  if (code) out += "</code>";
  if (bold) out += "</strong>";
  return out;
}

const char* kCss = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#222;
 max-width:1120px;margin:24px auto;padding:0 18px;line-height:1.45}
h1{font-size:1.55em;margin:0 0 4px} h2{font-size:1.2em;border-bottom:1px solid #ddd;
 padding-bottom:3px;margin-top:1.8em}
.sub{color:#555;margin:0 0 10px} nav a{margin-right:14px;color:#1f5fa8;text-decoration:none}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #dcdcdc;padding:3px 8px;vertical-align:top}
th{background:#f2f4f7;text-align:left} td.r{text-align:right;font-variant-numeric:tabular-nums}
tr.chosen td{background:#fdecea;font-weight:600} tr.binding td{background:#fff7e0}
tr.uniform td{background:#fff3e6} tr.total td{font-weight:600}
code{background:#f3f3f3;padding:0 3px;border-radius:3px;font-size:0.92em}
.plot{display:inline-block;vertical-align:top;margin:8px 14px 8px 0;max-width:100%;
 overflow-x:auto} .plot svg{max-width:100%;height:auto}
.note{color:#666;font-size:0.9em}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 18px;margin:8px 0}
dt{color:#555} dd{margin:0}
)";

std::string to_html(const Doc& doc) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>"
    << html_escape(doc.title) << "</title>\n<style>" << kCss << "</style>\n</head>\n<body>\n";
  o << "<h1>" << inline_html(doc.title) << "</h1>\n<p class=\"sub\">" << inline_html(doc.subtitle)
    << "</p>\n<nav>";
  for (const auto& s : doc.sections) {
    o << "<a href=\"#" << s.id << "\">" << html_escape(s.title) << "</a>";
  }
  o << "</nav>\n";
  for (const auto& s : doc.sections) {
    o << "<section id=\"" << s.id << "\">\n<h2>" << html_escape(s.title) << "</h2>\n";
    for (const auto& b : s.blocks) {
      switch (b.kind) {
        case Block::kText:
          o << "<p>" << inline_html(b.text) << "</p>\n";
          break;
        case Block::kNote:
          o << "<p class=\"note\">" << inline_html(b.text) << "</p>\n";
          break;
        case Block::kFacts:
          o << "<dl>\n";
          for (const auto& [k, v] : b.facts) {
            o << "<dt>" << html_escape(k) << "</dt><dd>" << inline_html(v) << "</dd>\n";
          }
          o << "</dl>\n";
          break;
        case Block::kPlot:
          o << "<div class=\"plot\" id=\"plot-" << doc.plots[b.plot].file << "\">\n"
            << doc.plots[b.plot].svg << "</div>\n";
          break;
        case Block::kTable: {
          const Table& t = b.table;
          o << "<table id=\"" << t.id << "\">\n<thead><tr>";
          for (const auto& h : t.header) o << "<th>" << html_escape(h) << "</th>";
          o << "</tr></thead>\n<tbody>\n";
          for (size_t r = 0; r < t.rows.size(); ++r) {
            o << "<tr" << (t.row_class[r].empty() ? "" : " class=\"" + t.row_class[r] + "\"")
              << ">";
            for (size_t c = 0; c < t.rows[r].size(); ++c) {
              bool right = c < t.align.size() && t.align[c] == 'r';
              o << (right ? "<td class=\"r\">" : "<td>") << inline_html(t.rows[r][c]) << "</td>";
            }
            o << "</tr>\n";
          }
          o << "</tbody>\n</table>\n";
          break;
        }
      }
    }
    o << "</section>\n";
  }
  o << "</body>\n</html>\n";
  return o.str();
}

std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n')
      out += ' ';
    else
      out += c;
  }
  return out.empty() ? " " : out;
}

std::string to_markdown(const Doc& doc, const std::string& svg_prefix) {
  std::ostringstream o;
  o << "# " << doc.title << "\n\n" << doc.subtitle << "\n";
  for (const auto& s : doc.sections) {
    o << "\n## " << s.title << "\n";
    for (const auto& b : s.blocks) {
      o << "\n";
      switch (b.kind) {
        case Block::kText:
          o << b.text << "\n";
          break;
        case Block::kNote:
          o << "*" << b.text << "*\n";
          break;
        case Block::kFacts:
          for (const auto& [k, v] : b.facts) o << "- **" << k << "**: " << v << "\n";
          break;
        case Block::kPlot:
          o << "![" << doc.plots[b.plot].title << "](" << svg_prefix << doc.plots[b.plot].file
            << ")\n";
          break;
        case Block::kTable: {
          const Table& t = b.table;
          o << "|";
          for (const auto& h : t.header) o << " " << md_cell(h) << " |";
          o << "\n|";
          for (size_t c = 0; c < t.header.size(); ++c) {
            o << (c < t.align.size() && t.align[c] == 'r' ? "---:|" : "---|");
          }
          o << "\n";
          for (const auto& row : t.rows) {
            o << "|";
            for (const auto& cell : row) o << " " << md_cell(cell) << " |";
            o << "\n";
          }
          break;
        }
      }
    }
  }
  return o.str();
}

}  // namespace

std::vector<ReportPlot> render_plots(const json& run, const json& plan, const json& sensitivity,
                                     const json& frontier) {
  return build_doc({run, plan, sensitivity, frontier}).plots;
}

std::string render_html(const json& run, const json& plan, const json& sensitivity,
                        const json& frontier) {
  return to_html(build_doc({run, plan, sensitivity, frontier}));
}

std::string render_markdown(const json& run, const json& plan, const json& sensitivity,
                            const json& frontier, const std::string& svg_prefix) {
  return to_markdown(build_doc({run, plan, sensitivity, frontier}), svg_prefix);
}

ReportFiles write_report(const std::string& run_dir) {
  MPQ_CHECK(is_directory(run_dir), run_dir,
            ": not a folder (expected the output folder of mpq run)");
  const std::string run_file = join_path(run_dir, "run.json");
  json run = load_json(run_file);
  Field files = root(run, run_file, false)["files"];
  auto artifact = [&](const char* key, bool required) -> std::pair<json, std::string> {
    Field f = files[key];
    if (!required && !f.present()) return {json(), ""};
    std::string name = f.str();
    std::string path = !name.empty() && name[0] == '/' ? name : join_path(run_dir, name);
    return {load_json(path), path};
  };
  auto [plan, plan_file] = artifact("plan", true);
  auto [sensitivity, sensitivity_file] = artifact("sensitivity", false);
  auto [frontier, frontier_file] = artifact("frontier", false);
  Inputs in{run, plan, sensitivity, frontier, run_file, plan_file, sensitivity_file, frontier_file};
  Doc doc = build_doc(in);

  ReportFiles out;
  out.html = join_path(run_dir, "report.html");
  out.markdown = join_path(run_dir, "report.md");
  for (const auto& p : doc.plots) {
    out.svgs.push_back(join_path(run_dir, p.file));
    write_file_atomic(out.svgs.back(), p.svg);
  }
  write_file_atomic(out.markdown, to_markdown(doc, ""));
  write_file_atomic(out.html, to_html(doc));
  return out;
}

}  // namespace mpq
