#pragma once
// `lesseg launch`: starts the local workers of a distributed run, torchrun style. Each worker is
// the given command with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR
// and MASTER_PORT in its environment. SIGTERM / SIGINT sent to the launcher are forwarded to the
// workers. When a worker fails (non-zero exit or a signal), the others get `grace_s` seconds to
// exit (they notice on their own, see distributed.h) and are then killed.
#include <string>
#include <vector>

namespace lesseg {

struct LaunchOptions {
  int nproc = 1;                         // workers on this machine
  int nnodes = 1, node_rank = 0;         // machines; this machine's ranks are node_rank * nproc + local
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int grace_s = 60;                      // after a failure, seconds before the remaining workers are killed
  std::vector<std::string> command;      // argv of one worker
};

struct LaunchResult {
  int exit_code = 0;     // 0, or the first failed worker's status (128 + signal if it was killed)
  int failed_rank = -1;  // the first worker that failed
  std::string how;       // e.g. "was killed by signal 9 (Killed)"
};

// Runs the workers to completion, printing each failure as it happens.
LaunchResult launch_workers(const LaunchOptions& options);

}  // namespace lesseg
