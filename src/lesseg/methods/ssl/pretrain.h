#pragma once
// `lesseg pretrain`: self-supervised pretraining of model.backbone on a dataset's images (labels
// ignored) with SimCLR, SAMCLR, DINO or MAE. Spec: specs/ssl.md.
#include <filesystem>

#include <nlohmann/json.hpp>

namespace lesseg {

class Config;

struct PretrainResult {
  nlohmann::json metrics;          // the last feature evaluation (kNN accuracy when probe.data is set)
  std::filesystem::path backbone;  // run_dir/backbone.safetensors (DINO: the teacher's)
  int64_t fallbacks = 0;           // SAMCLR samples without a usable region (whole-image views)
  int64_t skipped = 0;             // unreadable images skipped (data.skip_bad_images)
};

// `method` is the config's `method` key: simclr | samclr | dino | mae.
PretrainResult pretrain(const Config& config, const std::filesystem::path& run_dir);

// The metadata key naming the backbone in a saved backbone file, e.g. "vit_small16".
inline constexpr const char* kBackboneMetadataKey = "lesseg.backbone";

}  // namespace lesseg
