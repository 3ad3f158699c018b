#pragma once
// U-Net decoder over a multi-scale backbone (ResUnet when the backbone is a ResNet): at each scale,
// upsample x2, concatenate the skip feature, then two 3x3 conv-BN-ReLU.
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>

#include "lesseg/models/backbone.h"

namespace lesseg {

struct UNetDecoderOptions {
  UNetDecoderOptions(std::vector<FeatureSpec> encoder, int64_t num_classes)
      : encoder_(std::move(encoder)), num_classes_(num_classes) {}
  /// Encoder feature specs, shallowest first (from the backbone).
  TORCH_ARG(std::vector<FeatureSpec>, encoder);
  /// Output classes.
  TORCH_ARG(int64_t, num_classes);
  /// Decoder widths, deepest stage first; one stage per encoder skip plus a final full-resolution
  /// stage. Default {256, 128, 64, 64, 32}.
  TORCH_ARG(std::vector<int64_t>, channels) = std::vector<int64_t>{256, 128, 64, 64, 32};
};

class UNetDecoderImpl : public DecoderImpl {
 public:
  explicit UNetDecoderImpl(UNetDecoderOptions options);
  void reset();
  torch::Tensor decode(const std::vector<torch::Tensor>& features, int64_t height, int64_t width) override;

  UNetDecoderOptions options;

 private:
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::Conv2d classifier{nullptr};
};
TORCH_MODULE(UNetDecoder);

}  // namespace lesseg
