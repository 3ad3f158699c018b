#include "lesseg/methods/cutler/cutler.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/core/rng.h"
#include "lesseg/data/copy_paste.h"
#include "lesseg/data/instances.h"
#include "lesseg/data/loader.h"
#include "lesseg/data/loader_config.h"
#include "lesseg/engine/trainer.h"
#include "lesseg/methods/instance_model.h"
#include "lesseg/models/weights.h"
#include "lesseg/nn/functional.h"

namespace lesseg {

namespace {

std::filesystem::path images_root(const Config& config, const std::string& json_key, const std::string& images_key) {
  const std::string images = config.get<std::string>(images_key);
  if (!images.empty()) return images;
  return std::filesystem::path(config.get<std::string>(json_key)).parent_path();
}

// data.labeled_fraction of the annotated images (few labels on top of an unsupervised model), their
// file names written to run_dir/labeled.txt so that the split can be read back and reproduced.
SegDatasetPtr labeled_images(const Config& config, const std::shared_ptr<const InstanceDataset>& all,
                             const std::filesystem::path& run_dir, bool write_list) {
  const double fraction = config.get<double>("data.labeled_fraction");
  if (!(fraction > 0 && fraction <= 1)) throw_usage("data.labeled_fraction must be in (0, 1]");
  if (fraction == 1.0) return all;
  auto subset = split_labeled(all, fraction, static_cast<uint64_t>(config.get<int64_t>("seed"))).labeled;
  if (write_list) {
    std::string list;
    for (size_t index : subset->indices()) list += all->image(index).file_name + "\n";
    std::filesystem::create_directories(run_dir);
    write_file_atomic(run_dir / "labeled.txt", list);
  }
  spdlog::info("data.labeled_fraction {}: {} of {} annotated images (list: {})", fraction, subset->size(), all->size(),
               (run_dir / "labeled.txt").string());
  return subset;
}

class CutlerTask : public TrainTask {
 public:
  CutlerTask(const Config& config, SavedInstanceModel& saved, SegDatasetPtr train,
             std::shared_ptr<const InstanceDataset> val, torch::Device device, DistributedPtr dist)
      : saved_(saved), train_(std::move(train)), val_(std::move(val)), device_(device), dist_(std::move(dist)) {
    loader_options_ = dist_ ? train_loader_options(config, dist_->rank(), dist_->world_size()) : train_loader_options(config);
    const auto& a = loader_options_.augment;
    if (a.crop_h <= 0 || a.crop_w <= 0 || a.crop_h % 32 != 0 || a.crop_w % 32 != 0)
      throw_usage("cutler needs data.crop with both sides multiples of 32 (SOLOv2's FPN), got [" +
                  std::to_string(a.crop_h) + ", " + std::to_string(a.crop_w) + "]");
    if (train_->size() < static_cast<size_t>(loader_options_.batch_size))
      throw_usage("the training annotations cover " + std::to_string(train_->size()) +
                  " images, fewer than train.batch_size");
    loss_options_ = solo_loss_options_from(config);
    copy_paste_.probability = config.get<double>("cutler.copy_paste");
    auto scale = config.get<std::vector<double>>("cutler.copy_paste_scale");
    if (scale.size() != 2 || scale[0] <= 0 || scale[0] > scale[1] || scale[1] > 1)
      throw_usage("cutler.copy_paste_scale must be [min, max] with 0 < min <= max <= 1");
    copy_paste_.scale_min = scale[0];
    copy_paste_.scale_max = scale[1];
    seed_ = static_cast<uint64_t>(config.get<int64_t>("seed"));
    freeze_bn_ = config.get<bool>("train.freeze_bn");
    eval_max_images_ = config.get<int64_t>("eval.max_images");
    restore({});
  }

  torch::nn::Module& state_module() override { return *saved_.model; }
  std::vector<torch::Tensor> trainable_parameters() override { return saved_.model->parameters(); }
  int64_t images_per_step() const override { return loader_options_.batch_size; }
  SamplerState loader_state() const override { return loader_->state(); }
  void restore(SamplerState state) override {
    loader_.reset();
    loader_ = std::make_unique<Loader>(train_, loader_options_, state);
  }

  LossTerms train_step(int64_t iter) override {
    saved_.model->train();
    if (freeze_bn_) freeze_batchnorm(*saved_.model);  // small batches: keep a pretrained backbone's statistics
    Batch batch;
    loader_->next(batch);
    if (batch.instances.size() != batch.ids.size()) throw_usage("cutler: the training batch has no instance masks");
    if (copy_paste_.probability > 0) {
      std::mt19937_64 rng(mix_seed({seed_, 0xC0B1, static_cast<uint64_t>(iter)}));
      copy_paste(batch.images, batch.instances, copy_paste_, rng);
    }
    std::vector<at::Tensor> labels;
    for (const auto& masks : batch.instances) labels.push_back(torch::zeros({masks.size(0)}, torch::kLong));
    SoloOutput out = saved_.model->forward(batch.images.to(device_));
    SoloLosses losses = solo_losses(out, batch.instances, labels, loss_options_);
    dropped_share_ = losses.cells > 0 ? double(losses.dropped) / double(losses.cells) : 0.0;
    return {{"category", losses.category}, {"mask", losses.mask}};
  }

  nlohmann::json evaluate() override {
    if (!val_) return {{"dropped_cells", dropped_share_}};
    nlohmann::json metrics = evaluate_instance_model(saved_, *val_, device_, eval_max_images_);
    metrics["dropped_cells"] = dropped_share_;
    return metrics;
  }

 private:
  SavedInstanceModel& saved_;
  SegDatasetPtr train_;
  std::shared_ptr<const InstanceDataset> val_;
  torch::Device device_;
  DistributedPtr dist_;
  LoaderOptions loader_options_;
  SoloLossOptions loss_options_;
  CopyPasteOptions copy_paste_;
  uint64_t seed_ = 0;
  bool freeze_bn_ = false;
  int64_t eval_max_images_ = 0;
  double dropped_share_ = 0;
  std::unique_ptr<Loader> loader_;
};

}  // namespace

TrainResult train_cutler(const Config& config, const std::filesystem::path& run_dir) {
  torch::Device device(config.get<std::string>("device"));
  torch::manual_seed(static_cast<uint64_t>(config.get<int64_t>("seed")));
  DistributedPtr dist = Distributed::connect(distributed_options_from(config), device);
  if (dist) device = dist->device();
  const bool main_rank = !dist || dist->is_main();
  const std::string train_json = config.get<std::string>("instances.train_json");
  if (train_json.empty()) throw_usage("cutler needs instances.train_json (pseudo-masks, e.g. from lesseg pseudo)");
  auto masks = std::make_shared<const InstanceDataset>(
      train_json, images_root(config, "instances.train_json", "instances.train_images"), /*drop_empty_images=*/true);
  SegDatasetPtr train = labeled_images(config, masks, run_dir, main_rank);
  std::shared_ptr<const InstanceDataset> val;
  const std::string val_json = config.get<std::string>("instances.val_json");
  if (!val_json.empty())
    val = std::make_shared<const InstanceDataset>(val_json, images_root(config, "instances.val_json", "instances.val_images"),
                                                  /*drop_empty_images=*/false);
  spdlog::info("data: {} training images ({} without pseudo-masks left out, {} empty or crowd masks skipped), {} "
               "validation images",
               train->size(), masks->dropped_images(), masks->skipped_annotations(), val ? val->size() : 0);

  SavedInstanceModel saved;
  saved.spec = model_spec_from(config, 0);
  saved.solo = solov2_options_from(config);
  saved.test = solo_test_options_from(config);
  saved.input = instance_input_from(config);
  saved.model = Solov2(build_backbone(saved.spec), saved.solo);
  load_config_weights(config, {saved.model.get(), &saved.model->backbone()});
  saved.model->to(device);

  CutlerTask task(config, saved, train, val, device, dist);
  TrainerOptions trainer_options = trainer_options_from(config, run_dir);
  trainer_options.distributed = dist;
  Trainer trainer(task, trainer_options);
  TrainResult result;
  result.metrics = trainer.run();
  saved.model->to(torch::kCPU);
  result.weights = run_dir / "model.safetensors";
  if (main_rank) save_instance_model(result.weights, saved);
  result.checkpoint = run_dir / "checkpoints";
  if (dist) dist->finish();
  return result;
}

}  // namespace lesseg
