#include "lesseg/models/heads.h"

#include <torch/torch.h>

#include "lesseg/core/error.h"

namespace lesseg {
namespace nn = torch::nn;

ProjectionHeadImpl::ProjectionHeadImpl(const ProjectionHeadOptions& options_) : options(options_) { reset(); }

void ProjectionHeadImpl::reset() {
  const auto& o = options;
  if (o.num_layers() < 1) throw_usage("a projection head needs at least one layer");
  mlp = nn::Sequential();
  int64_t width = o.in_dim();
  for (int64_t i = 0; i + 1 < o.num_layers(); ++i) {
    mlp->push_back(nn::Linear(nn::LinearOptions(width, o.hidden_dim()).bias(!o.batch_norm())));
    if (o.batch_norm()) mlp->push_back(nn::BatchNorm1d(o.hidden_dim()));
    mlp->push_back(nn::ReLU());
    width = o.hidden_dim();
  }
  mlp->push_back(nn::Linear(width, o.out_dim()));
  mlp = register_module("mlp", mlp);
}

torch::Tensor ProjectionHeadImpl::forward(const torch::Tensor& x) { return mlp->forward(x); }

WeightNormLinearImpl::WeightNormLinearImpl(int64_t in, int64_t out, bool train_g) {
  // v starts as a default nn.Linear weight, g at 1 (DINO fills weight_g with 1 after wrapping)
  weight_v = register_parameter("weight_v", nn::Linear(nn::LinearOptions(in, out).bias(false))->weight.detach().clone());
  weight_g = register_parameter("weight_g", torch::ones({out, 1}), train_g);
}

torch::Tensor WeightNormLinearImpl::weight() const { return at::_weight_norm(weight_v, weight_g, 0); }

torch::Tensor WeightNormLinearImpl::forward(const torch::Tensor& x) { return torch::nn::functional::linear(x, weight()); }

DinoHeadImpl::DinoHeadImpl(const DinoHeadOptions& options_) : options(options_) { reset(); }

void DinoHeadImpl::reset() {
  const auto& o = options;
  if (o.num_layers() < 1) throw_usage("a DINO head needs at least one MLP layer");
  // DINO registers a bare Linear as `mlp` for one layer; lesseg always uses a Sequential (mlp.0).
  mlp = nn::Sequential();
  int64_t width = o.in_dim();
  for (int64_t i = 0; i + 1 < o.num_layers(); ++i) {
    mlp->push_back(nn::Linear(width, o.hidden_dim()));
    if (o.use_bn()) mlp->push_back(nn::BatchNorm1d(o.hidden_dim()));
    mlp->push_back(nn::GELU());
    width = o.hidden_dim();
  }
  mlp->push_back(nn::Linear(width, o.bottleneck_dim()));
  mlp = register_module("mlp", mlp);
  // ref: DINOHead._init_weights: trunc_normal(.02) Linear weights, zero biases (before the last layer)
  torch::NoGradGuard no_grad;
  for (auto& module : mlp->modules(false)) {
    if (auto* linear = module->as<nn::Linear>()) {
      linear->weight.normal_(0.0, 0.02).clamp_(-2.0, 2.0);
      linear->bias.zero_();
    }
  }
  last_layer = register_module("last_layer", WeightNormLinear(o.bottleneck_dim(), o.out_dim(), !o.norm_last_layer()));
}

torch::Tensor DinoHeadImpl::forward(const torch::Tensor& x) {
  auto z = torch::nn::functional::normalize(mlp->forward(x), torch::nn::functional::NormalizeFuncOptions().p(2).dim(-1));
  return last_layer(z);
}

std::vector<torch::Tensor> DinoHeadImpl::last_layer_parameters() {
  std::vector<torch::Tensor> params{last_layer->weight_v};
  if (last_layer->weight_g.requires_grad()) params.push_back(last_layer->weight_g);
  return params;
}

void DinoHeadImpl::cancel_last_layer_gradients() {
  for (auto& p : last_layer->parameters()) p.mutable_grad() = torch::Tensor();
}

}  // namespace lesseg
