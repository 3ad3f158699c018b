#pragma once
// Small stateless tensor helpers shared by models.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

namespace lesseg {

// Bilinear resize of [B,C,H,W] to (height, width), align_corners = false (as torchvision / mmseg).
at::Tensor resize_bilinear(const at::Tensor& x, int64_t height, int64_t width);

// Puts every BatchNorm layer of `module` in eval mode: it normalizes with its running statistics
// and stops updating them (its affine weight and bias still train). Call after module.train().
void freeze_batchnorm(torch::nn::Module& module);

}  // namespace lesseg
