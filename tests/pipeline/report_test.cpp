// The run report (pipeline/report.h) on artifacts built in code: every section, one table row per
// plan layer, well-formed SVG with the chosen and uniform points, formatted numbers, Markdown
// tables and links, the unlabelled form (agreement / SQNR as quality), and one-line errors that
// name the file and the field. Also the plotting helpers' ticks and number formats.
#include "pipeline/report.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "core/fs.h"
#include "pipeline/internal/svg_plot.h"
#include "pipeline/report_fixture.h"
#include "support/error_of.h"
#include "support/test_util.h"

namespace mpq {
namespace {

using nlohmann::json;
using testing::error_of;

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Every element closes, in order; self-closing and HTML void elements need no end tag.
::testing::AssertionResult balanced(const std::string& xml) {
  std::vector<std::string> open;
  for (size_t i = xml.find('<'); i != std::string::npos; i = xml.find('<', i)) {
    size_t end = xml.find('>', i);
    if (end == std::string::npos)
      return ::testing::AssertionFailure() << "unterminated tag at " << i;
    std::string tag = xml.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag.empty()) return ::testing::AssertionFailure() << "empty tag at " << i;
    if (tag[0] == '!' || tag[0] == '?' || tag.back() == '/') continue;
    if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) {
        return ::testing::AssertionFailure()
               << "</" << tag.substr(1) << "> closes <" << (open.empty() ? "" : open.back()) << ">";
      }
      open.pop_back();
      continue;
    }
    std::string name = tag.substr(0, tag.find_first_of(" \t\n"));
    if (name == "meta" || name == "br" || name == "hr" || name == "img" || name == "link") continue;
    open.push_back(name);
  }
  if (!open.empty()) return ::testing::AssertionFailure() << "<" << open.back() << "> not closed";
  return ::testing::AssertionSuccess();
}

std::string render_html(const test::RunArtifacts& a) {
  return mpq::render_html(a.run, a.plan, a.sensitivity, a.frontier);
}

std::vector<ReportPlot> plots(const test::RunArtifacts& a) {
  return render_plots(a.run, a.plan, a.sensitivity, a.frontier);
}

const ReportPlot& plot(const std::vector<ReportPlot>& all, const std::string& file) {
  for (const auto& p : all) {
    if (p.file == file) return p;
  }
  ADD_FAILURE() << "no plot " << file;
  static ReportPlot none;
  return none;
}

TEST(ReportHtml, HasEverySectionAndIsSelfContained) {
  std::string html = render_html(test::report_fixture());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  for (const char* id : {"summary", "model", "budgets", "layers", "frontier", "sensitivity",
                         "verification", "stages", "provenance"}) {
    EXPECT_NE(html.find("<section id=\"" + std::string(id) + "\">"), std::string::npos) << id;
  }
  EXPECT_TRUE(balanced(html));
  // No scripts, no external fonts, images or style sheets: only the SVG namespace is a URL.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(count(html, "http"), count(html, "http://www.w3.org/2000/svg"));
  // Every plot inline.
  for (const auto& p : plots(test::report_fixture())) {
    EXPECT_NE(html.find(p.svg), std::string::npos) << p.file;
  }
}

TEST(ReportHtml, OneTableRowPerPlanLayer) {
  test::RunArtifacts a = test::report_fixture();
  std::string html = render_html(a);
  EXPECT_EQ(count(html, "<tr class=\"layer\">"), a.plan["layers"].size());
  std::string table = html.substr(html.find("<table id=\"layers-table\">"));
  table = table.substr(0, table.find("</table>"));
  for (const auto& l : a.plan["layers"]) {
    EXPECT_NE(table.find("<td>" + l["name"].get<std::string>() + "</td>"), std::string::npos);
  }
  // Cost columns for both budget kinds, the reason, the Ω in scientific notation.
  EXPECT_NE(table.find("<th>cost: size</th>"), std::string::npos);
  EXPECT_NE(table.find("<th>cost: bops</th>"), std::string::npos);
  EXPECT_NE(table.find("budget size binding"), std::string::npos);
  EXPECT_NE(table.find(">0.00313<"), std::string::npos);   // conv1 at 4 bits
  EXPECT_NE(table.find(">2.44e-05<"), std::string::npos);  // block.conv at 8 bits
  EXPECT_NE(table.find(">-2e-07<"), std::string::npos);    // fc: negative, as measured
}

TEST(ReportHtml, BudgetsShowWhichBind) {
  std::string html = render_html(test::report_fixture());
  std::string table = html.substr(html.find("<table id=\"budgets-table\">"));
  table = table.substr(0, table.find("</table>"));
  EXPECT_EQ(count(table, "<tr class=\"binding\">"), 1u);
  EXPECT_NE(table.find("size=0.5r"), std::string::npos);
  EXPECT_NE(table.find("bops=0.9x"), std::string::npos);
  EXPECT_NE(table.find("3.3 KB"), std::string::npos);
  EXPECT_NE(table.find("180 MBitOps"), std::string::npos);
  EXPECT_NE(table.find("99.7 %"), std::string::npos);  // 3290 of 3300
}

TEST(ReportHtml, NumbersAreFormatted) {
  std::string html = render_html(test::report_fixture());
  std::string head = html.substr(html.find("<table id=\"headline\">"));
  head = head.substr(0, head.find("</table>"));
  EXPECT_NE(head.find("94.72 %"), std::string::npos);   // float top-1
  EXPECT_NE(head.find("94.01 %"), std::string::npos);   // mixed top-1
  EXPECT_NE(head.find("-0.71 pp"), std::string::npos);  // difference
  EXPECT_NE(head.find("1.11 MB"), std::string::npos);   // float size
  EXPECT_NE(head.find("3.29 KB"), std::string::npos);   // mixed size
  EXPECT_NE(head.find("41.8 G"), std::string::npos);    // float BitOps
  EXPECT_NE(head.find("336×"), std::string::npos);      // 1107000 / 3290
  EXPECT_NE(head.find("uniform w4a8 (same size)"), std::string::npos)
      << "the largest uniform model not above the mixed size is w4 (3000 B <= 3290 B)";
  EXPECT_EQ(head.find("w8a8"), std::string::npos);
  EXPECT_EQ(count(head, "<tr class=\"chosen\">"), 1u);
  // Stages and provenance.
  EXPECT_NE(html.find("12 ms"), std::string::npos);
  EXPECT_NE(html.find("1.25 s"), std::string::npos);
  EXPECT_NE(html.find("e6964fba61e2d4f2"), std::string::npos);
  EXPECT_NE(html.find("fashion-mnist test"), std::string::npos);
  EXPECT_NE(html.find("<strong>Passed</strong>"), std::string::npos);
  EXPECT_EQ(html.find(">nan"), std::string::npos);
  EXPECT_EQ(html.find(">inf"), std::string::npos);
}

TEST(ReportSvg, PlotsAreWellFormed) {
  std::vector<ReportPlot> all = plots(test::report_fixture());
  ASSERT_EQ(all.size(), 4u);
  for (const auto& p : all) {
    EXPECT_EQ(p.svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u) << p.file;
    EXPECT_TRUE(balanced(p.svg)) << p.file;
    EXPECT_EQ(p.svg.find("nan"), std::string::npos) << p.file;
    EXPECT_EQ(p.svg.find("inf"), std::string::npos) << p.file;
    EXPECT_GE(count(p.svg, "<text"), 8u) << p.file << ": ticks, labels and legend";
  }
}

TEST(ReportSvg, ChosenUniformAndFrontierPointsArePlotted) {
  std::vector<ReportPlot> all = plots(test::report_fixture());
  for (const char* file : {"report_frontier_size.svg", "report_frontier_bitops.svg"}) {
    const std::string& svg = plot(all, file).svg;
    EXPECT_NE(svg.find(">mixed (chosen)</text>"), std::string::npos) << file;
    EXPECT_NE(svg.find(">uniform</text>"), std::string::npos) << file;
    EXPECT_NE(svg.find(">frontier (measured)</text>"), std::string::npos) << file;
    EXPECT_NE(svg.find(">float 94.72 %</text>"), std::string::npos) << file;
    // One marker with hover text per point: 3 uniform, 3 frontier, the chosen one.
    EXPECT_EQ(count(svg, "<title>w2a8: 41.20 %"), 1u) << file;
    EXPECT_EQ(count(svg, "<title>w8a8: 94.65 %"), 1u) << file;
    EXPECT_EQ(count(svg, "<title>frontier #"), 3u) << file;
    EXPECT_EQ(count(svg, "<title>mixed: 94.01 %"), 1u) << file;
    for (const char* label : {">w2</text>", ">w4</text>", ">w8</text>"}) {
      EXPECT_NE(svg.find(label), std::string::npos) << file << " " << label;
    }
  }
  EXPECT_NE(plot(all, "report_frontier_size.svg").svg.find("KB"), std::string::npos);
  const std::string& predicted = plot(all, "report_frontier_predicted.svg").svg;
  EXPECT_NE(predicted.find(">chosen</text>"), std::string::npos);
  EXPECT_NE(predicted.find(">frontier (predicted)</text>"), std::string::npos);
  EXPECT_NE(predicted.find(">w4</text>"), std::string::npos) << "uniform at its measured size";
  const std::string& sens = plot(all, "report_sensitivity.svg").svg;
  for (const char* name : {">conv1</text>", ">head.conv</text>", ">w2</text>", ">w8</text>",
                           ">chosen (plan)</text>"}) {
    EXPECT_NE(sens.find(name), std::string::npos) << name;
  }
}

TEST(ReportSvg, NonPositiveOmegaIsClampedAndSaid) {
  std::string html = render_html(test::report_fixture());
  EXPECT_NE(html.find("1 value(s) ≤ 0"), std::string::npos);
  test::RunArtifacts a = test::report_fixture();
  a.sensitivity["layers"][3]["weight"][2]["omega"] = 1e-7;
  EXPECT_EQ(render_html(a).find("value(s) ≤ 0"), std::string::npos);
}

TEST(ReportMarkdown, TablesAndLinkedPlots) {
  test::RunArtifacts a = test::report_fixture();
  std::string md = render_markdown(a.run, a.plan, a.sensitivity, a.frontier, "plots/");
  EXPECT_EQ(md.rfind("# mpq run: tiny.onnx\n", 0), 0u);
  for (const char* h : {"## Summary", "## Budgets", "## Per-layer plan", "## Pareto frontier",
                        "## Per-layer sensitivity", "## Verification against ONNX Runtime",
                        "## Stages", "## Provenance"}) {
    EXPECT_NE(md.find(std::string("\n") + h + "\n"), std::string::npos) << h;
  }
  EXPECT_NE(md.find("| model | top-1 | Δ vs float | size |"), std::string::npos);
  EXPECT_NE(md.find("|---|---:|---:|---:|"), std::string::npos);
  for (const auto& l : a.plan["layers"]) {
    EXPECT_TRUE(std::regex_search(
        md, std::regex("\n\\| [0-9]+ \\| " +
                       std::regex_replace(l["name"].get<std::string>(), std::regex("\\."), "\\.") +
                       " \\| ")))
        << l["name"];
  }
  for (const auto& p : plots(a)) {
    EXPECT_NE(md.find("](plots/" + p.file + ")"), std::string::npos) << p.file;
  }
  EXPECT_EQ(md.find("<svg"), std::string::npos);
  // Every table line has the header's number of cells.
  std::istringstream lines(md);
  std::string line;
  size_t cells = 0;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '|') {
      cells = 0;
      continue;
    }
    size_t n = count(line, "|") - count(line, "\\|");
    if (cells == 0) cells = n;
    EXPECT_EQ(n, cells) << line;
  }
}

TEST(ReportUnlabelled, AgreementIsTheQuality) {
  test::RunArtifacts a = test::report_fixture(false);
  std::string html = render_html(a);
  std::string head = html.substr(html.find("<table id=\"headline\">"));
  head = head.substr(0, head.find("</table>"));
  EXPECT_NE(head.find("<th>agreement</th>"), std::string::npos);
  EXPECT_NE(head.find("<th>KL</th>"), std::string::npos);
  EXPECT_NE(head.find("<th>SQNR</th>"), std::string::npos);
  EXPECT_NE(head.find("98.10 %"), std::string::npos);
  EXPECT_NE(head.find("18.8 dB"), std::string::npos);
  EXPECT_EQ(html.find("top-1 accuracy"), std::string::npos);
  EXPECT_NE(html.find("the data has no labels"), std::string::npos);
  const std::string svg =
      plot(plots(a), "report_frontier_size.svg").svg;  // a copy: plots() is a temporary
  EXPECT_NE(svg.find("top-1 agreement with float (%)"), std::string::npos);
  EXPECT_EQ(svg.find(">float "), std::string::npos) << "no float reference line";

  // Without agreement either, the SQNR.
  for (auto* m : {&a.run["mixed"]}) m->erase("agreement");
  for (auto& m : a.run["uniform"]) m.erase("agreement");
  for (auto& m : a.run["frontier_eval"]) m.erase("agreement");
  const std::string sqnr = plot(plots(a), "report_frontier_size.svg").svg;
  EXPECT_NE(sqnr.find("output SQNR vs float (dB)"), std::string::npos);
  EXPECT_NE(sqnr.find("<title>mixed: 18.8 dB"), std::string::npos);
}

TEST(ReportOptional, WithoutFrontierSensitivityOrVerification) {
  test::RunArtifacts a = test::report_fixture();
  a.run.erase("verify");
  a.run["verify_skipped"] = "onnxruntime-node is not installed";
  a.run.erase("frontier_eval");
  a.run.erase("stages");
  std::string html = mpq::render_html(a.run, a.plan, json(), json());
  EXPECT_TRUE(balanced(html));
  EXPECT_NE(html.find("Skipped: onnxruntime-node is not installed."), std::string::npos);
  EXPECT_NE(html.find("This run has no sensitivity file."), std::string::npos);
  EXPECT_EQ(render_plots(a.run, a.plan, json(), json()).size(), 2u);
}

TEST(ReportErrors, MissingOrBadFieldNamesFileAndField) {
  auto fails = [](const std::function<void(test::RunArtifacts*)>& edit) {
    test::RunArtifacts a = test::report_fixture();
    edit(&a);
    return error_of([&] { render_html(a); });
  };
  EXPECT_EQ(fails([](auto* a) { a->run.erase("mixed"); }), "run.json: field 'mixed' is missing");
  EXPECT_EQ(fails([](auto* a) { a->run["mixed"].erase("top1"); }),
            "run.json: field 'mixed.top1' is missing");
  EXPECT_EQ(fails([](auto* a) { a->run["model"].erase("path"); }),
            "run.json: field 'model.path' is missing");
  EXPECT_EQ(fails([](auto* a) { a->run["format"] = "mpq-plan"; }),
            "run.json: field 'format': expected \"mpq-run\", found \"mpq-plan\"");
  EXPECT_EQ(fails([](auto* a) { a->run["budgets"][1].erase("binding"); }),
            "run.json: field 'budgets[1].binding' is missing");
  EXPECT_EQ(fails([](auto* a) { a->run["uniform"][0]["size_bytes"] = "big"; }),
            "run.json: field 'uniform[0].size_bytes': expected a number, found string");
  EXPECT_EQ(fails([](auto* a) { a->plan["layers"][1].erase("weight_bits"); }),
            "plan.json: field 'layers[1].weight_bits' is missing");
  EXPECT_EQ(fails([](auto* a) { a->sensitivity["layers"][0]["weight"][1]["omega"] = "x"; }),
            "sensitivity.json: field 'layers[0].weight[1].omega': expected a number, found string");
  EXPECT_EQ(fails([](auto* a) { a->frontier["points"][2].erase("cost"); }),
            "frontier.json: field 'points[2].cost' is missing");
  EXPECT_EQ(fails([](auto* a) { a->plan = json::array(); }),
            "plan.json: expected a JSON object, found array");
  // Unlabelled without any quality measure.
  test::RunArtifacts u = test::report_fixture(false);
  u.run["mixed"].erase("agreement");
  u.run["mixed"].erase("sqnr_db");
  std::string msg = error_of([&] { render_html(u); });
  EXPECT_NE(msg.find("run.json: field 'mixed.agreement' is missing"), std::string::npos) << msg;
}

TEST(ReportFiles, WritesHtmlMarkdownAndPlotsFromARunFolder) {
  std::string dir = test::temp_dir();
  test::write_report_fixture(dir, test::report_fixture());
  ReportFiles f = write_report(dir);
  EXPECT_EQ(f.html, join_path(dir, "report.html"));
  EXPECT_EQ(f.markdown, join_path(dir, "report.md"));
  ASSERT_EQ(f.svgs.size(), 4u);
  std::string md = read_file(f.markdown), html = read_file(f.html);
  for (const auto& svg : f.svgs) {
    std::string name = std::filesystem::path(svg).filename().string();
    EXPECT_NE(md.find("](" + name + ")"), std::string::npos) << name;
    EXPECT_NE(html.find(read_file(svg)), std::string::npos) << name << " inline";
  }
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
  }
}

TEST(ReportFiles, ErrorsNameThePathAndWriteNothing) {
  std::string dir = test::temp_dir();
  test::RunArtifacts a = test::report_fixture();
  a.run["files"].erase("plan");
  test::write_report_fixture(dir, a);
  EXPECT_EQ(error_of([&] { write_report(dir); }),
            join_path(dir, "run.json") + ": field 'files.plan' is missing");

  a = test::report_fixture();
  a.sensitivity["layers"][2].erase("name");
  test::write_report_fixture(dir, a);
  EXPECT_EQ(error_of([&] { write_report(dir); }),
            join_path(dir, "sensitivity.json") + ": field 'layers[2].name' is missing");

  a = test::report_fixture();
  test::write_report_fixture(dir, a);
  std::filesystem::remove(join_path(dir, "frontier.json"));
  std::string msg = error_of([&] { write_report(dir); });
  EXPECT_NE(msg.find(join_path(dir, "frontier.json")), std::string::npos) << msg;
  EXPECT_FALSE(file_exists(join_path(dir, "report.html")));
  EXPECT_FALSE(file_exists(join_path(dir, "report.md")));
  EXPECT_FALSE(file_exists(join_path(dir, "report_sensitivity.svg")));

  msg = error_of([&] { write_report(join_path(dir, "nothing")); });
  EXPECT_NE(msg.find("not a folder"), std::string::npos) << msg;
}

TEST(ReportFormat, TicksAndNumbers) {
  using namespace internal;
  auto near = [](const std::vector<double>& got, const std::vector<double>& want) {
    EXPECT_EQ(got.size(), want.size());
    for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
      EXPECT_NEAR(got[i], want[i], 1e-12 * std::max(1.0, std::fabs(want[i]))) << i;
    }
  };
  near(linear_ticks(0, 1, 5), {0, 0.2, 0.4, 0.6, 0.8, 1});
  near(linear_ticks(83, 277, 3), {0, 100, 200, 300});
  near(log_ticks(1e-6, 0.5), {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1});
  std::vector<double> short_range = log_ticks(6.5e8, 1.2e10);
  EXPECT_NE(std::find(short_range.begin(), short_range.end(), 2e9), short_range.end());
  EXPECT_EQ(format_bytes(175482), "175 KB");
  EXPECT_EQ(format_bytes(999999), "1 MB");
  EXPECT_EQ(format_bytes(272), "272 B");
  EXPECT_EQ(format_bytes(1107000), "1.11 MB");
  EXPECT_EQ(format_si(4.18e10), "41.8 G");
  EXPECT_EQ(format_si(512), "512");
  EXPECT_EQ(format_percent(0.9472), "94.72 %");
  EXPECT_EQ(format_sig(3.6986632751799815e-06), "3.7e-06");
  EXPECT_EQ(format_sig(0.00046), "0.00046");
  EXPECT_EQ(format_sig(-0.71), "-0.71");
  EXPECT_EQ(format_sig(32), "32");
  EXPECT_EQ(format_seconds(0.012), "12 ms");
  EXPECT_EQ(format_seconds(75), "75 s");
  EXPECT_EQ(format_seconds(1800), "30 min");
  EXPECT_EQ(xml_escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
}

TEST(ReportFormat, EmptyAndSinglePointPlotsStayFinite) {
  internal::Plot p;
  p.x.log = true;
  p.y.log = true;
  EXPECT_TRUE(balanced(internal::svg_plot(p)));
  internal::Series s;
  s.name = "one";
  s.x = {5};
  s.y = {0.5};
  p.series.push_back(s);
  std::string svg = internal::svg_plot(p);
  EXPECT_TRUE(balanced(svg));
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
  p.x.log = p.y.log = false;
  svg = internal::svg_plot(p);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

}  // namespace
}  // namespace mpq
