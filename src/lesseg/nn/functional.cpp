#include "lesseg/nn/functional.h"

#include <torch/torch.h>

namespace lesseg {

void freeze_batchnorm(torch::nn::Module& module) {
  for (const auto& child : module.modules(/*include_self=*/true))
    if (child->as<torch::nn::BatchNorm1d>() || child->as<torch::nn::BatchNorm2d>() || child->as<torch::nn::BatchNorm3d>())
      child->eval();
}

at::Tensor resize_bilinear(const at::Tensor& x, int64_t height, int64_t width) {
  namespace F = torch::nn::functional;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{height, width})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

}  // namespace lesseg
