#include "lesseg/methods/common/segmentation_run.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/data/loader_config.h"
#include "lesseg/data/open.h"
#include "lesseg/data/rare_class.h"
#include "lesseg/models/weights.h"

namespace lesseg {

LoaderOptions labeled_loader_options(const Config& config, const SegmentationRun& run) {
  LoaderOptions options = run.dist ? train_loader_options(config, run.dist->rank(), run.dist->world_size())
                                   : train_loader_options(config);
  options.sample_weights = run.labeled_weights;
  return options;
}

SegmentationRun open_segmentation_run(const Config& config, const std::filesystem::path& run_dir) {
  SegmentationRun run;
  run.run_dir = run_dir;
  run.device = torch::Device(config.get<std::string>("device"));
  torch::manual_seed(static_cast<uint64_t>(config.get<int64_t>("seed")));
  run.dist = Distributed::connect(distributed_options_from(config), run.device);
  if (run.dist) {
    run.device = run.dist->device();
    run.eval.rank = run.dist->rank();
    run.eval.world_size = run.dist->world_size();
  }
  run.main_rank = !run.dist || run.dist->is_main();
  run.splits = open_train_splits(config, run_dir, run.main_rank);
  if (run.splits.labeled->classes().num_classes() != run.splits.reported->classes().num_classes())
    throw_usage("training and validation splits have different class counts");
  if (config.get<std::string>("train.select") == "best" && !run.splits.selection)
    throw_usage("train.select best needs data.holdout: choosing weights on the reported split (data.val_split) "
                "would overstate them");
  run.labeled_weights = rare_class_weights_from(config, *run.splits.labeled);
  run.eval.batch_size = config.get<int>("eval.batch_size");
  run.eval.max_images = config.get<int64_t>("eval.max_images");
  run.eval.scored_classes = scored_classes_from(config, run.splits.reported->classes());
  run.eval.augment = eval_augment_from(config);
  run.eval.mean = config_triple(config, "data.mean");
  run.eval.std = config_triple(config, "data.std");
  run.eval.device = run.device;
  return run;
}

void check_labeled_fills_batch(const SegmentationRun& run, int64_t batch_size) {
  if (run.splits.labeled->size() < static_cast<size_t>(batch_size))
    throw_usage("the labeled training images (" + std::to_string(run.splits.labeled->size()) +
                ") are fewer than one batch (train.batch_size " + std::to_string(batch_size) + " per rank)");
}

Config with_model(const Config& config, const std::string& arch, const std::string& backbone, const std::string& weights) {
  Config other = config;
  other.set("model.arch", yaml_quoted(arch));
  other.set("model.backbone", yaml_quoted(backbone));
  other.set("model.weights", yaml_quoted(weights));
  other.set("model.weights_key", yaml_quoted(""));
  return other;
}

nlohmann::json evaluate_on(Segmenter& model, const SegDatasetPtr& dataset, const SegmentationRun& run) {
  auto confusion = evaluate_segmenter(model, dataset, run.eval);
  if (run.dist) {
    at::Tensor counts = confusion.matrix().clone();
    run.dist->all_reduce_sum(counts);
    confusion.reset();
    confusion.add_counts(counts);
  }
  return metrics_json(confusion.compute(), dataset->classes(), run.eval.scored_classes);
}

SavedSegmenter new_segmenter(const Config& config, const ModelSpec& spec, const SegmentationRun& run, bool load_weights) {
  SavedSegmenter saved;
  saved.spec = spec;
  saved.classes = run.splits.labeled->classes();
  saved.model = build_segmenter(saved.spec);
  if (load_weights) load_config_weights(config, {saved.model.get(), &saved.model->backbone()});
  saved.model->to(run.device);
  saved.mean = config_triple(config, "data.mean");
  saved.std = config_triple(config, "data.std");
  auto resize = config.get<std::vector<int>>("data.resize");
  saved.resize_h = resize.at(0);
  saved.resize_w = resize.at(1);
  return saved;
}

TrainResult finish_segmentation_run(Trainer& trainer, const Config& config, const SegmentationRun& run,
                                    const std::vector<TrainedModel>& models, int64_t skipped_images) {
  TrainResult result;
  nlohmann::json last = trainer.run();
  nlohmann::json selected = last;
  selected["iter"] = config.get<int64_t>("train.iters");  // train.select last: the final weights
  if (config.get<std::string>("train.select") == "best") {
    nlohmann::json best = trainer.load_best();
    if (best.is_null())  // e.g. a run finished with select last, resumed with select best
      spdlog::warn("train.select best: no held-out evaluation was kept in {}/best; the last weights are used",
                   run.run_dir.string());
    else
      selected = best;
    spdlog::info("train.select best: the weights of iteration {} (holdout {} {:.4f})", selected.value("iter", -1),
                 "miou", selected.value("miou", 0.0));
  }
  result.metrics = nlohmann::json::object();
  for (const TrainedModel& trained : models) {
    // Scored on the reported split once, after the choice; without a held-out split the last
    // evaluation of a one-model method already is that.
    const bool last_is_reported = !run.splits.selection && models.size() == 1;
    nlohmann::json reported = last_is_reported ? last : evaluate_on(trained.model->model, run.splits.reported, run);
    result.metrics["models"][trained.name] = reported;
    if (&trained == &models.front())
      for (auto& [key, value] : reported.items()) result.metrics[key] = value;
    trained.model->model->to(torch::kCPU);
    if (run.main_rank) save_segmenter(run.run_dir / trained.file, *trained.model);
    trained.model->model->to(run.device);
    spdlog::info("{}: {} mIoU {:.4f} on the reported split ({}), saved to {}", trained.name, trained.file,
                 reported.value("miou", 0.0), config.get<std::string>("data.val_split"), (run.run_dir / trained.file).string());
  }
  if (run.splits.selection) result.metrics["selected"] = selected;
  if (skipped_images > 0) {
    spdlog::warn("skipped {} bad training samples (data.skip_bad_images); each file is named above", skipped_images);
    result.metrics["skipped_images"] = skipped_images;
  }
  if (run.main_rank) write_file_atomic(run.run_dir / "results.json", result.metrics.dump(2) + "\n");
  result.weights = run.run_dir / models.front().file;
  result.checkpoint = run.run_dir / "checkpoints";
  if (run.dist) run.dist->finish();
  return result;
}

}  // namespace lesseg
