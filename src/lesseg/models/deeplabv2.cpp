#include "lesseg/models/deeplabv2.h"

#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/nn/functional.h"

namespace lesseg {
namespace nn = torch::nn;

DeepLabV2Impl::DeepLabV2Impl(DeepLabV2Options options_) : options(std::move(options_)) { reset(); }

void DeepLabV2Impl::reset() {
  if (options.encoder().empty()) throw_usage("DeepLabV2 needs at least one encoder feature");
  if (options.rates().empty()) throw_usage("DeepLabV2 needs at least one dilation rate");
  if (options.num_classes() < 1) throw_usage("DeepLabV2 needs at least one class");
  const int64_t in = options.encoder().back().channels;
  conv2d_list = register_module("conv2d_list", nn::ModuleList());
  for (int64_t rate : options.rates()) {
    // ref: AdaptSegNet / CONFETI deeplab Classifier_Module: 3x3, padding = dilation, bias, weight N(0, 0.01)
    nn::Conv2d conv(nn::Conv2dOptions(in, options.num_classes(), 3).padding(rate).dilation(rate).bias(true));
    {
      torch::NoGradGuard no_grad;
      conv->weight.normal_(0.0, 0.01);
    }
    conv2d_list->push_back(conv);
  }
}

torch::Tensor DeepLabV2Impl::logits(const torch::Tensor& deepest) {
  auto out = conv2d_list->ptr<nn::Conv2dImpl>(0)->forward(deepest);
  for (size_t i = 1; i < conv2d_list->size(); ++i) out = out + conv2d_list->ptr<nn::Conv2dImpl>(i)->forward(deepest);
  return out;
}

torch::Tensor DeepLabV2Impl::decode(const std::vector<torch::Tensor>& features, int64_t height, int64_t width) {
  return resize_bilinear(logits(features.back()), height, width);
}

}  // namespace lesseg
