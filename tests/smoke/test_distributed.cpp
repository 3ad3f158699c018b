// Distributed data parallel: 2 ranks on loopback equal 1 process with the same global batch; a
// killed rank ends the run on the others with a message naming it; the rendezvous store listens on
// loopback only; CutLER's instance training runs on 2 ranks; select best
// on 2 ranks reports the saved model; `lesseg launch` sets the torchrun variables and reports a failed worker.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/data/synth/synth.h"
#include "lesseg/engine/distributed.h"
#include "lesseg/engine/store.h"
#include "lesseg/io/safetensors.h"
#include "lesseg/methods/instance_model.h"
#include "smoke_util.h"

namespace lesseg {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

fs::path fresh_dir(const std::string& name) {
  fs::path dir = smoke::fresh_dir("ddp_" + name);
  fs::create_directories(dir);
  return dir;
}

// A port that was free a moment ago (another engineer's run may hold 29500).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t n = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Starts `argv` with extra environment variables, stdout + stderr into `log`.
pid_t spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env, const fs::path& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid, double* seconds = nullptr) {
  auto start = Clock::now();
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (seconds) *seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A tiny real run: synthetic world, ResUnet-18 with a light decoder, SGD, no crop padding (so no
// ignored pixels: each rank's mean loss averages to the global mean), frozen BatchNorm statistics.
std::vector<std::string> tiny_run(const fs::path& run_dir, int iters) {
  std::vector<std::string> sets = {
      "data.synth.size=64", "data.synth.num_train=32", "data.synth.num_val=8", "data.crop=[48, 48]",
      "data.scale=[1.0, 1.0]", "model.decoder_channels=[32, 16, 16, 16, 8]", "train.optimizer=sgd",
      "train.lr=0.02", "train.batch_size=4", "train.iters=" + std::to_string(iters), "train.log_every=1",
      "train.eval_every=0", "train.checkpoint_every=0", "train.schedule=constant", "train.warmup_iters=0",
      "train.freeze_bn=true",
      "eval.max_images=4", "data.workers=1", "data.prefetch=2", "threads=1", "distributed.timeout_s=10"};
  std::vector<std::string> argv = {LESSEG_CLI, "train", std::string(LESSEG_SOURCE_DIR) + "/configs/quick/supervised.yaml",
                                   "--run-dir", run_dir.string()};
  for (const auto& s : sets) {
    argv.push_back("--set");
    argv.push_back(s);
  }
  return argv;
}

// The union of the 2 ranks' batches at every step is the 1-process batch (ShardedSampler slices the
// same permutation, augmentation is seeded by the sample's place in it), the gradients are averaged,
// so the weights must agree up to float summation order. BatchNorm is the exception: per-rank
// batch statistics differ from the global batch's (lesseg has no SyncBN yet), hence freeze_bn.
TEST(Distributed, TwoRanksEqualOneProcessWithTheSameGlobalBatch) {
  fs::path one = fresh_dir("one"), two = fresh_dir("two");
  const int iters = 4;
  ASSERT_EQ(wait_exit(spawn(tiny_run(one, iters), {}, one.parent_path() / "one.log")), 0)
      << read_text(one.parent_path() / "one.log");
  auto cmd = tiny_run(two, iters);
  cmd.insert(cmd.begin() + 1, {"launch", "--nproc", "2", "--master-port", std::to_string(free_port()), "--grace", "5", "--"});
  cmd.insert(cmd.begin() + 9, LESSEG_CLI);
  const fs::path log = two.parent_path() / "two.log";
  ASSERT_EQ(wait_exit(spawn(cmd, {}, log)), 0) << read_text(log);
  auto a = load_safetensors(one / "model.safetensors").tensors;
  auto b = load_safetensors(two / "model.safetensors").tensors;
  ASSERT_EQ(a.size(), b.size());
  std::map<std::string, at::Tensor> by_name(b.begin(), b.end());
  double max_diff = 0;
  for (auto& [name, tensor] : a) {
    if (!tensor.is_floating_point()) continue;
    max_diff = std::max(max_diff, (tensor - by_name.at(name)).abs().max().item<double>());
  }
  std::cout << "max |w_1proc - w_2proc| = " << max_diff << std::endl;
  EXPECT_LE(max_diff, 1e-5);
  // Only rank 0 wrote the logs: one step record per iteration.
  std::ifstream metrics(two / "metrics.jsonl");
  int steps = 0;
  for (std::string line; std::getline(metrics, line);) steps += line.find("\"loss\"") != std::string::npos;
  EXPECT_EQ(steps, iters);

  // Relaunch resumes, even with another world size: 2 ranks stop at iteration 2 with a checkpoint,
  // 1 process goes on to 4 and must end where the uninterrupted 1-process run ended.
  fs::path resumed = fresh_dir("resumed");
  auto first = tiny_run(resumed, 2);
  first.insert(first.begin() + 1, {"launch", "--nproc", "2", "--master-port", std::to_string(free_port()), "--grace", "5", "--"});
  first.insert(first.begin() + 9, LESSEG_CLI);
  first.insert(first.end(), {"--set", "train.checkpoint_every=2"});
  ASSERT_EQ(wait_exit(spawn(first, {}, log)), 0) << read_text(log);
  auto second = tiny_run(resumed, iters);
  second.insert(second.end(), {"--set", "train.checkpoint_every=2"});
  ASSERT_EQ(wait_exit(spawn(second, {}, log)), 0) << read_text(log);
  EXPECT_NE(read_text(log).find("resumed from"), std::string::npos) << read_text(log);
  auto c = load_safetensors(resumed / "model.safetensors").tensors;
  double resume_diff = 0;
  std::map<std::string, at::Tensor> resumed_by_name(c.begin(), c.end());
  for (auto& [name, tensor] : a)
    if (tensor.is_floating_point())
      resume_diff = std::max(resume_diff, (tensor - resumed_by_name.at(name)).abs().max().item<double>());
  std::cout << "max |w_1proc - w_2proc_resumed_1proc| = " << resume_diff << std::endl;
  EXPECT_LE(resume_diff, 1e-5);
}

// train.select best on 2 ranks with a run folder each (as on 2 nodes that share no disk): rank 0
// alone keeps run_dir/best and sends the chosen weights to rank 1, so rank 1 finds nothing missing
// and the mIoU both ranks report together is the saved model's, as 1 process evaluates it.
TEST(Distributed, SelectBestOnTwoRanksReportsTheSavedModel) {
  const fs::path run = fresh_dir("best"), other = fresh_dir("best_rank1");
  const std::string port = std::to_string(free_port());
  pid_t pids[2];
  for (int rank = 0; rank < 2; ++rank) {
    auto cmd = tiny_run(rank == 0 ? run : other, 4);
    for (const char* s : {"data.holdout=4", "train.eval_every=2", "train.select=best"}) cmd.insert(cmd.end(), {"--set", s});
    pids[rank] = spawn(cmd, {{"RANK", std::to_string(rank)}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", std::to_string(rank)},
                             {"MASTER_PORT", port}},
                       run.parent_path() / ("best_rank" + std::to_string(rank) + ".log"));
  }
  const fs::path log = run.parent_path() / "best_rank0.log", log1 = run.parent_path() / "best_rank1.log";
  ASSERT_EQ(wait_exit(pids[0]), 0) << read_text(log);
  ASSERT_EQ(wait_exit(pids[1]), 0) << read_text(log1);
  EXPECT_FALSE(fs::exists(other / "best")) << "only rank 0 writes";
  EXPECT_EQ(read_text(log1).find("no held-out evaluation was kept"), std::string::npos) << read_text(log1);
  const nlohmann::json results = nlohmann::json::parse(read_text(run / "results.json"));
  ASSERT_TRUE(results.contains("selected")) << results.dump();
  const fs::path eval_log = run.parent_path() / "best_eval.log";
  ASSERT_EQ(wait_exit(spawn({LESSEG_CLI, "eval", run.string(), "--threads", "1"}, {}, eval_log)), 0) << read_text(eval_log);
  const std::string printed = read_text(eval_log);
  const size_t start = printed.rfind("\n{") == std::string::npos ? 0 : printed.rfind("\n{") + 1;  // the JSON printed last
  ASSERT_EQ(printed.substr(start, 1), "{") << printed;
  std::istringstream json_text(printed.substr(start));
  nlohmann::json evaluated;
  json_text >> evaluated;
  std::cout << "selected iter " << results["selected"]["iter"] << ": reported mIoU " << results["miou"]
            << ", the saved model evaluated by 1 process " << evaluated["miou"] << std::endl;
  EXPECT_NEAR(results["miou"].get<double>(), evaluated["miou"].get<double>(), 1e-3);  // batching may flip a tie
}

// CutLER's trainer (SOLOv2 on instance masks, copy-paste, DropLoss) under 2 ranks: each rank reads its
// shard of the instance data, rank 0 alone writes the model, which loads as an instance model. Not
// compared with 1 process: SOLOv2 normalizes its losses by the positives of each rank's own batch
// (as the authors' code does) and copy-paste pairs images within a rank's batch.
TEST(Distributed, CutlerTrainsOnTwoRanks) {
  const fs::path world = fresh_dir("cutler_world"), run = fresh_dir("cutler_two");
  synth::Options o;
  o.size = 64;
  o.min_objects = 1;
  o.max_objects = 3;
  synth::write_dataset(world, o, 16, 4, 0);
  const std::string w = world.string();
  std::vector<std::string> cmd = {LESSEG_CLI, "launch", "--nproc", "2", "--master-port", std::to_string(free_port()),
                                  "--grace", "5", "--", LESSEG_CLI, "train",
                                  std::string(LESSEG_SOURCE_DIR) + "/configs/quick/cutler.yaml", "--run-dir", run.string()};
  for (const std::string& s :
       {"instances.train_json=" + w + "/instances_train.json", "instances.train_images=" + w + "/images",
        "instances.val_json=" + w + "/instances_val.json", "instances.val_images=" + w + "/images",
        std::string("data.crop=[64, 64]"), std::string("solo.grids=[12, 10, 8, 6, 4]"),
        std::string("solo.fpn_channels=32"), std::string("solo.head_channels=32"), std::string("solo.mask_hidden=16"),
        std::string("solo.mask_channels=16"), std::string("train.batch_size=4"), std::string("train.iters=2"),
        std::string("train.log_every=1"), std::string("train.eval_every=0"), std::string("train.checkpoint_every=0"),
        std::string("data.workers=1"), std::string("threads=1"), std::string("distributed.timeout_s=20")}) {
    cmd.push_back("--set");
    cmd.push_back(s);
  }
  const fs::path log = run.parent_path() / "cutler_two.log";
  ASSERT_EQ(wait_exit(spawn(cmd, {}, log)), 0) << read_text(log);
  SavedInstanceModel saved = load_instance_model(run / "model.safetensors", torch::kCPU);
  EXPECT_EQ(saved.solo.num_grids().front(), 12);
  std::ifstream metrics(run / "metrics.jsonl");
  int steps = 0, evaluations = 0;
  for (std::string line; std::getline(metrics, line);) {
    steps += line.find("\"loss\"") != std::string::npos;
    evaluations += line.find("\"mask_ap\"") != std::string::npos;
  }
  EXPECT_EQ(steps, 2);
  EXPECT_EQ(evaluations, 1) << read_text(log);  // the final evaluation, on rank 0 only
}

// kill -9 (or freeze, SIGSTOP) one rank in the middle of training: the other exits with code 6
// within the timeout (10 s here), naming that rank.
void kill_one_rank(int victim, int signal = SIGKILL) {
  fs::path run = fresh_dir("kill" + std::to_string(victim));
  const std::string port = std::to_string(free_port());
  pid_t pids[2];
  for (int rank = 0; rank < 2; ++rank)
    pids[rank] = spawn(tiny_run(run, 100000),
                       {{"RANK", std::to_string(rank)}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", std::to_string(rank)},
                        {"MASTER_PORT", port}},
                       run.parent_path() / ("kill" + std::to_string(victim) + "_rank" + std::to_string(rank) + ".log"));
  // Wait until training runs (rank 0 logs every step).
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline && read_text(run / "metrics.jsonl").find("\"iter\":2") == std::string::npos)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_NE(read_text(run / "metrics.jsonl").find("\"iter\":2"), std::string::npos) << "training did not start";
  ::kill(pids[victim], signal);
  const int survivor = 1 - victim;
  double seconds = 0;
  const int code = wait_exit(pids[survivor], &seconds);
  ::kill(pids[victim], SIGKILL);
  wait_exit(pids[victim]);
  const std::string output = read_text(run.parent_path() / ("kill" + std::to_string(victim) + "_rank" +
                                                            std::to_string(survivor) + ".log"));
  std::cout << "rank " << survivor << " exited " << seconds << " s after rank " << victim << " got signal " << signal
            << std::endl;
  EXPECT_EQ(code, 6) << output;
  EXPECT_LT(seconds, signal == SIGKILL ? 5.0 : 11.5) << "distributed.timeout_s is 10";
  EXPECT_NE(output.find("rank " + std::to_string(victim) + " failed"), std::string::npos) << output;
}

TEST(Distributed, KilledRankOneEndsRankZeroNamingIt) { kill_one_rank(1); }
TEST(Distributed, KilledRankZeroEndsRankOneNamingIt) { kill_one_rank(0); }
// A frozen process keeps its sockets open: only the timeout can tell. Rank 0 hosts the store.
TEST(Distributed, FrozenRankZeroEndsRankOneAfterTheTimeout) { kill_one_rank(0, SIGSTOP); }

// The store listens on the address it is given (default 127.0.0.1), never on all interfaces.
TEST(Distributed, StoreListensOnLoopbackOnly) {
  ::unsetenv("MASTER_ADDR");
  ::setenv("WORLD_SIZE", "2", 1);
  ::setenv("RANK", "0", 1);
  DistributedOptions options = distributed_options_from(Config());
  ::unsetenv("WORLD_SIZE");
  ::unsetenv("RANK");
  EXPECT_EQ(options.master_addr, "127.0.0.1");
  StoreServer server(options.master_addr, 0, std::chrono::seconds(10));
  char port[8];
  std::snprintf(port, sizeof(port), "%04X", server.port());
  int listening = 0, elsewhere = 0;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      if (state != "0A" || local.substr(local.find(':') + 1) != port) continue;
      (local == std::string("0100007F:") + port ? listening : elsewhere) += 1;
    }
  }
  EXPECT_EQ(listening, 1);
  EXPECT_EQ(elsewhere, 0);
  // And it works as a store.
  StoreClient client(options.master_addr, server.port(), std::chrono::seconds(5));
  client.set("a", {1, 2, 3});
  EXPECT_EQ(client.get("a"), (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_EQ(client.add("n", 5), 5);
  EXPECT_EQ(client.add("n", -2), 3);
  EXPECT_TRUE(client.check({"a", "n"}));
  EXPECT_FALSE(client.check({"a", "missing"}));
  EXPECT_THROW(client.wait({"missing"}, std::chrono::milliseconds(100)), std::exception);
}

TEST(Distributed, LaunchSetsTorchrunVariablesAndNamesTheFailedWorker) {
  fs::path dir = fresh_dir("launch");
  const fs::path log = dir / "launch.log";
  pid_t pid = spawn({LESSEG_CLI, "launch", "--nproc", "2", "--master-port", "29533", "--grace", "1", "--", "/bin/sh", "-c",
                     "echo rank=$RANK world=$WORLD_SIZE local=$LOCAL_RANK addr=$MASTER_ADDR port=$MASTER_PORT; "
                     "if [ $RANK = 1 ]; then exit 3; fi; sleep 30"},
                    {}, log);
  double seconds = 0;
  const int code = wait_exit(pid, &seconds);
  const std::string output = read_text(log);
  EXPECT_EQ(code, 3) << output;
  EXPECT_LT(seconds, 15.0) << output;
  for (const char* line : {"rank=0 world=2 local=0 addr=127.0.0.1 port=29533", "rank=1 world=2 local=1"})
    EXPECT_NE(output.find(line), std::string::npos) << output;
  EXPECT_NE(output.find("worker rank 1 (pid"), std::string::npos) << output;
  EXPECT_NE(output.find("killing worker rank 0"), std::string::npos) << output;
  EXPECT_EQ(wait_exit(spawn({LESSEG_CLI, "launch", "--help"}, {}, dir / "help.log")), 0);
  EXPECT_NE(read_text(dir / "help.log").find("--nproc"), std::string::npos);
}

TEST(Distributed, LaunchForwardsSigtermToEveryWorker) {
  fs::path dir = fresh_dir("launch_term");
  const fs::path log = dir / "launch.log";
  pid_t pid = spawn({LESSEG_CLI, "launch", "--nproc", "2", "--", "/bin/sh", "-c",
                     "trap 'echo rank $RANK got SIGTERM; exit 143' TERM; echo rank $RANK ready; sleep 30 & wait"},
                    {}, log);
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline && (read_text(log).find("rank 0 ready") == std::string::npos ||
                                     read_text(log).find("rank 1 ready") == std::string::npos))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ::kill(pid, SIGTERM);
  const int code = wait_exit(pid);
  const std::string output = read_text(log);
  EXPECT_EQ(code, 143) << output;
  EXPECT_NE(output.find("rank 0 got SIGTERM"), std::string::npos) << output;
  EXPECT_NE(output.find("rank 1 got SIGTERM"), std::string::npos) << output;
}

}  // namespace
}  // namespace lesseg
