#include "lesseg/models/deeplabv3plus.h"

#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/nn/functional.h"

namespace lesseg {
namespace nn = torch::nn;

namespace {
nn::Sequential conv_bn_relu(int64_t in, int64_t out, int64_t kernel, int64_t dilation = 1) {
  return nn::Sequential(
      nn::Conv2d(nn::Conv2dOptions(in, out, kernel).padding(kernel / 2 * dilation).dilation(dilation).bias(false)),
      nn::BatchNorm2d(out), nn::ReLU(true));
}
}  // namespace

DeepLabV3PlusImpl::DeepLabV3PlusImpl(DeepLabV3PlusOptions options_) : options(std::move(options_)) { reset(); }

void DeepLabV3PlusImpl::reset() {
  const auto& encoder = options.encoder();
  auto low = std::find_if(encoder.begin(), encoder.end(), [](const FeatureSpec& s) { return s.stride == 4; });
  if (low == encoder.end()) throw_usage("DeepLabV3+ needs a stride-4 feature from the backbone");
  low_level_index_ = static_cast<size_t>(low - encoder.begin());
  const int64_t in = encoder.back().channels, c = options.channels();
  // ref: Chen et al. 2018 (DeepLabV3+), ASPP = 1x1 + atrous 3x3 per rate + image pooling
  aspp = register_module("aspp", nn::ModuleList());
  aspp->push_back(conv_bn_relu(in, c, 1));
  for (int64_t rate : options.rates()) aspp->push_back(conv_bn_relu(in, c, 3, rate));
  aspp->push_back(conv_bn_relu(in, c, 1));  // applied to the globally pooled feature
  const int64_t branches = static_cast<int64_t>(options.rates().size()) + 2;
  aspp_project = register_module("aspp_project", conv_bn_relu(branches * c, c, 1));
  low_level = register_module("low_level", conv_bn_relu(low->channels, options.low_level_channels(), 1));
  fuse = register_module("fuse", conv_bn_relu(c + options.low_level_channels(), c, 3));
  nn::Sequential second = conv_bn_relu(c, c, 3);  // kept alive while its modules are moved over
  for (const auto& module : *second) fuse->push_back(module);
  classifier = register_module("classifier", nn::Conv2d(nn::Conv2dOptions(c, options.num_classes(), 1)));
}

torch::Tensor DeepLabV3PlusImpl::decode(const std::vector<torch::Tensor>& features, int64_t height, int64_t width) {
  const torch::Tensor& deep = features.back();
  std::vector<torch::Tensor> branches;
  const size_t n = aspp->size();
  for (size_t i = 0; i + 1 < n; ++i) branches.push_back(aspp->ptr<nn::SequentialImpl>(i)->forward(deep));
  auto pooled = aspp->ptr<nn::SequentialImpl>(n - 1)->forward(torch::adaptive_avg_pool2d(deep, {1, 1}));
  branches.push_back(pooled.expand({-1, -1, deep.size(2), deep.size(3)}));
  auto x = aspp_project->forward(torch::cat(branches, 1));
  auto skip = low_level->forward(features[low_level_index_]);
  x = resize_bilinear(x, skip.size(2), skip.size(3));
  x = fuse->forward(torch::cat({x, skip}, 1));
  return resize_bilinear(classifier(x), height, width);
}

}  // namespace lesseg
