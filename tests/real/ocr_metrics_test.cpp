// bench/real's detector scores on synthetic maps with known answers: DB post-processing of drawn
// rectangles, the min-area rectangle against a scan over angles, IoU, precision/recall/hmean.
#include "real/ocr_metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace mpq::ocr {
namespace {

constexpr double kPi = 3.14159265358979323846;

struct Map {
  int h, w;
  std::vector<float> v;
  Map(int height, int width) : h(height), w(width), v(static_cast<size_t>(height) * width, 0.f) {}
  void fill(int x0, int y0, int x1, int y1, float p) {  // inclusive pixel ranges
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) v[static_cast<size_t>(y) * w + x] = p;
  }
};

double side(const Point& a, const Point& b) { return std::hypot(b.x - a.x, b.y - a.y); }

TEST(DetBoxes, RectangleGivesOneBoxGrownByTheUnclipDistance) {
  Map m(120, 200);
  m.fill(50, 40, 149, 59, 0.9f);  // 100 x 20 pixels: centres span 99 x 19
  std::vector<DetBox> boxes = det_boxes(m.v.data(), m.h, m.w);
  ASSERT_EQ(boxes.size(), 1u);
  EXPECT_NEAR(boxes[0].score, 0.9f, 1e-6);
  const double w = 99, h = 19, d = w * h * 1.5 / (2 * (w + h));  // D = A r / L
  const Quad& q = boxes[0].quad;
  // Corners are rounded to whole pixels: within one pixel of the exact size.
  EXPECT_NEAR(side(q[0], q[1]), w + 2 * d, 1.0);
  EXPECT_NEAR(side(q[1], q[2]), h + 2 * d, 1.0);
  EXPECT_NEAR((q[0].x + q[2].x) / 2, 99.5, 0.5);
  EXPECT_NEAR((q[0].y + q[2].y) / 2, 49.5, 0.5);
  // get_mini_boxes order: top-left, top-right, bottom-right, bottom-left.
  EXPECT_LT(q[0].x, q[1].x);
  EXPECT_LT(q[1].y, q[2].y);
  EXPECT_GT(q[2].x, q[3].x);
}

TEST(DetBoxes, TwoBlobsGiveTwoBoxesAndWeakOrThinOnesNone) {
  Map m(100, 200);
  m.fill(10, 10, 80, 30, 0.95f);
  m.fill(100, 60, 180, 80, 0.8f);
  m.fill(10, 60, 60, 80, 0.5f);    // above thresh, below box_thresh
  m.fill(120, 10, 180, 11, 0.9f);  // 2 pixels high: short side 1 < min_size
  std::vector<DetBox> boxes = det_boxes(m.v.data(), m.h, m.w);
  ASSERT_EQ(boxes.size(), 2u);
  EXPECT_LT(boxes[0].quad[0].y, 30);  // raster order
  EXPECT_GT(boxes[1].quad[0].y, 40);
  // Corners are clipped to the map.
  Map edge(50, 60);
  edge.fill(0, 0, 59, 20, 0.9f);
  for (const DetBox& b : det_boxes(edge.v.data(), edge.h, edge.w))
    for (const Point& p : b.quad) {
      EXPECT_GE(p.x, 0);
      EXPECT_LE(p.x, 60);
      EXPECT_GE(p.y, 0);
      EXPECT_LE(p.y, 50);
    }
}

TEST(DetBoxes, DrawnRotatedRectangleKeepsItsAngle) {
  Map m(200, 200);
  const double a = 20 * kPi / 180, c = std::cos(a), s = std::sin(a);
  for (int y = 0; y < m.h; ++y)
    for (int x = 0; x < m.w; ++x) {
      double u = (x - 100) * c + (y - 100) * s, v = -(x - 100) * s + (y - 100) * c;
      if (std::abs(u) <= 60 && std::abs(v) <= 12) m.v[static_cast<size_t>(y) * m.w + x] = 0.9f;
    }
  std::vector<DetBox> boxes = det_boxes(m.v.data(), m.h, m.w);
  ASSERT_EQ(boxes.size(), 1u);
  const Quad& q = boxes[0].quad;
  EXPECT_NEAR(std::atan2(q[1].y - q[0].y, q[1].x - q[0].x) * 180 / kPi, 20, 1.5);
}

TEST(MinAreaRect, RotatedRectangleHasItsAngleAndArea) {
  const double a = 30 * kPi / 180;
  const Point u{std::cos(a), std::sin(a)}, n{-u.y, u.x};
  std::vector<Point> pts;
  for (int i = 0; i <= 40; ++i)  // a 40 x 10 grid of points, rotated by 30 degrees
    for (int j = 0; j <= 10; ++j) pts.push_back({5 + i * u.x + j * n.x, 7 + i * u.y + j * n.y});
  RotatedRect r = min_area_rect(pts);
  EXPECT_NEAR(r.width, 40, 1e-9);
  EXPECT_NEAR(r.height, 10, 1e-9);
  EXPECT_NEAR(r.area(), 400, 1e-7);
  EXPECT_NEAR(r.angle, 30, 1e-9);
  EXPECT_NEAR(r.center.x, 5 + 20 * u.x + 5 * n.x, 1e-9);
  EXPECT_NEAR(r.center.y, 7 + 20 * u.y + 5 * n.y, 1e-9);
  // Standing on its short side the same rectangle reads 120 degrees.
  for (Point& p : pts) p = {-p.y, p.x};
  EXPECT_NEAR(min_area_rect(pts).angle, 120, 1e-9);
}

// The reference: the smallest bounding rectangle over a fine scan of directions.
double scanned_min_area(const std::vector<Point>& pts) {
  double best = 1e300;
  for (int k = 0; k < 18000; ++k) {
    double a = k * kPi / 18000, c = std::cos(a), s = std::sin(a);
    double u0 = 1e300, u1 = -1e300, v0 = 1e300, v1 = -1e300;
    for (const Point& p : pts) {
      double u = p.x * c + p.y * s, v = -p.x * s + p.y * c;
      u0 = std::min(u0, u), u1 = std::max(u1, u), v0 = std::min(v0, v), v1 = std::max(v1, v);
    }
    best = std::min(best, (u1 - u0) * (v1 - v0));
  }
  return best;
}

TEST(MinAreaRect, MatchesAScanOverDirectionsOnRandomPoints) {
  uint64_t state = 12345;
  auto next = [&] {  // LCG: fixed points on every platform
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(state >> 11) * 0x1.0p-53;
  };
  for (int trial = 0; trial < 30; ++trial) {
    std::vector<Point> pts(3 + trial);
    for (Point& p : pts) p = {next() * 100, next() * 40};
    RotatedRect r = min_area_rect(pts);
    double ref = scanned_min_area(pts);
    EXPECT_LE(r.area(), ref * (1 + 1e-9)) << "trial " << trial;
    EXPECT_GE(r.area(), ref * (1 - 1e-3)) << "trial " << trial;
    // Every point lies in the rectangle.
    const double a = r.angle * kPi / 180, c = std::cos(a), s = std::sin(a);
    for (const Point& p : pts) {
      double u = (p.x - r.center.x) * c + (p.y - r.center.y) * s;
      double v = -(p.x - r.center.x) * s + (p.y - r.center.y) * c;
      EXPECT_LE(std::abs(u), r.width / 2 + 1e-7);
      EXPECT_LE(std::abs(v), r.height / 2 + 1e-7);
    }
  }
}

TEST(QuadIou, KnownOverlaps) {
  EXPECT_DOUBLE_EQ(quad_iou(axis_box(0, 0, 10, 10), axis_box(0, 0, 10, 10)), 1.0);
  EXPECT_NEAR(quad_iou(axis_box(0, 0, 10, 10), axis_box(5, 0, 15, 10)), 50.0 / 150, 1e-12);
  EXPECT_EQ(quad_iou(axis_box(0, 0, 10, 10), axis_box(20, 0, 30, 10)), 0.0);
  // A diamond inside a square: the diamond's area over the square's.
  Quad diamond{Point{5, 0}, Point{10, 5}, Point{5, 10}, Point{0, 5}};
  EXPECT_NEAR(quad_iou(diamond, axis_box(0, 0, 10, 10)), 0.5, 1e-12);
  // Either winding.
  Quad reversed{Point{0, 5}, Point{5, 10}, Point{10, 5}, Point{5, 0}};
  EXPECT_NEAR(quad_iou(reversed, axis_box(0, 0, 10, 10)), 0.5, 1e-12);
}

TEST(DetScore, IdenticalSetsScoreOneAndDisjointZero) {
  std::vector<std::vector<Quad>> gt = {{axis_box(0, 0, 50, 10), axis_box(0, 20, 50, 30)},
                                       {axis_box(10, 10, 40, 40)}};
  DetScore same = det_score(gt, gt);
  EXPECT_EQ(same.matched, 3);
  EXPECT_DOUBLE_EQ(same.precision, 1.0);
  EXPECT_DOUBLE_EQ(same.recall, 1.0);
  EXPECT_DOUBLE_EQ(same.hmean, 1.0);

  std::vector<std::vector<Quad>> far = {{axis_box(100, 100, 150, 110)}, {}};
  DetScore none = det_score(far, gt);
  EXPECT_EQ(none.matched, 0);
  EXPECT_DOUBLE_EQ(none.hmean, 0.0);
}

TEST(DetScore, MatchingIsOneToOne) {
  // Two predictions on one ground truth: one match, precision 1/2, recall 1.
  std::vector<std::vector<Quad>> gt = {{axis_box(0, 0, 100, 20)}};
  std::vector<std::vector<Quad>> pred = {{axis_box(0, 0, 100, 20), axis_box(2, 0, 100, 20)}};
  DetScore s = det_score(pred, gt);
  EXPECT_EQ(s.matched, 1);
  EXPECT_DOUBLE_EQ(s.precision, 0.5);
  EXPECT_DOUBLE_EQ(s.recall, 1.0);
  EXPECT_NEAR(s.hmean, 2.0 / 3, 1e-12);
  // IoU below the threshold is no match (40 / 100 here).
  EXPECT_EQ(det_score({{axis_box(0, 0, 40, 20)}}, gt).matched, 0);
}

TEST(PixelIou, CountsBinarisedMaps) {
  std::vector<float> a = {0.9f, 0.9f, 0.1f, 0.0f}, b = {0.9f, 0.2f, 0.8f, 0.0f};
  EXPECT_DOUBLE_EQ(pixel_iou(a.data(), b.data(), 4, 0.3f), 1.0 / 3);
  EXPECT_DOUBLE_EQ(pixel_iou(a.data(), a.data(), 4, 0.3f), 1.0);
  std::vector<float> zero(4, 0.f);
  EXPECT_DOUBLE_EQ(pixel_iou(zero.data(), zero.data(), 4, 0.3f), 1.0);
}

}  // namespace
}  // namespace mpq::ocr
