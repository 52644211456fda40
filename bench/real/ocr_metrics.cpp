// DB post-processing and detection scores (see ocr_metrics.h for the formulas).
#include "real/ocr_metrics.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "core/error.h"

namespace mpq::ocr {
namespace {

constexpr double kPi = 3.14159265358979323846;

double cross(const Point& o, const Point& a, const Point& b) {
  return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
}

double dot(const Point& a, const Point& b) { return a.x * b.x + a.y * b.y; }

Point sub(const Point& a, const Point& b) { return {a.x - b.x, a.y - b.y}; }

double signed_area(const std::vector<Point>& p) {
  double s = 0;
  for (size_t i = 0, n = p.size(); i < n; ++i) {
    const Point& a = p[i];
    const Point& b = p[(i + 1) % n];
    s += a.x * b.y - b.x * a.y;
  }
  return s / 2;
}

bool is_convex_ccw(const std::vector<Point>& p) {
  for (size_t i = 0, n = p.size(); i < n; ++i)
    if (cross(p[i], p[(i + 1) % n], p[(i + 2) % n]) < 0) return false;
  return true;
}

// Sutherland-Hodgman: `subject` clipped by the convex, counter-clockwise `clip`.
std::vector<Point> clip_convex(std::vector<Point> subject, const std::vector<Point>& clip) {
  for (size_t i = 0, n = clip.size(); i < n && !subject.empty(); ++i) {
    const Point& c0 = clip[i];
    const Point& c1 = clip[(i + 1) % n];
    std::vector<Point> out;
    for (size_t k = 0, m = subject.size(); k < m; ++k) {
      const Point& p = subject[k];
      const Point& q = subject[(k + 1) % m];
      double dp = cross(c0, c1, p), dq = cross(c0, c1, q);
      if (dp >= 0) out.push_back(p);
      if ((dp >= 0) != (dq >= 0)) {
        double t = dp / (dp - dq);
        out.push_back({p.x + t * (q.x - p.x), p.y + t * (q.y - p.y)});
      }
    }
    subject = std::move(out);
  }
  return subject;
}

// The polygon of a quad, counter-clockwise (y-up sense).
std::vector<Point> ccw(const Quad& q) {
  std::vector<Point> p(q.begin(), q.end());
  if (signed_area(p) < 0) std::reverse(p.begin(), p.end());
  return p;
}

// Inside the convex counter-clockwise polygon, or less than half a pixel outside an edge (the
// edge pixels cv2.fillPoly sets).
bool covers(const std::vector<Point>& poly, const Point& p) {
  for (size_t i = 0, n = poly.size(); i < n; ++i) {
    Point e = sub(poly[(i + 1) % n], poly[i]);
    double len = std::hypot(e.x, e.y);
    if (len == 0) continue;
    if (cross(poly[i], poly[(i + 1) % n], p) / len <= -0.5) return false;
  }
  return true;
}

// Mean of prob over the pixels of the quad's bounding rectangle that it covers (PaddleOCR's
// box_score_fast).
float box_score(const float* prob, int height, int width, const Quad& quad) {
  double x0 = quad[0].x, x1 = x0, y0 = quad[0].y, y1 = y0;
  for (const Point& p : quad) {
    x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
    y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
  }
  int xa = std::clamp(static_cast<int>(std::floor(x0)), 0, width - 1);
  int xb = std::clamp(static_cast<int>(std::ceil(x1)), 0, width - 1);
  int ya = std::clamp(static_cast<int>(std::floor(y0)), 0, height - 1);
  int yb = std::clamp(static_cast<int>(std::ceil(y1)), 0, height - 1);
  std::vector<Point> poly = ccw(quad);
  double sum = 0;
  int64_t count = 0;
  for (int y = ya; y <= yb; ++y)
    for (int x = xa; x <= xb; ++x)
      if (covers(poly, {static_cast<double>(x), static_cast<double>(y)})) {
        sum += prob[static_cast<int64_t>(y) * width + x];
        ++count;
      }
  return count ? static_cast<float>(sum / count) : 0.f;
}

}  // namespace

Quad RotatedRect::corners() const {
  double a = angle * kPi / 180;
  Point u{std::cos(a), std::sin(a)}, n{-u.y, u.x};
  double hw = width / 2, hh = height / 2;
  std::array<Point, 4> p;
  const double sx[4] = {-1, 1, 1, -1}, sy[4] = {-1, -1, 1, 1};
  for (int i = 0; i < 4; ++i)
    p[i] = {center.x + sx[i] * hw * u.x + sy[i] * hh * n.x,
            center.y + sx[i] * hw * u.y + sy[i] * hh * n.y};
  // get_mini_boxes: sort by x; of the two leftmost the upper is top-left, the lower bottom-left;
  // of the two rightmost the upper is top-right.
  std::stable_sort(p.begin(), p.end(), [](const Point& l, const Point& r) { return l.x < r.x; });
  int tl = p[1].y > p[0].y ? 0 : 1, bl = 1 - tl;
  int tr = p[3].y > p[2].y ? 2 : 3, br = 5 - tr;
  return {p[tl], p[tr], p[br], p[bl]};
}

std::vector<Point> convex_hull(std::vector<Point> points) {
  std::sort(points.begin(), points.end(),
            [](const Point& a, const Point& b) { return std::tie(a.x, a.y) < std::tie(b.x, b.y); });
  points.erase(std::unique(points.begin(), points.end(),
                           [](const Point& a, const Point& b) { return a.x == b.x && a.y == b.y; }),
               points.end());
  if (points.size() < 3) return points;
  std::vector<Point> hull(2 * points.size());
  size_t k = 0;
  for (const Point& p : points) {  // lower chain
    while (k >= 2 && cross(hull[k - 2], hull[k - 1], p) <= 0) --k;
    hull[k++] = p;
  }
  for (size_t i = points.size() - 1, lower = k + 1; i-- > 0;) {  // upper chain
    while (k >= lower && cross(hull[k - 2], hull[k - 1], points[i]) <= 0) --k;
    hull[k++] = points[i];
  }
  hull.resize(k - 1);
  return hull;
}

RotatedRect min_area_rect(const std::vector<Point>& points) {
  MPQ_CHECK(!points.empty(), "min_area_rect: expected at least one point");
  std::vector<Point> h = convex_hull(points);
  RotatedRect best;
  if (h.size() < 3) {  // a point or a segment
    Point a = h.front(), b = h.back();
    best.center = {(a.x + b.x) / 2, (a.y + b.y) / 2};
    best.width = std::hypot(b.x - a.x, b.y - a.y);
    double deg = std::atan2(b.y - a.y, b.x - a.x) * 180 / kPi;
    best.angle = best.width > 0 ? std::fmod(deg + 360, 180.0) : 0;
    return best;
  }
  const size_t n = h.size();
  auto at = [&](size_t i) -> const Point& { return h[i % n]; };
  double best_area = -1;
  size_t j = 0, k = 0, l = 0;  // farthest along u, along the inward normal, against u
  for (size_t i = 0; i < n; ++i) {
    Point e = sub(at(i + 1), at(i));
    double len = std::hypot(e.x, e.y);
    Point u{e.x / len, e.y / len}, nrm{-u.y, u.x};
    auto pu = [&](size_t m) { return dot(sub(at(m), at(i)), u); };
    auto pn = [&](size_t m) { return dot(sub(at(m), at(i)), nrm); };
    if (i == 0) {
      for (size_t m = 1; m < n; ++m) {
        if (pu(m) > pu(j)) j = m;
        if (pn(m) > pn(k)) k = m;
        if (pu(m) < pu(l)) l = m;
      }
    } else {  // the extremes move counter-clockwise with the edge: each pointer goes round once
      constexpr double kEps = 1e-9;
      for (size_t s = 0; s < n && pu(j + 1) > pu(j) + kEps; ++s) ++j;
      for (size_t s = 0; s < n && pn(k + 1) > pn(k) + kEps; ++s) ++k;
      for (size_t s = 0; s < n && pu(l + 1) < pu(l) - kEps; ++s) ++l;
    }
    double a0 = pu(l), a1 = pu(j), b1 = pn(k);
    double area = (a1 - a0) * b1;
    if (best_area < 0 || area < best_area) {
      best_area = area;
      double c = (a0 + a1) / 2;
      best.center = {at(i).x + c * u.x + b1 / 2 * nrm.x, at(i).y + c * u.y + b1 / 2 * nrm.y};
      best.width = a1 - a0;
      best.height = b1;
      double deg = std::atan2(u.y, u.x) * 180 / kPi;
      if (best.width < best.height) {
        std::swap(best.width, best.height);
        deg += 90;
      }
      best.angle = std::fmod(std::fmod(deg, 180.0) + 180.0, 180.0);
    }
  }
  return best;
}

std::vector<DetBox> det_boxes(const float* prob, int height, int width, const DbOptions& options) {
  MPQ_CHECK(height > 0 && width > 0, "det_boxes: expected a non-empty map, found ", height, " x ",
            width);
  const int64_t size = static_cast<int64_t>(height) * width;
  std::vector<int32_t> label(size, -1);
  std::vector<int64_t> stack;
  std::vector<DetBox> boxes;
  int components = 0;
  for (int64_t start = 0; start < size && components < options.max_candidates; ++start) {
    if (label[start] >= 0 || !(prob[start] > options.thresh)) continue;
    // Flood fill one 8-connected component; keep each row's leftmost and rightmost pixel (the
    // hull only needs those).
    std::vector<int> row_min(height, width), row_max(height, -1);
    label[start] = components;
    stack.assign(1, start);
    while (!stack.empty()) {
      int64_t p = stack.back();
      stack.pop_back();
      int y = static_cast<int>(p / width), x = static_cast<int>(p % width);
      row_min[y] = std::min(row_min[y], x);
      row_max[y] = std::max(row_max[y], x);
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          int yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= height || xx < 0 || xx >= width) continue;
          int64_t q = static_cast<int64_t>(yy) * width + xx;
          if (label[q] < 0 && prob[q] > options.thresh) {
            label[q] = components;
            stack.push_back(q);
          }
        }
    }
    ++components;
    std::vector<Point> points;
    for (int y = 0; y < height; ++y)
      if (row_max[y] >= 0) {
        points.push_back({static_cast<double>(row_min[y]), static_cast<double>(y)});
        points.push_back({static_cast<double>(row_max[y]), static_cast<double>(y)});
      }
    RotatedRect r = min_area_rect(points);
    if (r.height < options.min_size) continue;
    float score = box_score(prob, height, width, r.corners());
    if (score < options.box_thresh) continue;
    double d = r.area() * options.unclip_ratio / (2 * (r.width + r.height));
    r.width += 2 * d;
    r.height += 2 * d;
    if (r.height < options.min_size + 2) continue;
    DetBox box{r.corners(), score};
    for (Point& p : box.quad) {
      p.x = std::clamp(std::nearbyint(p.x), 0.0, static_cast<double>(width));
      p.y = std::clamp(std::nearbyint(p.y), 0.0, static_cast<double>(height));
    }
    boxes.push_back(box);
  }
  return boxes;
}

double polygon_area(const std::vector<Point>& polygon) { return std::abs(signed_area(polygon)); }

double quad_iou(const Quad& a, const Quad& b) {
  std::vector<Point> pa = ccw(a), pb = ccw(b);
  double area_a = polygon_area(pa), area_b = polygon_area(pb);
  std::vector<Point> clipper = pb, subject = pa;
  if (!is_convex_ccw(clipper)) {
    if (is_convex_ccw(pa)) {
      std::swap(clipper, subject);
    } else {
      clipper = convex_hull(pb);
    }
  }
  double inter = clipper.size() < 3 ? 0 : polygon_area(clip_convex(subject, clipper));
  double uni = area_a + area_b - inter;
  return uni > 0 ? inter / uni : 0;
}

Quad axis_box(double x0, double y0, double x1, double y1) {
  return {Point{x0, y0}, Point{x1, y0}, Point{x1, y1}, Point{x0, y1}};
}

DetScore det_score(const std::vector<std::vector<Quad>>& pred,
                   const std::vector<std::vector<Quad>>& gt, double iou) {
  MPQ_CHECK(pred.size() == gt.size(),
            "det_score: expected as many predicted pages as ground-truth ", "pages, found ",
            pred.size(), " and ", gt.size());
  DetScore s;
  for (size_t page = 0; page < pred.size(); ++page) {
    const auto& p = pred[page];
    const auto& g = gt[page];
    s.pred += static_cast<int64_t>(p.size());
    s.gt += static_cast<int64_t>(g.size());
    std::vector<std::tuple<double, size_t, size_t>> pairs;
    for (size_t i = 0; i < p.size(); ++i)
      for (size_t j = 0; j < g.size(); ++j) {
        double v = quad_iou(p[i], g[j]);
        if (v >= iou) pairs.emplace_back(-v, i, j);
      }
    std::sort(pairs.begin(), pairs.end());
    std::vector<bool> used_p(p.size()), used_g(g.size());
    for (const auto& [neg, i, j] : pairs) {
      if (used_p[i] || used_g[j]) continue;
      used_p[i] = used_g[j] = true;
      ++s.matched;
    }
  }
  s.precision = s.pred ? static_cast<double>(s.matched) / s.pred : (s.gt ? 0 : 1);
  s.recall = s.gt ? static_cast<double>(s.matched) / s.gt : (s.pred ? 0 : 1);
  double sum = s.precision + s.recall;
  s.hmean = sum > 0 ? 2 * s.precision * s.recall / sum : 0;
  return s;
}

double pixel_iou(const float* a, const float* b, int64_t n, float thresh) {
  int64_t inter = 0, uni = 0;
  for (int64_t i = 0; i < n; ++i) {
    bool x = a[i] > thresh, y = b[i] > thresh;
    inter += x && y;
    uni += x || y;
  }
  return uni ? static_cast<double>(inter) / uni : 1.0;
}

}  // namespace mpq::ocr
