#include "lesseg/methods/ssl/ssl_task.h"

#include <torch/torch.h>

namespace lesseg {

SslTask::SslTask(SslSetup setup) : setup_(std::move(setup)) { restore({}); }

std::vector<torch::Tensor> SslTask::no_weight_decay_parameters() {
  std::vector<torch::Tensor> out;
  for (const auto& item : state_module().named_parameters()) {
    const std::string& name = item.key();
    const bool bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (bias || item.value().dim() <= 1) out.push_back(item.value());
  }
  return out;
}

nlohmann::json SslTask::evaluate() {
  nlohmann::json metrics = nlohmann::json::object();
  if (setup_.evaluate) {
    BackboneImpl& backbone = result_backbone();
    const bool was_training = backbone.is_training();
    metrics = setup_.evaluate(backbone);
    backbone.train(was_training);
  }
  metrics.update(diagnostics());
  return metrics;
}

void SslTask::restore(SamplerState state) {
  loader_.reset();  // join the old workers before starting new ones
  if (!setup_.batch_source) loader_ = std::make_unique<Loader>(setup_.images, setup_.loader, state);
}

std::vector<torch::Tensor> SslTask::next_views() {
  if (setup_.batch_source) {
    auto views = setup_.batch_source();
    for (auto& v : views) v = v.to(setup_.device);
    return views;
  }
  Batch batch;
  loader_->next(batch);
  std::vector<torch::Tensor> views;
  for (auto& v : batch.views) views.push_back(v.to(setup_.device));
  return views;
}

std::vector<torch::Tensor> SslTask::per_view(const std::vector<torch::Tensor>& views,
                                             const std::function<torch::Tensor(const torch::Tensor&)>& fn) {
  std::vector<torch::Tensor> out;
  size_t start = 0;
  while (start < views.size()) {
    size_t end = start + 1;
    while (end < views.size() && views[end].sizes() == views[start].sizes()) ++end;
    std::vector<torch::Tensor> group(views.begin() + start, views.begin() + end);
    auto outputs = fn(torch::cat(group)).chunk(static_cast<int64_t>(end - start));
    out.insert(out.end(), outputs.begin(), outputs.end());
    start = end;
  }
  return out;
}

}  // namespace lesseg
