#pragma once
// The training loop: iteration counting, optimizer + schedule, gradient clipping, periodic
// evaluation, checkpoints, metrics.jsonl and progress. Methods only provide a TrainTask.
#include <filesystem>
#include <string>

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

 private:
  int64_t try_resume(torch::optim::Optimizer& optimizer);
  void checkpoint(int64_t iter, torch::optim::Optimizer& optimizer);

  TrainTask& task_;
  TrainerOptions options_;
};

}  // namespace lesseg
