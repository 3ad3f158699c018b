#pragma once
// The interfaces every backbone and decoder implements, so that decoders and methods do not care
// which backbone they get (ResNet now; ViT and Swin plug in the same way).
#include <memory>
#include <vector>

#include <torch/nn/module.h>

namespace lesseg {

struct FeatureSpec {
  int64_t stride;    // input pixels per feature pixel
  int64_t channels;
};

class BackboneImpl : public torch::nn::Module {
 public:
  // Multi-scale features, shallowest first, matching feature_specs().
  virtual std::vector<torch::Tensor> features(const torch::Tensor& images) = 0;
  virtual std::vector<FeatureSpec> feature_specs() const = 0;
};

class DecoderImpl : public torch::nn::Module {
 public:
  // Per-pixel class logits at the input resolution (height, width).
  virtual torch::Tensor decode(const std::vector<torch::Tensor>& features, int64_t height, int64_t width) = 0;
};

// backbone + decoder: images [B,3,H,W] -> logits [B,C,H,W]. Registered as "backbone" and "decoder".
class SegmenterImpl : public torch::nn::Module {
 public:
  SegmenterImpl(std::shared_ptr<BackboneImpl> backbone, std::shared_ptr<DecoderImpl> decoder);
  torch::Tensor forward(const torch::Tensor& images);
  // forward's two halves, for methods that act on the features between them (UniMatch's feature
  // perturbation, IGL-DT's feature distillation): decode(encode(x), H, W) == forward(x).
  std::vector<torch::Tensor> encode(const torch::Tensor& images);
  torch::Tensor decode(const std::vector<torch::Tensor>& features, int64_t height, int64_t width);
  BackboneImpl& backbone() { return *backbone_; }

 private:
  std::shared_ptr<BackboneImpl> backbone_;
  std::shared_ptr<DecoderImpl> decoder_;
};
TORCH_MODULE(Segmenter);

}  // namespace lesseg
