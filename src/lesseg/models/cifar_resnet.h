#pragma once
// CIFAR ResNet-20/32/44/56 (He et al. 2016, section 4.2): 3 stages of 16/32/64 channels on 32x32
// inputs, parameter-free "option A" shortcuts (subsample + zero-pad channels). Parameter names follow
// the widely used akamaster/pytorch_resnet_cifar10 checkpoints (conv1, bn1, layer{1-3}.{j}.conv{1,2} /
// bn{1,2}, linear) so those files load by name.
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace lesseg {

struct CifarResNetOptions {
  /// Depth 6n+2: 20, 32, 44, 56, 110. Default 20.
  TORCH_ARG(int, depth) = 20;
  /// Classes. Default 10.
  TORCH_ARG(int64_t, num_classes) = 10;
};

class CifarResNetImpl : public torch::nn::Module {
 public:
  explicit CifarResNetImpl(const CifarResNetOptions& options = {});
  // images [B,3,32,32] (normalized) -> logits [B,num_classes]
  torch::Tensor forward(const torch::Tensor& images);

 private:
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr};
  torch::nn::Linear linear{nullptr};
};
TORCH_MODULE(CifarResNet);

}  // namespace lesseg
