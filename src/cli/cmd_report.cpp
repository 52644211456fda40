// mpq report RUN_DIR: re-renders report.html, report.md and the SVG plots of an mpq run folder
// from its artifacts (run.json, plan.json, sensitivity.json, frontier.json) and prints the paths.
#include "cli/common.h"
#include "pipeline/report.h"

namespace mpq::cli {

void add_report_command(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "report", "write report.html and report.md (with SVG plots) for an mpq run folder");
  cmd->add_option("run_dir", *dir, "the output folder of mpq run (holds run.json)")->required();
  cmd->callback([dir] {
    ReportFiles files = write_report(*dir);
    std::string text = "wrote " + files.html + "\nwrote " + files.markdown + "\n";
    for (const auto& svg : files.svgs) text += "wrote " + svg + "\n";
    emit(text, "");
  });
}

}  // namespace mpq::cli
