#include <iostream>

#include "commands.h"
#include "lesseg/core/error.h"
#include "lesseg/methods/supervised/supervised.h"
#include "run_options.h"

namespace lesseg::cli {

void register_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a segmenter from a YAML config");
  auto args = std::make_shared<RunArgs>();
  add_run_options(*cmd, *args);
  cmd->callback([args] {
    RunSetup run = prepare_run(*args);
    const std::string method = run.config.get<std::string>("method");
    if (method != "supervised") throw_usage("unknown method '" + method + "' (known: supervised; self-supervised: lesseg pretrain)");
    TrainResult result = train_supervised(run.config, run.run_dir);
    if (!is_reporting_rank()) return;
    std::cout << "validation mIoU: " << result.metrics.value("miou", 0.0) << "\n"
              << "weights:     " << result.weights.string() << "\n"
              << "checkpoints: " << result.checkpoint.string() << "\n"
              << "metrics:     " << (run.run_dir / "metrics.jsonl").string() << "\n";
  });
}

}  // namespace lesseg::cli
