#include <iostream>

#include "commands.h"
#include "lesseg/core/doctor.h"

namespace lesseg::cli {

void register_doctor(CLI::App& app) {
  auto* cmd = app.add_subcommand("doctor", "Report versions, the BLAS in use, threads and devices");
  auto threads = std::make_shared<int>(0);
  cmd->add_option("--threads", *threads, "Intra-op threads (0 = all usable cores)");
  cmd->callback([threads] {
    apply_threads(*threads);
    std::cout << format_doctor(run_doctor());
  });
}

}  // namespace lesseg::cli
