#pragma once
// The one table of training methods `lesseg train --method NAME` runs (self-supervised pretraining
// has its own: lesseg pretrain). A method is a function that composes a TrainTask and the engine.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lesseg {

class Config;

struct TrainResult {
  nlohmann::json metrics;           // last validation evaluation
  std::filesystem::path weights;    // run_dir/model.safetensors
  std::filesystem::path checkpoint; // run_dir/checkpoints
};

struct TrainMethod {
  std::string name;
  std::string summary;
  std::function<TrainResult(const Config&, const std::filesystem::path&)> train;
};

const std::vector<TrainMethod>& train_methods();
// A usage error naming the known methods when `name` is not one of them.
const TrainMethod& find_train_method(const std::string& name);

}  // namespace lesseg
