#pragma once
// Checkpoints: one safetensors file (module + optimizer tensors) and one JSON of counters, loader
// position and the resolved config, written atomically; `latest` names the newest complete one and
// moves only after it is written; older ones are deleted only after that.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>

#include "lesseg/io/safetensors.h"

namespace lesseg {

struct Checkpoint {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  nlohmann::json state;  // {"iter", "loader": {"epoch","cursor"}, "config", "lesseg_version", ...}
};

// Writes ckpt_<iter>.{safetensors,json} into `dir`, moves `latest`, keeps the newest `keep`.
std::filesystem::path save_checkpoint(const std::filesystem::path& dir, int64_t iter, const Checkpoint& checkpoint,
                                      int keep);
// The checkpoint `latest` names, if any.
std::optional<Checkpoint> load_latest_checkpoint(const std::filesystem::path& dir);
Checkpoint load_checkpoint(const std::filesystem::path& json_file);

// Module parameters and buffers by their state-dict names.
std::vector<std::pair<std::string, at::Tensor>> module_tensors(const torch::nn::Module& module);
// Copies tensors into a module by name; throws bad_weights listing missing / unexpected /
// shape-mismatched keys unless allow_partial.
void load_module_tensors(torch::nn::Module& module, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                         const std::filesystem::path& origin, bool allow_partial = false);

}  // namespace lesseg
