// ref: Chen et al. 2021, "Semi-Supervised Semantic Segmentation with Cross Pseudo Supervision";
// facts from charlesCXK/TorchSemiSeg (specs/semi.md).
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/methods/common/pseudo_label.h"
#include "lesseg/methods/semi/semi.h"
#include "lesseg/methods/semi/semi_task.h"
#include "lesseg/nn/functional.h"

namespace lesseg {
namespace {

struct SegmenterPairImpl : torch::nn::Module {
  SegmenterPairImpl(Segmenter first, Segmenter second)
      : a(register_module("a", std::move(first))), b(register_module("b", std::move(second))) {}
  Segmenter a, b;
};
TORCH_MODULE(SegmenterPair);

class CpsTask : public SemiTask {
 public:
  CpsTask(const Config& config, const SegmentationRun& run, Segmenter a, Segmenter b)
      : SemiTask(config, run, 0), pair_(std::move(a), std::move(b)) {
    weight_ = config.get<double>("cps.weight");
    use_cutmix_ = config.get<bool>("cps.cutmix");
    // TorchSemiSeg's CutMix config: a box on every image, 0.25-0.5 of its area (it draws 3 boxes; lesseg one).
    cutmix_.probability = 1.0;
    auto area = config.get<std::vector<double>>("cps.cutmix_area");
    if (area.size() != 2 || area[0] <= 0 || area[1] < area[0] || area[1] > 1)
      throw_usage("cps.cutmix_area must be [min, max] with 0 < min <= max <= 1");
    cutmix_.area_min = area[0];
    cutmix_.area_max = area[1];
    if (weight_ < 0) throw_usage("cps.weight must be >= 0");
  }

  torch::nn::Module& state_module() override { return *pair_; }
  std::vector<torch::Tensor> trainable_parameters() override { return pair_->parameters(); }
  std::vector<torch::Tensor> backbone_parameters() override {
    std::vector<torch::Tensor> both = pair_->a->backbone().parameters();
    for (auto& p : pair_->b->backbone().parameters()) both.push_back(p);
    return both;
  }

  LossTerms train_step(int64_t) override {
    pair_->train();
    if (freeze_bn_) freeze_batchnorm(*pair_);
    SemiBatch batch = next_batch();
    at::Tensor sup_a = supervised_loss(pair_->a(batch.images), batch.labels);
    at::Tensor sup_b = supervised_loss(pair_->b(batch.images), batch.labels);
    at::Tensor logits_a, logits_b, ignored = batch.ignored;
    PseudoLabel label_a, label_b;
    if (use_cutmix_) {
      // Pseudo-labels of the unmixed images, mixed like the images: the label under the box is the
      // partner's.
      {
        torch::NoGradGuard no_grad;
        label_a = pseudo_label(torch::softmax(pair_->a(batch.weak), 1));
        label_b = pseudo_label(torch::softmax(pair_->b(batch.weak), 1));
      }
      MixedView mixed = cutmix(batch.weak, cutmix_);
      for (PseudoLabel* label : {&label_a, &label_b}) {
        label->label = follow_mix(label->label, mixed.mask);
        label->confidence = follow_mix(label->confidence, mixed.mask);
      }
      ignored = follow_mix(ignored, mixed.mask);
      logits_a = pair_->a(mixed.images);
      logits_b = pair_->b(mixed.images);
    } else {
      logits_a = pair_->a(batch.weak);
      logits_b = pair_->b(batch.weak);
      label_a = pseudo_label(torch::softmax(logits_a, 1));
      label_b = pseudo_label(torch::softmax(logits_b, 1));
    }
    // Hard pseudo-labels both ways, no threshold (CPS).
    at::Tensor cps = confident_cross_entropy(logits_a, label_b, 0.0, ignored) +
                     confident_cross_entropy(logits_b, label_a, 0.0, ignored);
    return {{"sup_a", sup_a}, {"sup_b", sup_b}, {"cps", weight_ * cps}};
  }

  // "miou" (what train.select best compares) is the mean of the two branches'.
  nlohmann::json evaluate() override {
    nlohmann::json a = evaluate_on(pair_->a, run_.watched(), run_);
    nlohmann::json b = evaluate_on(pair_->b, run_.watched(), run_);
    return {{"miou", (a["miou"].get<double>() + b["miou"].get<double>()) / 2},
            {"miou_a", a["miou"]},
            {"miou_b", b["miou"]},
            {"models", {{"a", a}, {"b", b}}}};
  }

 private:
  SegmenterPair pair_;
  double weight_ = 1.5;
  bool use_cutmix_ = false;
  CutMixOptions cutmix_;
};

}  // namespace

TrainResult train_cps(const Config& config, const std::filesystem::path& run_dir) {
  SegmentationRun run = open_segmentation_run(config, run_dir);
  const Config second = with_model(config, config.get<std::string>("cps.arch_b"), config.get<std::string>("cps.backbone_b"),
                                   config.get<std::string>("cps.weights_b"));
  SavedSegmenter a = new_segmenter(config, model_spec_from(config, run.num_classes()), run, true);
  SavedSegmenter b = new_segmenter(second, model_spec_from(second, run.num_classes()), run, true);
  CpsTask task(config, run, a.model, b.model);
  TrainerOptions options = trainer_options_from(config, run_dir);
  options.distributed = run.dist;
  Trainer trainer(task, options);
  return finish_segmentation_run(trainer, config, run,
                                 {{"a", "model.safetensors", &a}, {"b", "model_b.safetensors", &b}},
                                 task.skipped_images());
}

}  // namespace lesseg
