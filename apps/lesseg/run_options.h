#pragma once
// The options every training command shares (train, pretrain): config, overrides, run folder,
// resume, initial weights, threads.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "lesseg/core/config.h"

namespace lesseg::cli {

struct RunArgs {
  std::string config, run_dir, resume;
  std::vector<std::string> overrides;
  std::string weights, key;
  bool allow_partial = false, skip_bad_images = false;
  int threads = 0;
};

void add_run_options(CLI::App& cmd, RunArgs& args);

struct RunSetup {
  Config config;
  std::filesystem::path run_dir;
};
// Resolves --resume / --run-dir, loads the config with the flags as overrides (plus `extra`), and
// applies the thread count.
RunSetup prepare_run(RunArgs& args, const std::vector<std::string>& extra = {});

// Under lesseg launch / torchrun only rank 0 prints the summary.
bool is_reporting_rank();

}  // namespace lesseg::cli
