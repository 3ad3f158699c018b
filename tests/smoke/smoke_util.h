#pragma once
// Helpers shared by the smoke tests: fresh temp folders, running the CLI, a small training run.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace lesseg::smoke {

// Removes this process's smoke folder at exit when every test passed (runs and checkpoints add up
// to gigabytes over the suite); a failure leaves it to look at.
struct RemoveWhenPassed {
  std::filesystem::path dir;
  ~RemoveWhenPassed() {
    std::error_code ignored;
    if (::testing::UnitTest::GetInstance()->Passed()) std::filesystem::remove_all(dir, ignored);
  }
};

inline std::filesystem::path fresh_dir(const std::string& name) {
  const std::filesystem::path root = std::filesystem::temp_directory_path() / ("lesseg_smoke_" + std::to_string(::getpid()));
  static RemoveWhenPassed cleanup{root};
  std::filesystem::path dir = root / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir.parent_path());
  return dir;
}

struct CliResult {
  int code;
  std::string output;
};

// Runs a shell command line, returning its exit code and stdout + stderr.
inline CliResult run_command(const std::string& command_line) {
  std::string command = command_line + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string output;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

inline CliResult run_cli(const std::string& args) { return run_command(std::string(LESSEG_CLI) + " " + args); }

// A small synthetic-world run: 96 px scenes, 64 px crops, light decoder.
inline std::vector<std::string> small_run(int iters) {
  return {"data.synth.size=96",       "data.synth.num_train=400", "data.synth.num_val=40",
          "data.crop=[64, 64]",       "data.scale=[0.8, 1.2]",    "model.decoder_channels=[128, 64, 32, 32, 16]",
          "train.optimizer=adamw",    "train.lr=0.002",           "train.batch_size=8",
          "train.iters=" + std::to_string(iters), "train.log_every=10", "train.eval_every=0",
          "train.checkpoint_every=0", "data.workers=2"};
}

}  // namespace lesseg::smoke
