// Classification probes (kNN, linear) on frozen global embeddings.
#include "lesseg/eval/probe.h"

#include <algorithm>
#include <random>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "lesseg/data/loader.h"
#include "lesseg/data/loader_config.h"
#include "lesseg/data/open.h"
#include "lesseg/eval/probe_internal.h"
#include "lesseg/io/image_io.h"
#include "lesseg/models/embedding.h"
#include "lesseg/models/registry.h"
#include "lesseg/models/vit.h"
#include "lesseg/models/weights.h"

namespace lesseg {
namespace F = torch::nn::functional;
using probe_detail::cosine_lr;
using probe_detail::EvalModeGuard;
using probe_detail::positive;

namespace {

at::Tensor load_probe_image(const std::filesystem::path& file, const ProbeImageOptions& options) {
  cv::Mat rgb = read_image_rgb(file);
  const int side = static_cast<int>(options.image_size);
  if (rgb.rows != side || rgb.cols != side)  // area averaging when shrinking avoids aliasing
    cv::resize(rgb, rgb, cv::Size(side, side), 0, 0, side < rgb.rows ? cv::INTER_AREA : cv::INTER_LINEAR);
  return image_to_tensor(rgb, options.mean, options.std);
}

void put_accuracy(nlohmann::json& out, const std::string& prefix, const ProbeAccuracy& accuracy) {
  out[prefix + "_top1"] = accuracy.top1;
  if (!std::isnan(accuracy.top5)) out[prefix + "_top5"] = accuracy.top5;
}

at::Tensor standardize(const at::Tensor& x, const at::Tensor& mean, const at::Tensor& spread) {
  return (x - mean) / spread;
}

at::Tensor unit_rows(const at::Tensor& x) { return F::normalize(x.to(torch::kFloat), F::NormalizeFuncOptions().dim(1)); }

}  // namespace

at::Tensor extract_features(BackboneImpl& backbone, const std::vector<LabeledImage>& images,
                            const ProbeImageOptions& options) {
  if (images.empty()) return torch::zeros({0, embedding_dim(backbone)});
  EvalModeGuard eval(backbone);
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> chunks;
  const size_t batch = static_cast<size_t>(std::max(1, options.batch_size));
  for (size_t start = 0; start < images.size(); start += batch) {
    std::vector<at::Tensor> tensors;
    for (size_t i = start; i < std::min(images.size(), start + batch); ++i)
      tensors.push_back(load_probe_image(images[i].image, options));
    const at::Tensor batch_images = torch::stack(tensors).to(options.device);
    auto* vit = dynamic_cast<VitImpl*>(&backbone);
    auto embedding = vit && options.pool == "mean" ? vit->forward_tokens(batch_images).patch_tokens().mean(1)
                                                   : global_embedding(backbone, batch_images);
    chunks.push_back(embedding.to(torch::kCPU, torch::kFloat));
  }
  return torch::cat(chunks);
}

at::Tensor labels_of(const std::vector<LabeledImage>& images) {
  std::vector<int64_t> labels;
  for (const auto& item : images) labels.push_back(item.label);
  return torch::tensor(labels, torch::kLong);
}

ProbeAccuracy top_k_accuracy(const at::Tensor& scores, const at::Tensor& labels) {
  ProbeAccuracy accuracy;
  const int64_t rows = scores.size(0);
  if (rows == 0) return accuracy;
  auto target = labels.to(scores.device()).view({-1, 1});
  // Largest first; a stable sort breaks ties (e.g. classes without kNN votes) by class index, so
  // top-5 does not depend on the sort implementation.
  auto ranked = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true))
                    .narrow(1, 0, std::min<int64_t>(5, scores.size(1)));
  auto correct = ranked.eq(target);
  accuracy.top1 = correct.narrow(1, 0, 1).sum().item<double>() / double(rows);
  if (scores.size(1) >= 5) accuracy.top5 = correct.sum().item<double>() / double(rows);
  return accuracy;
}

at::Tensor knn_votes(const at::Tensor& bank, const at::Tensor& bank_labels, const at::Tensor& queries,
                     int64_t num_classes, const KnnOptions& options) {
  TORCH_CHECK(bank.size(0) > 0 && bank.size(0) == bank_labels.size(0), "kNN: bank and labels differ in size");
  const int64_t k = std::min(options.k, bank.size(0));
  auto keys = unit_rows(bank);
  auto labels = bank_labels.to(keys.device(), torch::kLong);
  std::vector<at::Tensor> chunks;
  constexpr int64_t kChunk = 256;  // bounds the [chunk, bank] similarity matrix
  for (int64_t start = 0; start < queries.size(0); start += kChunk) {
    auto q = unit_rows(queries.narrow(0, start, std::min(kChunk, queries.size(0) - start)).to(keys.device()));
    // ref: dino eval_knn.py knn_classifier: top-k cosine neighbours, each votes exp(sim / T) for
    // its class (one-hot x weight summed over neighbours == scatter_add of the weights).
    auto similarity = q.mm(keys.t());
    auto [distances, indices] = similarity.topk(k, 1, /*largest=*/true, /*sorted=*/true);
    auto neighbours = labels.index({indices});  // [m, k]
    auto weights = (distances / options.temperature).exp();
    chunks.push_back(torch::zeros({q.size(0), num_classes}, q.options()).scatter_add_(1, neighbours, weights));
  }
  if (chunks.empty()) return torch::zeros({0, num_classes});
  return torch::cat(chunks);
}

ProbeAccuracy knn_classify(const at::Tensor& bank, const at::Tensor& bank_labels, const at::Tensor& queries,
                           const at::Tensor& query_labels, int64_t num_classes, const KnnOptions& options) {
  return top_k_accuracy(knn_votes(bank, bank_labels, queries, num_classes, options), query_labels);
}

LinearProbeResult linear_probe(const at::Tensor& train_features, const at::Tensor& train_labels,
                               const at::Tensor& test_features, const at::Tensor& test_labels, int64_t num_classes,
                               const LinearProbeOptions& options) {
  const auto device = options.device;
  auto x = train_features.to(device, torch::kFloat);
  auto x_test = test_features.to(device, torch::kFloat);
  auto y = train_labels.to(device, torch::kLong);
  if (options.standardize) {
    auto mean = x.mean({0}, true);
    auto spread = (x - mean).pow(2).mean({0}, true).sqrt().clamp_min(1e-6);
    x = standardize(x, mean, spread);
    x_test = standardize(x_test, mean, spread);
  }
  auto generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  // ref: dino eval_linear.py LinearClassifier (weight ~ N(0, 0.01), bias 0), SGD momentum 0.9
  auto weight = torch::empty({num_classes, x.size(1)}).normal_(0.0, 0.01, generator).to(device).requires_grad_();
  auto bias = torch::zeros({num_classes}, x.options()).requires_grad_();
  torch::optim::SGD optimizer({weight, bias}, torch::optim::SGDOptions(options.lr).momentum(0.9));
  const int64_t n = x.size(0), batch = std::min<int64_t>(std::max(1, options.batch_size), n);
  at::Tensor order;
  int64_t cursor = n;  // forces a fresh permutation on the first step
  LinearProbeResult result;
  for (int64_t step = 0; step < options.iters; ++step) {
    if (cursor + batch > n) {  // a new epoch: a fresh seeded permutation
      order = torch::randperm(n, generator, torch::kLong).to(device);
      cursor = 0;
    }
    auto rows = order.narrow(0, cursor, batch);
    cursor += batch;
    optimizer.param_groups()[0].options().set_lr(cosine_lr(options.lr, step, options.iters));
    auto loss = F::cross_entropy(F::linear(x.index({rows}), weight, bias), y.index({rows}));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    result.final_loss = loss.item<double>();
  }
  torch::NoGradGuard no_grad;
  result.train = top_k_accuracy(F::linear(x, weight, bias), y);
  result.test = top_k_accuracy(F::linear(x_test, weight, bias), test_labels);
  return result;
}

// ---- BatchNorm calibration ----

namespace {
template <typename BatchNorm>
void reset_for_average(torch::nn::Module& module, std::vector<std::function<void()>>& restore) {
  if (auto* bn = module.as<BatchNorm>()) {
    bn->reset_running_stats();
    const auto momentum = bn->options.momentum();
    bn->options.momentum(c10::nullopt);  // libtorch: no momentum = cumulative average over batches
    restore.push_back([bn, momentum] { bn->options.momentum(momentum); });
  }
}
}  // namespace

int64_t calibrate_batchnorm(BackboneImpl& backbone, const std::function<at::Tensor()>& next_images, int64_t batches) {
  std::vector<std::function<void()>> restore;
  for (auto& module : backbone.modules(false)) {
    reset_for_average<torch::nn::BatchNorm2dImpl>(*module, restore);
    reset_for_average<torch::nn::BatchNorm1dImpl>(*module, restore);
  }
  if (restore.empty()) return 0;
  const bool was_training = backbone.is_training();
  backbone.train();
  torch::NoGradGuard no_grad;
  int64_t used = 0;
  for (; used < batches; ++used) {
    at::Tensor images = next_images();
    if (!images.defined() || images.size(0) == 0) break;
    backbone.features(images);
  }
  backbone.train(was_training);
  for (auto& undo : restore) undo();
  return used;
}

// ---- from a config ----

ProbeBackbone build_probe_backbone(const Config& config, c10::Device device) {
  torch::manual_seed(static_cast<uint64_t>(config.get<int64_t>("seed")));
  ProbeBackbone out;
  out.backbone = build_backbone(model_spec_from(config, 1));  // classes do not matter to a backbone
  out.weights = config.get<std::string>("model.weights");
  if (!out.weights.empty()) {
    WeightReport report = load_weights(*out.backbone, out.weights, weight_options_from(config));
    out.matched = report.matched.size();
    out.missing = report.missing.size();
    out.mismatched = report.mismatched.size();
    out.summary = report.summary();
  }
  out.backbone->to(device);
  return out;
}

ProbeImageOptions probe_image_options(const Config& config, c10::Device device) {
  ProbeImageOptions options;
  options.image_size = positive<int64_t>(config, "probe.image_size");
  options.batch_size = positive<int>(config, "probe.batch_size");
  options.pool = config.get<std::string>("probe.pool");
  if (options.pool != "cls" && options.pool != "mean")
    throw_usage("probe.pool is '" + options.pool + "': use cls (a ViT's CLS token) or mean (its mean patch token)");
  options.mean = config_triple(config, "data.mean");
  options.std = config_triple(config, "data.std");
  options.device = device;
  return options;
}

int64_t calibrate_probe_backbone(BackboneImpl& backbone, const Config& config, c10::Device device) {
  const int64_t batches = config.get<int64_t>("probe.calibrate_bn");
  if (batches <= 0) return 0;
  const std::string data = config.get<std::string>("probe.data");
  if (!data.empty()) {
    const ProbeImageOptions options = probe_image_options(config, device);
    auto split = split_classification_set(read_classification_set(data), config.get<double>("probe.train_fraction"),
                                          static_cast<uint64_t>(config.get<int64_t>("seed")));
    auto items = split.train.items;  // class-sorted: shuffled, so that every batch mixes the classes
    std::shuffle(items.begin(), items.end(), std::mt19937_64(static_cast<uint64_t>(config.get<int64_t>("seed"))));
    size_t cursor = 0;
    return calibrate_batchnorm(backbone, [&]() -> at::Tensor {
      if (cursor >= items.size()) return {};
      std::vector<at::Tensor> tensors;
      for (; cursor < items.size() && tensors.size() < static_cast<size_t>(options.batch_size); ++cursor)
        tensors.push_back(load_probe_image(items[cursor].image, options));
      return torch::stack(tensors).to(device);
    }, batches);
  }
  Loader loader(open_dataset(config, "train"), train_loader_options(config));
  Batch batch;
  return calibrate_batchnorm(backbone, [&]() -> at::Tensor {
    return loader.next(batch) ? batch.images.to(device) : at::Tensor();
  }, batches);
}

namespace {

struct ProbeFeatures {
  ClassificationSplit split;
  at::Tensor train, train_labels, test, test_labels;
};

ProbeFeatures probe_features(BackboneImpl& backbone, const Config& config, c10::Device device) {
  const std::string data = config.get<std::string>("probe.data");
  if (data.empty()) throw_usage("probe.data is empty: name a classification folder (labels.txt or class subfolders)");
  ProbeFeatures f;
  f.split = split_classification_set(read_classification_set(data), config.get<double>("probe.train_fraction"),
                                     static_cast<uint64_t>(config.get<int64_t>("seed")));
  if (f.split.test.items.empty()) throw_bad_input(data, "too few images per class to hold some out for testing");
  const ProbeImageOptions options = probe_image_options(config, device);
  f.train = extract_features(backbone, f.split.train.items, options);
  f.test = extract_features(backbone, f.split.test.items, options);
  f.train_labels = labels_of(f.split.train.items);
  f.test_labels = labels_of(f.split.test.items);
  return f;
}

nlohmann::json split_json(const ProbeFeatures& f) {
  return {{"train_images", f.split.train.items.size()},
          {"test_images", f.split.test.items.size()},
          {"classes", f.split.train.num_classes()}};
}

}  // namespace

nlohmann::json knn_probe(BackboneImpl& backbone, const Config& config, c10::Device device) {
  KnnOptions options;
  options.k = positive<int64_t>(config, "probe.knn_k");
  options.temperature = positive<double>(config, "probe.knn_temperature");
  ProbeFeatures f = probe_features(backbone, config, device);
  nlohmann::json out = split_json(f);
  put_accuracy(out, "knn",
               knn_classify(f.train, f.train_labels, f.test, f.test_labels, f.split.train.num_classes(), options));
  out["knn_k"] = std::min<int64_t>(options.k, f.train.size(0));
  return out;
}

nlohmann::json linear_probe(BackboneImpl& backbone, const Config& config, c10::Device device) {
  LinearProbeOptions options;
  options.iters = positive<int64_t>(config, "probe.linear_iters");
  options.lr = positive<double>(config, "probe.linear_lr");
  options.batch_size = positive<int>(config, "probe.batch_size");
  options.standardize = config.get<bool>("probe.linear_standardize");
  options.seed = static_cast<uint64_t>(config.get<int64_t>("seed"));
  options.device = device;
  ProbeFeatures f = probe_features(backbone, config, device);
  LinearProbeResult r =
      linear_probe(f.train, f.train_labels, f.test, f.test_labels, f.split.train.num_classes(), options);
  nlohmann::json out = split_json(f);
  put_accuracy(out, "linear", r.test);
  out["linear_train_top1"] = r.train.top1;
  out["final_loss"] = r.final_loss;
  return out;
}

}  // namespace lesseg
