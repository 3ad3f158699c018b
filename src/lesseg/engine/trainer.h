#pragma once
// The training loop: iteration counting, optimizer + schedule, gradient clipping, periodic
// evaluation, checkpoints, metrics.jsonl and progress. Methods only provide a TrainTask.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lesseg/engine/distributed.h"
#include "lesseg/engine/optim.h"
#include "lesseg/engine/task.h"

namespace lesseg {

class Config;

struct TrainerOptions {
  int64_t iters = 1000;
  int64_t log_every = 20, eval_every = 500, checkpoint_every = 500;
  int keep_checkpoints = 2;
  double grad_clip = 0;
  bool grad_clip_per_parameter = false;  // DINO's clip_gradients: each tensor's norm, not the global one
  bool lr_scaling_linear = false;  // optimizer.lr is for batch 256: run() scales it by images per step (all ranks) / 256
  // train.select best: every evaluation whose `select_metric` beats the best so far is saved to
  // run_dir/best (model tensors only); load_best() puts it back into the task's modules.
  bool select_best = false;
  std::string select_metric = "miou";
  OptimizerOptions optimizer;
  ScheduleOptions schedule;
  std::filesystem::path run_dir;
  std::string config_yaml;  // resolved config, stored in checkpoints
  DistributedPtr distributed;  // null for a single process; else only rank 0 writes files
};

TrainerOptions trainer_options_from(const Config& config, const std::filesystem::path& run_dir);

class Trainer {
 public:
  Trainer(TrainTask& task, TrainerOptions options);
  // Resumes from run_dir/checkpoints when a checkpoint exists; returns the last evaluation.
  nlohmann::json run();
  // With select_best: loads the selected evaluation's tensors into the task's modules and returns
  // that evaluation (with "iter"); null when nothing was selected (no evaluation ran).
  nlohmann::json load_best();

 private:
  struct Stepper;  // one optimizer with its parameters, settings and schedule (trainer.cpp)
  void keep_if_best(int64_t iter, const nlohmann::json& metrics);
  int64_t try_resume(std::vector<Stepper>& steppers);
  void checkpoint(int64_t iter, std::vector<Stepper>& steppers);
  void backward_by_optimizer(const LossTerms& losses, std::vector<Stepper>& steppers);

  TrainTask& task_;
  TrainerOptions options_;
  double best_ = -1;  // select_metric of run_dir/best
};

}  // namespace lesseg
