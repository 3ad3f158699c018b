#include <iostream>

#include <torch/torch.h>

#include "commands.h"
#include "lesseg/report/report.h"

namespace lesseg::cli {

void register_report(CLI::App& app) {
  auto* cmd = app.add_subcommand("report", "Write a self-contained report.html for a run folder: curves, IoU table, "
                                           "confusion matrix, prediction overlays, config");
  struct Args {
    std::string run_dir, out, device = "cpu";
    int images = 8, threads = 0;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("run_dir", args->run_dir, "A run folder (config.yaml, metrics.jsonl, model.safetensors; or backbone.safetensors from pretrain)")->required();
  cmd->add_option("--out", args->out, "Output file (default RUN_DIR/report.html)");
  cmd->add_option("--images", args->images, "Validation images in the overlay grid (default 8)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--device", args->device, "cpu or cuda");
  cmd->add_option("--threads", args->threads, "Intra-op threads (0 = all usable cores)");
  cmd->callback([args] {
    apply_threads(args->threads);
    ReportOptions options;
    options.out = args->out;
    options.images = args->images;
    options.device = torch::Device(args->device);
    std::cout << "report: " << write_report(args->run_dir, options).string() << "\n";
  });
}

}  // namespace lesseg::cli
