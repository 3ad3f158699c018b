// ref: Yang et al. 2023, "Revisiting Weak-to-Strong Consistency in Semi-Supervised Semantic
// Segmentation"; facts from LiheYoung/UniMatch unimatch.py (specs/semi.md).
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/methods/common/pseudo_label.h"
#include "lesseg/methods/semi/semi.h"
#include "lesseg/methods/semi/semi_task.h"
#include "lesseg/nn/functional.h"

namespace lesseg {
namespace {

class UniMatchTask : public SemiTask {
 public:
  UniMatchTask(const Config& config, const SegmentationRun& run, Segmenter model)
      : SemiTask(config, run, 2), model_(std::move(model)) {
    threshold_ = config.get<double>("semi.threshold");
    dropout_ = config.get<double>("unimatch.feature_dropout");
    cutmix_ = cutmix_options_from(config);
    if (threshold_ < 0 || threshold_ > 1) throw_usage("semi.threshold must be in [0, 1]");
    if (dropout_ < 0 || dropout_ >= 1) throw_usage("unimatch.feature_dropout must be in [0, 1)");
  }

  torch::nn::Module& state_module() override { return *model_; }
  std::vector<torch::Tensor> trainable_parameters() override { return model_->parameters(); }
  std::vector<torch::Tensor> backbone_parameters() override { return model_->backbone().parameters(); }

  LossTerms train_step(int64_t) override {
    namespace F = torch::nn::functional;
    model_->train();
    if (freeze_bn_) freeze_batchnorm(*model_);
    SemiBatch batch = next_batch();
    const int64_t labeled = batch.images.size(0), height = batch.images.size(2), width = batch.images.size(3);
    // Labeled and weak unlabeled images in one encoder pass; the decoder takes each level twice,
    // clean and after channel dropout, in one batch (as UniMatch: the decoder's BatchNorm sees both
    // streams together). UniMatch drops DeepLabV3+'s two decoder inputs; lesseg every level the
    // decoder takes. Only the unlabeled part of the perturbed stream is used.
    std::vector<at::Tensor> features = model_->encode(torch::cat({batch.images, batch.weak}));
    std::vector<at::Tensor> both;
    for (const at::Tensor& level : features)
      both.push_back(torch::cat({level, F::dropout2d(level, F::Dropout2dFuncOptions().p(dropout_).training(true))}));
    auto streams = model_->decode(both, height, width).chunk(2);
    at::Tensor logits = streams[0], logits_fp = streams[1].slice(0, labeled);
    at::Tensor logits_x = logits.slice(0, 0, labeled), logits_w = logits.slice(0, labeled);
    PseudoLabel weak_label = pseudo_label(torch::softmax(logits_w.detach(), 1));

    // Two strong views, each CutMix'ed with its batch neighbour; the pseudo-label follows the pixels.
    MixedView mixed1 = cutmix(batch.strong.at(0), cutmix_), mixed2 = cutmix(batch.strong.at(1), cutmix_);
    auto strong_logits = model_->forward(torch::cat({mixed1.images, mixed2.images})).chunk(2);
    at::Tensor loss_x = supervised_loss(logits_x, batch.labels);
    at::Tensor loss_s1 = mixed_loss(strong_logits[0], weak_label, batch.ignored, mixed1.mask);
    at::Tensor loss_s2 = mixed_loss(strong_logits[1], weak_label, batch.ignored, mixed2.mask);
    at::Tensor loss_fp = confident_cross_entropy(logits_fp, weak_label, threshold_, batch.ignored);
    // UniMatch: (L_x + 0.25 L_s1 + 0.25 L_s2 + 0.5 L_fp) / 2.
    return {{"x", 0.5 * loss_x}, {"s1", 0.125 * loss_s1}, {"s2", 0.125 * loss_s2}, {"fp", 0.25 * loss_fp}};
  }

  nlohmann::json evaluate() override { return evaluate_on(model_, run_.watched(), run_); }

 private:
  at::Tensor mixed_loss(const at::Tensor& logits, const PseudoLabel& weak_label, const at::Tensor& ignored,
                        const at::Tensor& mask) {
    PseudoLabel label{follow_mix(weak_label.label, mask), follow_mix(weak_label.confidence, mask)};
    return confident_cross_entropy(logits, label, threshold_, follow_mix(ignored, mask));
  }

  Segmenter model_;
  double threshold_ = 0.95, dropout_ = 0.5;
  CutMixOptions cutmix_;
};

}  // namespace

TrainResult train_unimatch(const Config& config, const std::filesystem::path& run_dir) {
  SegmentationRun run = open_segmentation_run(config, run_dir);
  SavedSegmenter model = new_segmenter(config, model_spec_from(config, run.num_classes()), run, true);
  UniMatchTask task(config, run, model.model);
  TrainerOptions options = trainer_options_from(config, run_dir);
  options.distributed = run.dist;
  Trainer trainer(task, options);
  return finish_segmentation_run(trainer, config, run, {{"model", "model.safetensors", &model}}, task.skipped_images());
}

}  // namespace lesseg
