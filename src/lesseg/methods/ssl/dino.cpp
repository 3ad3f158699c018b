// DINO: self-distillation with no labels (ref: Caron et al. 2021, facebookresearch/dino main_dino.py).
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/engine/ema.h"
#include "lesseg/methods/ssl/losses.h"
#include "lesseg/methods/ssl/ssl_task.h"
#include "lesseg/models/embedding.h"
#include "lesseg/models/heads.h"

namespace lesseg {

namespace {

// backbone -> DINO head, registered as "backbone" and "head" (DINO's MultiCropWrapper names).
struct DinoNetImpl : torch::nn::Module {
  DinoNetImpl(std::shared_ptr<BackboneImpl> b, const DinoHeadOptions& head_options)
      : backbone(register_module("backbone", std::move(b))), head(register_module("head", DinoHead(head_options))) {}
  torch::Tensor forward(const torch::Tensor& images) { return head->forward(global_embedding(*backbone, images)); }
  std::shared_ptr<BackboneImpl> backbone;
  DinoHead head;
};
TORCH_MODULE(DinoNet);

// What a checkpoint holds: student, teacher (DINO's own checkpoint keys) and the loss centre.
struct DinoStateImpl : torch::nn::Module {
  DinoStateImpl(DinoNet s, DinoNet t, DinoLoss l)
      : student(register_module("student", s)), teacher(register_module("teacher", t)), loss(register_module("loss", l)) {}
  DinoNet student, teacher;
  DinoLoss loss;
};
TORCH_MODULE(DinoState);

DinoHeadOptions head_options(const Config& config, int64_t in_dim) {
  return DinoHeadOptions()
      .in_dim(in_dim)
      .out_dim(config.get<int64_t>("ssl.dino_out_dim"))
      .hidden_dim(config.get<int64_t>("ssl.head_hidden"))
      .bottleneck_dim(config.get<int64_t>("ssl.dino_bottleneck"))
      .norm_last_layer(config.get<bool>("ssl.dino_norm_last_layer"));
}

class DinoTask : public SslTask {
 public:
  explicit DinoTask(SslSetup setup) : SslTask(std::move(setup)), state_(make_state()) {
    const Config& c = *setup_.config;
    teacher_temp_ = c.get<double>("ssl.teacher_temp");
    teacher_temp_end_ = c.get<double>("ssl.teacher_temp_end");
    teacher_temp_warmup_ = c.get<int64_t>("ssl.teacher_temp_warmup_iters");
    momentum_ = c.get<double>("ssl.momentum");
    freeze_last_layer_ = c.get<int64_t>("ssl.freeze_last_layer_iters");
    total_iters_ = c.get<int64_t>("train.iters");
    student_temp_ = c.get<double>("ssl.student_temp");
  }
  torch::nn::Module& state_module() override { return *state_; }
  std::vector<torch::Tensor> trainable_parameters() override { return state_->student->parameters(); }
  BackboneImpl& result_backbone() override { return *state_->teacher->backbone; }

  LossTerms train_step(int64_t iter) override {
    state_->student->train();
    state_->teacher->train();
    auto views = next_views();
    std::vector<torch::Tensor> globals(views.begin(), views.begin() + setup_.num_global_views);
    std::vector<torch::Tensor> teacher_out;
    {
      torch::NoGradGuard no_grad;  // the teacher sees the global crops only
      teacher_out = per_view(globals, [this](const torch::Tensor& x) { return state_->teacher->forward(x); });
    }
    auto student_out = per_view(views, [this](const torch::Tensor& x) { return state_->student->forward(x); });
    const double t_temp = teacher_temp(iter);
    if (student_out.size() >= 2)  // kept for diagnostics(): the centre as this step's loss sees it
      last_ = {teacher_out[0].detach(), student_out[1].detach(), state_->loss->center.clone(), t_temp};
    return {{"dino", state_->loss->forward(student_out, teacher_out, t_temp, setup_.dist.get())}};
  }

  void after_backward(int64_t iter) override {
    if (iter < freeze_last_layer_) state_->student->head->cancel_last_layer_gradients();
  }
  void after_step(int64_t iter) override {
    ema_update(*state_->teacher, *state_->student, ema_momentum(momentum_, iter, total_iters_));
  }

 private:
  nlohmann::json diagnostics() override {
    if (!last_.teacher.defined()) return nlohmann::json::object();
    DinoDiagnostics d = dino_diagnostics(last_.teacher, last_.student, last_.center, last_.teacher_temp, student_temp_);
    return {{"teacher_entropy", d.teacher_entropy},
            {"teacher_batch_entropy", d.teacher_batch_entropy},
            {"kl_teacher_student", d.kl_teacher_student}};
  }

  DinoState make_state() {
    const Config& c = *setup_.config;
    const int64_t dim = embedding_dim(*setup_.backbone);
    DinoNet student(setup_.backbone, head_options(c, dim));
    ModelSpec teacher_spec = setup_.spec;
    teacher_spec.drop_path = 0.0;  // ref: main_dino.py: only the student gets drop_path_rate
    DinoNet teacher(build_backbone(teacher_spec), head_options(c, dim));
    DinoLoss loss(c.get<int64_t>("ssl.dino_out_dim"), c.get<double>("ssl.student_temp"), c.get<double>("ssl.center_momentum"));
    copy_weights(*teacher, *student);  // the teacher starts as a copy of the student
    for (auto& p : teacher->parameters()) p.set_requires_grad(false);
    DinoState state(student, teacher, loss);
    state->to(setup_.device);
    return state;
  }
  // ref: main_dino.py DINOLoss.teacher_temp_schedule = concatenate(np.linspace(warmup_teacher_temp,
  // teacher_temp, W), ones * teacher_temp), one entry per iteration here: the end value is reached at
  // iteration W - 1 (np.linspace includes its end point; a single point is the start value).
  double teacher_temp(int64_t iter) const {
    if (iter >= teacher_temp_warmup_) return teacher_temp_end_;
    if (teacher_temp_warmup_ == 1) return teacher_temp_;
    return teacher_temp_ + (teacher_temp_end_ - teacher_temp_) * double(iter) / double(teacher_temp_warmup_ - 1);
  }

  DinoState state_;
  struct {
    torch::Tensor teacher, student, center;  // first global crop (teacher), second crop (student)
    double teacher_temp = 0;
  } last_;
  double teacher_temp_ = 0.04, teacher_temp_end_ = 0.07, momentum_ = 0.996, student_temp_ = 0.1;
  int64_t teacher_temp_warmup_ = 0, freeze_last_layer_ = 0, total_iters_ = 1;
};

}  // namespace

std::unique_ptr<SslTask> make_dino_task(SslSetup setup) { return std::make_unique<DinoTask>(std::move(setup)); }

}  // namespace lesseg
