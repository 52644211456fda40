// The report of `mpq run` (docs/report.md): reads a run folder's run.json and the artifacts it
// names (plan.json, sensitivity.json, frontier.json) and writes report.html (one self-contained
// file: inline CSS and SVG, no scripts, fonts or network), report.md and the plots as SVG files
// that report.md links. Sections: headline (float / uniform at the same budget / mixed), model
// summary, budgets and which bind, the per-layer plan, the Pareto frontier (measured quality
// against size and against BitOps with the uniform points; predicted loss against the frontier's
// cost), per-layer sensitivity, verification against ONNX Runtime, stage timings, provenance.
// Without labels the quality measure is the top-1 agreement with the float model (or the SQNR).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mpq {

struct ReportFiles {
  std::string html, markdown;     // paths written
  std::vector<std::string> svgs;  // paths written, in report order
};

// Reads RUN_DIR/run.json and the artifacts its "files" names (relative to RUN_DIR); writes
// report.html, report.md and report_*.svg there, each atomically. Throws mpq::Error naming the
// file and the field for missing or bad input, before writing anything.
// Example: ReportFiles f = write_report("out/resnet20");
ReportFiles write_report(const std::string& run_dir);

// One plot of the report: `file` is its name next to report.md ("report_frontier_size.svg").
struct ReportPlot {
  std::string file, title, svg;
};

// The pure renderers (no files). `frontier` or `sensitivity` may be null (that part is left out);
// messages name the artifacts as "run.json", "plan.json", "sensitivity.json", "frontier.json".
std::vector<ReportPlot> render_plots(const nlohmann::json& run, const nlohmann::json& plan,
                                     const nlohmann::json& sensitivity,
                                     const nlohmann::json& frontier);
std::string render_html(const nlohmann::json& run, const nlohmann::json& plan,
                        const nlohmann::json& sensitivity, const nlohmann::json& frontier);
// The plots are linked as svg_prefix + plot.file (svg_prefix: "" when they lie beside report.md).
std::string render_markdown(const nlohmann::json& run, const nlohmann::json& plan,
                            const nlohmann::json& sensitivity, const nlohmann::json& frontier,
                            const std::string& svg_prefix = "");

}  // namespace mpq
