#include "lesseg/models/swinunet.h"

#include <torch/torch.h>

#include "lesseg/core/error.h"

namespace lesseg {
namespace nn = torch::nn;
using torch::indexing::None;
using torch::indexing::Slice;

namespace {

nn::LayerNorm layer_norm(int64_t dim) { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-5)); }

// ref: Swin-Unet SwinTransformerSys._init_weights: Linear trunc_normal(std 0.02), bias 0.
void init_linear(nn::Linear& linear) {
  torch::NoGradGuard no_grad;
  linear->weight.normal_(0.0, 0.02).clamp_(-2.0, 2.0);
  if (linear->bias.defined()) linear->bias.zero_();
}

torch::Tensor to_channels_last(const torch::Tensor& x) { return x.permute({0, 2, 3, 1}); }

// One decoder stage: Swin blocks, then a x2 patch expanding (halving the width) unless it is the last.
struct SwinUpStageImpl : nn::Module {
  SwinUpStageImpl(int64_t dim, int64_t depth, int64_t num_heads, int64_t window_size, double mlp_ratio,
                  bool upsample_)
      : blocks(register_module("blocks", make_swin_blocks(dim, depth, num_heads, window_size, mlp_ratio))) {
    if (upsample_) upsample = register_module("upsample", PatchExpand(dim, 2, dim / 2));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = run_swin_blocks(*blocks, x);
    return upsample ? upsample(x) : x;
  }
  nn::ModuleList blocks;
  PatchExpand upsample{nullptr};
};
TORCH_MODULE(SwinUpStage);

}  // namespace

// ---------------------------------------------------------------------------------------------
SwinUnetEncoderImpl::SwinUnetEncoderImpl(const SwinOptions& options_)
    : SwinImpl(SwinOptions(options_).num_classes(0)) {}

int64_t SwinUnetEncoderImpl::size_multiple() const {
  return options.patch_size() << (num_stages() - 1);
}

// ref: Swin-Unet forward_features: x_downsample collects each layer's input (patch embedding, then
// the patch-merging outputs), and the bottleneck is norm(last layer's output).
std::vector<torch::Tensor> SwinUnetEncoderImpl::features(const torch::Tensor& images) {
  const int64_t multiple = size_multiple();
  const int64_t pad_bottom = (multiple - images.size(2) % multiple) % multiple;
  const int64_t pad_right = (multiple - images.size(3) % multiple) % multiple;
  auto x = embed(pad_bottom + pad_right > 0 ? torch::constant_pad_nd(images, {0, pad_right, 0, pad_bottom}) : images);
  std::vector<torch::Tensor> out;
  for (size_t s = 0; s < num_stages(); ++s) {
    if (s > 0) x = merge(s - 1, x);
    if (s + 1 < num_stages()) out.push_back(x.permute({0, 3, 1, 2}));
    x = run_stage(s, x);
  }
  out.push_back(norm(x).permute({0, 3, 1, 2}));
  return out;
}

// ---------------------------------------------------------------------------------------------
PatchExpandImpl::PatchExpandImpl(int64_t dim, int64_t scale, int64_t out_dim) : scale_(scale), out_dim_(out_dim) {
  expand = register_module("expand", nn::Linear(nn::LinearOptions(dim, scale * scale * out_dim).bias(false)));
  norm = register_module("norm", layer_norm(out_dim));
  init_linear(expand);
}

// ref: Swin-Unet PatchExpand / FinalPatchExpand_X4: rearrange 'b h w (p1 p2 c) -> b (h p1) (w p2) c'.
torch::Tensor PatchExpandImpl::forward(const torch::Tensor& input) {
  const int64_t b = input.size(0), h = input.size(1), w = input.size(2), s = scale_;
  auto x = expand(input)
               .view({b, h, w, s, s, out_dim_})
               .permute({0, 1, 3, 2, 4, 5})
               .reshape({b, h * s, w * s, out_dim_});
  return norm(x);
}

// ---------------------------------------------------------------------------------------------
SwinUnetDecoderImpl::SwinUnetDecoderImpl(SwinUnetDecoderOptions options_) : options(std::move(options_)) {
  reset();
}

void SwinUnetDecoderImpl::reset() {
  const auto& encoder = options.encoder();
  const auto stages = static_cast<int64_t>(encoder.depths().size());
  const auto& depths = options.decoder_depths();
  if (static_cast<int64_t>(depths.size()) != stages)
    throw_usage("SwinUnet: decoder_depths needs one entry per encoder stage (" + std::to_string(stages) +
                "), got " + std::to_string(depths.size()));
  if (options.num_classes() < 1) throw_usage("SwinUnet needs at least one class");
  const int64_t c = encoder.embed_dim();
  // ref: Swin-Unet SwinTransformerSys.__init__ (layers_up, concat_back_dim, norm_up, up, output);
  // decoder stage i works at encoder stage k = stages - 1 - i.
  layers_up = register_module("layers_up", nn::ModuleList());
  concat_back_dim = register_module("concat_back_dim", nn::ModuleList());
  for (int64_t i = 0; i < stages; ++i) {
    const int64_t k = stages - 1 - i, dim = c << k;
    layers_up->push_back(SwinUpStage(dim, depths[static_cast<size_t>(k)], encoder.num_heads()[static_cast<size_t>(k)],
                                     encoder.window_size(), encoder.mlp_ratio(), k > 0));
    if (i == 0) {
      concat_back_dim->push_back(nn::Identity());
    } else {
      nn::Linear project(2 * dim, dim);
      init_linear(project);
      concat_back_dim->push_back(project);
    }
  }
  norm_up = register_module("norm_up", layer_norm(c));
  up = register_module("up", PatchExpand(c, encoder.patch_size(), c));
  output = register_module("output", nn::Conv2d(nn::Conv2dOptions(c, options.num_classes(), 1).bias(false)));
}

// ref: Swin-Unet forward_up_features + up_x4
torch::Tensor SwinUnetDecoderImpl::decode(const std::vector<torch::Tensor>& features, int64_t height,
                                          int64_t width) {
  const size_t stages = layers_up->size();
  TORCH_CHECK(features.size() == stages, "SwinUnet decoder expects ", stages, " features, got ", features.size());
  auto x = to_channels_last(features.back());
  for (size_t i = 0; i < stages; ++i) {
    if (i > 0) {
      x = torch::cat({x, to_channels_last(features[stages - 1 - i])}, -1);
      x = concat_back_dim->ptr<nn::LinearImpl>(i)->forward(x);
    }
    x = layers_up->ptr<SwinUpStageImpl>(i)->forward(x);
  }
  x = up(norm_up(x)).permute({0, 3, 1, 2});
  return output(x).index({Slice(), Slice(), Slice(None, height), Slice(None, width)});
}

// ---------------------------------------------------------------------------------------------
Segmenter swin_unet(const SwinUnetOptions& options) {
  auto encoder = std::make_shared<SwinUnetEncoderImpl>(options.encoder());
  auto decoder = std::make_shared<SwinUnetDecoderImpl>(
      SwinUnetDecoderOptions(options.encoder(), options.num_classes()).decoder_depths(options.decoder_depths()));
  return Segmenter(encoder, decoder);
}

}  // namespace lesseg
