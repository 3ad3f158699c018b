#pragma once
// Opens the dataset a config names (data.format, data.root, splits, labeled fraction, synth world)
// and maps the data.* augmentation keys to AugmentOptions.
#include <string>

#include "lesseg/data/dataset.h"
#include "lesseg/data/synth/synth.h"
#include "lesseg/data/transforms.h"

namespace lesseg {

class Config;

// split: "train" (data.train_split, data.labeled_fraction applied unless told not to) or "val"
// (data.val_split; in a two-domain run the target's evaluation images, data/domains.h).
SegDatasetPtr open_dataset(const Config& config, const std::string& split, bool apply_labeled_fraction = true);
// Opens any format by name, for commands that take --format/--root/--split.
SegDatasetPtr open_dataset_by_format(const std::string& format, const std::string& root, const std::string& split);
// The synthetic world's data.synth.* settings with `domain` ("source" or "target").
synth::Options synth_options_from(const Config& config, const std::string& domain);
AugmentOptions train_augment_from(const Config& config);
AugmentOptions eval_augment_from(const Config& config);

}  // namespace lesseg
