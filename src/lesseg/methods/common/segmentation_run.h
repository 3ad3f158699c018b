#pragma once
// What every semantic-segmentation method shares around its TrainTask: the device and ranks, the
// splits (labeled / unlabeled / held out / reported), evaluation on the held-out split while
// training, and at the end the selected weights saved and scored once on the reported split.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lesseg/core/config.h"
#include "lesseg/data/train_splits.h"
#include "lesseg/engine/distributed.h"
#include "lesseg/engine/trainer.h"
#include "lesseg/eval/evaluate.h"
#include "lesseg/methods/saved_segmenter.h"
#include "lesseg/methods/train.h"

namespace lesseg {

struct SegmentationRun {
  TrainSplits splits;
  torch::Device device = torch::kCPU;
  DistributedPtr dist;  // null: one process
  EvalOptions eval;
  bool main_rank = true;
  std::filesystem::path run_dir;
  std::vector<double> labeled_weights;  // rare-class sampling of the labeled images; empty: uniform

  // The split evaluated while training: the held-out images, else the reported split (watched,
  // never selected on: train.select best needs data.holdout).
  SegDatasetPtr watched() const { return splits.selection ? splits.selection : splits.reported; }
  std::string watched_name() const { return splits.selection ? "holdout" : "val"; }
  int64_t num_classes() const { return splits.labeled->classes().num_classes(); }
};

// Seeds, connects the ranks, opens the splits (lists written by rank 0), checks train.select.
SegmentationRun open_segmentation_run(const Config& config, const std::filesystem::path& run_dir);

// mIoU & co. of `model` on `dataset`, the ranks' confusion matrices summed.
nlohmann::json evaluate_on(Segmenter& model, const SegDatasetPtr& dataset, const SegmentationRun& run);

// The labeled images' training loader: data.* augmentation, this rank's share of train.batch_size,
// rare-class sampling when the run has it.
LoaderOptions labeled_loader_options(const Config& config, const SegmentationRun& run);

// Refused (exit 2) when the labeled split cannot fill one batch of `batch_size` images.
void check_labeled_fills_batch(const SegmentationRun& run, int64_t batch_size);

// The config of a method's other network (CPS's second branch, IGL-DT's student): model.arch,
// model.backbone and model.weights replaced, model.weights_key cleared; the other model.* kept.
Config with_model(const Config& config, const std::string& arch, const std::string& backbone, const std::string& weights);

// A new segmenter for `spec` with the run's classes, model.weights loaded when `load_weights`.
SavedSegmenter new_segmenter(const Config& config, const ModelSpec& spec, const SegmentationRun& run, bool load_weights);

// One model a method deploys: saved as run_dir/<file>, scored on the reported split under <name>
// (the first one's metrics are the run's headline).
struct TrainedModel {
  std::string name;
  std::string file;
  SavedSegmenter* model;
};

// Runs the trainer, puts back the selected weights (train.select best), saves every model (rank
// 0) and scores it on the reported split. metrics = the first model's reported metrics, plus
// "models": {name: metrics} and "selected": the held-out evaluation the weights were chosen at.
TrainResult finish_segmentation_run(Trainer& trainer, const Config& config, const SegmentationRun& run,
                                    const std::vector<TrainedModel>& models, int64_t skipped_images);

}  // namespace lesseg
