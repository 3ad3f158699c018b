#pragma once
// ResNet v1.5 with torchvision's parameter names (conv1, bn1, layer{1-4}.{j}.conv{k}/bn{k},
// layer{k}.0.downsample.{0,1}, fc), so torchvision weights load by name.
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "lesseg/models/backbone.h"

namespace lesseg {

struct ResNetOptions {
  /// Depth: 18, 34 (basic blocks), 50, 101, 152 (bottlenecks). Default 18.
  TORCH_ARG(int, depth) = 18;
  /// Output stride 32 (plain), 16 (layer4 dilated) or 8 (layer3 and layer4 dilated). Default 32.
  TORCH_ARG(int, output_stride) = 32;
  /// Classifier outputs; 0 = no fc layer (a pure backbone). Default 0.
  TORCH_ARG(int64_t, num_classes) = 0;
};

class ResNetImpl : public BackboneImpl {
 public:
  explicit ResNetImpl(const ResNetOptions& options = {});
  void reset();
  // Features at strides 2 (stem), 4, 8, 16, 32 (strides shrink with dilation).
  std::vector<torch::Tensor> features(const torch::Tensor& images) override;
  std::vector<FeatureSpec> feature_specs() const override;
  // Classification logits (requires num_classes > 0).
  torch::Tensor forward(const torch::Tensor& images);

  ResNetOptions options;

 private:
  torch::nn::Sequential make_layer(int64_t planes, int blocks, int64_t stride, bool dilate);

  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  torch::nn::Linear fc{nullptr};
  int64_t inplanes_ = 64, dilation_ = 1;
  std::vector<FeatureSpec> specs_;
};
TORCH_MODULE(ResNet);

inline ResNetOptions resnet18() { return ResNetOptions().depth(18); }
inline ResNetOptions resnet50() { return ResNetOptions().depth(50); }
inline ResNetOptions resnet101() { return ResNetOptions().depth(101); }

}  // namespace lesseg
