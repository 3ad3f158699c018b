#pragma once
// What the self-supervised methods share: the backbone being pretrained, multi-view batches from
// the loader, the periodic feature evaluation, and the engine hooks. Each method adds its heads
// and its loss (simclr.cpp, dino.cpp, mae.cpp).
#include <functional>
#include <memory>

#include <nlohmann/json.hpp>

#include "lesseg/data/loader.h"
#include "lesseg/engine/distributed.h"
#include "lesseg/engine/task.h"
#include "lesseg/models/backbone.h"
#include "lesseg/models/registry.h"

namespace lesseg {

class Config;

struct SslSetup {
  const Config* config = nullptr;
  ModelSpec spec;                            // spec.backbone names the backbone
  std::shared_ptr<BackboneImpl> backbone;    // the network being pretrained (student)
  SegDatasetPtr images;                      // training images; labels ignored
  LoaderOptions loader;                      // with views set
  int64_t num_global_views = 2;
  torch::Device device = torch::kCPU;
  DistributedPtr dist;
  // Batches of views from elsewhere than the loader (a parity test's fixed crops); empty: the loader.
  std::function<std::vector<torch::Tensor>()> batch_source;
  // Feature evaluation of a backbone (kNN accuracy); empty: none.
  std::function<nlohmann::json(BackboneImpl&)> evaluate;
};

class SslTask : public TrainTask {
 public:
  explicit SslTask(SslSetup setup);
  std::vector<torch::Tensor> trainable_parameters() override { return state_module().parameters(); }
  // ref: dino utils.get_params_groups / MAE: biases and 1-D tensors (norms) are not decayed.
  std::vector<torch::Tensor> no_weight_decay_parameters() override;
  nlohmann::json evaluate() override;
  SamplerState loader_state() const override { return loader_ ? loader_->state() : SamplerState{}; }
  void restore(SamplerState state) override;
  int64_t images_per_step() const override { return setup_.loader.batch_size; }
  int64_t fallbacks() const { return loader_ ? loader_->fallbacks() : 0; }
  int64_t skipped() const { return loader_ ? loader_->skipped() : 0; }
  // The backbone a user keeps (the EMA teacher's for DINO).
  virtual BackboneImpl& result_backbone() { return *setup_.backbone; }

 protected:
  // The next batch's views on the device.
  std::vector<torch::Tensor> next_views();
  // Forwards views of equal size together (one pass per size, as DINO's MultiCropWrapper).
  static std::vector<torch::Tensor> per_view(const std::vector<torch::Tensor>& views,
                                             const std::function<torch::Tensor(const torch::Tensor&)>& fn);
  // Collapse diagnostics of the latest step, logged with every evaluation (computed then, so that
  // steps do not wait for them).
  virtual nlohmann::json diagnostics() { return nlohmann::json::object(); }
  SslSetup setup_;

 private:
  std::unique_ptr<Loader> loader_;
};

std::unique_ptr<SslTask> make_simclr_task(SslSetup setup);
std::unique_ptr<SslTask> make_dino_task(SslSetup setup);
std::unique_ptr<SslTask> make_mae_task(SslSetup setup);

}  // namespace lesseg
