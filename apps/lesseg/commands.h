#pragma once
// The subcommand table: each register_* adds one subcommand and its handler to the app.
#include <CLI/CLI.hpp>

namespace lesseg::cli {

void register_doctor(CLI::App& app);
void register_synth(CLI::App& app);
void register_train(CLI::App& app);
void register_selftrain(CLI::App& app);
void register_pretrain(CLI::App& app);
void register_eval(CLI::App& app);
void register_predict(CLI::App& app);
void register_import(CLI::App& app);
void register_info(CLI::App& app);
void register_report(CLI::App& app);
void register_launch(CLI::App& app);
void register_probe(CLI::App& app);
void register_pseudo(CLI::App& app);
void register_stylize(CLI::App& app);

// Sets intra-op threads (0 = all usable cores) and returns the count in use.
int apply_threads(int requested);

}  // namespace lesseg::cli
