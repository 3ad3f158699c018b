#pragma once
// Self-supervised projection heads: SimCLR's MLP and DINO's head (facebookresearch/dino DINOHead
// key names: mlp.0, mlp.2, mlp.4, last_layer.weight_g, last_layer.weight_v).
#include <vector>

#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

namespace lesseg {

struct ProjectionHeadOptions {
  /// Input width (the backbone's feature width). Default 2048 (ResNet-50).
  TORCH_ARG(int64_t, in_dim) = 2048;
  /// Hidden width. Default 2048.
  TORCH_ARG(int64_t, hidden_dim) = 2048;
  /// Output width. Default 128.
  TORCH_ARG(int64_t, out_dim) = 128;
  /// Linear layers (>= 1); all but the last are followed by BatchNorm1d (when batch_norm) and ReLU. Default 2.
  TORCH_ARG(int64_t, num_layers) = 2;
  /// BatchNorm after the hidden Linear layers (which then have no bias). Default true.
  TORCH_ARG(bool, batch_norm) = true;
};

// ref: SimCLR (Chen et al. 2020) section 2.1 / SimCLR v2: Linear-BN-ReLU ... Linear, registered
// as `mlp.{i}` (with BN: mlp.0 Linear, mlp.1 BN, mlp.2 ReLU, mlp.3 Linear).
class ProjectionHeadImpl : public torch::nn::Module {
 public:
  explicit ProjectionHeadImpl(const ProjectionHeadOptions& options = {});
  void reset();
  torch::Tensor forward(const torch::Tensor& x);  // [B, in_dim] -> [B, out_dim] (not normalized)

  ProjectionHeadOptions options;
  torch::nn::Sequential mlp{nullptr};
};
TORCH_MODULE(ProjectionHead);

struct DinoHeadOptions {
  /// Input width (the ViT's embed_dim). Default 384 (ViT-S).
  TORCH_ARG(int64_t, in_dim) = 384;
  /// Prototypes K. Default 65536.
  TORCH_ARG(int64_t, out_dim) = 65536;
  /// Hidden width of the MLP. Default 2048.
  TORCH_ARG(int64_t, hidden_dim) = 2048;
  /// Bottleneck width (the MLP's output, L2-normalized). Default 256.
  TORCH_ARG(int64_t, bottleneck_dim) = 256;
  /// Linear layers in the MLP (>= 1), GELU between them. Default 3.
  TORCH_ARG(int64_t, num_layers) = 3;
  /// BatchNorm1d after each hidden Linear (DINO's use_bn). Default false.
  TORCH_ARG(bool, use_bn) = false;
  /// Keep last_layer.weight_g at 1 and untrained (DINO's norm_last_layer). Default true.
  TORCH_ARG(bool, norm_last_layer) = true;
};

// The weight-normalized Linear without bias: weight = g * v / ||v|| per output row
// (torch.nn.utils.weight_norm(dim=0) names: weight_g [K, 1], weight_v [K, in]).
class WeightNormLinearImpl : public torch::nn::Module {
 public:
  WeightNormLinearImpl(int64_t in, int64_t out, bool train_g);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight() const;  // the effective [K, in] weight

  torch::Tensor weight_g, weight_v;
};
TORCH_MODULE(WeightNormLinear);

// ref: facebookresearch/dino main_dino.py / vision_transformer.py DINOHead:
// mlp -> L2 normalize -> weight-normalized linear to K outputs.
class DinoHeadImpl : public torch::nn::Module {
 public:
  explicit DinoHeadImpl(const DinoHeadOptions& options = {});
  void reset();
  torch::Tensor forward(const torch::Tensor& x);  // [B, in_dim] -> [B, out_dim]

  // The last layer's trainable parameters (weight_v, and weight_g unless norm_last_layer).
  std::vector<torch::Tensor> last_layer_parameters();
  // ref: dino utils.cancel_gradients_last_layer: drop the last layer's gradients after backward
  // (DINO does this during the first epoch), so the optimizer step leaves it unchanged.
  void cancel_last_layer_gradients();

  DinoHeadOptions options;
  torch::nn::Sequential mlp{nullptr};
  WeightNormLinear last_layer{nullptr};
};
TORCH_MODULE(DinoHead);

}  // namespace lesseg
