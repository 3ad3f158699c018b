#include "lesseg/eval/evaluate.h"

#include <cmath>

#include <torch/torch.h>

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

nlohmann::json metrics_json(const SegMetrics& m, const ClassInfo& classes) {
  auto clean = [](const std::vector<double>& values) {
    nlohmann::json out = nlohmann::json::array();
    for (double v : values) out.push_back(std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v));
    return out;
  };
  return {{"miou", m.miou}, {"macc", m.macc}, {"pixel_acc", m.pixel_acc},
          {"iou", clean(m.iou)}, {"acc", clean(m.accuracy)}, {"classes", classes.names}};
}

}  // namespace lesseg
