#include "lesseg/engine/trainer.h"

#include <chrono>
#include <csignal>
#include <cmath>
#include <optional>
#include <set>
#include <sstream>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/core/signals.h"
#include "lesseg/engine/checkpoint.h"
#include "lesseg/engine/logging.h"
#include "lesseg/version.h"

namespace lesseg {

TrainerOptions trainer_options_from(const Config& config, const std::filesystem::path& run_dir) {
  TrainerOptions o;
  o.iters = config.get<int64_t>("train.iters");
  o.log_every = config.get<int64_t>("train.log_every");
  o.eval_every = config.get<int64_t>("train.eval_every");
  o.checkpoint_every = config.get<int64_t>("train.checkpoint_every");
  o.keep_checkpoints = config.get<int>("train.keep_checkpoints");
  o.grad_clip = config.get<double>("train.grad_clip");
  const std::string clip_mode = config.get<std::string>("train.grad_clip_mode");
  if (clip_mode != "global" && clip_mode != "per_parameter")
    throw_usage("train.grad_clip_mode must be global or per_parameter, got '" + clip_mode + "'");
  o.grad_clip_per_parameter = clip_mode == "per_parameter";
  const std::string scaling = config.get<std::string>("train.lr_scaling");
  if (scaling != "none" && scaling != "linear") throw_usage("train.lr_scaling must be none or linear, got '" + scaling + "'");
  o.lr_scaling_linear = scaling == "linear";
  o.optimizer.name = config.get<std::string>("train.optimizer");
  o.optimizer.lr = config.get<double>("train.lr");
  o.optimizer.momentum = config.get<double>("train.momentum");
  o.optimizer.weight_decay = config.get<double>("train.weight_decay");
  o.optimizer.weight_decay_end = config.get<double>("train.weight_decay_end");
  o.optimizer.head_lr_multiplier = config.get<double>("train.head_lr_multiplier");
  auto betas = config.get<std::vector<double>>("train.betas");
  if (betas.size() != 2) throw_usage("train.betas must have 2 values");
  o.optimizer.beta1 = betas[0];
  o.optimizer.beta2 = betas[1];
  o.schedule.name = config.get<std::string>("train.schedule");
  o.schedule.total_iters = o.iters;
  o.schedule.warmup_iters = config.get<int64_t>("train.warmup_iters");
  o.schedule.power = config.get<double>("train.poly_power");
  const std::string select = config.get<std::string>("train.select");
  if (select != "last" && select != "best") throw_usage("train.select must be last or best, got '" + select + "'");
  o.select_best = select == "best";
  o.run_dir = run_dir;
  o.config_yaml = config.dump();
  if (o.iters <= 0) throw_usage("train.iters must be positive");
  if (o.log_every <= 0) throw_usage("train.log_every must be positive");
  if (o.eval_every < 0 || o.checkpoint_every < 0) throw_usage("train.eval_every and train.checkpoint_every must be >= 0");
  if (o.schedule.warmup_iters < 0) throw_usage("train.warmup_iters must be >= 0");
  if (o.optimizer.lr <= 0) throw_usage("train.lr must be positive");
  return o;
}

Trainer::Trainer(TrainTask& task, TrainerOptions options) : task_(task), options_(std::move(options)) {}

namespace {
// Settings a resumed run may change: how long, how often to log / evaluate / save, and resources.
bool may_change_on_resume(const std::string& difference) {
  for (const char* prefix : {"train.iters:", "train.log_every:", "train.eval_every:", "train.checkpoint_every:",
                             "train.keep_checkpoints:", "eval.", "threads:", "device:", "data.workers:", "data.prefetch:",
                             "distributed.", "selftrain."})
    if (difference.rfind(prefix, 0) == 0) return true;
  return false;
}

void check_resume_config(const std::string& saved_yaml, const std::string& current_yaml, const std::filesystem::path& dir) {
  Config saved = Config::from_yaml_text(saved_yaml, (dir / "checkpoint config").string());
  Config current = Config::from_yaml_text(current_yaml, "current config");
  std::string listed;
  for (const std::string& difference : saved.differences(current))
    if (!may_change_on_resume(difference)) listed += "\n  " + difference;
  if (!listed.empty())
    throw_usage("refusing to resume from " + dir.string() + ": the config differs from the checkpoint's (use another --run-dir):" + listed);
}
// Every random generator's state: "rng.cpu" and, when CUDA is present, "rng.cuda.<i>".
std::vector<std::pair<std::string, at::Tensor>> rng_state_tensors() {
  std::vector<std::pair<std::string, at::Tensor>> out;
  out.emplace_back("rng.cpu", at::detail::getDefaultCPUGenerator().get_state());
  if (torch::cuda::is_available())
    for (int64_t i = 0; i < static_cast<int64_t>(torch::cuda::device_count()); ++i)
      out.emplace_back("rng.cuda." + std::to_string(i),
                       at::globalContext().defaultGenerator(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(i))).get_state());
  return out;
}

void restore_rng(const std::string& name, const at::Tensor& state) {
  if (name == "rng.cpu") {
    at::Generator generator = at::detail::getDefaultCPUGenerator();  // a handle to the global one
    generator.set_state(state);
  } else if (name.rfind("rng.cuda.", 0) == 0 && torch::cuda::is_available()) {
    const auto index = static_cast<c10::DeviceIndex>(std::stoi(name.substr(9)));
    if (index < static_cast<c10::DeviceIndex>(torch::cuda::device_count())) {
      at::Generator generator = at::globalContext().defaultGenerator(at::Device(at::kCUDA, index));
      generator.set_state(state);
    }
  }
}

// A checkpoint holding NaN / Inf weights must never become `latest`.
void require_finite(const std::vector<std::pair<std::string, at::Tensor>>& tensors, int64_t iter) {
  for (const auto& [name, t] : tensors)
    if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>())
      throw Error(ExitCode::internal, "non-finite weights in '" + name + "' after iteration " + std::to_string(iter) +
                                          "; checkpoint not written, the previous one stays latest");
}

// The evaluation's main number for the log line: mIoU for segmenters, kNN accuracy for pretraining.
std::string headline(const nlohmann::json& metrics) {
  for (const char* key : {"miou", "knn_top1"})
    if (metrics.contains(key) && metrics[key].is_number()) return fmt::format("{} {:.4f}", key, metrics[key].get<double>());
  return "evaluated";
}

}  // namespace

// The main optimizer has no name and keeps checkpoint keys "optim.*"; another one named N uses "optim_N.*".
struct Trainer::Stepper {
  std::string name;
  ScheduledOptimizer optimizer;
  OptimizerOptions options;
  ScheduleOptions schedule;
  std::vector<torch::Tensor> parameters;
  std::string prefix() const { return name.empty() ? "optim." : "optim_" + name + "."; }
};

// Each optimizer's parameters take the gradient of its own loss terms only ("<name>/..." for a named
// one, the rest for the main one): a generator's adversarial loss does not move the discriminator.
void Trainer::backward_by_optimizer(const LossTerms& losses, std::vector<Stepper>& steppers) {
  std::vector<torch::Tensor> totals(steppers.size());
  for (const auto& [name, value] : losses) {
    size_t owner = 0;
    for (size_t k = 1; k < steppers.size(); ++k)
      if (name.rfind(steppers[k].name + "/", 0) == 0) owner = k;
    totals[owner] = totals[owner].defined() ? totals[owner] + value : value;
  }
  size_t last = 0;
  for (size_t k = 0; k < totals.size(); ++k)
    if (totals[k].defined()) last = k;
  for (size_t k = 0; k < totals.size(); ++k) {
    if (!totals[k].defined()) {  // no term this step (a frozen stylizer): no gradient, so no Adam step either
      for (auto& p : steppers[k].parameters) p.mutable_grad() = torch::Tensor();
      continue;
    }
    auto grads = torch::autograd::grad({totals[k]}, steppers[k].parameters, {}, /*retain_graph=*/k != last,
                                       /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t i = 0; i < grads.size(); ++i)
      steppers[k].parameters[i].mutable_grad() = grads[i].defined() ? grads[i] : torch::zeros_like(steppers[k].parameters[i]);
  }
}

int64_t Trainer::try_resume(std::vector<Stepper>& steppers) {
  auto loaded = load_latest_checkpoint(options_.run_dir / "checkpoints");
  if (!loaded) return 0;
  check_resume_config(loaded->state.value("config", ""), options_.config_yaml, options_.run_dir / "checkpoints");
  std::vector<std::pair<std::string, at::Tensor>> model;
  std::vector<std::vector<std::pair<std::string, at::Tensor>>> optim(steppers.size());
  for (auto& entry : loaded->tensors) {
    if (entry.first.rfind("rng.", 0) == 0) {
      restore_rng(entry.first, entry.second);
      continue;
    }
    bool is_optimizer = false;
    for (size_t k = 0; k < steppers.size() && !is_optimizer; ++k) {
      const std::string prefix = steppers[k].prefix();
      if (entry.first.rfind(prefix, 0) != 0) continue;
      optim[k].emplace_back("optim." + entry.first.substr(prefix.size()), entry.second);
      is_optimizer = true;
    }
    if (!is_optimizer) model.push_back(entry);
  }
  load_module_tensors(task_.state_module(), model, options_.run_dir / "checkpoints");
  for (size_t k = 0; k < steppers.size(); ++k) load_optimizer_state(*steppers[k].optimizer, optim[k]);
  const auto& loader = loaded->state.at("loader");
  // distributed: the cursor counts this rank's samples; rescale it when the world size changed
  task_.restore(rescale_sampler_state({loader.at("epoch").get<int64_t>(), loader.at("cursor").get<int64_t>()},
                                      loaded->state.value("world_size", 1),
                                      options_.distributed ? options_.distributed->world_size() : 1));
  int64_t iter = loaded->state.at("iter").get<int64_t>();
  spdlog::info("resumed from {} at iteration {}", loaded->manifest.string(), iter);
  return iter;
}

void Trainer::checkpoint(int64_t iter, std::vector<Stepper>& steppers) {
  Checkpoint ckpt;
  ckpt.tensors = module_tensors(task_.state_module());
  require_finite(ckpt.tensors, iter);
  for (Stepper& stepper : steppers)
    for (auto& entry : optimizer_state_tensors(*stepper.optimizer))
      ckpt.tensors.emplace_back(stepper.prefix() + entry.first.substr(std::string("optim.").size()), entry.second);
  for (auto& entry : rng_state_tensors()) ckpt.tensors.push_back(entry);
  SamplerState loader = task_.loader_state();
  ckpt.state = {{"iter", iter},
                {"loader", {{"epoch", loader.epoch}, {"cursor", loader.cursor}}},
                {"config", options_.config_yaml},
                {"world_size", options_.distributed ? options_.distributed->world_size() : 1},
                {"lesseg_version", LESSEG_VERSION}};
  save_checkpoint(options_.run_dir / "checkpoints", iter, ckpt, options_.keep_checkpoints);
}

void Trainer::keep_if_best(int64_t iter, const nlohmann::json& metrics) {
  if (!metrics.contains(options_.select_metric) || !metrics[options_.select_metric].is_number())
    throw Error(ExitCode::internal, "train.select best: the evaluation has no '" + options_.select_metric + "'");
  const double value = metrics[options_.select_metric].get<double>();
  if (value <= best_) return;
  best_ = value;
  if (options_.distributed && !options_.distributed->is_main()) return;
  Checkpoint best;
  best.tensors = module_tensors(task_.state_module());
  nlohmann::json selected = metrics;
  selected["iter"] = iter;
  best.state = {{"iter", iter}, {"metrics", selected}, {"config", options_.config_yaml}, {"lesseg_version", LESSEG_VERSION}};
  save_checkpoint(options_.run_dir / "best", iter, best, 1);
  spdlog::info("iter {}: best {} {:.4f} so far on the {} split, kept in {}", iter, options_.select_metric, value,
               task_.evaluation_split(), (options_.run_dir / "best").string());
}

namespace {
// The trainable parameters outside the task's backbones (train.head_lr_multiplier applies to them).
std::vector<torch::Tensor> head_parameters(TrainTask& task, double multiplier) {
  if (multiplier == 1) return {};
  const std::vector<torch::Tensor> backbone = task.backbone_parameters();
  if (backbone.empty()) throw_usage("train.head_lr_multiplier: this method has no backbone / head split; leave it at 1");
  std::set<const void*> in_backbone;
  for (const auto& p : backbone) in_backbone.insert(p.unsafeGetTensorImpl());
  std::vector<torch::Tensor> head;
  for (const auto& p : task.trainable_parameters())
    if (!in_backbone.count(p.unsafeGetTensorImpl())) head.push_back(p);
  return head;
}
}  // namespace

nlohmann::json Trainer::load_best() {
  Distributed* dist = options_.distributed.get();
  nlohmann::json metrics;  // null: nothing kept
  if (!dist || dist->is_main()) {
    if (auto best = load_latest_checkpoint(options_.run_dir / "best")) {
      load_module_tensors(task_.state_module(), best->tensors, best->manifest);
      metrics = best->state.at("metrics");
    }
  }
  if (!dist) return metrics;
  // Only rank 0 kept run_dir/best (the nodes need not share a run folder): it sends the weights,
  // the chosen iteration and its score to the other ranks.
  at::Tensor shared = torch::zeros({3}, torch::kFloat64);
  if (!metrics.is_null())
    shared = torch::tensor({1.0, static_cast<double>(metrics.value("iter", int64_t{-1})),
                            metrics.value(options_.select_metric, 0.0)}, torch::kFloat64);
  dist->all_reduce_sum(shared);
  if (shared[0].item<double>() == 0) return nullptr;
  dist->broadcast_module(task_.state_module());
  if (!dist->is_main())
    metrics = {{"iter", static_cast<int64_t>(shared[1].item<double>())}, {options_.select_metric, shared[2].item<double>()}};
  return metrics;
}

nlohmann::json Trainer::run() {
  Distributed* dist = options_.distributed.get();
  OptimizerOptions optimizer_options = options_.optimizer;
  if (options_.lr_scaling_linear) {  // ref: SimCLR / DINO / MAE: lr = base lr x total batch / 256
    const int64_t batch = task_.images_per_step() * (dist ? dist->world_size() : 1);
    optimizer_options.lr *= static_cast<double>(batch) / 256.0;
    spdlog::info("lr {:.6g} = {:.6g} x batch {} / 256", optimizer_options.lr, options_.optimizer.lr, batch);
  }
  std::filesystem::create_directories(options_.run_dir);
  remove_stale_temp_files(options_.run_dir);
  remove_leftovers(options_.run_dir / "checkpoints");
  std::vector<Stepper> steppers;
  steppers.push_back({"", make_optimizer(task_.trainable_parameters(), optimizer_options, task_.no_weight_decay_parameters(),
                                         head_parameters(task_, optimizer_options.head_lr_multiplier)),
                      optimizer_options, options_.schedule, task_.trainable_parameters()});
  for (TaskOptimizer& other : task_.other_optimizers()) {
    if (other.name.empty() || other.name.find_first_of("/.") != std::string::npos)
      throw Error(ExitCode::internal, "an optimizer needs a name without '/' or '.'");
    steppers.push_back({other.name, make_optimizer(other.parameters, other.optimizer), other.optimizer, other.schedule,
                        other.parameters});
  }
  int64_t iter = try_resume(steppers);
  if (options_.select_best) {
    remove_leftovers(options_.run_dir / "best");
    if (iter == 0) {
      std::error_code ignored;  // a fresh run: a best from an older run in this folder does not count
      std::filesystem::remove_all(options_.run_dir / "best", ignored);
    } else if (auto best = load_latest_checkpoint(options_.run_dir / "best")) {
      best_ = best->state.at("metrics").at(options_.select_metric).get<double>();
    }
  }
  // distributed: every rank starts from rank 0's tensors; only rank 0 writes files
  const bool main_rank = !dist || dist->is_main();
  if (dist) dist->broadcast_module(task_.state_module());
  if (main_rank) write_file_atomic(options_.run_dir / "config.yaml", options_.config_yaml);
  std::optional<MetricsLog> log;
  if (main_rank) log.emplace(options_.run_dir / "metrics.jsonl", iter);
  StopSignals stop_signals;
  Progress progress(options_.iters);
  nlohmann::json last_eval;
  auto window_start = std::chrono::steady_clock::now();
  int64_t window_iters = 0;
  while (iter < options_.iters) {
    const double lr = optimizer_options.lr * lr_factor(options_.schedule, iter);
    for (Stepper& stepper : steppers) {
      set_learning_rate(stepper.optimizer, stepper.options.lr * lr_factor(stepper.schedule, iter));
      const int64_t total_iters = stepper.name.empty() ? options_.iters : stepper.schedule.total_iters;
      set_weight_decay(stepper.optimizer, weight_decay_at(stepper.options, iter, total_iters));
    }
    LossTerms losses = task_.train_step(iter);
    torch::Tensor total = losses.front().second;
    for (size_t i = 1; i < losses.size(); ++i) total = total + losses[i].second;
    const double total_value = total.item<double>();
    if (!std::isfinite(total_value)) {
      std::ostringstream terms;
      for (auto& [name, value] : losses) terms << " " << name << "=" << value.item<double>();
      throw Error(ExitCode::internal, "non-finite loss at iteration " + std::to_string(iter) + ":" + terms.str());
    }
    for (Stepper& stepper : steppers) stepper.optimizer->zero_grad();
    if (steppers.size() == 1) {
      total.backward();
    } else {
      backward_by_optimizer(losses, steppers);
    }
    if (dist)
      for (Stepper& stepper : steppers) dist->average_gradients(stepper.parameters);
    if (options_.grad_clip > 0) clip_gradients(task_.trainable_parameters(), options_.grad_clip, options_.grad_clip_per_parameter);
    task_.after_backward(iter);
    for (Stepper& stepper : steppers) stepper.optimizer->step();
    task_.after_step(iter);
    ++iter;
    ++window_iters;
    if (iter % options_.log_every == 0 || iter == options_.iters) {
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - window_start).count();
      const int64_t images = window_iters * task_.images_per_step() * (dist ? dist->world_size() : 1);
      nlohmann::json record = {{"iter", iter}, {"lr", lr}, {"loss", total_value},
                               {"images_per_s", images / std::max(seconds, 1e-9)}};
      for (auto& [name, value] : losses) record["loss_" + name] = value.item<double>();
      if (log) log->write(record);
      std::ostringstream text;
      text << "loss " << total_value << "  " << int(record["images_per_s"].get<double>()) << " img/s";
      if (main_rank) progress.update(iter, text.str());
      window_start = std::chrono::steady_clock::now();
      window_iters = 0;
    }
    const bool last = iter == options_.iters;
    if ((options_.eval_every > 0 && iter % options_.eval_every == 0) || last) {
      last_eval = task_.evaluate();
      nlohmann::json record = last_eval;
      record["iter"] = iter;
      record["split"] = task_.evaluation_split();
      if (log) log->write(record);
      spdlog::info("iter {}: {} ({})", iter, headline(last_eval), task_.evaluation_split());
      if (options_.select_best) keep_if_best(iter, last_eval);
    }
    // A stop request ends every rank at the same step: the flag is agreed on across ranks.
    int signal = StopSignals::received();
    if (dist) {
      auto flag = torch::tensor({static_cast<double>(signal)}, torch::TensorOptions().device(dist->device()));
      dist->all_reduce_sum(flag);
      signal = flag.item<double>() > 0 ? (signal ? signal : SIGTERM) : 0;
    }
    if (((options_.checkpoint_every > 0 && iter % options_.checkpoint_every == 0) || last || signal) && main_rank)
      checkpoint(iter, steppers);
    if (signal && !last) {
      if (main_rank) progress.finish();
      if (dist) dist->finish();  // after rank 0 saved: no rank is reported as failed
      const bool term = signal == SIGTERM;
      throw Error(term ? ExitCode::terminated : ExitCode::interrupted,
                  std::string("stopped by ") + (term ? "SIGTERM" : "SIGINT") + " after iteration " + std::to_string(iter) +
                      "; checkpoint saved in " + (options_.run_dir / "checkpoints").string() +
                      ", the same command resumes");
    }
  }
  if (main_rank) progress.finish();
  if (last_eval.is_null()) last_eval = task_.evaluate();  // resumed at the end already
  return last_eval;
}

}  // namespace lesseg
