#pragma once
// DeepLabV2 head (Chen et al. 2017, ASPP-L as used by AdaptSegNet / DACS / CONFETI): four parallel
// 3x3 convs with dilations 6, 12, 18, 24 from the deepest feature straight to class logits, summed,
// then resized bilinearly to the input. Parameter names conv2d_list.{i}.{weight,bias} (the reference's
// Classifier_Module). The paper setting is ResNet-101 at output stride 8.
#include <vector>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include "lesseg/models/backbone.h"

namespace lesseg {

struct DeepLabV2Options {
  DeepLabV2Options(std::vector<FeatureSpec> encoder, int64_t num_classes)
      : encoder_(std::move(encoder)), num_classes_(num_classes) {}
  /// Encoder feature specs, shallowest first; the head reads the last one.
  TORCH_ARG(std::vector<FeatureSpec>, encoder);
  /// Output classes.
  TORCH_ARG(int64_t, num_classes);
  /// Dilation (= padding) of each 3x3 branch. Default {6, 12, 18, 24}.
  TORCH_ARG(std::vector<int64_t>, rates) = std::vector<int64_t>{6, 12, 18, 24};
};

class DeepLabV2Impl : public DecoderImpl {
 public:
  explicit DeepLabV2Impl(DeepLabV2Options options);
  void reset();
  // Sum of the branches at the feature's resolution.
  torch::Tensor logits(const torch::Tensor& deepest);
  torch::Tensor decode(const std::vector<torch::Tensor>& features, int64_t height, int64_t width) override;

  DeepLabV2Options options;
  torch::nn::ModuleList conv2d_list{nullptr};
};
TORCH_MODULE(DeepLabV2);

}  // namespace lesseg
