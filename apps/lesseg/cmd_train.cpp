#include <cstdlib>
#include <iostream>

#include <spdlog/spdlog.h>

#include "commands.h"
#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/engine/checkpoint.h"
#include "lesseg/methods/supervised/supervised.h"

namespace lesseg::cli {

void register_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a segmenter from a YAML config");
  struct Args {
    std::string config, run_dir, resume;
    std::vector<std::string> overrides;
    std::string weights, key;
    bool allow_partial = false, skip_bad_images = false;
    int threads = 0;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("config", args->config, "YAML config file (with --resume: default RUN_DIR/config.yaml)");
  cmd->add_option("--set", args->overrides, "Override a config key: --set train.iters=100 (repeatable)");
  cmd->add_option("--run-dir", args->run_dir, "Run folder (default: runs/<config name>); resumes if it holds a checkpoint");
  cmd->add_option("--resume", args->resume, "Continue the run in this folder; an error if it holds no checkpoint");
  cmd->add_option("--weights", args->weights, "Start from these weights (.pth or .safetensors): a segmenter or a backbone");
  cmd->add_option("--key", args->key, "Sub-dict of a training checkpoint for --weights (teacher, student, model)");
  cmd->add_flag("--allow-partial", args->allow_partial, "Accept --weights that leave model tensors at their init");
  cmd->add_flag("--skip-bad-images", args->skip_bad_images, "Skip and count unreadable training images instead of stopping");
  cmd->add_option("--threads", args->threads, "Intra-op threads (0 = all usable cores; overrides config)");
  cmd->callback([args] {
    if (!args->resume.empty()) {
      if (!args->run_dir.empty() && args->run_dir != args->resume) throw_usage("--resume and --run-dir name different folders");
      if (!has_checkpoint(std::filesystem::path(args->resume) / "checkpoints"))
        throw_usage("nothing to resume: " + args->resume + "/checkpoints holds no checkpoint");
      args->run_dir = args->resume;
      if (args->config.empty()) args->config = (std::filesystem::path(args->resume) / "config.yaml").string();
    }
    if (args->config.empty()) throw_usage("train needs a config file (or --resume RUN_DIR)");
    auto overrides = args->overrides;
    if (!args->weights.empty()) overrides.push_back("model.weights=" + args->weights);
    if (!args->key.empty()) overrides.push_back("model.weights_key=" + args->key);
    if (args->allow_partial) overrides.push_back("model.allow_partial=true");
    if (args->skip_bad_images) overrides.push_back("data.skip_bad_images=true");
    Config config = Config::load(args->config, overrides);
    int threads = args->threads > 0 ? args->threads : config.get<int>("threads");
    spdlog::info("threads: {}", apply_threads(threads));
    std::filesystem::path run_dir = args->run_dir.empty()
                                        ? std::filesystem::path("runs") / std::filesystem::path(args->config).stem()
                                        : std::filesystem::path(args->run_dir);
    const std::string method = config.get<std::string>("method");
    if (method != "supervised") throw_usage("unknown method '" + method + "' (known: supervised)");
    TrainResult result = train_supervised(config, run_dir);
    const char* rank = std::getenv("RANK");  // under lesseg launch / torchrun only rank 0 reports
    if (rank && std::string(rank) != "0") return;
    std::cout << "validation mIoU: " << result.metrics.value("miou", 0.0) << "\n"
              << "weights:     " << result.weights.string() << "\n"
              << "checkpoints: " << result.checkpoint.string() << "\n"
              << "metrics:     " << (run_dir / "metrics.jsonl").string() << "\n";
  });
}

}  // namespace lesseg::cli
