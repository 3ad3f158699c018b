#include "run_options.h"

#include <cstdlib>

#include <spdlog/spdlog.h>

#include "commands.h"
#include "lesseg/core/error.h"
#include "lesseg/engine/checkpoint.h"

namespace lesseg::cli {

void add_run_options(CLI::App& cmd, RunArgs& args) {
  cmd.add_option("config", args.config, "YAML config file (with --resume: default RUN_DIR/config.yaml)");
  cmd.add_option("--set", args.overrides, "Override a config key: --set train.iters=100 (repeatable)");
  cmd.add_option("--run-dir", args.run_dir, "Run folder (default: runs/<config name>); resumes if it holds a checkpoint");
  cmd.add_option("--resume", args.resume, "Continue the run in this folder; an error if it holds no checkpoint");
  cmd.add_option("--weights", args.weights, "Start from these weights (.pth or .safetensors): a segmenter or a backbone");
  cmd.add_option("--key", args.key, "Sub-dict of a training checkpoint for --weights (teacher, student, model)");
  cmd.add_flag("--allow-partial", args.allow_partial, "Accept --weights that leave model tensors at their init");
  cmd.add_flag("--skip-bad-images", args.skip_bad_images, "Skip and count unreadable training images instead of stopping");
  cmd.add_option("--threads", args.threads, "Intra-op threads (0 = all usable cores; overrides config)");
}

RunSetup prepare_run(RunArgs& args, const std::vector<std::string>& extra) {
  if (!args.resume.empty()) {
    if (!args.run_dir.empty() && args.run_dir != args.resume) throw_usage("--resume and --run-dir name different folders");
    if (!has_checkpoint(std::filesystem::path(args.resume) / "checkpoints"))
      throw_usage("nothing to resume: " + args.resume + "/checkpoints holds no checkpoint");
    args.run_dir = args.resume;
    if (args.config.empty()) args.config = (std::filesystem::path(args.resume) / "config.yaml").string();
  }
  if (args.config.empty()) throw_usage("a config file is needed (or --resume RUN_DIR)");
  auto overrides = args.overrides;
  if (!args.weights.empty()) overrides.push_back("model.weights=" + args.weights);
  if (!args.key.empty()) overrides.push_back("model.weights_key=" + args.key);
  if (args.allow_partial) overrides.push_back("model.allow_partial=true");
  if (args.skip_bad_images) overrides.push_back("data.skip_bad_images=true");
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  RunSetup setup{Config::load(args.config, overrides), {}};
  int threads = args.threads > 0 ? args.threads : setup.config.get<int>("threads");
  spdlog::info("threads: {}", apply_threads(threads));
  setup.run_dir = args.run_dir.empty() ? std::filesystem::path("runs") / std::filesystem::path(args.config).stem()
                                       : std::filesystem::path(args.run_dir);
  return setup;
}

bool is_reporting_rank() {
  const char* rank = std::getenv("RANK");
  return !rank || std::string(rank) == "0";
}

}  // namespace lesseg::cli
