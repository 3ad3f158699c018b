#include "lesseg/data/loader_config.h"

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/data/open.h"

namespace lesseg {

std::array<double, 3> config_triple(const Config& config, const std::string& key) {
  auto v = config.get<std::vector<double>>(key);
  if (v.size() != 3) throw_usage("config key '" + key + "' must have 3 values");
  return {v[0], v[1], v[2]};
}

LoaderOptions train_loader_options(const Config& config, int rank, int world_size) {
  LoaderOptions o;
  o.batch_size = config.get<int>("train.batch_size");
  o.workers = config.get<int>("data.workers");
  o.prefetch = config.get<int>("data.prefetch");
  o.seed = static_cast<uint64_t>(config.get<int64_t>("seed"));
  o.augment = train_augment_from(config);
  o.mean = config_triple(config, "data.mean");
  o.std = config_triple(config, "data.std");
  o.skip_bad_images = config.get<bool>("data.skip_bad_images");
  if (o.batch_size <= 0) throw_usage("train.batch_size must be positive");
  if (world_size > 1) {
    if (o.batch_size % world_size != 0)
      throw_usage("train.batch_size " + std::to_string(o.batch_size) + " (the global batch) is not divisible by the world size " +
                  std::to_string(world_size));
    o.batch_size /= world_size;
    o.rank = rank;
    o.world_size = world_size;
  }
  return o;
}

}  // namespace lesseg
