#pragma once
// Supervised semantic segmentation: the baseline every method is compared against.
#include <filesystem>

#include <nlohmann/json.hpp>

namespace lesseg {

class Config;

struct TrainResult {
  nlohmann::json metrics;           // last validation evaluation
  std::filesystem::path weights;    // run_dir/model.safetensors
  std::filesystem::path checkpoint; // run_dir/checkpoints
};

TrainResult train_supervised(const Config& config, const std::filesystem::path& run_dir);

}  // namespace lesseg
