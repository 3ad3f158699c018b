#pragma once
// Maps the data.* and train.batch_size keys to the training loader's options, shared by methods.
#include "lesseg/data/loader.h"

namespace lesseg {

class Config;

// train.batch_size is the global batch: with world_size > 1 each rank draws its slice of it (a
// usage error when it does not divide). Augmentation from data.*; views are left to the method.
LoaderOptions train_loader_options(const Config& config, int rank = 0, int world_size = 1);

// A config key holding three numbers (data.mean, data.std).
std::array<double, 3> config_triple(const Config& config, const std::string& key);

}  // namespace lesseg
