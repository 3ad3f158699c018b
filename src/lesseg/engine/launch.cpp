#include "lesseg/engine/launch.h"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <optional>
#include <thread>

#include "lesseg/core/error.h"

namespace lesseg {

namespace {

volatile std::sig_atomic_t g_forward_signal = 0;

extern "C" void remember_signal(int signal) { g_forward_signal = signal; }

struct Worker {
  int rank = 0;
  pid_t pid = -1;
  bool running = false;
};

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "stopped";
}

int exit_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return static_cast<int>(ExitCode::internal);
}

[[noreturn]] void exec_worker(const LaunchOptions& o, int local_rank, pid_t launcher) {
  // The worker's own process group: a terminal's Ctrl-C reaches the launcher only, which forwards
  // it once. If the launcher dies, the worker gets SIGTERM (it saves and stops).
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != launcher) ::_exit(static_cast<int>(ExitCode::internal));
  const int rank = o.node_rank * o.nproc + local_rank;
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(o.nnodes * o.nproc).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(local_rank).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
  ::setenv("GROUP_RANK", std::to_string(o.node_rank).c_str(), 1);
  ::setenv("MASTER_ADDR", o.master_addr.c_str(), 1);
  ::setenv("MASTER_PORT", std::to_string(o.master_port).c_str(), 1);
  std::vector<char*> argv;
  for (const auto& arg : o.command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  const std::string message = "lesseg launch: cannot run '" + o.command[0] + "': " + std::strerror(errno) + "\n";
  (void)!::write(STDERR_FILENO, message.data(), message.size());
  ::_exit(127);
}

}  // namespace

LaunchResult launch_workers(const LaunchOptions& o) {
  if (o.command.empty()) throw_usage("lesseg launch: no worker command (put it after --)");
  if (o.nproc < 1 || o.nnodes < 1 || o.node_rank < 0 || o.node_rank >= o.nnodes)
    throw_usage("lesseg launch: need --nproc >= 1, --nnodes >= 1 and 0 <= --node-rank < --nnodes");
  if (o.master_port < 1 || o.master_port > 65535) throw_usage("lesseg launch: --master-port must be in [1, 65535]");
  if (o.grace_s < 0) throw_usage("lesseg launch: --grace must be >= 0");

  struct sigaction action {};
  action.sa_handler = remember_signal;
  sigemptyset(&action.sa_mask);
  struct sigaction old_term {}, old_int {};
  ::sigaction(SIGTERM, &action, &old_term);
  ::sigaction(SIGINT, &action, &old_int);

  const pid_t launcher = ::getpid();
  std::vector<Worker> workers(o.nproc);
  for (int local = 0; local < o.nproc; ++local) {
    workers[local].rank = o.node_rank * o.nproc + local;
    pid_t pid = ::fork();
    if (pid < 0) {
      for (auto& w : workers)
        if (w.running) ::kill(w.pid, SIGKILL);
      throw Error(ExitCode::internal, std::string("lesseg launch: fork failed: ") + std::strerror(errno));
    }
    if (pid == 0) exec_worker(o, local, launcher);
    workers[local].pid = pid;
    workers[local].running = true;
  }

  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> kill_at;
  LaunchResult result;
  bool failed = false, killed = false;
  int running = o.nproc;
  while (running > 0) {
    if (int sig = g_forward_signal) {
      g_forward_signal = 0;
      for (auto& w : workers)
        if (w.running) ::kill(w.pid, sig);
    }
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno != EINTR) break;  // no children left
    if (pid > 0) {
      for (auto& w : workers) {
        if (w.pid != pid || !w.running) continue;
        w.running = false;
        --running;
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok && !failed) {
          failed = true;
          result = {exit_status(status), w.rank, describe(status)};
          std::cerr << "lesseg launch: worker rank " << w.rank << " (pid " << pid << ") " << describe(status)
                    << "; waiting up to " << o.grace_s << " s for the other workers to exit" << std::endl;
          kill_at = Clock::now() + std::chrono::seconds(o.grace_s);
        } else if (!ok) {
          std::cerr << "lesseg launch: worker rank " << w.rank << " (pid " << pid << ") " << describe(status) << std::endl;
        }
      }
      continue;
    }
    if (kill_at && !killed && Clock::now() >= *kill_at) {
      killed = true;
      for (auto& w : workers) {
        if (!w.running) continue;
        std::cerr << "lesseg launch: killing worker rank " << w.rank << " (pid " << w.pid << "), still running "
                  << o.grace_s << " s after the failure" << std::endl;
        ::kill(w.pid, SIGKILL);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::sigaction(SIGTERM, &old_term, nullptr);
  ::sigaction(SIGINT, &old_int, nullptr);
  return result;
}

}  // namespace lesseg
