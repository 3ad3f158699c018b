#pragma once
// Loading weights by name from a user's file (.safetensors or .pth): find the state dict inside a
// checkpoint, strip wrapper prefixes (`module.`, `backbone.`, `model.` ...), and report matched /
// missing / unexpected / shape-mismatched keys. A load that leaves model tensors unset is refused
// unless allow_partial.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

namespace lesseg {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

struct WeightOptions {
  std::string key;             // sub-dict to take, e.g. "teacher", "student", "model" (empty: automatic)
  bool allow_partial = false;  // accept missing or shape-mismatched keys (they keep their init)
};

struct WeightReport {
  std::string prefix;  // the prefix stripped from the file's names (after the key)
  std::vector<std::string> matched, missing, unexpected, mismatched;
  size_t ignored = 0;    // file tensors outside the selected prefix (other sub-dicts, optimizer state)
  size_t defaulted = 0;  // absent BatchNorm num_batches_tracked counters (older files), kept at init
  bool complete() const { return missing.empty() && mismatched.empty(); }
  std::string summary(size_t list_at_most = 10) const;
};

// Reads .safetensors or .pth (zip or legacy), decided by the file's content.
NamedTensors read_weight_file(const std::filesystem::path& path);

// A .safetensors file's metadata (its header only is read); empty for .pth files.
std::map<std::string, std::string> weight_file_metadata(const std::filesystem::path& path);

// Which file tensors map onto which model names; renamed[i] = {model name, file tensor}.
WeightReport match_weights(const NamedTensors& model, const NamedTensors& file, const WeightOptions& options,
                           const std::filesystem::path& origin, NamedTensors* renamed = nullptr);

// Copies matching tensors into the module; throws bad_weights with the report when incomplete
// and not allow_partial. Returns the report for printing.
WeightReport load_weights(torch::nn::Module& module, const NamedTensors& file, const WeightOptions& options,
                          const std::filesystem::path& origin);
WeightReport load_weights(torch::nn::Module& module, const std::filesystem::path& path, const WeightOptions& options);

// Loads into whichever of `targets` the file fits best (most matched names): a whole segmenter
// saved by lesseg, or pretrained backbone weights into its backbone (the decoder keeps its init).
WeightReport load_weights_best_fit(const std::vector<torch::nn::Module*>& targets, const std::filesystem::path& path,
                                   const WeightOptions& options);

class Config;

// model.weights_key and model.allow_partial of a config.
WeightOptions weight_options_from(const Config& config);
// Loads model.weights, when set, into the best-fitting of `targets` (as load_weights_best_fit) and
// logs what matched: the start every training method shares.
void load_config_weights(const Config& config, const std::vector<torch::nn::Module*>& targets);

}  // namespace lesseg
