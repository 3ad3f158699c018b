// SimCLR and SAMCLR: the same objective; SAMCLR differs only in where its views come from (the
// loader's region view maker), so both run this task.
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/methods/ssl/losses.h"
#include "lesseg/methods/ssl/ssl_task.h"
#include "lesseg/models/embedding.h"
#include "lesseg/models/heads.h"

namespace lesseg {

namespace {

struct SimclrModelImpl : torch::nn::Module {
  SimclrModelImpl(std::shared_ptr<BackboneImpl> b, const ProjectionHeadOptions& head_options)
      : backbone(register_module("backbone", std::move(b))), head(register_module("head", ProjectionHead(head_options))) {}
  torch::Tensor forward(const torch::Tensor& images) { return head->forward(global_embedding(*backbone, images)); }
  std::shared_ptr<BackboneImpl> backbone;
  ProjectionHead head;
};
TORCH_MODULE(SimclrModel);

class SimclrTask : public SslTask {
 public:
  explicit SimclrTask(SslSetup setup)
      : SslTask(std::move(setup)),
        model_(setup_.backbone, ProjectionHeadOptions()
                                    .in_dim(embedding_dim(*setup_.backbone))
                                    .hidden_dim(setup_.config->get<int64_t>("ssl.head_hidden"))
                                    .out_dim(setup_.config->get<int64_t>("ssl.proj_dim"))),
        temperature_(setup_.config->get<double>("ssl.temperature")) {
    model_->to(setup_.device);
  }
  torch::nn::Module& state_module() override { return *model_; }

  LossTerms train_step(int64_t) override {
    model_->train();
    auto z = per_view(next_views(), [this](const torch::Tensor& x) { return model_->forward(x); });
    last_projections_ = z.front().detach();
    return {{"nt_xent", multi_view_nt_xent(z, setup_.num_global_views, temperature_)}};
  }

 private:
  nlohmann::json diagnostics() override {
    if (!last_projections_.defined()) return nlohmann::json::object();
    return {{"feature_std", normalized_feature_std(last_projections_)}};
  }

  SimclrModel model_;
  torch::Tensor last_projections_;
  double temperature_;
};

}  // namespace

std::unique_ptr<SslTask> make_simclr_task(SslSetup setup) { return std::make_unique<SimclrTask>(std::move(setup)); }

}  // namespace lesseg
