#include "lesseg/methods/ssl/pretrain.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/data/loader_config.h"
#include "lesseg/data/open.h"
#include "lesseg/data/ssl/regions.h"
#include "lesseg/engine/checkpoint.h"
#include "lesseg/engine/trainer.h"
#include "lesseg/eval/probe.h"
#include "lesseg/io/safetensors.h"
#include "lesseg/methods/ssl/ssl_task.h"
#include "lesseg/models/vit.h"
#include "lesseg/models/weights.h"

namespace lesseg {

namespace {

// MAE's encoder (model.pos_embed auto: sin-cos, recomputed for every grid) starts from MAE's own init.
std::shared_ptr<BackboneImpl> build_pretrain_backbone(const Config& config, const ModelSpec& spec) {
  auto backbone = build_backbone(spec);
  auto vit = std::dynamic_pointer_cast<VitImpl>(backbone);
  if (vit && config.get<std::string>("method") == "mae") init_vit_mae(*vit);
  return backbone;
}

std::unique_ptr<SslTask> make_task(const std::string& method, SslSetup setup) {
  if (method == "simclr" || method == "samclr") return make_simclr_task(std::move(setup));
  if (method == "dino") return make_dino_task(std::move(setup));
  if (method == "mae") return make_mae_task(std::move(setup));
  throw_usage("unknown pretraining method '" + method + "' (known: simclr, samclr, dino, mae)");
}

}  // namespace

PretrainResult pretrain(const Config& config, const std::filesystem::path& run_dir) {
  const std::string method = config.get<std::string>("method");
  torch::Device device(config.get<std::string>("device"));
  torch::manual_seed(static_cast<uint64_t>(config.get<int64_t>("seed")));
  DistributedPtr dist = Distributed::connect(distributed_options_from(config), device);  // null: one process
  if (dist) device = dist->device();

  SslSetup setup;
  setup.config = &config;
  setup.spec = model_spec_from(config, 0);
  const std::string pos_embed = setup.spec.pos_embed;  // setup is moved into the task
  setup.backbone = build_pretrain_backbone(config, setup.spec);
  load_config_weights(config, {setup.backbone.get()});
  setup.backbone->to(device);
  setup.images = open_dataset(config, "train");
  setup.loader = dist ? train_loader_options(config, dist->rank(), dist->world_size()) : train_loader_options(config);
  setup.loader.views = view_maker_from(config);
  setup.num_global_views = config.get<int64_t>("views.global_count");
  setup.device = device;
  setup.dist = dist;
  if (!config.get<std::string>("probe.data").empty())  // kNN accuracy on a labelled set at every evaluation
    setup.evaluate = [&config, device](BackboneImpl& backbone) { return knn_probe(backbone, config, device); };
  if (setup.images->size() < static_cast<size_t>(setup.loader.batch_size))
    throw_usage("the training split has " + std::to_string(setup.images->size()) + " images, fewer than train.batch_size");
  spdlog::info("pretraining {} with {} on {} images", setup.spec.backbone, method, setup.images->size());

  auto task = make_task(method, std::move(setup));
  TrainerOptions trainer_options = trainer_options_from(config, run_dir);
  trainer_options.distributed = dist;
  Trainer trainer(*task, trainer_options);
  PretrainResult result;
  result.metrics = trainer.run();
  result.fallbacks = task->fallbacks();
  result.skipped = task->skipped();
  if (result.fallbacks > 0)
    spdlog::info("{} samples had no usable region and used whole-image views", result.fallbacks);
  result.backbone = run_dir / "backbone.safetensors";
  if (!dist || dist->is_main()) {
    BackboneImpl& backbone = task->result_backbone();
    std::map<std::string, std::string> metadata{{kBackboneMetadataKey, config.get<std::string>("model.backbone")},
                                                {"lesseg.method", method}};
    if (dynamic_cast<VitImpl*>(&backbone)) metadata[kPosEmbedMetadataKey] = pos_embed;
    save_safetensors(result.backbone, module_tensors(backbone), metadata);
  }
  if (dist) dist->finish();
  return result;
}

}  // namespace lesseg
