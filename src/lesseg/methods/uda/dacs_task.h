#pragma once
// ClassMix self-training with a mean teacher (DACS, Tranheden et al. 2021, as DAFormer runs it),
// the base of the adaptation methods: each step a labeled source batch and an unlabeled target
// batch (SemiTask's paired loader); the EMA teacher pseudo-labels the target; half of each source
// image's classes are pasted onto a target image, labels and weights following the pixels; the
// mixed batch is colour-jittered and blurred; the student learns from source and mix.
#include <functional>
#include <memory>
#include <random>

#include "lesseg/methods/common/batch_jitter.h"
#include "lesseg/methods/common/pseudo_label.h"
#include "lesseg/methods/semi/semi_task.h"

namespace lesseg {

// The teacher's view of the target batch.
struct TargetLabel {
  PseudoLabel label;  // label: ignore_index on padding
  double weight = 0;  // confident fraction: the weight of every target pixel
};

// A ClassMix'ed batch: the source's pixels where mask is true, the target's elsewhere.
struct ClassMixed {
  at::Tensor images, labels, weights, mask;
};

class DacsTask : public SemiTask {
 public:
  DacsTask(const Config& config, const SegmentationRun& run, Segmenter student, Segmenter teacher);

  torch::nn::Module& state_module() override { return *modules_; }
  std::vector<torch::Tensor> trainable_parameters() override;
  std::vector<torch::Tensor> backbone_parameters() override { return student_->backbone().parameters(); }
  LossTerms train_step(int64_t iter) override;
  // The teacher follows the student: alpha_t = min(1 - 1/(t+1), dacs.ema) with t the number of
  // steps taken (DAFormer updates before step t's forward; lesseg right after step t - 1).
  void after_step(int64_t iter) override;
  nlohmann::json evaluate() override { return evaluate_on(student_, run_.watched(), run_); }

 protected:
  // Pseudo-labels of the teacher (training mode, no gradient) for the target images.
  TargetLabel teacher_label(const at::Tensor& target, const at::Tensor& ignored);
  // ClassMix of source images (and labels) onto the target ones, jittered and blurred.
  ClassMixed class_mix(const at::Tensor& source, const at::Tensor& source_labels, const at::Tensor& target,
                       const TargetLabel& target_label);
  void prepare_student();
  // The teacher's momentum after step `iter` (0-based): min(1 - 1/(iter + 2), dacs.ema).
  double teacher_momentum(int64_t iter) const;

  std::shared_ptr<torch::nn::Module> modules_;  // "student", "teacher", and what a subclass adds
  Segmenter student_, teacher_;
  std::vector<torch::Tensor> extra_trainable_;  // a subclass's heads
  std::array<double, 3> mean_, std_;            // the loader's normalization
  bool mix_ = true;                             // dacs.mix: off, no teacher and no mixed images

 private:
  double threshold_, ema_;
  int64_t ignore_top_, ignore_bottom_;
  BatchJitterOptions jitter_;
};

// The student and a teacher of the same spec, the task `make_task` builds on them, the trainer, and
// the student saved as model.safetensors and scored on the target: dacs and csa.
using MakeDacsTask =
    std::function<std::unique_ptr<DacsTask>(const Config&, const SegmentationRun&, Segmenter student, Segmenter teacher)>;
TrainResult train_adaptation(const Config& config, const std::filesystem::path& run_dir, const std::string& method,
                             const MakeDacsTask& make_task);

}  // namespace lesseg
