#include "lesseg/models/embedding.h"

#include <torch/torch.h>

#include "lesseg/models/vit.h"

namespace lesseg {

torch::Tensor global_embedding(BackboneImpl& backbone, const torch::Tensor& images) {
  if (auto* vit = dynamic_cast<VitImpl*>(&backbone)) return vit->forward_tokens(images).cls();
  return backbone.features(images).back().mean({2, 3});
}

torch::Tensor dense_features(BackboneImpl& backbone, const torch::Tensor& images) {
  return backbone.features(images).back();  // a ViT's features are its patch tokens on their grid
}

int64_t embedding_dim(const BackboneImpl& backbone) { return backbone.feature_specs().back().channels; }

}  // namespace lesseg
