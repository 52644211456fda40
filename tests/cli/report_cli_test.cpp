// mpq report from the command line: a run folder built in code is rendered, the paths are
// printed, and report.html is drawn by headless Chromium to a PNG that must show the plots (not a
// blank page). Chromium is a test dependency (scripts/setup.sh installs it): without it this
// test fails rather than skips. Bad folders end in a one-line error and write nothing.
#include <gtest/gtest.h>

// Static, so that the implementation in the data library cannot clash with this one.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

#include <cstdlib>
#include <set>

#include "cli/cli_util.h"
#include "core/fs.h"
#include "pipeline/report_fixture.h"
#include "support/test_util.h"

namespace mpq {
namespace {

using test::expect_one_line_error;
using test::mpq;

std::string chromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    std::string path = find_program(name);
    if (!path.empty()) return path;
  }
  return "";
}

struct Rgb {
  int r, g, b;
};

// Pixels within `tolerance` (per channel) of `c`.
size_t pixels_near(const unsigned char* px, size_t n, Rgb c, int tolerance) {
  size_t count = 0;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char* p = px + 3 * i;
    if (std::abs(p[0] - c.r) <= tolerance && std::abs(p[1] - c.g) <= tolerance &&
        std::abs(p[2] - c.b) <= tolerance) {
      ++count;
    }
  }
  return count;
}

TEST(CliReport, RendersARunFolderThatChromiumDraws) {
  std::string dir = test::temp_dir();
  test::write_report_fixture(dir, test::report_fixture());
  ProcessResult r = mpq({"report", dir});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* name :
       {"report.html", "report.md", "report_frontier_size.svg", "report_frontier_bitops.svg",
        "report_frontier_predicted.svg", "report_sensitivity.svg"}) {
    EXPECT_NE(r.output.find("wrote " + join_path(dir, name) + "\n"), std::string::npos)
        << name << " in:\n"
        << r.output;
    EXPECT_TRUE(file_exists(join_path(dir, name))) << name;
  }

  std::string browser = chromium();
  ASSERT_FALSE(browser.empty())
      << "chromium is not installed: run scripts/setup.sh (it installs the Debian package "
         "chromium, which this test needs to draw report.html)";
  std::string png = join_path(dir, "report.png");
  std::vector<std::string> argv = {browser,
                                   "--headless",
                                   "--no-sandbox",  // root in containers
                                   "--disable-gpu",
                                   "--hide-scrollbars",
                                   "--no-first-run",
                                   "--user-data-dir=" + join_path(dir, "chromium-profile"),
                                   "--window-size=1200,2400",
                                   "--screenshot=" + png,
                                   "file://" + join_path(dir, "report.html")};
  std::string timeout = find_program("timeout");
  if (!timeout.empty()) argv.insert(argv.begin(), {timeout, "120"});
  ProcessResult shot = run_process(argv);  // Chromium's stderr noise (D-Bus, GPU) is ignored
  ASSERT_EQ(shot.exit_code, 0) << shot.output;
  ASSERT_TRUE(file_exists(png)) << shot.output;

  int w = 0, h = 0, channels = 0;
  unsigned char* px = stbi_load(png.c_str(), &w, &h, &channels, 3);
  ASSERT_NE(px, nullptr) << png << ": " << stbi_failure_reason();
  EXPECT_EQ(w, 1200);
  EXPECT_EQ(h, 2400);
  const size_t n = size_t(w) * size_t(h);
  // Not blank: more than 1 % of the pixels differ from the page background (the top-left one).
  Rgb background{px[0], px[1], px[2]};
  size_t ink = n - pixels_near(px, n, background, 8);
  EXPECT_GT(double(ink), 0.01 * double(n)) << "report.png looks blank: " << ink << " pixels";
  // The plots' colours are drawn: the frontier (blue), the uniform points (orange) and the chosen
  // point (red); and the page has more than a few colours.
  EXPECT_GT(pixels_near(px, n, {0x1f, 0x77, 0xb4}, 30), 50u) << "frontier series";
  EXPECT_GT(pixels_near(px, n, {0xff, 0x7f, 0x0e}, 30), 50u) << "uniform series";
  EXPECT_GT(pixels_near(px, n, {0xd6, 0x27, 0x28}, 30), 50u) << "chosen point";
  std::set<int> colours;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char* p = px + 3 * i;
    colours.insert((p[0] >> 4) << 8 | (p[1] >> 4) << 4 | (p[2] >> 4));
  }
  EXPECT_GE(colours.size(), 10u);
  stbi_image_free(px);
}

TEST(CliReport, BadFolderIsAOneLineErrorAndWritesNothing) {
  std::string dir = test::temp_dir();
  expect_one_line_error(mpq({"report", join_path(dir, "missing")}),
                        {join_path(dir, "missing"), "not a folder"});
  expect_one_line_error(mpq({"report", dir}), {join_path(dir, "run.json"), "not found"});

  test::RunArtifacts a = test::report_fixture();
  a.run["mixed"].erase("top1");
  test::write_report_fixture(dir, a);
  expect_one_line_error(mpq({"report", dir}), {join_path(dir, "run.json"), "'mixed.top1'"});
  EXPECT_FALSE(file_exists(join_path(dir, "report.html")));
  EXPECT_FALSE(file_exists(join_path(dir, "report.md")));
}

}  // namespace
}  // namespace mpq
