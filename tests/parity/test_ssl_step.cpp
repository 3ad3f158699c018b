// Two consecutive training steps (iterations 0 and 1) of DINO, MAE and SimCLR through lesseg's real
// engine loop (Trainer::run with the task's batch_source feeding fixed crops) against the official
// training loops written in tools/parity/ssl_step.py: the per-step losses and logged learning rates,
// and every tensor after the second step (DINO: student, EMA teacher and loss centre; MAE: encoder and
// decoder; SimCLR: backbone, projection head and BatchNorm statistics). Both sides start from the same
// weights (the reference's weights.pth, loaded by lesseg's names) and run in the goldens' dtype.
#include "parity_util.h"

#include <unistd.h>

#include <fstream>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "lesseg/core/config.h"
#include "lesseg/engine/checkpoint.h"
#include "lesseg/engine/trainer.h"
#include "lesseg/methods/ssl/ssl_task.h"
#include "lesseg/models/registry.h"

namespace lesseg {
namespace {

namespace fs = std::filesystem;

constexpr double kTolerance = 1e-5;
constexpr int64_t kSteps = 2;

// A double as YAML text that reads back to the same value.
std::string exact(double value) {
  std::ostringstream text;
  text << std::setprecision(17) << value;
  return text.str();
}

std::string view_key(int64_t step, int64_t view) {
  return "step" + std::to_string(step) + ".view" + std::to_string(view);
}

struct TempRunDir {
  fs::path path;
  explicit TempRunDir(const std::string& tag)
      : path(fs::temp_directory_path() / ("lesseg_ssl_step_" + std::to_string(::getpid()) + "_" + tag)) {
    fs::remove_all(path);
  }
  ~TempRunDir() { fs::remove_all(path); }
};

// One parity case: the reference's io, and a lesseg task built from --set-style overrides whose
// batches are the reference's crops ("step<k>.view<v>"), fed one step at a time.
struct StepCase {
  std::string name;
  std::map<std::string, at::Tensor> io;
  Config config;
  std::unique_ptr<SslTask> task;
  int64_t fed = 0;

  StepCase(const StepCase&) = delete;  // the batch source points at this case
  StepCase& operator=(const StepCase&) = delete;
  StepCase(const std::string& case_name, std::map<std::string, at::Tensor> reference_io,
           const std::vector<std::string>& overrides, std::function<void(int64_t step)> before_batch = {})
      : name(case_name), io(std::move(reference_io)), config(Config::load("", overrides)) {
    SslSetup setup;
    setup.config = &config;
    setup.spec = model_spec_from(config, 0);
    setup.backbone = build_backbone(setup.spec);
    setup.loader.batch_size = config.get<int64_t>("train.batch_size");
    setup.num_global_views = config.get<int64_t>("views.global_count");
    const int64_t views = setup.num_global_views + config.get<int64_t>("views.local_count");
    setup.batch_source = [this, views, before_batch]() {
      const int64_t step = fed++;
      EXPECT_LT(step, kSteps) << "the engine asked for more batches than steps";
      if (before_batch) before_batch(step);
      std::vector<torch::Tensor> batch;
      for (int64_t v = 0; v < views; ++v) batch.push_back(io.at(view_key(step, v)));
      return batch;
    };
    const std::string method = config.get<std::string>("method");
    if (method == "dino") task = make_dino_task(std::move(setup));
    else if (method == "mae") task = make_mae_task(std::move(setup));
    else task = make_simclr_task(std::move(setup));
    // the goldens' dtype (float64: Adam's first step lr * m / (sqrt(v) + eps) turns float32 noise on
    // near-zero gradients into whole lr-sized differences), then the reference's initial state
    task->state_module().to(io.at("step0.view0").scalar_type());
    load_module_tensors(task->state_module(), parity::reference_weights(case_name), parity::case_dir(case_name));
  }

  // Runs the engine for train.iters steps; returns the logged records of the training steps.
  std::vector<nlohmann::json> run() {
    TempRunDir dir(name);
    Trainer(*task, trainer_options_from(config, dir.path)).run();
    EXPECT_EQ(fed, kSteps);
    std::vector<nlohmann::json> steps;
    std::ifstream in(dir.path / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
      auto record = nlohmann::json::parse(line);
      if (record.contains("loss")) steps.push_back(record);
    }
    return steps;
  }

  // Per-step loss and lr against the reference's.
  void expect_logged(const std::vector<nlohmann::json>& steps, const std::string& term) {
    ASSERT_EQ(static_cast<int64_t>(steps.size()), kSteps);
    for (int64_t k = 0; k < kSteps; ++k) {
      const auto& record = steps[static_cast<size_t>(k)];
      EXPECT_EQ(record.at("iter").get<int64_t>(), k + 1);
      parity::expect_close(torch::tensor({record.at("loss_" + term).get<double>()}, torch::kFloat64),
                           io.at("loss").narrow(0, k, 1), name + " loss, step " + std::to_string(k), kTolerance);
      parity::expect_close(torch::tensor({record.at("lr").get<double>()}, torch::kFloat64), io.at("lr").narrow(0, k, 1),
                           name + " lr, step " + std::to_string(k), 1e-12);
    }
  }

  // Every "after.<name>" reference tensor against the module's tensor of that name; every trainable
  // parameter must have one. Returns the worst relative error.
  double expect_tensors_after() {
    std::map<std::string, at::Tensor> ours;
    for (auto& [key, tensor] : module_tensors(task->state_module())) ours[key] = tensor.detach();
    double worst = 0.0;
    std::string worst_name;
    size_t compared = 0;
    for (const auto& [key, reference] : io) {
      if (key.rfind("after.", 0) != 0) continue;
      const std::string tensor_name = key.substr(6);
      auto it = ours.find(tensor_name);
      if (it == ours.end()) {
        ADD_FAILURE() << name << ": no tensor '" << tensor_name << "' in lesseg's state";
        continue;
      }
      ++compared;
      if (!reference.is_floating_point()) {  // BatchNorm's num_batches_tracked
        EXPECT_TRUE(torch::equal(it->second, reference)) << tensor_name;
        continue;
      }
      EXPECT_EQ(it->second.sizes(), reference.sizes()) << tensor_name;
      if (it->second.sizes() != reference.sizes()) continue;
      const double error = parity::relative_error(it->second, reference);
      EXPECT_LE(error, kTolerance) << name << " " << tensor_name;
      if (error > worst) {
        worst = error;
        worst_name = tensor_name;
      }
    }
    for (const auto& item : task->state_module().named_parameters()) {
      if (item.value().requires_grad()) {
        EXPECT_TRUE(io.count("after." + item.key())) << name << ": no reference for parameter " << item.key();
      }
    }
    std::printf("  %-40s %zu tensors, max relative error %.1e (%s)\n", (name + " after 2 steps").c_str(), compared,
                worst, worst_name.c_str());
    return worst;
  }
};

TEST(SslStepParity, DinoTwoStepsMatchTheOfficialLoop) {
  auto io = parity::reference_io("ssl_step_dino");
  const double clip = io.at("grad_clip").item<double>();
  StepCase c("ssl_step_dino", io,
             {"method=dino", "model.backbone=vit_tiny8", "model.drop_path=0", "views.global_count=2",
              "views.local_count=2", "ssl.head_hidden=64", "ssl.dino_bottleneck=32", "ssl.dino_out_dim=128",
              "ssl.student_temp=0.1", "ssl.teacher_temp=0.04", "ssl.teacher_temp_end=0.07",
              "ssl.teacher_temp_warmup_iters=3", "ssl.center_momentum=0.9", "ssl.momentum=0.996",
              "ssl.freeze_last_layer_iters=1", "train.iters=2", "train.batch_size=4", "train.optimizer=adamw",
              "train.lr=0.002", "train.betas=[0.9, 0.999]", "train.schedule=cosine", "train.warmup_iters=0",
              "train.weight_decay=0.04", "train.weight_decay_end=0.4", "train.grad_clip=" + exact(clip),
              "train.grad_clip_mode=per_parameter", "train.log_every=1", "train.eval_every=0",
              "train.checkpoint_every=0"});
  std::printf("  clip %.3g: %lld then %lld tensors clipped in the reference\n", clip,
              static_cast<long long>(c.io.at("clipped")[0].item<int64_t>()),
              static_cast<long long>(c.io.at("clipped")[1].item<int64_t>()));
  c.expect_logged(c.run(), "dino");
  c.expect_tensors_after();
}

TEST(SslStepParity, MaeTwoStepsMatchTheOfficialLoop) {
  auto io = parity::reference_io("ssl_step_mae");
  const int64_t noise_seed = io.at("noise_seed").item<int64_t>();
  // lesseg draws MAE's masking noise from the default generator right after the batch: seed it as
  // the reference did before its torch.rand(N, L). First, that both libraries draw the same stream.
  for (int64_t k = 0; k < kSteps; ++k) {
    torch::manual_seed(static_cast<uint64_t>(noise_seed + k));
    const auto& noise = io.at("step" + std::to_string(k) + ".noise");
    EXPECT_TRUE(torch::equal(torch::rand(noise.sizes()), noise)) << "torch.rand stream differs, step " << k;
  }
  StepCase c("ssl_step_mae", io,
             {"method=mae", "model.backbone=vit_tiny8", "model.drop_path=0", "views.global_count=1",
              "views.local_count=0", "ssl.mask_ratio=0.75", "ssl.norm_pix_loss=true", "ssl.decoder_dim=64",
              "ssl.decoder_depth=2", "ssl.decoder_heads=4", "train.iters=2", "train.batch_size=8",
              "train.optimizer=adamw", "train.lr=0.002", "train.betas=[0.9, 0.95]", "train.schedule=cosine",
              "train.warmup_iters=0", "train.weight_decay=0.05", "train.weight_decay_end=-1", "train.grad_clip=0",
              "train.log_every=1", "train.eval_every=0", "train.checkpoint_every=0"},
             [noise_seed](int64_t step) { torch::manual_seed(static_cast<uint64_t>(noise_seed + step)); });
  c.expect_logged(c.run(), "mae");
  c.expect_tensors_after();
}

TEST(SslStepParity, SimclrTwoStepsMatchTheReferenceLoop) {
  StepCase c("ssl_step_simclr", parity::reference_io("ssl_step_simclr"),
             {"method=simclr", "model.backbone=resnet18", "views.global_count=2", "views.local_count=0",
              "ssl.head_hidden=64", "ssl.proj_dim=32", "ssl.temperature=0.5", "train.iters=2", "train.batch_size=8",
              "train.optimizer=sgd", "train.lr=0.1", "train.momentum=0.9", "train.weight_decay=0.001",
              "train.weight_decay_end=-1", "train.schedule=cosine", "train.warmup_iters=0", "train.grad_clip=0",
              "train.log_every=1", "train.eval_every=0", "train.checkpoint_every=0"});
  c.expect_logged(c.run(), "nt_xent");
  c.expect_tensors_after();
}

}  // namespace
}  // namespace lesseg
