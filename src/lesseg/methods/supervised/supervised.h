#pragma once
// Supervised semantic segmentation: the baseline every method is compared against.
#include <filesystem>

#include "lesseg/methods/train.h"

namespace lesseg {

TrainResult train_supervised(const Config& config, const std::filesystem::path& run_dir);

}  // namespace lesseg
