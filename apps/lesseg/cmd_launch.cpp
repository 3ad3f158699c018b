#include <filesystem>

#include "commands.h"
#include "lesseg/core/error.h"
#include "lesseg/engine/launch.h"

namespace lesseg::cli {

void register_launch(CLI::App& app) {
  auto* cmd = app.add_subcommand("launch", "Run a distributed training on this machine: lesseg launch --nproc 2 -- lesseg train CONFIG");
  auto options = std::make_shared<LaunchOptions>();
  cmd->add_option("--nproc", options->nproc, "Workers (ranks) on this machine")->required();
  cmd->add_option("--nnodes", options->nnodes, "Machines in the run (default 1)");
  cmd->add_option("--node-rank", options->node_rank, "This machine's index in [0, nnodes) (default 0)");
  cmd->add_option("--master-addr", options->master_addr,
                  "Address of rank 0's machine; its rendezvous store listens there only (default 127.0.0.1)");
  cmd->add_option("--master-port", options->master_port, "Port of the rendezvous store (default 29500)");
  cmd->add_option("--grace", options->grace_s, "Seconds the other workers get to exit after one fails (default 60)");
  cmd->add_option("command", options->command, "The worker command, after --")->required();
  cmd->callback([options] {
    LaunchOptions o = *options;
    // `lesseg` as the command means this very executable.
    std::error_code ec;
    if (o.command.front() == "lesseg") {
      auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
      if (!ec) o.command.front() = self.string();
    }
    LaunchResult result = launch_workers(o);
    if (result.exit_code != 0)
      throw Error(static_cast<ExitCode>(result.exit_code),
                  "lesseg launch: worker rank " + std::to_string(result.failed_rank) + " " + result.how);
  });
}

}  // namespace lesseg::cli
