#include <iostream>

#include "commands.h"
#include "lesseg/methods/ssl/pretrain.h"
#include "run_options.h"

namespace lesseg::cli {

void register_pretrain(CLI::App& app) {
  auto* cmd = app.add_subcommand("pretrain", "Pretrain a backbone self-supervised on unlabeled images");
  auto args = std::make_shared<RunArgs>();
  auto method = std::make_shared<std::string>();
  add_run_options(*cmd, *args);
  cmd->add_option("--method", *method, "simclr | samclr | dino | mae (default: the config's `method`)")
      ->check(CLI::IsMember({"simclr", "samclr", "dino", "mae"}));
  cmd->callback([args, method] {
    RunSetup run = prepare_run(*args, method->empty() ? std::vector<std::string>{} : std::vector<std::string>{"method=" + *method});
    PretrainResult result = pretrain(run.config, run.run_dir);
    if (!is_reporting_rank()) return;
    if (result.metrics.contains("knn_top1")) std::cout << "kNN top-1:   " << result.metrics["knn_top1"] << "\n";
    if (result.fallbacks > 0) std::cout << "whole-image fallbacks: " << result.fallbacks << "\n";
    std::cout << "backbone:    " << result.backbone.string() << "\n"
              << "checkpoints: " << (run.run_dir / "checkpoints").string() << "\n"
              << "metrics:     " << (run.run_dir / "metrics.jsonl").string() << "\n";
  });
}

}  // namespace lesseg::cli
