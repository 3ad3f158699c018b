#include "lesseg/models/resunet.h"

#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/nn/functional.h"

namespace lesseg {
namespace nn = torch::nn;

namespace {
nn::Sequential conv_bn_relu_x2(int64_t in, int64_t out) {
  auto conv = [](int64_t a, int64_t b) { return nn::Conv2d(nn::Conv2dOptions(a, b, 3).padding(1).bias(false)); };
  return nn::Sequential(conv(in, out), nn::BatchNorm2d(out), nn::ReLU(true), conv(out, out), nn::BatchNorm2d(out),
                        nn::ReLU(true));
}
}  // namespace

UNetDecoderImpl::UNetDecoderImpl(UNetDecoderOptions options_) : options(std::move(options_)) { reset(); }

void UNetDecoderImpl::reset() {
  const auto& encoder = options.encoder();
  const auto& widths = options.channels();
  if (widths.size() != encoder.size())
    throw_usage("ResUnet decoder needs " + std::to_string(encoder.size()) + " widths (one per encoder scale), got " +
                std::to_string(widths.size()));
  blocks = register_module("blocks", nn::ModuleList());
  int64_t in = encoder.back().channels;
  // Stages for skips encoder[n-2] .. encoder[0], then one stage without a skip at full resolution.
  for (size_t stage = 0; stage < widths.size(); ++stage) {
    int64_t skip = stage + 1 < encoder.size() ? encoder[encoder.size() - 2 - stage].channels : 0;
    blocks->push_back(conv_bn_relu_x2(in + skip, widths[stage]));
    in = widths[stage];
  }
  classifier = register_module("classifier", nn::Conv2d(nn::Conv2dOptions(in, options.num_classes(), 1)));
}

torch::Tensor UNetDecoderImpl::decode(const std::vector<torch::Tensor>& features, int64_t height, int64_t width) {
  const size_t n = features.size();
  torch::Tensor x = features.back();
  for (size_t stage = 0; stage < blocks->size(); ++stage) {
    auto block = blocks->ptr<nn::SequentialImpl>(stage);
    if (stage + 1 < n) {
      const torch::Tensor& skip = features[n - 2 - stage];
      if (x.sizes().slice(2) != skip.sizes().slice(2)) x = resize_bilinear(x, skip.size(2), skip.size(3));
      x = block->forward(torch::cat({x, skip}, 1));
    } else {
      x = block->forward(resize_bilinear(x, height, width));
    }
  }
  return classifier(x);
}

}  // namespace lesseg
