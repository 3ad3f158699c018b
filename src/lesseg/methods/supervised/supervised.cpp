#include "lesseg/methods/supervised/supervised.h"

#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/data/loader.h"
#include "lesseg/data/loader_config.h"
#include "lesseg/engine/trainer.h"
#include "lesseg/methods/common/segmentation_run.h"
#include "lesseg/nn/functional.h"

namespace lesseg {

namespace {

// Trains on the labeled images only (all of the training split, or data.labeled's share: the
// supervised-only baseline of the semi-supervised methods).
class SupervisedTask : public TrainTask {
 public:
  SupervisedTask(const Config& config, Segmenter model, const SegmentationRun& run) : model_(std::move(model)), run_(run) {
    loader_options_ = labeled_loader_options(config, run);
    freeze_bn_ = config.get<bool>("train.freeze_bn");
    check_labeled_fills_batch(run, loader_options_.batch_size);
    restore({});
  }

  torch::nn::Module& state_module() override { return *model_; }
  std::vector<torch::Tensor> trainable_parameters() override { return model_->parameters(); }
  std::vector<torch::Tensor> backbone_parameters() override { return model_->backbone().parameters(); }
  int64_t images_per_step() const override { return loader_options_.batch_size; }
  std::string evaluation_split() const override { return run_.watched_name(); }
  SamplerState loader_state() const override { return loader_->state(); }
  int64_t skipped_images() const { return loader_->skipped(); }
  void restore(SamplerState state) override {
    loader_.reset();  // join the old workers before starting new ones
    loader_ = std::make_unique<Loader>(run_.splits.labeled, loader_options_, state);
  }

  LossTerms train_step(int64_t) override {
    model_->train();
    if (freeze_bn_) freeze_batchnorm(*model_);
    Batch batch;
    loader_->next(batch);
    if (!batch.masks.defined()) throw_usage("supervised training needs masks for every training image");
    auto logits = model_->forward(batch.images.to(run_.device));
    auto loss = torch::nn::functional::cross_entropy(
        logits, batch.masks.to(run_.device),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(run_.splits.labeled->classes().ignore_index));
    return {{"ce", loss}};
  }

  nlohmann::json evaluate() override { return evaluate_on(model_, run_.watched(), run_); }

 private:
  Segmenter model_;
  const SegmentationRun& run_;
  bool freeze_bn_ = false;
  LoaderOptions loader_options_;
  std::unique_ptr<Loader> loader_;
};

}  // namespace

TrainResult train_supervised(const Config& config, const std::filesystem::path& run_dir) {
  SegmentationRun run = open_segmentation_run(config, run_dir);
  SavedSegmenter saved = new_segmenter(config, model_spec_from(config, run.num_classes()), run, true);
  SupervisedTask task(config, saved.model, run);
  TrainerOptions trainer_options = trainer_options_from(config, run_dir);
  trainer_options.distributed = run.dist;
  Trainer trainer(task, trainer_options);
  return finish_segmentation_run(trainer, config, run, {{"model", "model.safetensors", &saved}}, task.skipped_images());
}

}  // namespace lesseg
