// IGL-DT (Tran, Nguyen et al., CVPR Workshops 2025, arXiv 2504.09797). No public code: the design is
// the paper's (two CPS teachers, a student with global, local and discrepancy terms), the open
// choices are marked "lesseg:" and listed in specs/semi.md and the README.
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/engine/distributed.h"
#include "lesseg/methods/common/pseudo_label.h"
#include "lesseg/methods/semi/igldt_losses.h"
#include "lesseg/methods/semi/semi.h"
#include "lesseg/methods/semi/semi_task.h"
#include "lesseg/nn/functional.h"

namespace lesseg {
namespace {

// lesseg: the local terms compare the first feature level at stride >= 8 (fine detail, still a
// few pixels per region of the grid); the global term the deepest level.
size_t level_at_stride(const std::vector<FeatureSpec>& specs, int64_t stride) {
  for (size_t i = 0; i < specs.size(); ++i)
    if (specs[i].stride >= stride) return i;
  return specs.size() - 1;
}

// The student and the 1x1 projections of its features to each teacher's width (training only).
struct StudentImpl : torch::nn::Module {
  StudentImpl(Segmenter segmenter, int64_t global_in, int64_t global_out, int64_t local_in, int64_t local_out)
      : model(register_module("model", std::move(segmenter))),
        global_projection(register_module("global_projection", torch::nn::Conv2d(torch::nn::Conv2dOptions(global_in, global_out, 1)))),
        local_projection(register_module("local_projection", torch::nn::Conv2d(torch::nn::Conv2dOptions(local_in, local_out, 1)))) {}
  Segmenter model;
  torch::nn::Conv2d global_projection, local_projection;
};
TORCH_MODULE(Student);

struct Teacher {
  Segmenter model;
  size_t level;  // the feature level its term compares
};

class IgldtTask : public SemiTask {
 public:
  IgldtTask(const Config& config, const SegmentationRun& run, Segmenter student, Teacher global, Teacher local)
      : SemiTask(config, run, 1), global_(std::move(global)), local_(std::move(local)) {
    const auto specs = student->backbone().feature_specs();
    student_global_level_ = specs.size() - 1;
    student_local_level_ = level_at_stride(specs, 8);
    const auto global_specs = global_.model->backbone().feature_specs();
    const auto local_specs = local_.model->backbone().feature_specs();
    student_ = Student(std::move(student), specs[student_global_level_].channels, global_specs[global_.level].channels,
                       specs[student_local_level_].channels, local_specs[local_.level].channels);
    student_->to(run.device);
    for (Teacher* teacher : {&global_, &local_}) {
      teacher->model->eval();  // lesseg: teachers frozen in stage 2 (the paper does not say)
      for (auto& p : teacher->model->parameters()) p.set_requires_grad(false);
    }
    threshold_ = config.get<double>("semi.threshold");
    cutmix_ = cutmix_options_from(config);
    grid_ = config.get<int64_t>("igldt.local_grid");
    weight_unlabeled_ = config.get<double>("igldt.weight_unlabeled");
    weight_global_ = config.get<bool>("igldt.global") ? config.get<double>("igldt.weight_global") : 0.0;
    weight_local_ = config.get<bool>("igldt.local") ? config.get<double>("igldt.weight_local") : 0.0;
    weight_discrepancy_ = config.get<bool>("igldt.discrepancy") ? config.get<double>("igldt.weight_discrepancy") : 0.0;
  }

  torch::nn::Module& state_module() override { return *student_; }
  std::vector<torch::Tensor> trainable_parameters() override { return student_->parameters(); }
  std::vector<torch::Tensor> backbone_parameters() override { return student_->model->backbone().parameters(); }

  LossTerms train_step(int64_t) override {
    student_->train();
    if (freeze_bn_) freeze_batchnorm(*student_->model);
    SemiBatch batch = next_batch();
    const int64_t labeled = batch.images.size(0), unlabeled = batch.weak.size(0);
    const int64_t height = batch.images.size(2), width = batch.images.size(3);
    std::vector<at::Tensor> global_features, local_features;
    at::Tensor global_probs, local_probs;
    {
      torch::NoGradGuard no_grad;
      global_features = global_.model->encode(batch.weak);
      local_features = local_.model->encode(batch.weak);
      global_probs = torch::softmax(global_.model->decode(global_features, height, width), 1);
      local_probs = torch::softmax(local_.model->decode(local_features, height, width), 1);
    }
    // Fused pseudo-label on the weak view (mean of the softmaxes, UniMatch's threshold); it and the
    // teachers' maps follow the strong view's CutMix.
    MixedView mixed = cutmix(batch.strong.at(0), cutmix_);
    PseudoLabel fused = pseudo_label((global_probs + local_probs) / 2);
    fused = {follow_mix(fused.label, mixed.mask), follow_mix(fused.confidence, mixed.mask)};
    at::Tensor ignored = follow_mix(batch.ignored, mixed.mask);

    // One student pass: labeled | weak unlabeled (feature terms, aligned with the teachers') | strong.
    std::vector<at::Tensor> features = student_->model->encode(torch::cat({batch.images, batch.weak, mixed.images}));
    at::Tensor logits = student_->model->decode(features, height, width);
    at::Tensor logits_strong = logits.slice(0, labeled + unlabeled);
    LossTerms terms{{"sup", supervised_loss(logits.slice(0, 0, labeled), batch.labels)},
                    {"unsup", weight_unlabeled_ * confident_cross_entropy(logits_strong, fused, threshold_, ignored)}};
    auto weak_part = [&](size_t level) { return features[level].slice(0, labeled, labeled + unlabeled); };
    if (weight_global_ > 0)
      terms.emplace_back("global", weight_global_ * global_context_loss(student_->global_projection(weak_part(student_global_level_)),
                                                                        global_features[global_.level]));
    if (weight_local_ > 0)
      terms.emplace_back("local", weight_local_ * local_regional_loss(student_->local_projection(weak_part(student_local_level_)),
                                                                      local_features[local_.level], grid_));
    if (weight_discrepancy_ > 0)
      terms.emplace_back("discrepancy", weight_discrepancy_ * discrepancy_loss(logits_strong, follow_mix(global_probs, mixed.mask),
                                                                               follow_mix(local_probs, mixed.mask), ignored));
    return terms;
  }

  nlohmann::json evaluate() override { return evaluate_on(student_->model, run_.watched(), run_); }

 private:
  Student student_{nullptr};
  Teacher global_, local_;
  size_t student_global_level_ = 0, student_local_level_ = 0;
  double threshold_ = 0.95, weight_unlabeled_ = 1, weight_global_ = 1, weight_local_ = 1, weight_discrepancy_ = 1;
  int64_t grid_ = 4;
  CutMixOptions cutmix_;
};

// Stage 1: the teachers with CPS in RUN/stage1 (resumed there; skipped once it has finished).
std::filesystem::path teachers_folder(const Config& config, const std::filesystem::path& run_dir) {
  const std::string given = config.get<std::string>("igldt.teachers");
  if (!given.empty()) return given;
  const std::filesystem::path stage1 = run_dir / "stage1";
  if (std::filesystem::exists(stage1 / "results.json")) {
    spdlog::info("IGL-DT stage 1: teachers already trained in {}", stage1.string());
    return stage1;
  }
  // Each stage joins the process group on the same port; a second rendezvous right after the first
  // one's teardown is not safe, so several ranks train the stages as two commands.
  if (distributed_options_from(config).world_size > 1)
    throw_usage("igldt on several ranks: train the teachers first (--method cps, same config) and pass their "
                "folder as igldt.teachers");
  Config cps = config;
  cps.set("method", yaml_quoted("cps"));
  const int64_t iters = config.get<int64_t>("igldt.stage1_iters");
  if (iters > 0) cps.set("train.iters", std::to_string(iters));
  spdlog::info("IGL-DT stage 1: training the global and local teachers with CPS in {}", stage1.string());
  train_cps(cps, stage1);
  return stage1;
}

Teacher load_teacher(const std::filesystem::path& file, const SegmentationRun& run, bool global) {
  SavedSegmenter saved = load_segmenter(file, run.device);
  if (saved.classes.num_classes() != run.num_classes())
    throw Error(ExitCode::bad_input, file.string() + ": the teacher has " + std::to_string(saved.classes.num_classes()) +
                                         " classes, the data " + std::to_string(run.num_classes()));
  const auto specs = saved.model->backbone().feature_specs();
  return {saved.model, global ? specs.size() - 1 : level_at_stride(specs, 8)};
}

}  // namespace

TrainResult train_igldt(const Config& config, const std::filesystem::path& run_dir) {
  const std::filesystem::path teachers = teachers_folder(config, run_dir);
  SegmentationRun run = open_segmentation_run(config, run_dir);
  Teacher global = load_teacher(teachers / "model.safetensors", run, true);
  Teacher local = load_teacher(teachers / "model_b.safetensors", run, false);
  Config student_config = with_model(config, config.get<std::string>("igldt.student_arch"),
                                     config.get<std::string>("igldt.student_backbone"),
                                     config.get<std::string>("igldt.student_weights"));
  student_config.set("model.output_stride", std::to_string(config.get<int>("igldt.student_output_stride")));
  SavedSegmenter student =
      new_segmenter(student_config, model_spec_from(student_config, run.num_classes()), run, true);
  IgldtTask task(config, run, student.model, global, local);
  TrainerOptions options = trainer_options_from(config, run_dir);
  options.distributed = run.dist;
  Trainer trainer(task, options);
  return finish_segmentation_run(trainer, config, run, {{"student", "model.safetensors", &student}}, task.skipped_images());
}

}  // namespace lesseg
