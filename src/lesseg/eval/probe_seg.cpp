// Linear segmentation probe: a 1x1 conv on frozen dense features, scored by mIoU.
#include <numeric>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lesseg/data/loader.h"
#include "lesseg/data/open.h"
#include "lesseg/eval/confusion.h"
#include "lesseg/eval/evaluate.h"
#include "lesseg/eval/probe.h"
#include "lesseg/eval/probe_internal.h"
#include "lesseg/models/embedding.h"

namespace lesseg {
namespace F = torch::nn::functional;
using probe_detail::cosine_lr;
using probe_detail::EvalModeGuard;
using probe_detail::positive;

namespace {

// (features - mean) / std per channel, then a 1x1 conv; logits upsampled bilinearly to the labels.
class LinearSegHeadImpl : public torch::nn::Module {
 public:
  LinearSegHeadImpl(int64_t channels, int64_t num_classes)
      : conv(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, num_classes, 1)))),
        feature_mean(register_buffer("feature_mean", torch::zeros({1, channels, 1, 1}))),
        feature_std(register_buffer("feature_std", torch::ones({1, channels, 1, 1}))) {}

  // Channel statistics of one batch of features [B, D, h, w]: the input scale of a random-init
  // backbone and a trained one differ by orders of magnitude, and one learning rate must fit both.
  void set_statistics(const torch::Tensor& features) {
    torch::NoGradGuard no_grad;
    auto mean = features.mean({0, 2, 3}, true);
    feature_mean.copy_(mean);
    feature_std.copy_((features - mean).pow(2).mean({0, 2, 3}, true).sqrt().clamp_min(1e-6));
  }

  torch::Tensor forward(const torch::Tensor& features, int64_t height, int64_t width) {
    auto logits = conv->forward((features - feature_mean) / feature_std);
    return F::interpolate(logits, F::InterpolateFuncOptions()
                                      .size(std::vector<int64_t>{height, width})
                                      .mode(torch::kBilinear)
                                      .align_corners(false));
  }

  torch::nn::Conv2d conv;
  torch::Tensor feature_mean, feature_std;
};
TORCH_MODULE(LinearSegHead);

LoaderOptions loader_options(const SegProbeOptions& options, bool train) {
  LoaderOptions lo;
  lo.batch_size = options.batch_size;
  lo.shuffle = lo.drop_last = lo.repeat = train;
  lo.workers = options.workers;
  lo.seed = options.seed;
  lo.augment = train ? options.train_augment : options.eval_augment;
  lo.mean = options.mean;
  lo.std = options.std;
  return lo;
}

torch::Tensor frozen_features(BackboneImpl& backbone, const torch::Tensor& images) {
  torch::NoGradGuard no_grad;
  return dense_features(backbone, images);
}

double train_head(BackboneImpl& backbone, LinearSegHead& head, SegDatasetPtr train, const SegProbeOptions& options) {
  Loader loader(train, loader_options(options, true));
  torch::optim::SGD optimizer(head->conv->parameters(), torch::optim::SGDOptions(options.lr).momentum(0.9));
  const auto ignore = train->classes().ignore_index;
  double last_loss = 0;
  Batch batch;
  for (int64_t step = 0; step < options.iters && loader.next(batch); ++step) {
    auto masks = batch.masks.to(options.device);
    auto features = frozen_features(backbone, batch.images.to(options.device));
    if (step == 0) head->set_statistics(features);
    if ((masks != ignore).sum().item<int64_t>() == 0) continue;  // nothing to learn from (the mean would be NaN)
    optimizer.param_groups()[0].options().set_lr(cosine_lr(options.lr, step, options.iters));
    auto logits = head->forward(features, masks.size(1), masks.size(2));
    auto loss = F::cross_entropy(logits, masks, F::CrossEntropyFuncOptions().ignore_index(ignore));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    last_loss = loss.item<double>();
  }
  return last_loss;
}

// The same loop as evaluate_segmenter, with the head on frozen features.
ConfusionMatrix score_head(BackboneImpl& backbone, LinearSegHead& head, SegDatasetPtr val,
                           const SegProbeOptions& options) {
  if (options.max_eval_images > 0 && static_cast<size_t>(options.max_eval_images) < val->size()) {
    std::vector<size_t> first(static_cast<size_t>(options.max_eval_images));
    std::iota(first.begin(), first.end(), 0);
    val = std::make_shared<SubsetDataset>(val, first);
  }
  Loader loader(val, loader_options(options, false));
  ConfusionMatrix confusion(val->classes().num_classes(), val->classes().ignore_index);
  torch::NoGradGuard no_grad;
  Batch batch;
  while (loader.next(batch)) {
    if (!batch.masks.defined()) continue;  // unlabeled images cannot be scored
    auto features = dense_features(backbone, batch.images.to(options.device));
    auto logits = head->forward(features, batch.images.size(2), batch.images.size(3));
    confusion.process(logits.argmax(1).cpu(), batch.masks);
  }
  return confusion;
}

}  // namespace

nlohmann::json seg_linear_probe(BackboneImpl& backbone, SegDatasetPtr train, SegDatasetPtr val,
                                const SegProbeOptions& options) {
  if (train->classes().num_classes() != val->classes().num_classes())
    throw_usage("seg-linear probe: training and validation splits have different class counts");
  EvalModeGuard eval(backbone);
  torch::manual_seed(options.seed);  // the head's init
  LinearSegHead head(embedding_dim(backbone), train->classes().num_classes());
  head->to(options.device);
  const double loss = train_head(backbone, head, train, options);
  head->eval();
  nlohmann::json out = metrics_json(score_head(backbone, head, val, options).compute(), val->classes());
  out["final_loss"] = loss;
  return out;
}

nlohmann::json seg_linear_probe(BackboneImpl& backbone, const Config& config, c10::Device device) {
  SegProbeOptions options;
  options.iters = positive<int64_t>(config, "probe.seg_iters");
  options.lr = positive<double>(config, "probe.seg_lr");
  options.batch_size = positive<int>(config, "probe.seg_batch_size");
  options.train_augment = train_augment_from(config);
  options.eval_augment = eval_augment_from(config);
  options.mean = config_triple(config, "data.mean");
  options.std = config_triple(config, "data.std");
  options.seed = static_cast<uint64_t>(config.get<int64_t>("seed"));
  options.workers = positive<int>(config, "data.workers");
  options.max_eval_images = config.get<int64_t>("eval.max_images");
  options.device = device;
  auto train = open_dataset(config, "train");
  auto val = open_dataset(config, "val");
  spdlog::info("seg-linear probe: {} training / {} validation images, {} iterations", train->size(), val->size(),
               options.iters);
  return seg_linear_probe(backbone, train, val, options);
}

}  // namespace lesseg
