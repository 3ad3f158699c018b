#pragma once
// MAE decoder with facebookresearch/mae key names (mask_token, decoder_embed, decoder_pos_embed,
// decoder_blocks.{i}.*, decoder_norm, decoder_pred), patchify / unpatchify and the MAE loss.
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "lesseg/models/vit.h"

namespace lesseg {

struct MaeDecoderOptions {
  explicit MaeDecoderOptions(int64_t encoder_dim) : encoder_dim_(encoder_dim) {}
  /// Width of the encoder's tokens (the ViT's embed_dim).
  TORCH_ARG(int64_t, encoder_dim);
  /// Patch size of the encoder. Default 16.
  TORCH_ARG(int64_t, patch_size) = 16;
  /// Square training image size (decoder_pos_embed covers its grid). Default 224.
  TORCH_ARG(int64_t, img_size) = 224;
  /// Image channels predicted per pixel. Default 3.
  TORCH_ARG(int64_t, in_chans) = 3;
  /// Decoder width. Default 512.
  TORCH_ARG(int64_t, embed_dim) = 512;
  /// Decoder blocks. Default 8.
  TORCH_ARG(int64_t, depth) = 8;
  /// Decoder attention heads. Default 16.
  TORCH_ARG(int64_t, num_heads) = 16;
  /// MLP hidden width = int(width * mlp_ratio). Default 4.
  TORCH_ARG(double, mlp_ratio) = 4.0;
};

// A decoder sized for an encoder (same patch, image size and channels; MAE's default decoder).
MaeDecoderOptions mae_decoder_for(const VitOptions& encoder);

class MaeDecoderImpl : public torch::nn::Module {
 public:
  explicit MaeDecoderImpl(const MaeDecoderOptions& options);
  void reset();
  // ref: MAE models_mae.py forward_decoder. latent [B, 1+keep, encoder_dim] and ids_restore [B, N]
  // from VitImpl::forward_masked -> predicted pixels [B, N, p*p*C] for every patch (CLS dropped).
  // grid_h x grid_w is the patch grid (0 = the trained one); another grid gets its own sin-cos table.
  torch::Tensor forward(const torch::Tensor& latent, const torch::Tensor& ids_restore, int64_t grid_h = 0,
                        int64_t grid_w = 0);

  MaeDecoderOptions options;

  torch::Tensor mask_token, decoder_pos_embed;
  torch::nn::Linear decoder_embed{nullptr};
  torch::nn::ModuleList decoder_blocks{nullptr};
  torch::nn::LayerNorm decoder_norm{nullptr};
  torch::nn::Linear decoder_pred{nullptr};

 private:
  std::vector<VitBlock> block_list_;
};
TORCH_MODULE(MaeDecoder);

// ref: MAE patchify: [B, C, H, W] -> [B, (H/p)(W/p), p*p*C], row-major patches, each patch's
// pixels row-major with channels last.
torch::Tensor patchify(const torch::Tensor& images, int64_t patch);
// The inverse: [B, gh*gw, p*p*C] -> [B, C, gh*p, gw*p].
torch::Tensor unpatchify(const torch::Tensor& patches, int64_t patch, int64_t grid_h, int64_t grid_w);

// ref: MAE forward_loss: mean squared error per patch, averaged over the masked patches (mask 1).
// norm_pix: targets normalized per patch by their mean and unbiased variance (+1e-6).
torch::Tensor mae_loss(const torch::Tensor& images, const torch::Tensor& pred, const torch::Tensor& mask,
                       int64_t patch, bool norm_pix = true);

}  // namespace lesseg
