#include "lesseg/models/solov2.h"

#include <cmath>
#include <numeric>

#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/nn/functional.h"

namespace lesseg {
namespace nn = torch::nn;

namespace {

// Appends a 3x3 conv (no bias) + GroupNorm + ReLU, as mmdet's ConvModule with norm_cfg GN.
void append_conv_gn_relu(nn::Sequential& sequence, int64_t in, int64_t out, int64_t groups) {
  groups = std::gcd(std::min(groups, out), out);
  sequence->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1).bias(false)));
  sequence->push_back(nn::GroupNorm(nn::GroupNormOptions(groups, out)));
  sequence->push_back(nn::ReLU(true));
}

// Two channels x and y, each a linspace over [-1, 1] across the map (CoordConv), in that order.
torch::Tensor coordinates_like(const torch::Tensor& x) {
  auto options = x.options();
  auto xs = torch::linspace(-1, 1, x.size(3), options).view({1, 1, 1, -1}).expand({x.size(0), 1, x.size(2), x.size(3)});
  auto ys = torch::linspace(-1, 1, x.size(2), options).view({1, 1, -1, 1}).expand({x.size(0), 1, x.size(2), x.size(3)});
  return torch::cat({xs, ys}, 1);
}

// ref: WXinlong/SOLO init_weights: every head conv normal(0, 0.01), biases 0.
void init_normal(nn::Module& module) {
  for (auto& m : module.modules(/*include_self=*/true)) {
    if (auto* conv = m->as<nn::Conv2d>()) {
      nn::init::normal_(conv->weight, 0.0, 0.01);
      if (conv->bias.defined()) nn::init::zeros_(conv->bias);
    }
  }
}

}  // namespace

const std::vector<int64_t>& solo_level_strides() {
  static const std::vector<int64_t> strides{8, 8, 16, 32, 32};
  return strides;
}

FpnImpl::FpnImpl(std::vector<int64_t> in_channels, int64_t out_channels) {
  lateral = register_module("lateral", nn::ModuleList());
  output = register_module("output", nn::ModuleList());
  for (int64_t in : in_channels) {
    nn::Conv2d l(nn::Conv2dOptions(in, out_channels, 1));
    nn::Conv2d o(nn::Conv2dOptions(out_channels, out_channels, 3).padding(1));
    for (auto* conv : {&l, &o}) {  // mmdet's FPN: xavier-uniform, zero bias
      nn::init::xavier_uniform_((*conv)->weight);
      nn::init::zeros_((*conv)->bias);
    }
    lateral->push_back(l);
    output->push_back(o);
  }
}

std::vector<torch::Tensor> FpnImpl::forward(const std::vector<torch::Tensor>& features) {
  const size_t n = features.size();
  std::vector<torch::Tensor> inner(n);
  inner[n - 1] = lateral[n - 1]->as<nn::Conv2d>()->forward(features[n - 1]);
  for (size_t i = n - 1; i-- > 0;) {
    auto lat = lateral[i]->as<nn::Conv2d>()->forward(features[i]);
    auto up = torch::nn::functional::interpolate(
        inner[i + 1], torch::nn::functional::InterpolateFuncOptions()
                          .size(std::vector<int64_t>{lat.size(2), lat.size(3)})
                          .mode(torch::kNearest));
    inner[i] = lat + up;
  }
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < n; ++i) out.push_back(output[i]->as<nn::Conv2d>()->forward(inner[i]));
  out.push_back(torch::max_pool2d(out.back(), 1, 2));  // P6
  return out;
}

Solov2Impl::Solov2Impl(std::shared_ptr<BackboneImpl> backbone, Solov2Options options)
    : options_(std::move(options)), backbone_(std::move(backbone)) {
  const auto& o = options_;
  if (o.num_grids().size() != 5) throw_usage("SOLOv2 needs 5 grid sizes (levels P2..P6)");
  if (o.stacked_convs() < 1) throw_usage("SOLOv2 needs at least one stacked conv per branch");
  register_module("backbone", backbone_);
  std::vector<int64_t> in_channels;
  const auto specs = backbone_->feature_specs();
  for (int64_t stride : {4, 8, 16, 32}) {
    bool found = false;
    for (size_t i = 0; i < specs.size() && !found; ++i) {
      if (specs[i].stride != stride) continue;
      backbone_levels_.push_back(i);
      in_channels.push_back(specs[i].channels);
      found = true;
    }
    if (!found)
      throw_usage("SOLOv2 needs backbone features at strides 4, 8, 16 and 32 (a ResNet or Swin; a ViT has one "
                  "stride); stride " + std::to_string(stride) + " is missing");
  }
  fpn = register_module("fpn", Fpn(in_channels, o.fpn_channels()));

  const int64_t g = o.norm_groups();
  kernel_convs = nn::Sequential();
  category_convs = nn::Sequential();
  for (int64_t i = 0; i < o.stacked_convs(); ++i) {
    int64_t in = i == 0 ? o.fpn_channels() : o.head_channels();
    append_conv_gn_relu(kernel_convs, i == 0 ? in + 2 : in, o.head_channels(), g);
    append_conv_gn_relu(category_convs, in, o.head_channels(), g);
  }
  kernel_convs = register_module("kernel_convs", kernel_convs);
  category_convs = register_module("category_convs", category_convs);
  const int64_t h = o.head_channels();
  kernel_pred = register_module("kernel_pred", nn::Conv2d(nn::Conv2dOptions(h, o.mask_channels(), 3).padding(1)));
  category_pred = register_module("category_pred", nn::Conv2d(nn::Conv2dOptions(h, o.num_classes(), 3).padding(1)));

  // Unified mask features: P2 one conv; P3..P5 1..3 x (conv, x2 upsampling); coordinates enter at P5.
  mask_levels = register_module("mask_levels", nn::ModuleList());
  for (int64_t level = 0; level < 4; ++level) {
    nn::ModuleList convs;  // one conv block per step; levels > 0 upsample after each
    for (int64_t j = 0; j < std::max<int64_t>(1, level); ++j) {
      int64_t in = j == 0 ? o.fpn_channels() + (level == 3 ? 2 : 0) : o.mask_hidden();
      nn::Sequential block;
      append_conv_gn_relu(block, in, o.mask_hidden(), g);
      convs->push_back(block);
    }
    mask_levels->push_back(convs);
  }
  auto pred_conv = nn::Conv2d(nn::Conv2dOptions(o.mask_hidden(), o.mask_channels(), 1).bias(false));
  mask_pred = register_module(
      "mask_pred", nn::Sequential(pred_conv,
                                  nn::GroupNorm(nn::GroupNormOptions(std::gcd(std::min(g, o.mask_channels()),
                                                                              o.mask_channels()), o.mask_channels())),
                                  nn::ReLU(true)));
  for (auto* m : std::vector<nn::Module*>{kernel_convs.get(), category_convs.get(), kernel_pred.get(),
                                         category_pred.get(), mask_levels.get(), mask_pred.get()})
    init_normal(*m);
  // ref: SOLO init_weights: the category bias starts at the prior 0.01 (focal loss).
  nn::init::constant_(category_pred->bias, -std::log((1 - 0.01) / 0.01));
}

SoloOutput Solov2Impl::forward(const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(2) % 32 == 0 && images.size(3) % 32 == 0,
              "SOLOv2 input must be [B, 3, H, W] with H and W multiples of 32, got ", images.sizes());
  auto features = backbone_->features(images);
  std::vector<torch::Tensor> selected;
  for (size_t i : backbone_levels_) selected.push_back(features.at(i));
  auto pyramid = fpn->forward(selected);
  SoloOutput out = heads(pyramid);
  out.mask_features = mask_features(pyramid);
  return out;
}

SoloOutput Solov2Impl::heads(const std::vector<torch::Tensor>& pyramid) {
  SoloOutput out;
  for (size_t level = 0; level < 5; ++level) {
    // ref: SOLO split_feats: P2 halved, P6 resized to P5's size.
    torch::Tensor x = pyramid[level];
    if (level == 0) x = resize_bilinear(x, pyramid[1].size(2), pyramid[1].size(3));
    if (level == 4) x = resize_bilinear(x, pyramid[3].size(2), pyramid[3].size(3));
    const int64_t s = options_.num_grids()[level];
    auto kernel_in = resize_bilinear(torch::cat({x, coordinates_like(x)}, 1), s, s);
    auto category_in = kernel_in.slice(1, 0, kernel_in.size(1) - 2);
    out.kernels.push_back(kernel_pred(kernel_convs->forward(kernel_in)));
    out.category.push_back(category_pred(category_convs->forward(category_in)));
  }
  return out;
}

torch::Tensor Solov2Impl::mask_features(const std::vector<torch::Tensor>& pyramid) {
  torch::Tensor sum;
  for (size_t level = 0; level < 4; ++level) {
    torch::Tensor x = pyramid[level];
    if (level == 3) x = torch::cat({x, coordinates_like(x)}, 1);
    auto* convs = mask_levels[level]->as<nn::ModuleList>();
    for (size_t j = 0; j < convs->size(); ++j) {
      x = (*convs)[j]->as<nn::Sequential>()->forward(x);
      if (level > 0) x = resize_bilinear(x, x.size(2) * 2, x.size(3) * 2);
    }
    sum = sum.defined() ? sum + x : x;
  }
  return mask_pred->forward(sum);
}

}  // namespace lesseg
