#include "lesseg/eval/evaluate.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"

namespace lesseg {

ConfusionMatrix evaluate_segmenter(Segmenter& model, SegDatasetPtr dataset, const EvalOptions& options) {
  const ClassInfo& classes = dataset->classes();
  if (options.max_images > 0 && static_cast<size_t>(options.max_images) < dataset->size()) {
    std::vector<size_t> first(options.max_images);
    std::iota(first.begin(), first.end(), 0);
    dataset = std::make_shared<SubsetDataset>(dataset, first);
  }
  if (options.world_size > 1) {  // every image once, on one rank (no padding, unlike training)
    std::vector<size_t> mine;
    for (size_t i = static_cast<size_t>(options.rank); i < dataset->size(); i += static_cast<size_t>(options.world_size))
      mine.push_back(i);
    dataset = std::make_shared<SubsetDataset>(dataset, mine);
  }
  LoaderOptions lo;
  lo.batch_size = options.batch_size;
  lo.shuffle = false;
  lo.drop_last = false;
  lo.repeat = false;
  lo.augment = options.augment;
  lo.mean = options.mean;
  lo.std = options.std;
  Loader loader(dataset, lo);
  ConfusionMatrix confusion(classes.num_classes(), classes.ignore_index);
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  Batch batch;
  while (loader.next(batch)) {
    if (!batch.masks.defined()) continue;  // unlabeled images cannot be scored
    auto logits = model->forward(batch.images.to(options.device));
    confusion.process(logits.argmax(1).cpu(), batch.masks);
  }
  model->train(was_training);
  return confusion;
}

nlohmann::json metrics_json(const SegMetrics& m, const ClassInfo& classes, const std::vector<int>& scored) {
  auto clean = [](const std::vector<double>& values) {
    nlohmann::json out = nlohmann::json::array();
    for (double v : values) out.push_back(std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v));
    return out;
  };
  nlohmann::json out = {{"miou", m.miou}, {"macc", m.macc}, {"pixel_acc", m.pixel_acc},
                        {"iou", clean(m.iou)}, {"acc", clean(m.accuracy)}, {"classes", classes.names}};
  if (scored.empty()) return out;
  auto mean_of = [&](const std::vector<double>& values) {
    double sum = 0;
    int count = 0;
    for (int c : scored)
      if (!std::isnan(values.at(c))) sum += values[c], ++count;
    return count ? sum / count : 0.0;
  };
  out["miou"] = mean_of(m.iou);
  out["macc"] = mean_of(m.accuracy);
  out["scored_classes"] = nlohmann::json::array();
  for (int c : scored) out["scored_classes"].push_back(classes.names.at(c));
  return out;
}

std::vector<int> scored_classes_from(const Config& config, const ClassInfo& classes) {
  std::vector<int> out;
  for (const std::string& name : config.get<std::vector<std::string>>("eval.classes")) {
    const auto it = std::find(classes.names.begin(), classes.names.end(), name);
    if (it == classes.names.end()) throw_usage("eval.classes: the dataset has no class '" + name + "'");
    out.push_back(static_cast<int>(it - classes.names.begin()));
  }
  return out;
}

}  // namespace lesseg
