#pragma once
// DeepLabV3+ decoder: ASPP on the deepest feature + a projected stride-4 skip, two 3x3 convs.
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include "lesseg/models/backbone.h"

namespace lesseg {

struct DeepLabV3PlusOptions {
  DeepLabV3PlusOptions(std::vector<FeatureSpec> encoder, int64_t num_classes)
      : encoder_(std::move(encoder)), num_classes_(num_classes) {}
  /// Encoder feature specs, shallowest first; the stride-4 one is the low-level skip.
  TORCH_ARG(std::vector<FeatureSpec>, encoder);
  TORCH_ARG(int64_t, num_classes);
  /// ASPP atrous rates (at output stride 16). Default {6, 12, 18}.
  TORCH_ARG(std::vector<int64_t>, rates) = std::vector<int64_t>{6, 12, 18};
  /// ASPP and decoder width. Default 256.
  TORCH_ARG(int64_t, channels) = 256;
  /// Low-level skip projection width. Default 48.
  TORCH_ARG(int64_t, low_level_channels) = 48;
};

class DeepLabV3PlusImpl : public DecoderImpl {
 public:
  explicit DeepLabV3PlusImpl(DeepLabV3PlusOptions options);
  void reset();
  torch::Tensor decode(const std::vector<torch::Tensor>& features, int64_t height, int64_t width) override;

  DeepLabV3PlusOptions options;

 private:
  torch::nn::ModuleList aspp{nullptr};  // 1x1, one 3x3 per rate, image pooling branch
  torch::nn::Sequential aspp_project{nullptr}, low_level{nullptr}, fuse{nullptr};
  torch::nn::Conv2d classifier{nullptr};
  size_t low_level_index_ = 1;
};
TORCH_MODULE(DeepLabV3Plus);

}  // namespace lesseg
