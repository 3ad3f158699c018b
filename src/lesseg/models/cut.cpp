// ref: taesungp/contrastive-unpaired-translation models/networks.py (ResnetGenerator,
// NLayerDiscriminator, PatchSampleF) and models/patchnce.py, default CUT options (ngf / ndf 64,
// 9 blocks, instance norm, anti-aliasing, nce_layers 0,4,8,12,16, 256 patches, tau 0.07).
#include "lesseg/models/cut.h"

#include <torch/torch.h>

#include "lesseg/core/error.h"

namespace lesseg {
namespace {
namespace nn = torch::nn;

torch::Tensor blur_filter(const std::vector<double>& taps, int64_t channels, double scale) {
  auto a = torch::tensor(taps, torch::kFloat);
  auto filt = a.unsqueeze(1) * a.unsqueeze(0);
  filt = filt / filt.sum() * scale;
  return filt.unsqueeze(0).unsqueeze(0).repeat({channels, 1, 1, 1});
}

nn::InstanceNorm2d instance_norm(int64_t channels) {
  return nn::InstanceNorm2d(nn::InstanceNorm2dOptions(channels).affine(false).track_running_stats(false));
}

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t padding, bool bias = true) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).padding(padding).bias(bias));
}

// CUT's init_type xavier, gain 0.02; biases 0.
void xavier_init(nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor p = item.value();
    if (name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0 && p.dim() >= 2)
      nn::init::xavier_normal_(p, 0.02);
    else if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0)
      p.zero_();
  }
}

// conv_block: ReflectionPad 1, conv 3, norm, ReLU, ReflectionPad 1, conv 3, norm (indices 1 and 5
// are the convs, as CUT's keys); output x + block(x).
class ResnetBlockImpl : public nn::Module {
 public:
  explicit ResnetBlockImpl(int64_t channels) {
    conv_block = register_module(
        "conv_block", nn::Sequential(nn::ReflectionPad2d(1), conv(channels, channels, 3, 0), instance_norm(channels),
                                     nn::ReLU(true), nn::ReflectionPad2d(1), conv(channels, channels, 3, 0),
                                     instance_norm(channels)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return x + conv_block->forward(x); }
  nn::Sequential conv_block{nullptr};
};
TORCH_MODULE(ResnetBlock);

}  // namespace

BlurDownsampleImpl::BlurDownsampleImpl(int64_t channels) {
  filt_ = register_buffer("filt", blur_filter({1, 2, 1}, channels, 1.0));
}

torch::Tensor BlurDownsampleImpl::forward(const torch::Tensor& x) {
  namespace F = torch::nn::functional;
  return F::conv2d(F::pad(x, F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReflect)), filt_,
                   F::Conv2dFuncOptions().stride(2).groups(x.size(1)));
}

BlurUpsampleImpl::BlurUpsampleImpl(int64_t channels) {
  filt_ = register_buffer("filt", blur_filter({1, 3, 3, 1}, channels, 4.0));
}

torch::Tensor BlurUpsampleImpl::forward(const torch::Tensor& x) {
  namespace F = torch::nn::functional;
  auto padded = F::pad(x, F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate));
  auto out = F::conv_transpose2d(padded, filt_, F::ConvTranspose2dFuncOptions().stride(2).padding(2).groups(x.size(1)));
  // CUT crops one leading row / column, and for an even filter one trailing one: exactly 2H x 2W.
  return out.slice(2, 1, out.size(2) - 1).slice(3, 1, out.size(3) - 1);
}

CutGeneratorImpl::CutGeneratorImpl(const CutGeneratorOptions& o) : options(o) {
  const int64_t ngf = o.ngf();
  nn::Sequential m(nn::ReflectionPad2d(3), conv(3, ngf, 7, 0), instance_norm(ngf), nn::ReLU(true));
  for (int64_t i = 0, mult = 1; i < 2; ++i, mult *= 2) {
    m->push_back(conv(ngf * mult, ngf * mult * 2, 3, 1));
    m->push_back(instance_norm(ngf * mult * 2));
    m->push_back(nn::ReLU(true));
    m->push_back(BlurDownsample(ngf * mult * 2));
  }
  for (int64_t b = 0; b < o.blocks(); ++b) m->push_back(ResnetBlock(ngf * 4));
  for (int64_t i = 0, mult = 4; i < 2; ++i, mult /= 2) {
    m->push_back(BlurUpsample(ngf * mult));
    m->push_back(conv(ngf * mult, ngf * mult / 2, 3, 1));
    m->push_back(instance_norm(ngf * mult / 2));
    m->push_back(nn::ReLU(true));
  }
  m->push_back(nn::ReflectionPad2d(3));
  m->push_back(conv(ngf, 3, 7, 0));
  m->push_back(nn::Tanh());
  model = register_module("model", m);
  xavier_init(*this);
}

torch::Tensor CutGeneratorImpl::forward(const torch::Tensor& x) { return model->forward(x); }

std::vector<torch::Tensor> CutGeneratorImpl::encode(const torch::Tensor& x) {
  if (options.blocks() < 5) throw_usage("CUT's PatchNCE reads the fifth residual block: the generator needs >= 5 blocks");
  std::vector<torch::Tensor> out;
  torch::Tensor h = x;
  int64_t index = 0;
  for (auto& layer : *model) {
    h = layer.forward(h);
    if (index == 0 || index == 4 || index == 8 || index == 12 || index == 16) out.push_back(h);
    if (++index > 16) break;
  }
  return out;
}

std::vector<int64_t> CutGeneratorImpl::encoder_channels() const {
  const int64_t ngf = options.ngf();
  return {3, ngf * 2, ngf * 4, ngf * 4, ngf * 4};
}

PatchDiscriminatorImpl::PatchDiscriminatorImpl(int64_t ndf) {
  nn::Sequential m(conv(3, ndf, 4, 1), nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2).inplace(true)),
                   BlurDownsample(ndf));
  int64_t mult = 1;
  for (int64_t n = 1; n < 3; ++n) {
    const int64_t previous = mult;
    mult = std::min<int64_t>(int64_t(1) << n, 8);
    m->push_back(conv(ndf * previous, ndf * mult, 4, 1));
    m->push_back(instance_norm(ndf * mult));
    m->push_back(nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2).inplace(true)));
    m->push_back(BlurDownsample(ndf * mult));
  }
  m->push_back(conv(ndf * mult, ndf * 8, 4, 1));
  m->push_back(instance_norm(ndf * 8));
  m->push_back(nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2).inplace(true)));
  m->push_back(conv(ndf * 8, 1, 4, 1));
  model = register_module("model", m);
  xavier_init(*this);
}

torch::Tensor PatchDiscriminatorImpl::forward(const torch::Tensor& x) { return model->forward(x); }

PatchSamplerImpl::PatchSamplerImpl(const std::vector<int64_t>& channels, int64_t dim) {
  for (size_t l = 0; l < channels.size(); ++l)
    mlps_.push_back(register_module("mlp_" + std::to_string(l),
                                    nn::Sequential(nn::Linear(channels[l], dim), nn::ReLU(), nn::Linear(dim, dim))));
  xavier_init(*this);
}

std::vector<torch::Tensor> PatchSamplerImpl::forward(const std::vector<torch::Tensor>& features, int64_t patches,
                                                     std::vector<torch::Tensor>& ids) {
  if (features.size() != mlps_.size()) throw_usage("PatchSampler: one feature map per layer expected");
  const bool draw = ids.empty();
  std::vector<torch::Tensor> out;
  for (size_t l = 0; l < features.size(); ++l) {
    const auto& f = features[l];
    auto rows = f.permute({0, 2, 3, 1}).flatten(1, 2);  // [B, HW, C]
    if (draw) ids.push_back(torch::randperm(rows.size(1), torch::TensorOptions().dtype(torch::kLong).device(f.device()))
                                .slice(0, 0, std::min(patches, rows.size(1))));
    auto sampled = rows.index_select(1, ids.at(l)).flatten(0, 1);  // [B P, C]
    out.push_back(torch::nn::functional::normalize(mlps_[l]->forward(sampled),
                                                   torch::nn::functional::NormalizeFuncOptions().dim(1)));
  }
  return out;
}

torch::Tensor patch_nce_loss(const torch::Tensor& q, const torch::Tensor& k, int64_t batch, double tau) {
  if (q.sizes() != k.sizes() || q.dim() != 2 || q.size(0) % batch != 0)
    throw_usage("patch_nce_loss: q and k [B P, D] with B = batch");
  const auto key = k.detach();
  const int64_t patches = q.size(0) / batch;
  auto positive = (q * key).sum(1, true);                                                      // [B P, 1]
  auto negative = torch::bmm(q.view({batch, patches, -1}), key.view({batch, patches, -1}).transpose(1, 2));  // [B, P, P]
  negative = negative.masked_fill(torch::eye(patches, q.options().dtype(torch::kBool)).unsqueeze(0), -10.0);
  auto logits = torch::cat({positive, negative.view({-1, patches})}, 1) / tau;
  return torch::nn::functional::cross_entropy(
      logits, torch::zeros({logits.size(0)}, q.options().dtype(torch::kLong)),
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
}

torch::Tensor lsgan_loss(const torch::Tensor& scores, bool real) {
  return (scores - (real ? 1.0 : 0.0)).pow(2).mean();
}

}  // namespace lesseg
