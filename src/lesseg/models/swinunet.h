#pragma once
// SwinUnet (Cao et al. 2021; HuCaoFighting/Swin-Unet, swin_transformer_unet_skip_expand_decoder_sys.py):
// a Swin encoder, its final norm as the bottleneck norm, a symmetric decoder of Swin blocks with patch
// expanding, skips concatenated and projected (Linear 2C->C), a final x4 patch expanding and a 1x1 conv.
//
// As a Segmenter: backbone = SwinUnetEncoder (torchvision swin_t names, so swin_t weights without
// `head.*` load into `backbone.` strictly), decoder = SwinUnetDecoder. The encoder's features are the
// reference's skips: the patch embedding (stride 4), the patch-merging outputs at strides 8 and 16
// (the inputs of stages 2 and 3, before their blocks), and norm(stage-4 output) at stride 32.
// Inputs of any size: the encoder zero-pads to a multiple of patch * 2^(stages-1), the decoder crops.
#include <vector>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "lesseg/models/backbone.h"
#include "lesseg/models/swin.h"

namespace lesseg {

struct SwinUnetOptions {
  explicit SwinUnetOptions(int64_t num_classes) : num_classes_(num_classes) {}
  /// Output classes.
  TORCH_ARG(int64_t, num_classes);
  /// Encoder (its num_classes is ignored). Default swin_tiny().
  TORCH_ARG(SwinOptions, encoder) = swin_tiny();
  /// Swin blocks per decoder stage, in encoder order (strides 4, 8, 16, 32); the stride-32 entry
  /// runs at bottleneck width before the first patch expanding (the reference has none there:
  /// its code builds depths[k] blocks per stage, i.e. {2, 2, 6, 0} for Swin-T). Default {2, 2, 2, 1}
  /// (the reference's DECODER_DEPTHS in its lite config).
  TORCH_ARG(std::vector<int64_t>, decoder_depths) = std::vector<int64_t>{2, 2, 2, 1};
};

class SwinUnetEncoderImpl : public SwinImpl {
 public:
  explicit SwinUnetEncoderImpl(const SwinOptions& options);
  std::vector<torch::Tensor> features(const torch::Tensor& images) override;
  // Inputs are padded to a multiple of this.
  int64_t size_multiple() const;
};
TORCH_MODULE(SwinUnetEncoder);

// [B,H,W,C] -> [B,sH,sW,C_out]: Linear(C, s*s*C_out, no bias), pixel rearrangement
// "b h w (p1 p2 c) -> b (h p1) (w p2) c", LayerNorm(C_out). The reference's PatchExpand is
// (C, 2, C/2), its FinalPatchExpand_X4 (C, 4, C).
class PatchExpandImpl : public torch::nn::Module {
 public:
  PatchExpandImpl(int64_t dim, int64_t scale, int64_t out_dim);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear expand{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 private:
  int64_t scale_, out_dim_;
};
TORCH_MODULE(PatchExpand);

struct SwinUnetDecoderOptions {
  SwinUnetDecoderOptions(SwinOptions encoder, int64_t num_classes)
      : encoder_(std::move(encoder)), num_classes_(num_classes) {}
  TORCH_ARG(SwinOptions, encoder);
  TORCH_ARG(int64_t, num_classes);
  /// See SwinUnetOptions::decoder_depths. Default {2, 2, 2, 1}.
  TORCH_ARG(std::vector<int64_t>, decoder_depths) = std::vector<int64_t>{2, 2, 2, 1};
};

// Parameter names: layers_up.{i}.blocks.{j}.* (Swin blocks, deepest stage first),
// layers_up.{i}.upsample.{expand,norm} (all but the last), concat_back_dim.{i} (i >= 1; index 0 is an
// identity), norm_up, up.{expand,norm} (final x patch_size expanding), output (1x1 conv, no bias).
class SwinUnetDecoderImpl : public DecoderImpl {
 public:
  explicit SwinUnetDecoderImpl(SwinUnetDecoderOptions options);
  void reset();
  torch::Tensor decode(const std::vector<torch::Tensor>& features, int64_t height, int64_t width) override;

  SwinUnetDecoderOptions options;

 private:
  torch::nn::ModuleList layers_up{nullptr}, concat_back_dim{nullptr};
  torch::nn::LayerNorm norm_up{nullptr};
  PatchExpand up{nullptr};
  torch::nn::Conv2d output{nullptr};
};
TORCH_MODULE(SwinUnetDecoder);

// Encoder + decoder as a Segmenter (keys backbone.* / decoder.*).
Segmenter swin_unet(const SwinUnetOptions& options);

}  // namespace lesseg
