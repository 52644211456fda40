// Hand-written SVG plots (svg_plot.h). Text widths are estimated from the character count, since
// the plot cannot measure fonts; margins leave room for the longest tick label and legend entry.
#include "pipeline/internal/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace mpq::internal {
namespace {

constexpr double kCharWidth = 6.3;  // average advance of an 11 px sans-serif character
constexpr int kMaxCharsPerLabel = 28;

std::string px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string printf_g(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

bool usable(double v, bool log) { return std::isfinite(v) && (!log || v > 0); }

// A value scaled to a number below 1000 with one of `units` (each 1000 times the previous).
std::string scaled(double v, const std::vector<const char*>& units, int digits) {
  size_t u = 0;
  double a = std::fabs(v);
  while (u + 1 < units.size() && std::stod(printf_g(a, digits)) >= 1000) {
    a /= 1000;
    ++u;
  }
  std::string s = printf_g(v < 0 ? -a : a, digits);
  return units[u][0] ? s + " " + units[u] : s;
}

struct Range {
  double lo = 0, hi = 1;
  bool log = false;
  std::vector<double> ticks;
  std::vector<std::string> labels;
};

// The data extent of the x (or y) values of every series, plus the reference lines for y.
bool extent(const Plot& p, bool x_axis, double* lo, double* hi) {
  bool log = x_axis ? p.x.log : p.y.log;
  *lo = INFINITY;
  *hi = -INFINITY;
  for (const auto& s : p.series) {
    size_t n = std::min(s.x.size(), s.y.size());
    for (size_t i = 0; i < n; ++i) {
      if (!usable(s.x[i], p.x.log) || !usable(s.y[i], p.y.log)) continue;
      double v = x_axis ? s.x[i] : s.y[i];
      *lo = std::min(*lo, v);
      *hi = std::max(*hi, v);
    }
  }
  if (!x_axis) {
    for (const auto& r : p.ref_lines) {
      if (!usable(r.y, log)) continue;
      *lo = std::min(*lo, r.y);
      *hi = std::max(*hi, r.y);
    }
  }
  return *lo <= *hi;
}

Range make_range(const Axis& axis, bool have, double lo, double hi, int count) {
  Range r;
  r.log = axis.log && axis.categories.empty();
  if (!axis.categories.empty()) {
    r.lo = -0.5;
    r.hi = double(axis.categories.size()) - 0.5;
    for (size_t i = 0; i < axis.categories.size(); ++i) {
      r.ticks.push_back(double(i));
      std::string name = axis.categories[i];
      if (name.size() > kMaxCharsPerLabel) name = name.substr(0, kMaxCharsPerLabel - 1) + "~";
      r.labels.push_back(name);
    }
    return r;
  }
  if (!have) {
    lo = r.log ? 1 : 0;
    hi = r.log ? 10 : 1;
  }
  if (r.log) {
    double a = std::log10(lo), b = std::log10(hi);
    double pad = std::max(0.04 * (b - a), 0.05);
    lo = std::pow(10, a - pad);
    hi = std::pow(10, b + pad);
    std::vector<double> t = log_ticks(lo, hi);
    if (std::log10(hi) - std::log10(lo) > 2.5) {  // whole decades: frame them exactly
      lo = t.front();
      hi = t.back();
    } else {
      auto outside = [&](double v) { return v < lo || v > hi; };
      t.erase(std::remove_if(t.begin(), t.end(), outside), t.end());
      if (t.size() < 2) {  // less than a factor of two: plain ticks on the log scale
        t = linear_ticks(lo, hi, 3);
        t.erase(std::remove_if(t.begin(), t.end(), outside), t.end());
      }
    }
    r.ticks = t;
  } else {
    if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) {
      double pad = lo == 0 ? 1 : 0.1 * std::fabs(lo);
      lo -= pad;
      hi += pad;
    }
    double pad = 0.06 * (hi - lo);
    lo -= pad;
    hi += pad;
    r.ticks = linear_ticks(lo, hi, count);
    // Frame the data, not the outer ticks, unless that leaves fewer than two ticks inside.
    std::vector<double> inside;
    for (double t : r.ticks) {
      if (t >= lo - 1e-9 * (hi - lo) && t <= hi + 1e-9 * (hi - lo)) inside.push_back(t);
    }
    if (inside.size() >= 2) {
      r.ticks = inside;
    } else {
      lo = r.ticks.front();
      hi = r.ticks.back();
    }
  }
  r.lo = lo;
  r.hi = hi;
  for (double t : r.ticks) {
    if (axis.format) {
      r.labels.push_back(axis.format(t));
    } else if (r.log && std::fabs(std::log10(t) - std::round(std::log10(t))) < 1e-9 &&
               (t < 1e-3 || t >= 1e5)) {
      r.labels.push_back("1e" + std::to_string(int(std::lround(std::log10(t)))));
    } else {
      r.labels.push_back(format_sig(std::fabs(t) < 1e-12 * (r.hi - r.lo) ? 0.0 : t, 3));
    }
  }
  return r;
}

double to_px(const Range& r, double v, double p0, double p1) {
  double a = r.log ? std::log10(r.lo) : r.lo, b = r.log ? std::log10(r.hi) : r.hi;
  double t = r.log ? std::log10(v) : v;
  return p0 + (t - a) / (b - a) * (p1 - p0);
}

std::string marker_svg(const Series& s, double x, double y, const std::string& tip) {
  std::string fill = s.hollow ? "white" : s.color;
  std::string style = " fill=\"" + fill + "\" stroke=\"" + s.color + "\" stroke-width=\"" +
                      (s.hollow ? "1.8" : "1") + "\"";
  double r = s.marker_size;
  std::string body = tip.empty() ? "" : "<title>" + xml_escape(tip) + "</title>";
  auto close = [&](const std::string& tag) {
    return body.empty() ? "/>" : ">" + body + "</" + tag + ">";
  };
  switch (s.marker) {
    case Marker::kNone:
      return "";
    case Marker::kCircle:
      return "<circle cx=\"" + px(x) + "\" cy=\"" + px(y) + "\" r=\"" + px(r) + "\"" + style +
             close("circle");
    case Marker::kSquare:
      return "<rect x=\"" + px(x - r) + "\" y=\"" + px(y - r) + "\" width=\"" + px(2 * r) +
             "\" height=\"" + px(2 * r) + "\"" + style + close("rect");
    case Marker::kDiamond:
      r *= 1.35;
      return "<polygon points=\"" + px(x) + "," + px(y - r) + " " + px(x + r) + "," + px(y) + " " +
             px(x) + "," + px(y + r) + " " + px(x - r) + "," + px(y) + "\"" + style +
             close("polygon");
    case Marker::kTriangle:
      r *= 1.2;
      return "<polygon points=\"" + px(x) + "," + px(y - r) + " " + px(x + r) + "," +
             px(y + 0.8 * r) + " " + px(x - r) + "," + px(y + 0.8 * r) + "\"" + style +
             close("polygon");
  }
  return "";
}

std::string text_svg(double x, double y, const std::string& anchor, const std::string& text,
                     const std::string& extra = "") {
  return "<text x=\"" + px(x) + "\" y=\"" + px(y) + "\" text-anchor=\"" + anchor + "\"" + extra +
         ">" + xml_escape(text) + "</text>\n";
}

}  // namespace

std::vector<double> linear_ticks(double lo, double hi, int count) {
  if (!(hi > lo)) return {lo};
  double raw = (hi - lo) / std::max(1, count);
  double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  for (double k = first; k <= last + 0.5; ++k) ticks.push_back(k * step);
  return ticks;
}

std::vector<double> log_ticks(double lo, double hi) {
  int e0 = int(std::floor(std::log10(lo) + 1e-9)), e1 = int(std::ceil(std::log10(hi) - 1e-9));
  if (e1 <= e0) e1 = e0 + 1;
  std::vector<double> ticks;
  if (std::log10(hi) - std::log10(lo) > 2.5) {
    int step = (e1 - e0 + 7) / 8;  // at most about 8 labelled decades
    e0 -= ((e0 % step) + step) % step;
    for (int e = e0; e < e1 + step; e += step) ticks.push_back(std::pow(10.0, e));
    return ticks;
  }
  for (const auto& mantissas : {std::vector<double>{1, 2, 5}, std::vector<double>{1, 2, 3, 5, 7}}) {
    ticks.clear();
    for (int e = e0; e <= e1; ++e) {
      for (double m : mantissas) ticks.push_back(m * std::pow(10.0, e));
    }
    int inside = int(
        std::count_if(ticks.begin(), ticks.end(), [&](double t) { return t >= lo && t <= hi; }));
    if (inside >= 3) break;
  }
  return ticks;
}

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string format_sig(double value, int digits) {
  if (!std::isfinite(value)) return std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf";
  double a = std::fabs(value);
  if (a != 0 && (a < 1e-4 || a >= std::pow(10.0, digits + 3))) return printf_g(value, digits);
  // Fixed notation with `digits` significant digits (no exponent for numbers a reader scans).
  int decimals = a == 0 ? 0 : std::max(0, digits - 1 - int(std::floor(std::log10(a))));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  std::string s = buf;
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s == "-0" ? "0" : s;
}

std::string format_bytes(double bytes) {
  if (std::fabs(bytes) < 1000) return printf_g(std::round(bytes), 4) + " B";
  return scaled(bytes, {"B", "KB", "MB", "GB", "TB"}, 3);
}

std::string format_si(double value) { return scaled(value, {"", "K", "M", "G", "T", "P"}, 3); }

std::string format_percent(double fraction, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f %%", decimals, 100 * fraction);
  return buf;
}

std::string format_seconds(double seconds) {
  if (seconds < 1) return format_sig(1000 * seconds, 3) + " ms";
  if (seconds < 600) return format_sig(seconds, 3) + " s";
  return format_sig(seconds / 60, 3) + " min";
}

std::string svg_plot(const Plot& p) {
  double x_lo, x_hi, y_lo, y_hi;
  bool have_x = extent(p, true, &x_lo, &x_hi), have_y = extent(p, false, &y_lo, &y_hi);
  Range ry = make_range(p.y, have_y, y_lo, y_hi, 6);

  // Margins from the text they hold.
  size_t y_chars = 1;
  for (const auto& l : ry.labels) y_chars = std::max(y_chars, l.size());
  size_t legend_chars = 0;
  for (const auto& s : p.series) legend_chars = std::max(legend_chars, s.name.size());
  for (const auto& r : p.ref_lines) legend_chars = std::max(legend_chars, r.label.size());
  double legend_w = legend_chars ? 40 + kCharWidth * double(legend_chars) : 0;
  double left = 26 + kCharWidth * double(y_chars) + 8;
  double right = 14 + legend_w;
  double top = p.title.empty() ? 14 : 34;
  double bottom = 44;
  bool categorical = !p.x.categories.empty();
  if (categorical) {
    size_t c = 1;
    for (const auto& name : p.x.categories) c = std::max(c, std::min(name.size(), size_t(28)));
    bottom = 34 + kCharWidth * double(c) * 0.72;
  }
  double plot_w = p.width - left - right;
  if (categorical) plot_w = std::max(plot_w, 16.0 * double(p.x.categories.size()));
  double plot_h = std::max(80.0, p.height - top - 44);
  double width = left + plot_w + right, height = top + plot_h + bottom;
  double x0 = left, x1 = left + plot_w, y0 = top + plot_h, y1 = top;

  Range rx = make_range(p.x, have_x, x_lo, x_hi, std::max(2, int(plot_w / 75)));
  auto X = [&](double v) { return to_px(rx, v, x0, x1); };
  auto Y = [&](double v) { return to_px(ry, v, y0, y1); };

  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << px(width) << "\" height=\""
    << px(height) << "\" viewBox=\"0 0 " << px(width) << " " << px(height)
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  o << "<rect x=\"0\" y=\"0\" width=\"" << px(width) << "\" height=\"" << px(height)
    << "\" fill=\"white\"/>\n";
  if (!p.title.empty()) {
    o << text_svg(x0, 20, "start", p.title, " font-size=\"13\" font-weight=\"bold\"");
  }

  // Grid, ticks and tick labels.
  o << "<g stroke=\"#e4e4e4\" stroke-width=\"1\">\n";
  for (double t : ry.ticks) {
    o << "<line x1=\"" << px(x0) << "\" y1=\"" << px(Y(t)) << "\" x2=\"" << px(x1) << "\" y2=\""
      << px(Y(t)) << "\"/>\n";
  }
  for (double t : rx.ticks) {
    o << "<line x1=\"" << px(X(t)) << "\" y1=\"" << px(y0) << "\" x2=\"" << px(X(t)) << "\" y2=\""
      << px(y1) << "\"/>\n";
  }
  o << "</g>\n";
  o << "<rect x=\"" << px(x0) << "\" y=\"" << px(y1) << "\" width=\"" << px(plot_w)
    << "\" height=\"" << px(plot_h) << "\" fill=\"none\" stroke=\"#444444\"/>\n";
  o << "<g fill=\"#333333\">\n";
  for (size_t i = 0; i < ry.ticks.size(); ++i) {
    o << text_svg(x0 - 6, Y(ry.ticks[i]) + 4, "end", ry.labels[i]);
  }
  // Thin the x labels when they would overlap.
  size_t x_chars = 1;
  for (const auto& l : rx.labels) x_chars = std::max(x_chars, l.size());
  double slot = rx.ticks.size() > 1 ? std::fabs(X(rx.ticks[1]) - X(rx.ticks[0])) : plot_w;
  size_t every =
      categorical
          ? std::max<size_t>(1, size_t(std::ceil(12.0 / std::max(slot, 1.0))))
          : std::max<size_t>(1, size_t(std::ceil((kCharWidth * double(x_chars) + 10) / slot)));
  for (size_t i = 0; i < rx.ticks.size(); i += every) {
    double x = X(rx.ticks[i]);
    if (categorical) {
      o << text_svg(x + 3, y0 + 10, "end", rx.labels[i],
                    " transform=\"rotate(-45 " + px(x + 3) + " " + px(y0 + 10) + ")\"");
    } else {
      o << text_svg(x, y0 + 16, "middle", rx.labels[i]);
    }
  }
  o << text_svg((x0 + x1) / 2, height - 8, "middle", p.x.label, " font-size=\"12\"");
  double ly = (y0 + y1) / 2;
  o << text_svg(14, ly, "middle", p.y.label,
                " font-size=\"12\" transform=\"rotate(-90 14 " + px(ly) + ")\"");
  o << "</g>\n";

  for (const auto& r : p.ref_lines) {
    if (!usable(r.y, ry.log)) continue;
    o << "<line x1=\"" << px(x0) << "\" y1=\"" << px(Y(r.y)) << "\" x2=\"" << px(x1) << "\" y2=\""
      << px(Y(r.y)) << "\" stroke=\"" << r.color << "\" stroke-width=\"1.2\""
      << " stroke-dasharray=\"6,4\"/>\n";
  }

  for (const auto& s : p.series) {
    size_t n = std::min(s.x.size(), s.y.size());
    std::vector<size_t> keep;
    for (size_t i = 0; i < n; ++i) {
      if (usable(s.x[i], rx.log) && usable(s.y[i], ry.log)) keep.push_back(i);
    }
    if (s.line && keep.size() > 1) {
      o << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"1.6\"";
      if (s.dashed) o << " stroke-dasharray=\"5,3\"";
      o << " points=\"";
      for (size_t k = 0; k < keep.size(); ++k) {
        o << (k ? " " : "") << px(X(s.x[keep[k]])) << "," << px(Y(s.y[keep[k]]));
      }
      o << "\"/>\n";
    }
    for (size_t i : keep) {
      o << marker_svg(s, X(s.x[i]), Y(s.y[i]), i < s.tips.size() ? s.tips[i] : "");
      if (i < s.labels.size() && !s.labels[i].empty()) {
        // Right of the point, or left of it near the right edge.
        bool left_side = X(s.x[i]) + 8 + kCharWidth * double(s.labels[i].size()) > x1;
        o << "\n"
          << text_svg(X(s.x[i]) + (left_side ? -6 : 6), Y(s.y[i]) - 6, left_side ? "end" : "start",
                      s.labels[i], " font-size=\"10\" fill=\"" + s.color + "\"");
      } else if (s.marker != Marker::kNone) {
        o << "\n";
      }
    }
  }

  // Legend, right of the plot.
  double lx = x1 + 14, row = y1 + 8;
  for (const auto& s : p.series) {
    if (s.name.empty()) continue;
    if (s.line) {
      o << "<line x1=\"" << px(lx) << "\" y1=\"" << px(row) << "\" x2=\"" << px(lx + 24)
        << "\" y2=\"" << px(row) << "\" stroke=\"" << s.color << "\" stroke-width=\"1.6\""
        << (s.dashed ? " stroke-dasharray=\"5,3\"" : "") << "/>\n";
    }
    o << marker_svg(s, lx + 12, row, "") << "\n";
    o << text_svg(lx + 32, row + 4, "start", s.name);
    row += 18;
  }
  for (const auto& r : p.ref_lines) {
    if (r.label.empty()) continue;
    o << "<line x1=\"" << px(lx) << "\" y1=\"" << px(row) << "\" x2=\"" << px(lx + 24) << "\" y2=\""
      << px(row) << "\" stroke=\"" << r.color << "\" stroke-width=\"1.2\""
      << " stroke-dasharray=\"6,4\"/>\n";
    o << text_svg(lx + 32, row + 4, "start", r.label);
    row += 18;
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace mpq::internal
