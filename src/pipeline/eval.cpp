#include "pipeline/eval.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cmath>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "exec/executor.h"
#include "exec/runtime.h"
#include "onnx/passes/fold_batchnorm.h"
#include "sensitivity/output_kind.h"

namespace mpq {
namespace {

std::vector<double> parse_numbers(const std::string& text, const std::string& key, const Graph& g) {
  std::vector<double> values;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ',')) {
    try {
      values.push_back(std::stod(item));
    } catch (const std::exception&) {
      MPQ_FAIL(g.source, ": metadata '", key, "': expected comma-separated numbers, found '", text,
               "'");
    }
  }
  return values;
}

}  // namespace

std::pair<std::vector<double>, std::vector<double>> channel_statistics(const Dataset& data,
                                                                       int64_t max_samples) {
  DataLoader loader(data, 500);
  at::Tensor sum, sq;
  double n = 0;
  Batch b;
  while (n < double(max_samples) && loader.next(&b)) {
    at::Tensor x = b.x.to(at::kDouble).transpose(0, 1).reshape({b.x.size(1), -1});
    sum = sum.defined() ? sum + x.sum(1) : x.sum(1);
    sq = sq.defined() ? sq + x.pow(2).sum(1) : x.pow(2).sum(1);
    n += double(x.size(1));
  }
  MPQ_CHECK(n > 0, data.describe(), ": no samples");
  at::Tensor mean = sum / n, std = (sq / n - mean.pow(2)).clamp_min(1e-12).sqrt();
  std::vector<double> m(mean.data_ptr<double>(), mean.data_ptr<double>() + mean.numel());
  std::vector<double> s(std.data_ptr<double>(), std.data_ptr<double>() + std.numel());
  return {m, s};
}

Preprocess model_preprocess(const Graph& g, Preprocess p) {
  auto get = [&](const char* key) -> const std::string* {
    auto it = g.metadata.find(key);
    return it == g.metadata.end() ? nullptr : &it->second;
  };
  if (p.mean.empty() && get("mpq.mean")) p.mean = parse_numbers(*get("mpq.mean"), "mpq.mean", g);
  if (p.std.empty() && get("mpq.std")) p.std = parse_numbers(*get("mpq.std"), "mpq.std", g);
  if (p.scale < 0 && get("mpq.scale"))
    p.scale = parse_numbers(*get("mpq.scale"), "mpq.scale", g)[0];
  return p;
}

EvalResult evaluate(const Graph& model, const Dataset& data, const EvalOptions& options,
                    const Graph* reference) {
  MPQ_CHECK(model.inputs.size() == 1, model.source, ": eval needs a model with one input, found ",
            model.inputs.size());
  // Inference only: BN folded into convs, as ONNX Runtime does (outputs equal to float rounding).
  Graph folded = model;
  fold_batchnorm(&folded);
  Executor exec(folded);
  std::unique_ptr<Executor> ref;
  Graph ref_folded;
  if (reference) {
    ref_folded = *reference;
    fold_batchnorm(&ref_folded);
    ref = std::make_unique<Executor>(ref_folded);
  }
  return evaluate(exec, model.source, data, options, ref.get());
}

EvalResult evaluate(const Executor& exec, const std::string& label, const Dataset& data,
                    const EvalOptions& options, const Executor* ref) {
  MPQ_CHECK(exec.graph().inputs.size() == 1, label, ": eval needs a model with one input, found ",
            exec.graph().inputs.size());
  MPQ_CHECK(options.batch_size > 0, "--batch-size: expected a positive number, found ",
            options.batch_size);
  // Fail on a shape mismatch before any work or output.
  std::vector<int64_t> one = data.sample_shape();
  one.insert(one.begin(), 1);
  try {
    exec.check_input(0, at::zeros(one));
  } catch (const Error& e) {
    MPQ_FAIL("data ", data.describe(), " does not fit the model: ", e.what());
  }
  if (options.progress) log_info("eval: ", data.describe());
  EvalResult r;
  r.labelled = data.has_labels();
  r.has_reference = ref != nullptr;
  CtcScore ctc;
  if (options.ctc) {
    MPQ_CHECK(int64_t(options.ctc->labels.size()) >= data.size(), "--labels ",
              options.ctc->labels_path, ": ", options.ctc->labels.size(),
              " lines, expected one per sample (", data.size(), ")");
    r.labelled = false;  // the text labels are the truth
  }
  int64_t sample = 0;
  // The batch fits the activation budget (twice the inference peak of one sample, for the
  // kernels' scratch outside ATen's count); cached reference outputs fix it to theirs.
  int64_t batch_size = options.batch_size;
  if (options.reference_outputs && !options.reference_outputs->empty()) {
    batch_size = options.reference_outputs->front().size(0);
  } else if (data.size() > 0) {
    batch_size = batch_within(2 * exec.footprint({data.read({0}).x}).peak, activation_budget(),
                              options.batch_size);
    if (ref) {
      batch_size = std::min(batch_size, batch_within(2 * ref->footprint({data.read({0}).x}).peak,
                                                     activation_budget(), options.batch_size));
    }
  }
  DataLoader loader(data, batch_size);
  Progress progress("eval", options.progress ? data.size() : 0);
  if (!options.progress) progress.finish();
  c10::InferenceMode inference;
  double correct1 = 0, correct5 = 0, loss = 0;
  OutputKind kind = OutputKind::kScores;
  std::unique_ptr<OutputComparison> compare;
  Batch batch;
  size_t batch_index = 0;
  while (loader.next(&batch)) {
    auto start = std::chrono::steady_clock::now();
    at::Tensor logits = exec.run({batch.x})[0];
    r.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    MPQ_CHECK(logits.dim() >= 1 && logits.size(0) == batch.x.size(0), label,
              ": expected the batch (", batch.x.size(0),
              ") as the first dimension of the first output, found shape ", logits.sizes());
    logits = logits.to(at::kFloat);
    at::Tensor ref_logits;
    std::vector<at::Tensor>* cache = options.reference_outputs;
    if (ref && cache && batch_index < cache->size()) {
      ref_logits = (*cache)[batch_index];
    } else if (ref) {
      ref_logits = ref->run({batch.x})[0].to(at::kFloat);
      if (cache) cache->push_back(ref_logits);
    }
    if (ref) {
      MPQ_CHECK(ref_logits.sizes() == logits.sizes(), ref->graph().source,
                ": reference output shape ", ref_logits.sizes(), " differs from the model's ",
                logits.sizes());
    }
    if (!compare) {
      // The reference (the float model) says best what the output is.
      kind = options.output_kind != "auto" ? find_output_kind(options.output_kind)
             : ref                         ? infer_output_kind(ref->graph(), ref_logits)
                                           : infer_output_kind(exec.graph(), logits);
      r.output = output_kind_name(kind);
      compare = std::make_unique<OutputComparison>(kind);
      if (r.labelled && kind != OutputKind::kScores) {
        log_info("warning: eval: ", label, ": the output is not class scores (output kind '",
                 r.output, "'), so the labels are not used");
        r.labelled = false;
      }
    }
    if (r.labelled) {
      at::Tensor scores = logits.reshape({logits.size(0), -1});
      int64_t classes = scores.size(1);
      at::Tensor y = batch.y;
      MPQ_CHECK(y.max().item<int64_t>() < classes, data.describe(), ": label ",
                y.max().item<int64_t>(), " is out of range for a model with ", classes, " outputs");
      at::Tensor top = std::get<1>(scores.topk(std::min<int64_t>(5, classes), 1));
      at::Tensor hits = top.eq(y.unsqueeze(1));
      correct1 += hits.select(1, 0).sum().item<double>();
      correct5 += hits.any(1).sum().item<double>();
      loss += at::cross_entropy_loss(scores, y, {}, at::Reduction::Sum).item<double>();
    }
    if (ref) compare->add(logits, ref_logits);
    if (options.ctc) {
      const int64_t classes = int64_t(options.ctc->classes.size());
      MPQ_CHECK(logits.size(-1) == classes, label, ": expected per-step scores over ", classes,
                " classes (the charset) as the first output's last dimension, found shape ",
                logits.sizes());
      at::Tensor steps = logits.reshape({logits.size(0), -1, classes});
      for (int64_t i = 0; i < steps.size(0); ++i, ++sample)
        ctc.add(ctc_greedy_decode(steps[i], options.ctc->classes),
                options.ctc->labels[size_t(sample)]);
    }
    r.samples += batch.x.size(0);
    ++batch_index;
    if (options.progress) progress.advance(batch.x.size(0));
  }
  progress.finish();
  MPQ_CHECK(r.samples > 0, data.describe(), ": no samples to evaluate");
  double n = double(r.samples);
  r.top1 = correct1 / n;
  r.top5 = correct5 / n;
  r.loss = loss / n;
  if (ref) {
    r.has_agreement = compare->has_agreement;
    r.agreement = compare->agreement / n;
    r.has_kl = compare->has_kl;
    r.kl = compare->kl / n;
    r.has_cosine = compare->has_cosine;
    r.cosine = compare->cosine / n;
    r.sqnr_db = compare->sqnr_db();
  }
  if (options.ctc) {
    r.has_ctc = true;
    r.char_accuracy = ctc.char_accuracy();
    r.line_accuracy = ctc.line_accuracy();
  }
  r.samples_per_second = r.seconds > 0 ? n / r.seconds : 0;
  return r;
}

int64_t output_classes(const Graph& model, const Dataset& data) {
  MPQ_CHECK(data.size() > 0, data.describe(), ": no samples");
  Executor ex(model);
  c10::InferenceMode inference;
  at::Tensor y = ex.run({data.read({0}).x})[0];
  MPQ_CHECK(y.dim() >= 2, model.source,
            ": expected the first output to have a class dimension, found shape ", y.sizes());
  return y.size(-1);
}

nlohmann::json to_json(const EvalResult& r) {
  nlohmann::json j = {
      {"samples", r.samples}, {"seconds", r.seconds}, {"samples_per_second", r.samples_per_second}};
  if (r.labelled) {
    j["top1"] = r.top1;
    j["top5"] = r.top5;
    j["loss"] = r.loss;
  }
  j["output"] = r.output;
  if (r.has_ctc) {
    j["char_accuracy"] = r.char_accuracy;
    j["line_accuracy"] = r.line_accuracy;
  }
  if (r.has_reference) {
    if (r.has_agreement) j["agreement"] = r.agreement;
    if (r.has_kl) j["kl"] = r.kl;
    if (r.has_cosine) j["cosine"] = r.cosine;
    j["sqnr_db"] = std::isfinite(r.sqnr_db) ? nlohmann::json(r.sqnr_db) : nlohmann::json("inf");
  }
  return j;
}

std::string format_text(const EvalResult& r) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(2);
  o << "samples     " << r.samples << "\n";
  if (r.labelled) {
    o << "top-1       " << 100 * r.top1 << " %\n";
    o << "top-5       " << 100 * r.top5 << " %\n";
    o << std::setprecision(4) << "loss        " << r.loss << "\n" << std::setprecision(2);
  }
  if (r.has_ctc) {
    o << "characters  " << 100 * r.char_accuracy << " % (greedy CTC reading vs the labels)\n";
    o << "lines       " << 100 * r.line_accuracy << " % read exactly\n";
  }
  if (r.has_reference) {
    const char* what = r.output == "sequence" ? "per-step argmax vs reference"
                       : r.output == "map"    ? "argmax over channels per position vs reference"
                                              : "top-1 vs reference";
    if (r.has_agreement) o << "agreement   " << 100 * r.agreement << " % (" << what << ")\n";
    if (r.has_cosine) {
      o << std::setprecision(6) << "cosine      " << r.cosine << " (mean vs reference)\n"
        << std::setprecision(2);
    }
    if (r.has_kl) {
      o << std::setprecision(6) << "KL          " << r.kl << " nats"
        << (r.output == "scores" ? "" : " (mean per position)") << "\n"
        << std::setprecision(2);
    }
    o << "SQNR        " << r.sqnr_db << " dB\n";
  }
  o << std::setprecision(1) << "throughput  " << r.samples_per_second << " samples/s\n";
  return o.str();
}

}  // namespace mpq
