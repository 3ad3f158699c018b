#include "lesseg/methods/supervised/supervised.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/data/loader.h"
#include "lesseg/data/loader_config.h"
#include "lesseg/data/open.h"
#include "lesseg/engine/checkpoint.h"
#include "lesseg/engine/distributed.h"
#include "lesseg/engine/trainer.h"
#include "lesseg/eval/evaluate.h"
#include "lesseg/methods/saved_segmenter.h"
#include "lesseg/models/weights.h"
#include "lesseg/nn/functional.h"

namespace lesseg {

namespace {

class SupervisedTask : public TrainTask {
 public:
  SupervisedTask(const Config& config, Segmenter model, SegDatasetPtr train, SegDatasetPtr val, torch::Device device,
                 DistributedPtr dist)
      : model_(std::move(model)), train_(std::move(train)), val_(std::move(val)), device_(device), dist_(std::move(dist)) {
    loader_options_ = dist_ ? train_loader_options(config, dist_->rank(), dist_->world_size()) : train_loader_options(config);
    if (dist_) {
      eval_options_.rank = dist_->rank();
      eval_options_.world_size = dist_->world_size();
    }
    freeze_bn_ = config.get<bool>("train.freeze_bn");
    if (train_->size() < static_cast<size_t>(loader_options_.batch_size))
      throw_usage("the training split has " + std::to_string(train_->size()) + " images, fewer than train.batch_size");
    eval_options_.batch_size = config.get<int>("eval.batch_size");
    eval_options_.max_images = config.get<int64_t>("eval.max_images");
    eval_options_.augment = eval_augment_from(config);
    eval_options_.mean = loader_options_.mean;
    eval_options_.std = loader_options_.std;
    eval_options_.device = device;
    restore({});
  }

  torch::nn::Module& state_module() override { return *model_; }
  std::vector<torch::Tensor> trainable_parameters() override { return model_->parameters(); }
  int64_t images_per_step() const override { return loader_options_.batch_size; }
  SamplerState loader_state() const override { return loader_->state(); }
  int64_t skipped_images() const { return loader_->skipped(); }
  void restore(SamplerState state) override {
    loader_.reset();  // join the old workers before starting new ones
    loader_ = std::make_unique<Loader>(train_, loader_options_, state);
  }

  LossTerms train_step(int64_t) override {
    model_->train();
    if (freeze_bn_) freeze_batchnorm(*model_);
    Batch batch;
    loader_->next(batch);
    if (!batch.masks.defined()) throw_usage("supervised training needs masks for every training image");
    auto logits = model_->forward(batch.images.to(device_));
    auto loss = torch::nn::functional::cross_entropy(
        logits, batch.masks.to(device_),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(train_->classes().ignore_index));
    return {{"ce", loss}};
  }

  nlohmann::json evaluate() override {
    auto confusion = evaluate_segmenter(model_, val_, eval_options_);
    if (dist_) {
      at::Tensor counts = confusion.matrix().clone();
      dist_->all_reduce_sum(counts);
      confusion.reset();
      confusion.add_counts(counts);
    }
    return metrics_json(confusion.compute(), val_->classes());
  }

 private:
  Segmenter model_;
  SegDatasetPtr train_, val_;
  torch::Device device_;
  DistributedPtr dist_;
  bool freeze_bn_ = false;
  LoaderOptions loader_options_;
  EvalOptions eval_options_;
  std::unique_ptr<Loader> loader_;
};

}  // namespace

TrainResult train_supervised(const Config& config, const std::filesystem::path& run_dir) {
  torch::Device device(config.get<std::string>("device"));
  torch::manual_seed(static_cast<uint64_t>(config.get<int64_t>("seed")));
  DistributedPtr dist = Distributed::connect(distributed_options_from(config), device);  // null: one process
  if (dist) device = dist->device();
  const bool main_rank = !dist || dist->is_main();
  auto train = open_dataset(config, "train");
  auto val = open_dataset(config, "val");
  if (train->classes().num_classes() != val->classes().num_classes())
    throw_usage("training and validation splits have different class counts");
  spdlog::info("data: {} training / {} validation images, {} classes", train->size(), val->size(),
               train->classes().num_classes());
  SavedSegmenter saved;
  saved.spec = model_spec_from(config, train->classes().num_classes());
  saved.classes = train->classes();
  saved.model = build_segmenter(saved.spec);
  load_config_weights(config, {saved.model.get(), &saved.model->backbone()});
  saved.model->to(device);

  SupervisedTask task(config, saved.model, train, val, device, dist);
  TrainerOptions trainer_options = trainer_options_from(config, run_dir);
  trainer_options.distributed = dist;
  Trainer trainer(task, trainer_options);
  TrainResult result;
  result.metrics = trainer.run();
  if (task.skipped_images() > 0) {
    spdlog::warn("skipped {} bad training samples (data.skip_bad_images); each file is named above", task.skipped_images());
    result.metrics["skipped_images"] = task.skipped_images();
  }
  saved.mean = config_triple(config, "data.mean");
  saved.std = config_triple(config, "data.std");
  auto resize = config.get<std::vector<int>>("data.resize");
  saved.resize_h = resize.at(0);
  saved.resize_w = resize.at(1);
  saved.model->to(torch::kCPU);
  result.weights = run_dir / "model.safetensors";
  if (main_rank) save_segmenter(result.weights, saved);
  result.checkpoint = run_dir / "checkpoints";
  if (dist) dist->finish();
  return result;
}

}  // namespace lesseg
