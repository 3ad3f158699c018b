#pragma once
// What self-supervised methods and feature probes read from any backbone: one vector per image
// (a ViT's CLS token after the final norm, a CNN's globally average-pooled deepest map) and a dense
// map (the deepest feature map; a ViT's patch tokens on their grid).
#include <torch/nn/module.h>

#include "lesseg/models/backbone.h"

namespace lesseg {

torch::Tensor global_embedding(BackboneImpl& backbone, const torch::Tensor& images);  // [B, D]
torch::Tensor dense_features(BackboneImpl& backbone, const torch::Tensor& images);    // [B, D, h, w]
int64_t embedding_dim(const BackboneImpl& backbone);                                  // D

}  // namespace lesseg
