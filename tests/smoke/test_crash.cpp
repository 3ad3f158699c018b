// Crash safety (specs/reliability.md 1, 2, 5, 6): kill -9 at random moments during checkpoint
// writes never leaves an unreadable `latest`; a full disk leaves the previous checkpoint intact; a
// training run killed (-9 and SIGTERM) and resumed ends bit-identical to an uninterrupted one.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <sstream>
#include <thread>

#include <fcntl.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lesseg/core/fs.h"
#include "lesseg/engine/checkpoint.h"
#include "lesseg/io/safetensors.h"

extern char** environ;

namespace lesseg {
namespace {
namespace fs = std::filesystem;

fs::path scratch() { return fs::temp_directory_path() / ("lesseg_crash_" + std::to_string(::getpid())); }

fs::path fresh(const std::string& name) {
  fs::path dir = scratch() / name;
  fs::remove_all(dir);
  fs::create_directories(dir.parent_path());
  return dir;
}

// Each test runs in its own process under CTest; its scratch folder goes when the test passes.
class CrashSafety : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(scratch());
  }
};

// Starts `program args...` with stdout/stderr sent to `log`; returns its pid.
pid_t spawn(const std::vector<std::string>& argv, const fs::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  EXPECT_EQ(posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ), 0) << argv[0];
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

int wait_exit_code(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool has_temp_files(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().find(".tmp-lesseg") != std::string::npos) return true;
  return false;
}

size_t count_saves(const fs::path& log) {
  if (!fs::exists(log)) return 0;
  const std::string text = read_file(log);
  size_t count = 0;
  for (size_t at = text.find("saved "); at != std::string::npos; at = text.find("saved ", at + 1)) ++count;
  return count;
}

TEST_F(CrashSafety, KillDuringCheckpointWritesNeverLeavesAnUnreadableLatest) {
  const fs::path dir = fresh("kill_writes"), log = dir.string() + ".log";
  std::mt19937 rng(17);
  int kills = 0, unreadable = 0, checked = 0, mid_write = 0;
  ASSERT_EQ(wait_exit_code(spawn({LESSEG_CHECKPOINT_WRITER, dir.string(), "--count", "1", "--mb", "16"}, log)), 0);
  for (int round = 0; round < 40; ++round) {
    // Kill a random few milliseconds after the writer's next completed save: inside the following write.
    const size_t saves_before = count_saves(log);
    pid_t pid = spawn({LESSEG_CHECKPOINT_WRITER, dir.string(), "--mb", "16"}, log);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (count_saves(log) == saves_before && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 80));
    ::kill(pid, SIGKILL);
    EXPECT_EQ(wait_exit_code(pid), 128 + SIGKILL) << "the writer ended before the kill; see " << log;
    ++kills;
    if (has_temp_files(dir)) ++mid_write;  // the kill landed inside a write
    ++checked;
    try {
      auto latest = load_latest_checkpoint(dir);
      const int64_t iter = latest->state["iter"].get<int64_t>();
      EXPECT_TRUE(latest->skipped.empty()) << "latest was unusable: " << latest->skipped;
      EXPECT_TRUE(torch::all(latest->tensors.at(0).second == static_cast<float>(iter)).item<bool>());
      // Every manifest under its final name is complete (retention may have been interrupted).
      for (const auto& entry : fs::directory_iterator(dir))
        if (entry.path().extension() == ".json") {
          EXPECT_NO_THROW(load_checkpoint(entry.path())) << entry.path();
        }
    } catch (const std::exception& e) {
      ++unreadable;
      ADD_FAILURE() << "round " << round << ": " << e.what();
    }
  }
  remove_leftovers(dir);  // what the next run does at start
  EXPECT_FALSE(has_temp_files(dir));
  std::printf("  %d kills (%d left a half-written temp file), %d unreadable latest\n", kills, mid_write, unreadable);
  EXPECT_EQ(unreadable, 0);
}

TEST_F(CrashSafety, DiskFullDuringSaveKeepsThePreviousCheckpoint) {
  const fs::path dir = fresh("disk_full"), log = dir.string() + ".log";
  ASSERT_EQ(wait_exit_code(spawn({LESSEG_CHECKPOINT_WRITER, dir.string(), "--count", "1", "--mb", "1"}, log)), 0);
  // The next checkpoint (8 MB) does not fit under a 4 MB file-size limit.
  const int code =
      wait_exit_code(spawn({LESSEG_CHECKPOINT_WRITER, dir.string(), "--count", "1", "--mb", "8", "--fsize-limit", "4000000"}, log));
  EXPECT_EQ(code, 5) << read_file(log);
  const std::string output = read_file(log);
  EXPECT_NE(output.find("ckpt_00000002.safetensors"), std::string::npos) << output;
  EXPECT_NE(output.find("File too large"), std::string::npos) << output;
  auto latest = load_latest_checkpoint(dir);
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->state["iter"], 1);
  EXPECT_FALSE(has_temp_files(dir));
  EXPECT_FALSE(fs::exists(dir / "ckpt_00000002.safetensors"));
}

// A small supervised run through the CLI, with fixed threads.
std::vector<std::string> train_command(const fs::path& run) {
  std::vector<std::string> argv = {LESSEG_CLI, "train", std::string(LESSEG_SOURCE_DIR) + "/configs/quick/supervised.yaml",
                                   "--run-dir", run.string(), "--threads", "2"};
  for (const char* s : {"data.synth.size=64", "data.synth.num_train=64", "data.synth.num_val=8", "data.crop=[48,48]",
                        "model.decoder_channels=[64,32,16,16,8]", "train.batch_size=4", "train.iters=30",
                        "train.log_every=1", "train.eval_every=0", "train.checkpoint_every=5", "data.workers=2",
                        "eval.max_images=4"}) {
    argv.push_back("--set");
    argv.push_back(s);
  }
  return argv;
}

std::vector<std::pair<std::string, at::Tensor>> final_weights(const fs::path& run) {
  return load_safetensors(run / "model.safetensors").tensors;
}

int64_t last_logged_iter(const fs::path& metrics) {
  if (!fs::exists(metrics)) return 0;
  std::istringstream lines(read_file(metrics));
  std::string line;
  int64_t last = 0;
  while (std::getline(lines, line)) {
    auto record = nlohmann::json::parse(line, nullptr, false);
    if (record.is_object()) last = std::max(last, record.value("iter", int64_t{0}));
  }
  return last;
}

TEST_F(CrashSafety, KilledAndResumedRunEndsBitIdentical) {
  const fs::path straight = fresh("straight"), killed = fresh("killed"), log = killed.string() + ".log";
  ASSERT_EQ(wait_exit_code(spawn(train_command(straight), straight.string() + ".log")), 0) << read_file(straight.string() + ".log");
  // Three kill -9 and one SIGTERM, each a random moment after the run passed a given iteration
  // (checkpoints every 5), each followed by the same command.
  std::mt19937 rng(3);
  int interruptions = 0;
  const std::vector<std::pair<int, int64_t>> plan = {{SIGKILL, 7}, {SIGTERM, 13}, {SIGKILL, 19}, {SIGKILL, 24}};
  for (const auto& [signal, after_iter] : plan) {
    pid_t pid = spawn(train_command(killed), log);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (last_logged_iter(killed / "metrics.jsonl") < after_iter && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 150));
    ::kill(pid, signal);
    const int code = wait_exit_code(pid);
    if (code == 0) break;  // finished before the signal
    ++interruptions;
    EXPECT_EQ(code, signal == SIGTERM ? 143 : 128 + SIGKILL) << read_file(log);
  }
  // The last restart uses `--resume`, which takes the run's own resolved config.yaml.
  ASSERT_EQ(wait_exit_code(spawn({LESSEG_CLI, "train", "--resume", killed.string(), "--threads", "2"}, log)), 0)
      << read_file(log);
  EXPECT_EQ(interruptions, 4) << read_file(log);
  auto a = final_weights(straight), b = final_weights(killed);
  ASSERT_EQ(a.size(), b.size());
  double max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    max_diff = std::max(max_diff, (a[i].second.to(torch::kDouble) - b[i].second.to(torch::kDouble)).abs().max().item<double>());
  std::printf("  %d interruptions, max |dw| = %g\n", interruptions, max_diff);
  EXPECT_EQ(max_diff, 0.0);
  // metrics.jsonl holds each logged step once, in order.
  std::istringstream lines(read_file(killed / "metrics.jsonl"));
  std::string line;
  int64_t previous = 0;
  while (std::getline(lines, line)) {
    auto record = nlohmann::json::parse(line);
    if (record.contains("split")) continue;
    EXPECT_GT(record["iter"].get<int64_t>(), previous) << line;
    previous = record["iter"].get<int64_t>();
  }
}

}  // namespace
}  // namespace lesseg
