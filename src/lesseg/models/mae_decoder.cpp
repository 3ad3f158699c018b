#include "lesseg/models/mae_decoder.h"

#include <torch/torch.h>

#include "lesseg/core/error.h"

namespace lesseg {
namespace nn = torch::nn;

MaeDecoderOptions mae_decoder_for(const VitOptions& encoder) {
  return MaeDecoderOptions(encoder.embed_dim())
      .patch_size(encoder.patch_size())
      .img_size(encoder.img_size())
      .in_chans(encoder.in_chans());
}

MaeDecoderImpl::MaeDecoderImpl(const MaeDecoderOptions& options_) : options(options_) { reset(); }

void MaeDecoderImpl::reset() {
  const auto& o = options;
  if (o.patch_size() <= 0 || o.img_size() % o.patch_size() != 0)
    throw_usage("MAE decoder img_size " + std::to_string(o.img_size()) + " must be a multiple of the patch size " +
                std::to_string(o.patch_size()));
  const int64_t D = o.embed_dim(), side = o.img_size() / o.patch_size();
  mask_token = register_parameter("mask_token", torch::zeros({1, 1, D}));
  decoder_embed = register_module("decoder_embed", nn::Linear(o.encoder_dim(), D));
  // ref: MAE keeps it as a frozen parameter; a buffer here (same state-dict key, not trained)
  decoder_pos_embed = register_buffer("decoder_pos_embed", sincos_pos_embed_2d(D, side, side, true));
  decoder_blocks = register_module("decoder_blocks", nn::ModuleList());
  block_list_.clear();
  for (int64_t i = 0; i < o.depth(); ++i) {
    block_list_.emplace_back(D, o.num_heads(), o.mlp_ratio());
    decoder_blocks->push_back(block_list_.back());
  }
  decoder_norm = register_module("decoder_norm", nn::LayerNorm(nn::LayerNormOptions({D}).eps(1e-6)));
  decoder_pred = register_module("decoder_pred", nn::Linear(D, o.patch_size() * o.patch_size() * o.in_chans()));

  // ref: MAE initialize_weights: mask_token normal(.02), Linear xavier_uniform / zero bias, LayerNorm 1 / 0
  torch::NoGradGuard no_grad;
  mask_token.normal_(0.0, 0.02);
  init_mae_linear_and_norm(*this);
}

torch::Tensor MaeDecoderImpl::forward(const torch::Tensor& latent, const torch::Tensor& ids_restore, int64_t grid_h,
                                      int64_t grid_w) {
  const int64_t B = latent.size(0), N = ids_restore.size(1), D = options.embed_dim();
  const int64_t side = options.img_size() / options.patch_size();
  if (grid_h <= 0 || grid_w <= 0) grid_h = grid_w = side;
  TORCH_CHECK(grid_h * grid_w == N, "MAE decoder: ", N, " patches do not fill a ", grid_h, "x", grid_w, " grid");
  TORCH_CHECK(latent.size(1) >= 1 && latent.size(1) - 1 <= N, "MAE decoder: latent ", latent.sizes(),
              " does not fit ", N, " patches");
  auto pos = grid_h == side && grid_w == side
                 ? decoder_pos_embed
                 : sincos_pos_embed_2d(D, grid_h, grid_w, true).to(latent.device(), decoder_pos_embed.scalar_type());
  // ref: MAE forward_decoder: embed, append mask tokens, unshuffle with ids_restore, CLS back in front
  auto x = decoder_embed(latent);
  auto fill = mask_token.expand({B, N + 1 - x.size(1), D});
  auto patches = torch::cat({x.narrow(1, 1, x.size(1) - 1), fill}, 1);
  patches = torch::gather(patches, 1, ids_restore.to(x.device()).unsqueeze(-1).expand({B, N, D}));
  x = torch::cat({x.narrow(1, 0, 1), patches}, 1) + pos;
  for (auto& block : block_list_) x = block->forward(x);
  x = decoder_pred(decoder_norm(x));
  return x.narrow(1, 1, N);
}

torch::Tensor patchify(const torch::Tensor& images, int64_t patch) {
  TORCH_CHECK(images.dim() == 4 && images.size(2) % patch == 0 && images.size(3) % patch == 0,
              "patchify needs [B, C, H, W] with H and W multiples of ", patch, ", got ", images.sizes());
  const int64_t B = images.size(0), C = images.size(1), gh = images.size(2) / patch, gw = images.size(3) / patch;
  // ref: MAE patchify: einsum('nchpwq->nhwpqc')
  return images.reshape({B, C, gh, patch, gw, patch})
      .permute({0, 2, 4, 3, 5, 1})
      .reshape({B, gh * gw, patch * patch * C});
}

torch::Tensor unpatchify(const torch::Tensor& patches, int64_t patch, int64_t grid_h, int64_t grid_w) {
  const int64_t B = patches.size(0);
  TORCH_CHECK(patches.dim() == 3 && patches.size(1) == grid_h * grid_w && patches.size(2) % (patch * patch) == 0,
              "unpatchify: ", patches.sizes(), " is not a ", grid_h, "x", grid_w, " grid of ", patch, " px patches");
  const int64_t C = patches.size(2) / (patch * patch);
  return patches.reshape({B, grid_h, grid_w, patch, patch, C})
      .permute({0, 5, 1, 3, 2, 4})
      .reshape({B, C, grid_h * patch, grid_w * patch});
}

torch::Tensor mae_loss(const torch::Tensor& images, const torch::Tensor& pred, const torch::Tensor& mask,
                       int64_t patch, bool norm_pix) {
  auto target = patchify(images, patch);
  TORCH_CHECK(pred.sizes() == target.sizes(), "MAE loss: prediction ", pred.sizes(), " vs target ", target.sizes());
  if (norm_pix) {
    auto mean = target.mean(-1, true);
    auto var = target.var(-1, /*unbiased=*/true, /*keepdim=*/true);
    target = (target - mean) / (var + 1e-6).sqrt();
  }
  auto per_patch = (pred - target).pow(2).mean(-1);
  return (per_patch * mask).sum() / mask.sum();
}

}  // namespace lesseg
