#include "lesseg/methods/cutler/selftrain.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/methods/cutler/cutler.h"
#include "lesseg/methods/instance_model.h"

namespace lesseg {

namespace fs = std::filesystem;

namespace {

std::vector<const coco::Annotation*> annotations_of(const coco::Dataset& data, int64_t image_id) {
  std::vector<const coco::Annotation*> out;
  auto found = data.annotations_by_image.find(image_id);
  if (found == data.annotations_by_image.end()) return out;
  for (size_t index : found->second) out.push_back(&data.annotations[index]);
  return out;
}

void add(coco::Dataset& data, coco::Annotation annotation, int64_t image_id) {
  annotation.id = static_cast<int64_t>(data.annotations.size() + 1);
  annotation.image_id = image_id;
  data.annotations_by_image[image_id].push_back(data.annotations.size());
  data.annotations.push_back(std::move(annotation));
}

fs::path images_root_of(const Config& config) {
  const std::string images = config.get<std::string>("instances.train_images");
  return images.empty() ? fs::path(config.get<std::string>("instances.train_json")).parent_path() : fs::path(images);
}

double highest_score(const coco::Dataset& predicted) {
  double top = 0;
  for (const auto& annotation : predicted.annotations) top = std::max(top, annotation.score);
  return top;
}

}  // namespace

coco::Dataset merge_self_training(const coco::Dataset& previous, const coco::Dataset& predicted,
                                  const SelfTrainMerge& options) {
  std::map<std::string, int64_t> predicted_ids;
  for (const auto& image : predicted.images) predicted_ids[image.file_name] = image.id;
  coco::Dataset out;
  out.images = previous.images;
  out.categories = previous.categories;
  for (const auto& image : previous.images) {
    std::vector<const coco::Annotation*> kept;
    auto found = predicted_ids.find(image.file_name);
    if (found != predicted_ids.end())
      for (const coco::Annotation* p : annotations_of(predicted, found->second))
        if (p->score >= options.threshold) kept.push_back(p);
    for (const coco::Annotation* p : kept) {
      coco::Annotation a = *p;
      a.category_id = out.categories.empty() ? 1 : out.categories.front().id;
      add(out, a, image.id);
    }
    for (const coco::Annotation* old : annotations_of(previous, image.id)) {
      double best = 0;
      for (const coco::Annotation* p : kept) best = std::max(best, rle::iou(p->mask, old->mask));
      if (kept.empty() || best < options.keep_old_iou) add(out, *old, image.id);
    }
  }
  return out;
}

SelfTrainResult self_train(const Config& config, const fs::path& run_dir) {
  const int64_t rounds = config.get<int64_t>("selftrain.rounds");
  const auto thresholds = config.get<std::vector<double>>("selftrain.thresholds");
  if (rounds < 0 || static_cast<int64_t>(thresholds.size()) < rounds)
    throw_usage("selftrain.thresholds needs one score threshold per round (selftrain.rounds = " +
                std::to_string(rounds) + ")");
  const std::string mode = config.get<std::string>("selftrain.threshold_mode");
  if (mode != "absolute" && mode != "relative")
    throw_usage("selftrain.threshold_mode must be absolute or relative, got '" + mode + "'");
  const bool relative = mode == "relative";
  SelfTrainResult result;
  auto train_round = [&](const Config& round_config, const fs::path& dir) {
    fs::create_directories(dir);
    write_file_atomic(dir / "config.yaml", round_config.dump());  // lesseg eval / report read it
    spdlog::info("self-training: {}", dir.string());
    result.rounds.push_back(train_cutler(round_config, dir));
    result.annotations.push_back(round_config.get<std::string>("instances.train_json"));
  };
  train_round(config, run_dir / "round0");
  const fs::path root = images_root_of(config);
  fs::path annotations = config.get<std::string>("instances.train_json");
  for (int64_t r = 1; r <= rounds; ++r) {
    const fs::path dir = run_dir / ("round" + std::to_string(r));
    const fs::path merged_file = dir / "pseudo_train.json";
    const fs::path previous_model = result.rounds.back().weights;
    if (!fs::exists(merged_file)) {
      SavedInstanceModel saved = load_instance_model(previous_model, torch::Device(config.get<std::string>("device")));
      saved.test.nms.max_num = config.get<int64_t>("selftrain.detections");
      coco::Dataset previous = coco::read(annotations);
      std::vector<fs::path> files;
      for (const auto& image : previous.images) files.push_back(image.file_name);
      coco::Dataset predicted = predict_instance_files(saved, root, files, torch::Device(config.get<std::string>("device")));
      SelfTrainMerge merge;
      merge.threshold = thresholds[static_cast<size_t>(r - 1)];
      if (relative) {
        const double top = highest_score(predicted);
        spdlog::info("round {}: highest prediction score {:.3f}; threshold {} x {:.3f}", r, top, merge.threshold, top);
        merge.threshold *= top;
      }
      merge.keep_old_iou = config.get<double>("selftrain.keep_old_iou");
      coco::Dataset merged = merge_self_training(previous, predicted, merge);
      fs::create_directories(dir);
      coco::write(merged_file, merged);
      spdlog::info("round {}: {} masks ({} before) on {} images, predictions kept at score >= {}", r,
                   merged.annotations.size(), previous.annotations.size(), merged.images.size(), merge.threshold);
    }
    Config round_config = config;
    round_config.set("instances.train_json", yaml_quoted(merged_file.string()));
    round_config.set("instances.train_images", yaml_quoted(root.string()));
    round_config.set("model.weights", yaml_quoted(previous_model.string()));
    round_config.set("model.weights_key", "''");  // the previous round's own file, whatever round 0 loaded
    round_config.set("model.allow_partial", "false");
    round_config.set("train.schedule", "constant");  // CutLER's rounds: no decay (GAMMA 1.0)
    round_config.set("cutler.drop_loss", "false");
    const auto scale = config.get<std::vector<double>>("selftrain.copy_paste_scale");
    round_config.set("cutler.copy_paste_scale", fmt::format("[{:.17g}, {:.17g}]", scale.at(0), scale.at(1)));
    round_config.set("train.lr", fmt::format("{:.17g}", config.get<double>("train.lr") * config.get<double>("selftrain.lr_factor")));
    const int64_t iters = config.get<int64_t>("selftrain.iters");
    if (iters > 0) round_config.set("train.iters", std::to_string(iters));
    train_round(round_config, dir);
    annotations = merged_file;
  }
  return result;
}

}  // namespace lesseg
