#pragma once
// Vision Transformer with facebookresearch/dino (and timm / MAE) parameter names, so DINO and MAE
// checkpoints load by name: cls_token, pos_embed, patch_embed.proj, blocks.{i}.{norm1, attn.qkv,
// attn.proj, norm2, mlp.fc1, mlp.fc2}, norm, head.
#include <optional>
#include <vector>

#include <ATen/core/Generator.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "lesseg/models/backbone.h"

namespace lesseg {

enum class PosEmbedKind {
  learned,  // DINO / timm: a trained parameter, bicubically interpolated to other grids
  sincos,   // MAE: fixed 2-D sin-cos (a buffer), recomputed for other grids
};

struct VitOptions {
  /// Patch size p (the patch conv has kernel = stride = p). Default 16.
  TORCH_ARG(int64_t, patch_size) = 16;
  /// Token width D. Default 384 (ViT-S).
  TORCH_ARG(int64_t, embed_dim) = 384;
  /// Number of transformer blocks. Default 12.
  TORCH_ARG(int64_t, depth) = 12;
  /// Attention heads (D must be divisible by it). Default 6.
  TORCH_ARG(int64_t, num_heads) = 6;
  /// MLP hidden width = int(D * mlp_ratio). Default 4.
  TORCH_ARG(double, mlp_ratio) = 4.0;
  /// Square training image size; pos_embed holds (img_size / p)^2 + 1 rows. Default 224.
  TORCH_ARG(int64_t, img_size) = 224;
  /// Input channels. Default 3.
  TORCH_ARG(int64_t, in_chans) = 3;
  /// Classifier outputs on the CLS token; 0 = no `head` (a pure backbone). Default 0.
  TORCH_ARG(int64_t, num_classes) = 0;
  /// Position embedding: learned (DINO) or fixed 2-D sin-cos (MAE). Default learned.
  TORCH_ARG(PosEmbedKind, pos_embed) = PosEmbedKind::learned;
  /// Stochastic depth, rising linearly from 0 to this over the blocks (training only). Default 0.
  TORCH_ARG(double, drop_path_rate) = 0.0;
};

// Presets (depth 12): tiny 192 / 3 heads, small 384 / 6, base 768 / 12.
inline VitOptions vit_tiny(int64_t patch) { return VitOptions().patch_size(patch).embed_dim(192).num_heads(3); }
inline VitOptions vit_small(int64_t patch) { return VitOptions().patch_size(patch).embed_dim(384).num_heads(6); }
inline VitOptions vit_base(int64_t patch) { return VitOptions().patch_size(patch).embed_dim(768).num_heads(12); }

// ---- building blocks (shared with the MAE decoder) ----

// What one attention layer computed, when asked for: all [B, heads, T, head_dim] except
// attention [B, heads, T, T] (softmax rows; row 0 is the CLS token's map).
struct AttentionTrace {
  torch::Tensor q, k, v, attention;
};

// ref: dino/vision_transformer.py Attention (qkv with bias, scale head_dim^-0.5)
class VitAttentionImpl : public torch::nn::Module {
 public:
  VitAttentionImpl(int64_t dim, int64_t num_heads);
  torch::Tensor forward(const torch::Tensor& x, AttentionTrace* trace = nullptr);

  int64_t num_heads;
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(VitAttention);

class VitMlpImpl : public torch::nn::Module {
 public:
  VitMlpImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);  // fc2(gelu(fc1(x))), exact erf GELU

  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(VitMlp);

// Pre-norm block: x + attn(norm1(x)), then x + mlp(norm2(x)); LayerNorm eps 1e-6.
class VitBlockImpl : public torch::nn::Module {
 public:
  VitBlockImpl(int64_t dim, int64_t num_heads, double mlp_ratio, double drop_path = 0.0);
  torch::Tensor forward(const torch::Tensor& x, AttentionTrace* trace = nullptr);

  double drop_path;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  VitAttention attn{nullptr};
  VitMlp mlp{nullptr};
};
TORCH_MODULE(VitBlock);

// `patch_embed.proj`: conv with kernel = stride = patch.
class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(int64_t in_chans, int64_t dim, int64_t patch);
  torch::Tensor forward(const torch::Tensor& images);  // [B, D, H/p, W/p]

  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

// ref: MAE util/pos_embed.py get_2d_sincos_pos_embed, generalized to a grid_h x grid_w grid:
// first D/2 channels encode the column, last D/2 the row; each half is [sin | cos] over
// frequencies 10000^(-i/(D/4)). [1, (cls ? 1 : 0) + grid_h * grid_w, D] float32 with a zero CLS row.
torch::Tensor sincos_pos_embed_2d(int64_t dim, int64_t grid_h, int64_t grid_w, bool cls_token);

// What forward_tokens returns besides the final tokens.
struct VitForwardOptions {
  /// Keep every block's output tokens (before the final norm). Default false.
  TORCH_ARG(bool, block_tokens) = false;
  /// Keep the last block's q, k, v. Default false.
  TORCH_ARG(bool, last_qkv) = false;
  /// Keep the last block's attention maps. Default false.
  TORCH_ARG(bool, last_attention) = false;
};

struct VitOutput {
  torch::Tensor tokens;                     // [B, 1+N, D] after the final norm (CLS first)
  std::vector<torch::Tensor> block_tokens;  // depth x [B, 1+N, D], each block's output, unnormed
  torch::Tensor q, k, v;                    // last block, [B, heads, 1+N, head_dim]
  torch::Tensor attention;                  // last block, [B, heads, 1+N, 1+N]; [:, :, 0, 1:] = DINO maps
  int64_t grid_h = 0, grid_w = 0;           // N = grid_h * grid_w

  torch::Tensor cls() const;           // [B, D]
  torch::Tensor patch_tokens() const;  // [B, N, D]
  torch::Tensor patch_map() const;     // [B, D, grid_h, grid_w]
};

// ref: MAE models_mae.py forward_encoder. mask is 1 for removed patches, 0 for kept ones.
struct MaskedEncoding {
  torch::Tensor latent;       // [B, 1+keep, D] after the final norm (CLS first)
  torch::Tensor mask;         // [B, N] float
  torch::Tensor ids_restore;  // [B, N] int64: kept-then-removed order -> patch order
  int64_t grid_h = 0, grid_w = 0;
};

// ref: MAE models_mae.py random_masking: keep the int(N * (1 - mask_ratio)) patches with the
// smallest noise per sample. x [B, N, D], noise [B, N] -> {x_kept [B, keep, D], mask, ids_restore}.
struct RandomMasking {
  torch::Tensor kept, mask, ids_restore;
};
RandomMasking random_masking(const torch::Tensor& x, double mask_ratio, const torch::Tensor& noise);
int64_t masking_keep_count(int64_t num_patches, double mask_ratio);

class VitImpl : public BackboneImpl {
 public:
  explicit VitImpl(const VitOptions& options = {});
  void reset();

  // DINO's forward: the CLS token after the final norm, [B, D].
  torch::Tensor forward(const torch::Tensor& images);
  // All tokens after the final norm, plus what `what` asks for.
  VitOutput forward_tokens(const torch::Tensor& images, const VitForwardOptions& what = {});
  // head(CLS) (requires num_classes > 0).
  torch::Tensor classify(const torch::Tensor& images);
  // MAE encoder: patches + position embedding, random masking by argsort of `noise` [B, N],
  // then CLS and the blocks on the kept patches only.
  MaskedEncoding forward_masked(const torch::Tensor& images, double mask_ratio, const torch::Tensor& noise);
  // Same with noise ~ U[0,1) drawn from `generator` (its device; the default generator when none).
  MaskedEncoding forward_masked(const torch::Tensor& images, double mask_ratio,
                                std::optional<at::Generator> generator = std::nullopt);

  // Position embedding [1, 1+N, D] for an input of height x width pixels (ref: dino
  // interpolate_pos_encoding for learned; the grid's own sin-cos for sincos).
  torch::Tensor position_embedding(int64_t height, int64_t width);

  // Backbone: the normed patch tokens as one map [B, D, H/p, W/p] at stride p.
  std::vector<torch::Tensor> features(const torch::Tensor& images) override;
  std::vector<FeatureSpec> feature_specs() const override;

  int64_t grid_size() const { return options.img_size() / options.patch_size(); }
  const std::vector<VitBlock>& block_list() const { return block_list_; }

  VitOptions options;

  PatchEmbed patch_embed{nullptr};
  torch::Tensor cls_token, pos_embed;
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear head{nullptr};

 private:
  // Patch tokens [B, N, D] with their position embedding added, and the CLS token with its own.
  std::pair<torch::Tensor, torch::Tensor> embed(const torch::Tensor& images, int64_t* grid_h, int64_t* grid_w);

  std::vector<VitBlock> block_list_;
};
TORCH_MODULE(Vit);

// ref: MAE models_mae.py initialize_weights: xavier-uniform Linear weights (zero bias) and
// flattened patch-embedding weight, cls_token normal(.02), LayerNorm 1 / 0 (DINO's init is the default).
void init_vit_mae(VitImpl& vit);
// The part shared with MAE's decoder: every Linear xavier-uniform with zero bias, LayerNorm 1 / 0.
void init_mae_linear_and_norm(torch::nn::Module& module);

}  // namespace lesseg
