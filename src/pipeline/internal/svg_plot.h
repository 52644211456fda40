// Small hand-written SVG plots for the run report (pipeline/report.h): line and marker series on
// linear, logarithmic or categorical axes, with ticks, tick labels, axis labels, a legend and
// horizontal reference lines. Plain SVG 1.1 with no scripts, web fonts or images, so a plot shows
// the same inline in report.html, as a standalone file next to report.md, and offline.
// Also the number formats the report's tables share with the plots' tick labels.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace mpq::internal {

enum class Marker { kNone, kCircle, kSquare, kDiamond, kTriangle };

struct Series {
  std::string name;  // legend entry; "" = not in the legend
  std::vector<double> x, y;
  std::string color = "#1f77b4";
  bool line = true;  // connect the points in the given order
  bool dashed = false;
  Marker marker = Marker::kCircle;
  double marker_size = 3.5;         // radius in px
  bool hollow = false;              // marker outline only
  std::vector<std::string> labels;  // optional text beside each point
  std::vector<std::string> tips;    // optional hover text per point (<title>)
};

// A horizontal dashed line across the whole plot (a reference value), named in the legend.
struct RefLine {
  double y = 0;
  std::string label;
  std::string color = "#777777";
};

struct Axis {
  std::string label;
  bool log = false;
  // Non-empty: a categorical axis; x values are 0 .. n-1 and the ticks are these names.
  std::vector<std::string> categories;
  // Tick text; default: 3 significant digits.
  std::function<std::string(double)> format;
};

struct Plot {
  std::string title;
  Axis x, y;
  std::vector<Series> series;
  std::vector<RefLine> ref_lines;
  double width = 640, height = 360;
};

// The plot as one <svg> element. Points that are not finite, or not positive on a log axis, are
// left out (callers clamp and say so where that matters). Example:
//   Plot p; p.x.label = "size"; p.series.push_back({"uniform", {1, 2}, {0.5, 0.9}});
//   std::string svg = svg_plot(p);
std::string svg_plot(const Plot& plot);

// Ticks at 1, 2 or 5 times a power of ten, about `count` of them, covering [lo, hi].
std::vector<double> linear_ticks(double lo, double hi, int count);
// Powers of ten covering [lo, hi] (lo > 0); with 2 and 5 between them when the range is short.
std::vector<double> log_ticks(double lo, double hi);

std::string xml_escape(const std::string& text);

// Number formats: format_sig(0.000123, 3) = "0.000123", format_sig(41813184, 3) = "4.18e+07";
// format_bytes(175482) = "175 KB" (powers of 1000, as budgets are written); format_si(4.18e10) =
// "41.8 G"; format_percent(0.9472) = "94.72 %"; format_seconds(0.0123) = "12.3 ms".
std::string format_sig(double value, int digits = 3);
std::string format_bytes(double bytes);
std::string format_si(double value);
std::string format_percent(double fraction, int decimals = 2);
std::string format_seconds(double seconds);

}  // namespace mpq::internal
