#pragma once
// CUT (Park et al. 2020, "Contrastive Learning for Unpaired Image-to-Image Translation"): the
// trained stylizer of CSA. A ResNet generator with 9 blocks, a PatchGAN discriminator, and the
// PatchNCE heads and loss that keep each output patch close to the input patch it came from.
// Module and buffer names follow taesungp/contrastive-unpaired-translation (netG / netD / netF:
// `model.<i>`, `mlp_<layer>`), so its checkpoints can be imported. Images are RGB scaled to [-1, 1]
// (mean and std 0.5).
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

namespace lesseg {

// ref: CUT networks.py Downsample / Upsample (anti-aliased, after Zhang 2019): a [1, 2, 1] blur then
// stride 2 (reflect padding); a [1, 3, 3, 1] transposed blur at stride 2 (replicate padding).
class BlurDownsampleImpl : public torch::nn::Module {
 public:
  explicit BlurDownsampleImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::Tensor filt_;
};
TORCH_MODULE(BlurDownsample);

class BlurUpsampleImpl : public torch::nn::Module {
 public:
  explicit BlurUpsampleImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::Tensor filt_;
};
TORCH_MODULE(BlurUpsample);

struct CutGeneratorOptions {
  TORCH_ARG(int64_t, ngf) = 64;
  TORCH_ARG(int64_t, blocks) = 9;
};

// ReflectionPad 3, conv 7x7, two stride-2 downsamplings, `blocks` residual blocks, two
// upsamplings, conv 7x7, tanh; InstanceNorm without affine parameters throughout.
class CutGeneratorImpl : public torch::nn::Module {
 public:
  explicit CutGeneratorImpl(const CutGeneratorOptions& options = {});
  torch::Tensor forward(const torch::Tensor& x);
  // The outputs of the layers CUT's PatchNCE reads (nce_layers 0, 4, 8, 12, 16: the padded input,
  // the first and second downsampling convs, the first and fifth residual blocks), encoder only.
  std::vector<torch::Tensor> encode(const torch::Tensor& x);
  std::vector<int64_t> encoder_channels() const;

  CutGeneratorOptions options;
  torch::nn::Sequential model{nullptr};
};
TORCH_MODULE(CutGenerator);

// PatchGAN with 3 layers (70x70 receptive field), anti-aliased, InstanceNorm: a map of real / fake
// scores.
class PatchDiscriminatorImpl : public torch::nn::Module {
 public:
  explicit PatchDiscriminatorImpl(int64_t ndf = 64);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Sequential model{nullptr};
};
TORCH_MODULE(PatchDiscriminator);

// netF (mlp_sample): per encoder layer, `patches` positions drawn at random (the same positions for
// the real and the generated image: pass the ids back), each feature through Linear-ReLU-Linear to
// 256-d, L2-normalized.
class PatchSamplerImpl : public torch::nn::Module {
 public:
  PatchSamplerImpl(const std::vector<int64_t>& channels, int64_t dim = 256);
  // features: one [B, C_l, H_l, W_l] per layer; ids: empty (draw) or the draw to reuse.
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& features, int64_t patches,
                                     std::vector<torch::Tensor>& ids);

 private:
  std::vector<torch::nn::Sequential> mlps_;
};
TORCH_MODULE(PatchSampler);

// ref: CUT PatchNCELoss (negatives from the same image only): for query q_i (generated patch) and
// key k_i (the input patch, detached), logits [q_i·k_i, q_i·k_j (j != i, same image)] / tau (the
// diagonal of the negatives set to -10 / tau), cross-entropy towards the positive; one value per
// patch [B P]. q, k: [B P, D] rows, unit length.
torch::Tensor patch_nce_loss(const torch::Tensor& q, const torch::Tensor& k, int64_t batch, double tau = 0.07);

// LSGAN: mean squared distance of the discriminator's scores to 1 (real) or 0 (fake).
torch::Tensor lsgan_loss(const torch::Tensor& scores, bool real);

}  // namespace lesseg
