#pragma once
// Swin Transformer v1 with torchvision's swin_t parameter names, so torchvision weights load by name:
// features.0.{0,2} (patch conv, LayerNorm), features.{1,3,5,..}.{j} (Swin blocks: norm1,
// attn.{qkv, proj, relative_position_bias_table, relative_position_index}, norm2, mlp.{0,3}),
// features.{2,4,6,..}.{reduction, norm} (patch merging), norm, head (optional).
// Tensors inside the blocks are channels-last [B,H,W,C], as in torchvision; features() returns NCHW.
#include <vector>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "lesseg/models/backbone.h"

namespace lesseg {

struct SwinOptions {
  /// Patch-embedding width = stage-1 channels (doubles at every stage). Default 96.
  TORCH_ARG(int64_t, embed_dim) = 96;
  /// Swin blocks per stage. Default {2, 2, 6, 2}.
  TORCH_ARG(std::vector<int64_t>, depths) = std::vector<int64_t>{2, 2, 6, 2};
  /// Attention heads per stage. Default {3, 6, 12, 24}.
  TORCH_ARG(std::vector<int64_t>, num_heads) = std::vector<int64_t>{3, 6, 12, 24};
  /// Side of the square attention window. Default 7.
  TORCH_ARG(int64_t, window_size) = 7;
  /// MLP hidden width over block width. Default 4.0.
  TORCH_ARG(double, mlp_ratio) = 4.0;
  /// Patch side (the embedding conv's kernel and stride). Default 4.
  TORCH_ARG(int64_t, patch_size) = 4;
  /// Classifier outputs; 0 = no head (a pure backbone). Default 0.
  TORCH_ARG(int64_t, num_classes) = 0;
};

// Swin-T: embed 96, depths 2,2,6,2, heads 3,6,12,24, window 7 (torchvision swin_t).
inline SwinOptions swin_tiny() { return SwinOptions(); }

// Window multi-head self-attention with relative position bias; shifted (with the attention mask)
// when shift_size > 0. Input and output [B,H,W,C]; pads H and W to window multiples internally.
class ShiftedWindowAttentionImpl : public torch::nn::Module {
 public:
  ShiftedWindowAttentionImpl(int64_t dim, int64_t num_heads, int64_t window_size, int64_t shift_size);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  torch::Tensor relative_position_bias_table;  // [(2W-1)^2, heads]
  torch::Tensor relative_position_index;       // [W^4] int64 buffer

 private:
  int64_t num_heads_, window_size_, shift_size_;
};
TORCH_MODULE(ShiftedWindowAttention);

// Pre-norm block: x + attn(norm1(x)), then x + mlp(norm2(x)); mlp = Linear, GELU, Dropout, Linear, Dropout.
class SwinBlockImpl : public torch::nn::Module {
 public:
  SwinBlockImpl(int64_t dim, int64_t num_heads, int64_t window_size, int64_t shift_size, double mlp_ratio);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  ShiftedWindowAttention attn{nullptr};
  torch::nn::Sequential mlp{nullptr};
};
TORCH_MODULE(SwinBlock);

// A stage's blocks, alternating plain and shifted windows (shift = window / 2 on odd blocks).
torch::nn::ModuleList make_swin_blocks(int64_t dim, int64_t depth, int64_t num_heads, int64_t window_size,
                                       double mlp_ratio);
// Runs the blocks of a list built by make_swin_blocks on [B,H,W,C].
torch::Tensor run_swin_blocks(const torch::nn::ModuleListImpl& blocks, torch::Tensor x);

// [B,H,W,C] -> [B,ceil(H/2),ceil(W/2),2C]: 2x2 neighbours concatenated (odd sizes zero-padded), norm, reduce.
class PatchMergingImpl : public torch::nn::Module {
 public:
  explicit PatchMergingImpl(int64_t dim);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear reduction{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(PatchMerging);

class SwinImpl : public BackboneImpl {
 public:
  explicit SwinImpl(const SwinOptions& options = {});
  void reset();
  // Stage outputs (before the final norm) at strides 4, 8, 16, 32 for Swin-T, NCHW.
  std::vector<torch::Tensor> features(const torch::Tensor& images) override;
  std::vector<FeatureSpec> feature_specs() const override;
  // Classification logits: features, norm, global average pool, head (requires num_classes > 0).
  torch::Tensor forward(const torch::Tensor& images);

  // Pieces for models built on the encoder (SwinUnet); all channels-last [B,H,W,C].
  torch::Tensor embed(const torch::Tensor& images);             // features.0
  torch::Tensor run_stage(size_t stage, const torch::Tensor& x);  // features.{2*stage+1}
  torch::Tensor merge(size_t stage, const torch::Tensor& x);      // features.{2*stage+2}
  size_t num_stages() const { return options.depths().size(); }

  SwinOptions options;
  torch::nn::LayerNorm norm{nullptr};

 private:
  torch::nn::ModuleList stages_{nullptr};  // registered as "features"
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Swin);

}  // namespace lesseg
