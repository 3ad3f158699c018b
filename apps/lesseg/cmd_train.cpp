#include <iostream>

#include "commands.h"
#include "lesseg/core/error.h"
#include "lesseg/methods/cutler/selftrain.h"
#include "lesseg/methods/train.h"
#include "run_options.h"

namespace lesseg::cli {

void register_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a model from a YAML config (method: supervised | cps | unimatch | igldt | cutler)");
  auto args = std::make_shared<RunArgs>();
  add_run_options(*cmd, *args);
  auto method_name = std::make_shared<std::string>();
  cmd->add_option("--method", *method_name, "The method, same as --set method=NAME (supervised, cps, unimatch, igldt, cutler)");
  cmd->callback([args, method_name] {
    RunSetup run = prepare_run(*args, method_name->empty() ? std::vector<std::string>{} : std::vector<std::string>{"method=" + *method_name});
    const TrainMethod& method = find_train_method(run.config.get<std::string>("method"));
    TrainResult result = method.train(run.config, run.run_dir);
    if (!is_reporting_rank()) return;
    if (result.metrics.contains("models") && result.metrics["models"].size() > 1) {
      for (auto& [name, metrics] : result.metrics["models"].items())
        std::cout << "validation mIoU (" << name << "): " << metrics.value("miou", 0.0) << "\n";
    } else if (result.metrics.contains("miou")) {
      std::cout << "validation mIoU: " << result.metrics.value("miou", 0.0) << "\n";
    }
    if (result.metrics.contains("selected"))
      std::cout << "selected at iteration " << result.metrics["selected"].value("iter", 0) << " on the held-out images (holdout mIoU "
                << result.metrics["selected"].value("miou", 0.0) << ")\n";
    if (result.metrics.contains("mask_ap"))
      std::cout << "validation mask AP: " << result.metrics.value("mask_ap", 0.0)
                << ", AP50: " << result.metrics.value("mask_ap50", 0.0) << "\n";
    std::cout << "weights:     " << result.weights.string() << "\n"
              << "checkpoints: " << result.checkpoint.string() << "\n"
              << "metrics:     " << (run.run_dir / "metrics.jsonl").string() << "\n";
  });
}

void register_selftrain(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "selftrain", "CutLER: train on pseudo-masks (round 0), then selftrain.rounds rounds of self-training, each "
                   "retrained on its confident predictions plus the pseudo-masks they miss");
  auto args = std::make_shared<RunArgs>();
  add_run_options(*cmd, *args);
  cmd->callback([args] {
    RunSetup run = prepare_run(*args);
    if (run.config.get<std::string>("method") != "cutler") throw_usage("selftrain needs method: cutler");
    SelfTrainResult result = self_train(run.config, run.run_dir);
    if (!is_reporting_rank()) return;
    for (size_t r = 0; r < result.rounds.size(); ++r) {
      const auto& m = result.rounds[r].metrics;
      std::cout << "round " << r << ": mask AP " << m.value("mask_ap", -1.0) << ", AP50 " << m.value("mask_ap50", -1.0)
                << "  (" << result.annotations[r].string() << " -> " << result.rounds[r].weights.string() << ")\n";
    }
  });
}

}  // namespace lesseg::cli
