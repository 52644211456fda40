// Scores for the real-model suite's text detector (PaddleOCR's DBNet): the DB post-processing
// that turns a text probability map into boxes, precision / recall / hmean of boxes against
// ground truth, and the IoU of two binarised maps. Plain C++ (no libtorch), so it can score maps
// from ONNX Runtime as well as from mpq.
//
// det_boxes follows PaddleOCR's DBPostProcess (ppocr/postprocess/db_postprocess.py, score_mode
// "fast", no dilation) for the default thresholds:
//   bitmap = prob > thresh; for each 8-connected component C (all of C's pixel centres):
//     R = min-area rectangle of C;                       drop if min(R.w, R.h) < min_size
//     score = mean prob over the pixels of R's bounding rectangle that lie inside R;
//                                                        drop if score < box_thresh
//     D = area(R) * unclip_ratio / perimeter(R);  R' = R grown by D on every side
//                                                        drop if min(R'.w, R'.h) < min_size + 2
//     corners of R' rounded and clipped to [0, W] x [0, H].
// Differences from PaddleOCR: components instead of cv2.findContours(RETR_LIST), so holes inside a
// blob give no extra candidate; the unclip offset (pyclipper, JT_ROUND, integer coordinates) is
// computed exactly: the min-area rectangle of a rectangle offset by D with round joins is the
// rectangle grown by D on every side. Cost O(H W) for the components plus O(h log h) per
// component for the hull (h: its rows) and O(area of R) for the score.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace mpq::ocr {

struct Point {
  double x = 0, y = 0;
};

// Four corners: top-left, top-right, bottom-right, bottom-left (PaddleOCR's get_mini_boxes
// order).
using Quad = std::array<Point, 4>;

// A rectangle of any orientation. width >= height; angle in degrees, [0, 180), is the direction
// of the width side measured from +x towards +y (image coordinates: y points down).
struct RotatedRect {
  Point center;
  double width = 0, height = 0, angle = 0;
  double area() const { return width * height; }
  Quad corners() const;  // in get_mini_boxes order
};

// Convex hull (Andrew's monotone chain), counter-clockwise in a y-up frame, collinear points
// dropped. O(n log n).
std::vector<Point> convex_hull(std::vector<Point> points);

// The minimum-area enclosing rectangle (convex hull + rotating calipers: the optimum has a side on
// a hull edge, Freeman & Shapira 1975). O(n log n). Fewer than 3 distinct non-collinear points
// give a rectangle of height 0 (a single point: width 0 too).
// Example: min_area_rect({{0, 0}, {4, 0}, {4, 2}, {0, 2}}) == {{2, 1}, 4, 2, 0}.
RotatedRect min_area_rect(const std::vector<Point>& points);

struct DbOptions {
  float thresh = 0.3f;      // bitmap = prob > thresh
  float box_thresh = 0.6f;  // minimum mean probability of a box
  double unclip_ratio = 1.5;
  int min_size = 3;           // minimum short side in pixels, before unclipping (+2 after)
  int max_candidates = 1000;  // components beyond this many (in raster order) are ignored
};

struct DetBox {
  Quad quad;
  float score = 0;
};

// PaddleOCR's DB post-processing of one H x W probability map (row-major). Boxes come in raster
// order of their components' first pixel.
// Example: auto boxes = det_boxes(prob.data(), 384, 384);
std::vector<DetBox> det_boxes(const float* prob, int height, int width,
                              const DbOptions& options = {});

// Area of a simple polygon (shoelace, absolute value).
double polygon_area(const std::vector<Point>& polygon);

// Intersection over union of two quadrilaterals, exact for convex ones (Sutherland-Hodgman
// clipping of one by the other). A non-convex clipper is replaced by its convex hull. 0 when the
// union is empty.
double quad_iou(const Quad& a, const Quad& b);

// An axis-aligned box as a Quad: [x0, x1] x [y0, y1].
Quad axis_box(double x0, double y0, double x1, double y1);

struct DetScore {
  int64_t gt = 0, pred = 0, matched = 0;
  double precision = 0, recall = 0, hmean = 0;
};

// Detection precision, recall and hmean over a set of pages (ICDAR-style, as PaddleOCR's
// DetMetric sums them): per page, pairs with IoU >= iou are matched one-to-one, greedily in
// decreasing IoU (ties: lower prediction index, then lower ground-truth index); precision =
// matched / predictions, recall = matched / ground truths over all pages. No predictions and no
// ground truth give precision = recall = hmean = 1; either side empty alone gives 0 for it.
// O(sum over pages of p * g * log(p * g)).
DetScore det_score(const std::vector<std::vector<Quad>>& pred,
                   const std::vector<std::vector<Quad>>& gt, double iou = 0.5);

// |A and B| / |A or B| with A = {a > thresh}, B = {b > thresh} over n values; 1 when both are
// empty.
double pixel_iou(const float* a, const float* b, int64_t n, float thresh = 0.3f);

}  // namespace mpq::ocr
