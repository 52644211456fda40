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
#include "onnx/passes/fold_batchnorm.h"

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
  DataLoader loader(data, options.batch_size);
  Progress progress("eval", options.progress ? data.size() : 0);
  if (!options.progress) progress.finish();
  c10::InferenceMode inference;
  double correct1 = 0, correct5 = 0, loss = 0, agree = 0, kl = 0, signal = 0, noise = 0;
  Batch batch;
  while (loader.next(&batch)) {
    auto start = std::chrono::steady_clock::now();
    at::Tensor logits = exec.run({batch.x})[0];
    r.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    MPQ_CHECK(logits.dim() == 2 && logits.size(0) == batch.x.size(0), label,
              ": expected the first output to be logits [batch, classes], found shape ",
              logits.sizes());
    logits = logits.to(at::kFloat);
    int64_t classes = logits.size(1);
    if (r.labelled) {
      at::Tensor y = batch.y;
      MPQ_CHECK(y.max().item<int64_t>() < classes, data.describe(), ": label ",
                y.max().item<int64_t>(), " is out of range for a model with ", classes, " outputs");
      at::Tensor top = std::get<1>(logits.topk(std::min<int64_t>(5, classes), 1));
      at::Tensor hits = top.eq(y.unsqueeze(1));
      correct1 += hits.select(1, 0).sum().item<double>();
      correct5 += hits.any(1).sum().item<double>();
      loss += at::cross_entropy_loss(logits, y, {}, at::Reduction::Sum).item<double>();
    }
    if (ref) {
      at::Tensor ref_logits = ref->run({batch.x})[0].to(at::kFloat);
      MPQ_CHECK(ref_logits.sizes() == logits.sizes(), ref->graph().source,
                ": reference output shape ", ref_logits.sizes(), " differs from the model's ",
                logits.sizes());
      agree += logits.argmax(1).eq(ref_logits.argmax(1)).sum().item<double>();
      at::Tensor logp = at::log_softmax(logits, 1), ref_logp = at::log_softmax(ref_logits, 1);
      kl += (ref_logp.exp() * (ref_logp - logp)).sum().item<double>();
      signal += ref_logits.pow(2).sum().item<double>();
      noise += (ref_logits - logits).pow(2).sum().item<double>();
    }
    r.samples += batch.x.size(0);
    if (options.progress) progress.advance(batch.x.size(0));
  }
  progress.finish();
  MPQ_CHECK(r.samples > 0, data.describe(), ": no samples to evaluate");
  double n = double(r.samples);
  r.top1 = correct1 / n;
  r.top5 = correct5 / n;
  r.loss = loss / n;
  r.agreement = agree / n;
  r.kl = kl / n;
  r.sqnr_db = noise > 0 ? 10 * std::log10(signal / noise) : INFINITY;
  r.samples_per_second = r.seconds > 0 ? n / r.seconds : 0;
  return r;
}

nlohmann::json to_json(const EvalResult& r) {
  nlohmann::json j = {
      {"samples", r.samples}, {"seconds", r.seconds}, {"samples_per_second", r.samples_per_second}};
  if (r.labelled) {
    j["top1"] = r.top1;
    j["top5"] = r.top5;
    j["loss"] = r.loss;
  }
  if (r.has_reference) {
    j["agreement"] = r.agreement;
    j["kl"] = r.kl;
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
  if (r.has_reference) {
    o << "agreement   " << 100 * r.agreement << " % (top-1 vs reference)\n";
    o << std::setprecision(6) << "KL          " << r.kl << " nats\n" << std::setprecision(2);
    o << "SQNR        " << r.sqnr_db << " dB\n";
  }
  o << std::setprecision(1) << "throughput  " << r.samples_per_second << " samples/s\n";
  return o.str();
}

}  // namespace mpq
