#pragma once
// Reads a run's metrics.jsonl (engine/logging.h writes it): step records (iter, lr, loss,
// loss_<term>, images_per_s) and evaluation records (iter, split, miou, macc, pixel_acc, iou, ...).
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

namespace lesseg {

struct RunLog {
  std::vector<nlohmann::json> steps;  // records with "loss", in iteration order
  std::vector<nlohmann::json> evals;  // records with "split", in iteration order
};

// A resumed run may log an iteration twice: the later line wins. Blank lines are skipped; a line
// that is not a JSON object with an integer "iter" is bad_input naming the file and line.
RunLog read_run_log(const std::filesystem::path& metrics_jsonl);

}  // namespace lesseg
