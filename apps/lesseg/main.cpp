// lesseg command line: a table of subcommands, each a thin client of the library.
#include <iostream>

#include <spdlog/spdlog.h>

#include "commands.h"
#include "lesseg/core/error.h"
#include "lesseg/core/threads.h"

namespace lesseg::cli {
int apply_threads(int requested) { return configure_threads(requested); }
}  // namespace lesseg::cli

int main(int argc, char** argv) {
  CLI::App app{"lesseg: image segmentation when labels are scarce or absent"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lesseg 0.1.0");
  lesseg::cli::register_doctor(app);
  lesseg::cli::register_synth(app);
  lesseg::cli::register_train(app);
  lesseg::cli::register_selftrain(app);
  lesseg::cli::register_pretrain(app);
  lesseg::cli::register_eval(app);
  lesseg::cli::register_predict(app);
  lesseg::cli::register_import(app);
  lesseg::cli::register_info(app);
  lesseg::cli::register_report(app);
  lesseg::cli::register_launch(app);
  lesseg::cli::register_probe(app);
  lesseg::cli::register_pseudo(app);
  lesseg::cli::register_stylize(app);
  spdlog::set_pattern("[%H:%M:%S] %v");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : static_cast<int>(lesseg::ExitCode::usage);
  } catch (const lesseg::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return static_cast<int>(lesseg::ExitCode::internal);
  }
  return 0;
}
