#include "lesseg/engine/optim.h"

#include <cmath>
#include <map>
#include <set>

#include <torch/torch.h>

#include "lesseg/core/error.h"

namespace lesseg {

namespace {
std::vector<torch::optim::OptimizerParamGroup> parameter_groups(const std::vector<torch::Tensor>& parameters,
                                                                const std::vector<torch::Tensor>& no_decay,
                                                                std::unique_ptr<torch::optim::OptimizerOptions> exempt) {
  std::set<const void*> exempted;
  for (const auto& p : no_decay) exempted.insert(p.unsafeGetTensorImpl());
  std::vector<torch::Tensor> decay, keep;
  for (const auto& p : parameters) (exempted.count(p.unsafeGetTensorImpl()) ? keep : decay).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay);
  if (!keep.empty()) groups.emplace_back(keep, std::move(exempt));
  return groups;
}
}  // namespace

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<torch::Tensor>& parameters,
                                                        const OptimizerOptions& o,
                                                        const std::vector<torch::Tensor>& no_decay) {
  if (o.name == "sgd") {
    auto options = torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay);
    auto exempt = std::make_unique<torch::optim::SGDOptions>(options);
    exempt->weight_decay(0);
    return std::make_unique<torch::optim::SGD>(parameter_groups(parameters, no_decay, std::move(exempt)), options);
  }
  if (o.name == "adamw") {
    auto options = torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).weight_decay(o.weight_decay);
    auto exempt = std::make_unique<torch::optim::AdamWOptions>(options);
    exempt->weight_decay(0);
    return std::make_unique<torch::optim::AdamW>(parameter_groups(parameters, no_decay, std::move(exempt)), options);
  }
  throw_usage("unknown train.optimizer '" + o.name + "' (known: sgd, adamw)");
}

double weight_decay_at(const OptimizerOptions& o, int64_t iter, int64_t total_iters) {
  if (o.weight_decay_end < 0) return o.weight_decay;
  // ref: dino utils.cosine_scheduler, per iteration
  const double progress = std::min(1.0, double(iter) / double(std::max<int64_t>(1, total_iters)));
  return o.weight_decay_end + 0.5 * (o.weight_decay - o.weight_decay_end) * (1.0 + std::cos(M_PI * progress));
}

void set_weight_decay(torch::optim::Optimizer& optimizer, double weight_decay) {
  auto& options = optimizer.param_groups().front().options();
  if (auto* sgd = dynamic_cast<torch::optim::SGDOptions*>(&options)) sgd->weight_decay(weight_decay);
  else if (auto* adamw = dynamic_cast<torch::optim::AdamWOptions*>(&options)) adamw->weight_decay(weight_decay);
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

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
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
