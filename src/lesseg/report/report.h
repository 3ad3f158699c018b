#pragma once
// `lesseg report RUN_DIR`: gathers a run folder's logs, config and model, evaluates the model on
// the run's validation split, predicts a few validation images and writes one self-contained
// report.html (report_html.h renders it). A self-supervised pretraining run (`lesseg pretrain`:
// backbone.safetensors, no model.safetensors) gets the log's curves, its kNN accuracy and the config.
#include <filesystem>

#include <c10/core/Device.h>

#include "lesseg/report/report_html.h"

namespace lesseg {

struct ReportOptions {
  std::filesystem::path out;          // empty: RUN_DIR/report.html
  int images = 8;                     // validation images in the overlay grid
  c10::Device device = c10::kCPU;
};

// Reads RUN_DIR/{config.yaml, metrics.jsonl, model.safetensors} (a missing or unreadable one is
// bad_input naming it), evaluates on the validation split of the run's config (eval.batch_size,
// eval.max_images as in training) and predicts its first `images` images. Without model.safetensors
// but with backbone.safetensors: a pretraining report (data.pretraining), nothing evaluated.
ReportData gather_report_data(const std::filesystem::path& run_dir, const ReportOptions& options);
// gather_report_data + render_report_html, written atomically; returns the file written.
std::filesystem::path write_report(const std::filesystem::path& run_dir, const ReportOptions& options);

}  // namespace lesseg
