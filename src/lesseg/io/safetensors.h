#pragma once
// safetensors: lesseg's format for weights and checkpoint tensors (../shared/specs/formats.md).
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace lesseg {

struct TensorFile {
  std::vector<std::pair<std::string, at::Tensor>> tensors;  // file order
  std::map<std::string, std::string> metadata;
};

// Writes CPU copies of the tensors atomically (temp file, fsync, rename).
void save_safetensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// Serializes to bytes (used by save_safetensors and by checkpoints that hash before writing).
std::string safetensors_bytes(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata);
// Parses and validates; every violation throws Error(bad_weights) naming the file and the reason.
TensorFile load_safetensors(const std::filesystem::path& path);
TensorFile parse_safetensors(const std::string& bytes, const std::filesystem::path& origin);

}  // namespace lesseg
