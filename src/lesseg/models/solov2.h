#pragma once
// SOLOv2 (Wang et al., arXiv 2003.10152): a single-stage instance segmenter with no RoI operations.
// A backbone + FPN (P2..P6), a kernel / category head on an S x S grid per level and a unified mask
// feature map at 1/4 scale; the kernel predicted at a grid cell is a 1x1 convolution of the mask
// features giving that cell's instance mask. Class-agnostic (num_classes 1) for CutLER-style
// training on pseudo-masks. Facts and sources: docs/design/solov2.md.
#include <memory>
#include <vector>

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include "lesseg/models/backbone.h"

namespace lesseg {

struct Solov2Options {
  /// Grid side S per level P2..P6 (official: 40, 36, 24, 16, 12).
  TORCH_ARG(std::vector<int64_t>, num_grids) = std::vector<int64_t>{40, 36, 24, 16, 12};
  /// FPN width (official 256).
  TORCH_ARG(int64_t, fpn_channels) = 256;
  /// Kernel / category branch width (official 512; the light model 256).
  TORCH_ARG(int64_t, head_channels) = 512;
  /// Convolutions per branch before the prediction layer (official 4; light 2).
  TORCH_ARG(int64_t, stacked_convs) = 4;
  /// Mask feature branch hidden width (official 128).
  TORCH_ARG(int64_t, mask_hidden) = 128;
  /// E, the mask feature channels = the dynamic kernel's length (official 256; light 128).
  TORCH_ARG(int64_t, mask_channels) = 256;
  /// Categories (1: class-agnostic "object").
  TORCH_ARG(int64_t, num_classes) = 1;
  /// GroupNorm groups (official 32; capped at the channel count).
  TORCH_ARG(int64_t, norm_groups) = 32;
};

// The network's raw outputs for a batch.
struct SoloOutput {
  std::vector<at::Tensor> category;  // per level [B, C, S, S] logits
  std::vector<at::Tensor> kernels;   // per level [B, E, S, S]
  at::Tensor mask_features;          // [B, E, H/4, W/4], non-negative
};

// Strides the instance head's levels sit at (P2 halved, P6 resized to P5): 8, 8, 16, 32, 32.
const std::vector<int64_t>& solo_level_strides();

// FPN over the backbone's stride 4, 8, 16, 32 features: P2..P5 (lateral 1x1 + output 3x3 convs,
// nearest top-down upsampling) and P6 = P5 subsampled by 2 (detectron2's LastLevelMaxPool).
class FpnImpl : public torch::nn::Module {
 public:
  FpnImpl(std::vector<int64_t> in_channels, int64_t out_channels);
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& features);

 private:
  torch::nn::ModuleList lateral{nullptr}, output{nullptr};
};
TORCH_MODULE(Fpn);

class Solov2Impl : public torch::nn::Module {
 public:
  Solov2Impl(std::shared_ptr<BackboneImpl> backbone, Solov2Options options);
  // images [B, 3, H, W] with H and W multiples of 32.
  SoloOutput forward(const torch::Tensor& images);
  BackboneImpl& backbone() { return *backbone_; }
  const Solov2Options& options() const { return options_; }

 private:
  SoloOutput heads(const std::vector<torch::Tensor>& pyramid);
  torch::Tensor mask_features(const std::vector<torch::Tensor>& pyramid);

  Solov2Options options_;
  std::shared_ptr<BackboneImpl> backbone_;
  std::vector<size_t> backbone_levels_;  // indices of the stride 4, 8, 16, 32 backbone features
  Fpn fpn{nullptr};
  torch::nn::Sequential kernel_convs{nullptr}, category_convs{nullptr};
  torch::nn::Conv2d kernel_pred{nullptr}, category_pred{nullptr};
  torch::nn::ModuleList mask_levels{nullptr};
  torch::nn::Sequential mask_pred{nullptr};
};
TORCH_MODULE(Solov2);

}  // namespace lesseg
