#pragma once
// Checkpoints: one safetensors file (module, optimizer and RNG tensors) and one JSON manifest
// (counters, loader position, resolved config, SHA-256 of the tensor file), each written atomically;
// `latest` names the newest complete one and moves only after it is written; older ones are deleted
// only after that. Loading checks the SHA-256 before parsing.
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
  std::filesystem::path manifest;  // where it was loaded from
  std::string skipped;             // newer checkpoints that were unusable, one reason per line
};

// Removes what an interrupted save left: temp files and tensor files without a manifest.
// Call only while no save is in flight (the trainer calls it at start; every save calls it first).
void remove_leftovers(const std::filesystem::path& dir);
// Writes ckpt_<iter>.{safetensors,json} into `dir`, moves `latest`, keeps the newest `keep`.
std::filesystem::path save_checkpoint(const std::filesystem::path& dir, int64_t iter, const Checkpoint& checkpoint,
                                      int keep);
// The checkpoint `latest` names or, when that one is unusable (truncated, corrupted), the newest
// usable one, with a warning naming what was skipped. None when the folder holds no checkpoint;
// bad_weights when none is usable.
std::optional<Checkpoint> load_latest_checkpoint(const std::filesystem::path& dir);
Checkpoint load_checkpoint(const std::filesystem::path& json_file);
// Whether `dir` holds any checkpoint manifest (usable or not).
bool has_checkpoint(const std::filesystem::path& dir);

// Module parameters and buffers by their state-dict names.
std::vector<std::pair<std::string, at::Tensor>> module_tensors(const torch::nn::Module& module);
// Copies tensors into a module by name; throws bad_weights listing missing / unexpected /
// shape-mismatched keys unless allow_partial.
void load_module_tensors(torch::nn::Module& module, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                         const std::filesystem::path& origin, bool allow_partial = false);

}  // namespace lesseg
