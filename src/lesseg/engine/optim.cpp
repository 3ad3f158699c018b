#include "lesseg/engine/optim.h"

#include <cmath>
#include <map>
#include <set>
#include <type_traits>

#include <torch/torch.h>

#include "lesseg/core/error.h"

namespace lesseg {

namespace {
std::set<const void*> identities(const std::vector<torch::Tensor>& tensors) {
  std::set<const void*> out;
  for (const auto& t : tensors) out.insert(t.unsafeGetTensorImpl());
  return out;
}

// Groups in a fixed order (checkpoints key optimizer state by position): backbone decaying, backbone
// not decaying, head decaying, head not decaying; empty ones left out, except the first.
template <typename Options>
ScheduledOptimizer grouped(const std::vector<torch::Tensor>& parameters, const Options& options, double head_scale,
                           const std::vector<torch::Tensor>& no_decay, const std::vector<torch::Tensor>& head) {
  const auto exempted = identities(no_decay);
  const auto in_head = head_scale != 1 ? identities(head) : std::set<const void*>{};
  std::vector<torch::Tensor> members[4];
  for (const auto& p : parameters)
    members[2 * in_head.count(p.unsafeGetTensorImpl()) + exempted.count(p.unsafeGetTensorImpl())].push_back(p);
  ScheduledOptimizer out;
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (int g = 0; g < 4; ++g) {
    if (members[g].empty() && g > 0) continue;
    const double scale = g >= 2 ? head_scale : 1.0;
    const bool decays = g % 2 == 0;
    auto group_options = std::make_unique<Options>(options);
    group_options->lr(options.lr() * scale);
    if (!decays) group_options->weight_decay(0);
    groups.emplace_back(members[g], std::move(group_options));
    out.lr_scale.push_back(scale);
    out.decays.push_back(decays);
  }
  using Torch = std::conditional_t<std::is_same_v<Options, torch::optim::SGDOptions>, torch::optim::SGD, torch::optim::AdamW>;
  out.torch = std::make_unique<Torch>(std::move(groups), options);
  return out;
}
}  // namespace

ScheduledOptimizer make_optimizer(const std::vector<torch::Tensor>& parameters, const OptimizerOptions& o,
                                  const std::vector<torch::Tensor>& no_decay, const std::vector<torch::Tensor>& head) {
  if (!(o.head_lr_multiplier > 0)) throw_usage("train.head_lr_multiplier must be positive");
  if (o.name == "sgd")
    return grouped(parameters, torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay),
                   o.head_lr_multiplier, no_decay, head);
  if (o.name == "adamw")
    return grouped(parameters, torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).weight_decay(o.weight_decay),
                   o.head_lr_multiplier, no_decay, head);
  throw_usage("unknown train.optimizer '" + o.name + "' (known: sgd, adamw)");
}

double weight_decay_at(const OptimizerOptions& o, int64_t iter, int64_t total_iters) {
  if (o.weight_decay_end < 0) return o.weight_decay;
  // ref: dino utils.cosine_scheduler, per iteration
  const double progress = std::min(1.0, double(iter) / double(std::max<int64_t>(1, total_iters)));
  return o.weight_decay_end + 0.5 * (o.weight_decay - o.weight_decay_end) * (1.0 + std::cos(M_PI * progress));
}

void set_weight_decay(ScheduledOptimizer& optimizer, double weight_decay) {
  auto& groups = optimizer->param_groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    if (!optimizer.decays.at(g)) continue;
    auto& options = groups[g].options();
    if (auto* sgd = dynamic_cast<torch::optim::SGDOptions*>(&options)) sgd->weight_decay(weight_decay);
    else if (auto* adamw = dynamic_cast<torch::optim::AdamWOptions*>(&options)) adamw->weight_decay(weight_decay);
  }
}

double lr_factor(const ScheduleOptions& o, int64_t iter) {
  if (o.warmup_iters > 0 && iter < o.warmup_iters) return double(iter + 1) / double(o.warmup_iters);
  const double span = std::max<int64_t>(1, o.total_iters - o.warmup_iters);
  const double progress = std::min(1.0, double(iter - o.warmup_iters) / span);
  if (o.name == "poly") return std::pow(1.0 - progress, o.power);
  if (o.name == "cosine") return 0.5 * (1.0 + std::cos(M_PI * progress));
  if (o.name == "constant") return 1.0;
  throw_usage("unknown train.schedule '" + o.name + "' (known: poly, cosine, constant)");
}

void set_learning_rate(ScheduledOptimizer& optimizer, double lr) {
  auto& groups = optimizer->param_groups();
  for (size_t g = 0; g < groups.size(); ++g) groups[g].options().set_lr(lr * optimizer.lr_scale.at(g));
}

namespace {
// Optimizer state is keyed by the parameter's TensorImpl address; checkpoints use the parameter's
// position in the parameter groups instead, which is stable across processes.
std::string state_key(const torch::Tensor& p) { return c10::guts::to_string(p.unsafeGetTensorImpl()); }

template <typename Fn>
void for_each_param(torch::optim::Optimizer& optimizer, Fn fn) {
  size_t index = 0;
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params()) fn(index++, p);
}
}  // namespace

void clip_gradients(const std::vector<torch::Tensor>& parameters, double max_norm, bool per_parameter) {
  if (!per_parameter) {
    torch::nn::utils::clip_grad_norm_(parameters, max_norm);
    return;
  }
  torch::NoGradGuard no_grad;
  for (const auto& p : parameters) {
    if (!p.grad().defined()) continue;
    auto coefficient = max_norm / (p.grad().norm(2) + 1e-6);
    p.mutable_grad().mul_(coefficient.clamp_max(1.0));
  }
}

std::vector<std::pair<std::string, torch::Tensor>> optimizer_state_tensors(torch::optim::Optimizer& optimizer) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  auto& state = optimizer.state();
  for_each_param(optimizer, [&](size_t i, const torch::Tensor& p) {
    auto it = state.find(state_key(p));
    if (it == state.end()) return;
    const std::string prefix = "optim." + std::to_string(i) + ".";
    if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(it->second.get())) {
      if (sgd->momentum_buffer().defined()) out.emplace_back(prefix + "momentum_buffer", sgd->momentum_buffer());
    } else if (auto* adam = dynamic_cast<torch::optim::AdamWParamState*>(it->second.get())) {
      out.emplace_back(prefix + "step", torch::tensor(adam->step(), torch::kLong));
      out.emplace_back(prefix + "exp_avg", adam->exp_avg());
      out.emplace_back(prefix + "exp_avg_sq", adam->exp_avg_sq());
      if (adam->max_exp_avg_sq().defined()) out.emplace_back(prefix + "max_exp_avg_sq", adam->max_exp_avg_sq());
    }
  });
  return out;
}

void load_optimizer_state(torch::optim::Optimizer& optimizer,
                          const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  std::map<std::string, torch::Tensor> by_name(tensors.begin(), tensors.end());
  auto take = [&](const std::string& name, const torch::Tensor& like) -> torch::Tensor {
    auto it = by_name.find(name);
    return it == by_name.end() ? torch::Tensor() : it->second.to(like.device(), like.scalar_type());
  };
  const bool is_sgd = dynamic_cast<torch::optim::SGD*>(&optimizer) != nullptr;
  for_each_param(optimizer, [&](size_t i, const torch::Tensor& p) {
    const std::string prefix = "optim." + std::to_string(i) + ".";
    if (is_sgd) {
      auto buffer = take(prefix + "momentum_buffer", p);
      if (!buffer.defined()) return;
      auto s = std::make_unique<torch::optim::SGDParamState>();
      s->momentum_buffer(buffer.clone());
      optimizer.state()[state_key(p)] = std::move(s);
    } else {
      auto exp_avg = take(prefix + "exp_avg", p);
      if (!exp_avg.defined()) return;
      auto step = by_name.find(prefix + "step");
      auto exp_avg_sq = take(prefix + "exp_avg_sq", p);
      if (step == by_name.end() || !exp_avg_sq.defined())
        throw Error(ExitCode::bad_weights, "checkpoint optimizer state of parameter " + std::to_string(i) +
                                               " is incomplete (AdamW needs step, exp_avg, exp_avg_sq)");
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      s->step(step->second.item<int64_t>());
      s->exp_avg(exp_avg.clone());
      s->exp_avg_sq(exp_avg_sq.clone());
      auto max_sq = take(prefix + "max_exp_avg_sq", p);
      if (max_sq.defined()) s->max_exp_avg_sq(max_sq.clone());
      optimizer.state()[state_key(p)] = std::move(s);
    }
  });
}

}  // namespace lesseg
