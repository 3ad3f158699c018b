#pragma once
// CutLER (Wang et al., CVPR 2023) on lesseg's pieces: a class-agnostic SOLOv2 trained on
// pseudo-masks (instances.train_json, e.g. from `lesseg pseudo`) with DropLoss and copy-paste,
// scored by class-agnostic COCO mask AP on instances.val_json. Spec: ../shared/specs/maskcut.md.
#include <filesystem>

#include "lesseg/methods/train.h"

namespace lesseg {

TrainResult train_cutler(const Config& config, const std::filesystem::path& run_dir);

}  // namespace lesseg
