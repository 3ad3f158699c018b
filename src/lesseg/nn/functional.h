#pragma once
// Small stateless tensor helpers shared by models.
#include <ATen/core/Tensor.h>

namespace lesseg {

// Bilinear resize of [B,C,H,W] to (height, width), align_corners = false (as torchvision / mmseg).
at::Tensor resize_bilinear(const at::Tensor& x, int64_t height, int64_t width);

}  // namespace lesseg
