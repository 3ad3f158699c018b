// The engine's loop on a small regression task: non-finite losses and weights stop the run
// without a NaN checkpoint becoming latest; SIGTERM / SIGINT finish the step, save and stop with
// 143 / 130; resume restores the random generators exactly.
#include <csignal>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/engine/checkpoint.h"
#include "lesseg/engine/optim.h"
#include "lesseg/engine/task.h"
#include "lesseg/engine/trainer.h"

namespace lesseg {
namespace {
namespace fs = std::filesystem;

// Fits y = 3x with a linear layer on fresh random inputs each step (so the global RNG matters).
class RegressionTask : public TrainTask {
 public:
  int64_t nan_at = -1, blow_up_at = -1, signal_at = -1;
  int signal = 0;
  std::vector<double> losses;

  torch::nn::Module& state_module() override { return *model_; }
  std::vector<torch::Tensor> trainable_parameters() override { return model_->parameters(); }
  LossTerms train_step(int64_t iter) override {
    if (iter == signal_at) std::raise(signal);
    auto x = torch::randn({16, 4});
    auto fit = torch::mse_loss(model_(x), 3 * x.sum(1, true));
    auto reg = 1e-3 * model_->weight.pow(2).sum();
    if (iter == nan_at) fit = fit * std::nan("");
    // a zero-valued term with an infinite gradient: the loss stays finite, the update is not
    if (iter == blow_up_at) reg = reg + torch::sqrt(model_->weight - model_->weight.detach()).sum();
    losses.push_back(fit.item<double>());
    return {{"fit", fit}, {"reg", reg}};
  }
  // A score that rises, falls and rises less: scores[k] at the k-th evaluation (0 once they run out).
  std::vector<double> scores;
  size_t evaluations = 0;
  nlohmann::json evaluate() override {
    const double score = evaluations < scores.size() ? scores[evaluations] : 0.0;
    ++evaluations;
    return {{"miou", score}};
  }
  SamplerState loader_state() const override { return {}; }
  void restore(SamplerState) override {}
  int64_t images_per_step() const override { return 16; }

 private:
  torch::nn::Linear model_{4, 1};
};

TrainerOptions options_for(const fs::path& run_dir, int64_t iters) {
  TrainerOptions o;
  o.iters = iters;
  o.log_every = 1;
  o.eval_every = 0;
  o.checkpoint_every = 5;
  o.optimizer.name = "sgd";
  o.optimizer.lr = 0.01;
  o.schedule.name = "constant";
  o.schedule.total_iters = iters;
  o.run_dir = run_dir;
  o.config_yaml = "seed: 0\n";
  return o;
}

struct RunDir {
  fs::path path;
  explicit RunDir(const std::string& tag = "run")
      : path(fs::temp_directory_path() / ("lesseg_trainer_" + std::to_string(::getpid()) + "_" + tag)) {
    fs::remove_all(path);
  }
  ~RunDir() { fs::remove_all(path); }
};

int64_t latest_iter(const fs::path& run_dir) {
  return load_latest_checkpoint(run_dir / "checkpoints")->state["iter"].get<int64_t>();
}

TEST(Trainer, NonFiniteLossStopsNamingTheStepAndEveryTerm) {
  RunDir dir;
  torch::manual_seed(0);
  RegressionTask task;
  task.nan_at = 7;
  Trainer trainer(task, options_for(dir.path, 20));
  try {
    trainer.run();
    FAIL() << "a NaN loss did not stop the run";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("iteration 7"), std::string::npos) << message;
    EXPECT_NE(message.find("fit=nan"), std::string::npos) << message;
    EXPECT_NE(message.find("reg="), std::string::npos) << message;
  }
  EXPECT_EQ(latest_iter(dir.path), 5);
}

TEST(Trainer, NonFiniteWeightsNeverBecomeLatest) {
  RunDir dir;
  torch::manual_seed(0);
  RegressionTask task;
  task.blow_up_at = 9;  // the update of step 9 makes the weights infinite; checkpoint 10 must not be written
  Trainer trainer(task, options_for(dir.path, 20));
  try {
    trainer.run();
    FAIL() << "infinite weights did not stop the run";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite weights"), std::string::npos) << e.what();
  }
  EXPECT_EQ(latest_iter(dir.path), 5);
  auto latest = load_latest_checkpoint(dir.path / "checkpoints");
  for (auto& [name, t] : latest->tensors)
    if (t.is_floating_point()) {
      EXPECT_TRUE(torch::isfinite(t).all().item<bool>()) << name;
    }
}

class TrainerSignal : public ::testing::TestWithParam<int> {};

TEST_P(TrainerSignal, FinishesTheStepSavesAndResumesExactly) {
  const int signal = GetParam();
  RunDir reference_dir("reference"), stopped_dir("stopped");
  torch::manual_seed(0);
  RegressionTask reference;
  Trainer(reference, options_for(reference_dir.path, 12)).run();

  torch::manual_seed(0);
  RegressionTask first;
  first.signal_at = 7;  // arrives during step 7: the step finishes, then a checkpoint at 8
  first.signal = signal;
  try {
    Trainer(first, options_for(stopped_dir.path, 12)).run();
    FAIL() << "the signal did not stop the run";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), signal == SIGTERM ? ExitCode::terminated : ExitCode::interrupted);
    EXPECT_NE(std::string(e.what()).find("after iteration 8"), std::string::npos) << e.what();
  }
  EXPECT_EQ(latest_iter(stopped_dir.path), 8);

  torch::manual_seed(123);  // a different global RNG: resume must restore the saved one
  RegressionTask second;
  Trainer(second, options_for(stopped_dir.path, 12)).run();
  std::vector<double> resumed(first.losses.begin(), first.losses.end());
  resumed.insert(resumed.end(), second.losses.begin(), second.losses.end());
  EXPECT_EQ(resumed, reference.losses);  // bit-identical per-step losses
  auto a = load_latest_checkpoint(reference_dir.path / "checkpoints")->tensors;
  auto b = load_latest_checkpoint(stopped_dir.path / "checkpoints")->tensors;
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
}
INSTANTIATE_TEST_SUITE_P(TermAndInt, TrainerSignal, ::testing::Values(SIGTERM, SIGINT));

// Gradients of norm 5 and 0.5: a global clip to 1 scales both by 1/5.02; DINO's per-tensor clip
// scales only the first (coefficient 1 / (5 + 1e-6)) and leaves the second.
TEST(ClipGradients, GlobalAndPerParameter) {
  auto make = [] {
    auto a = torch::zeros({2}, torch::requires_grad()), b = torch::zeros({1}, torch::requires_grad());
    a.mutable_grad() = torch::tensor({3.0f, 4.0f});
    b.mutable_grad() = torch::tensor({0.5f});
    return std::vector<torch::Tensor>{a, b};
  };
  auto global = make();
  clip_gradients(global, 1.0, false);
  const double total = std::sqrt(25.0 + 0.25);
  EXPECT_NEAR(global[0].grad()[1].item<double>(), 4.0 / total, 1e-5);
  EXPECT_NEAR(global[1].grad()[0].item<double>(), 0.5 / total, 1e-5);
  auto each = make();
  clip_gradients(each, 1.0, true);
  EXPECT_NEAR(each[0].grad()[1].item<double>(), 4.0 / (5.0 + 1e-6), 1e-6);
  EXPECT_NEAR(each[0].grad().norm().item<double>(), 1.0, 1e-5);
  EXPECT_EQ(each[1].grad()[0].item<float>(), 0.5f);
}

// Linear lr scaling: the configured lr is for batch 256, scaled by the task's images per step (16).
TEST(Trainer, LinearLrScalingFollowsTheBatch) {
  RunDir dir("base_lr");
  torch::manual_seed(0);
  RegressionTask task;
  TrainerOptions o = options_for(dir.path, 2);
  o.optimizer.lr = 0.32;
  o.lr_scaling_linear = true;
  Trainer(task, o).run();
  std::ifstream metrics(dir.path / "metrics.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(metrics, line));
  EXPECT_NEAR(nlohmann::json::parse(line).at("lr").get<double>(), 0.32 * 16 / 256, 1e-12) << line;
}

// train.select best keeps the weights of the best evaluation (not the last one) in RUN/best, and a
// resumed run still knows that best.
TEST(Trainer, SelectBestKeepsTheBestEvaluationsWeights) {
  RunDir dir("select_best");
  torch::manual_seed(0);
  RegressionTask task;
  task.scores = {0.2, 0.5, 0.3, 0.4};
  TrainerOptions o = options_for(dir.path, 8);
  o.eval_every = 2;
  o.select_best = true;
  Trainer trainer(task, o);
  trainer.run();
  const at::Tensor last = module_tensors(task.state_module()).front().second.clone();  // a copy: load_best writes in place
  nlohmann::json best = trainer.load_best();
  EXPECT_EQ(best.at("iter").get<int64_t>(), 4);
  EXPECT_DOUBLE_EQ(best.at("miou").get<double>(), 0.5);
  // load_best put the iteration-4 weights back: they differ from the last ones.
  auto loaded = module_tensors(task.state_module());
  EXPECT_FALSE(torch::equal(last, loaded.front().second));
  // Resumed at iteration 5 from a checkpoint: a later, lower score does not replace the best.
  RunDir again("select_best_resume");
  torch::manual_seed(0);
  RegressionTask first, second;
  first.scores = {0.2, 0.5};
  TrainerOptions half = options_for(again.path, 5);
  half.eval_every = 2;
  half.select_best = true;
  Trainer(first, half).run();  // evaluations at 2, 4 and the last step 5
  second.scores = {0.3, 0.4};
  TrainerOptions rest = half;
  rest.iters = 8;
  Trainer resumed(second, rest);
  resumed.run();
  EXPECT_EQ(resumed.load_best().at("iter").get<int64_t>(), 4);
}

}  // namespace
}  // namespace lesseg

namespace lesseg {
namespace {

// Two players: the main parameter w follows v ((w - v)^2), the other optimizer's v goes to 3
// ("g/pull": (v - 3)^2) with Adam and its own poly schedule. Each optimizer takes the gradient of its
// own terms only, so v is not pulled toward w.
class TwoPlayerTask : public TrainTask {
 public:
  TwoPlayerTask() {
    module_.register_parameter("w", torch::zeros({1}));
    module_.register_parameter("v", torch::zeros({1}));
  }
  torch::nn::Module& state_module() override { return module_; }
  torch::Tensor w() { return module_.named_parameters()["w"]; }
  torch::Tensor v() { return module_.named_parameters()["v"]; }
  std::vector<torch::Tensor> trainable_parameters() override { return {w()}; }
  std::vector<TaskOptimizer> other_optimizers() override {
    TaskOptimizer g;
    g.name = "g";
    g.parameters = {v()};
    g.optimizer.name = "adamw";
    g.optimizer.lr = 0.1;
    g.optimizer.weight_decay = 0;
    g.schedule.name = "poly";
    g.schedule.total_iters = 400;
    return {g};
  }
  LossTerms train_step(int64_t) override {
    return {{"follow", (w() - v()).pow(2).sum()}, {"g/pull", (v() - 3).pow(2).sum()}};
  }
  nlohmann::json evaluate() override { return {{"miou", 0.0}}; }
  SamplerState loader_state() const override { return {}; }
  void restore(SamplerState) override {}
  int64_t images_per_step() const override { return 1; }

 private:
  torch::nn::Module module_;
};

TEST(Trainer, SeveralOptimizersEachStepTheirOwnTermsAndResumeExactly) {
  RunDir straight("two_straight"), resumed("two_resumed");
  TwoPlayerTask a;
  TrainerOptions options = options_for(straight.path, 200);
  options.optimizer.lr = 0.2;
  options.checkpoint_every = 100;
  Trainer(a, options).run();
  EXPECT_NEAR(a.v().item<double>(), 3.0, 0.05);  // with one optimizer on the sum, v would settle between w and 3
  EXPECT_NEAR(a.w().item<double>(), a.v().item<double>(), 0.05);
  // Stopped at 100, resumed to 200: Adam's moments and the step count are in the checkpoint.
  TwoPlayerTask b;
  TrainerOptions half = options_for(resumed.path, 100);
  half.optimizer.lr = 0.2;
  half.checkpoint_every = 100;
  half.schedule.total_iters = 200;
  Trainer(b, half).run();
  TwoPlayerTask c;
  TrainerOptions rest = options;
  rest.run_dir = resumed.path;
  Trainer(c, rest).run();
  EXPECT_TRUE(torch::equal(c.v(), a.v()));
  EXPECT_TRUE(torch::equal(c.w(), a.w()));
  const auto ckpt = load_latest_checkpoint(resumed.path / "checkpoints");
  bool has_g = false;
  for (auto& entry : ckpt->tensors) has_g = has_g || entry.first.rfind("optim_g.", 0) == 0;
  EXPECT_TRUE(has_g);
}

}  // namespace
}  // namespace lesseg
