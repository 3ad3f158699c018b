#pragma once
// Semi-supervised semantic segmentation (specs/semi.md): a few labeled images (data.labeled), the
// rest of the training split unlabeled. Every method shares methods/semi/semi_task.h.
#include <filesystem>

#include "lesseg/methods/train.h"

namespace lesseg {

// Cross Pseudo Supervision (Chen et al. 2021): two segmenters (model.* and cps.arch_b /
// cps.backbone_b), each trained on the other's hard pseudo-labels; cps.cutmix for the CutMix
// variant. Saves model.safetensors (branch a) and model_b.safetensors.
TrainResult train_cps(const Config& config, const std::filesystem::path& run_dir);

// UniMatch (Yang et al. 2023): weak-to-strong consistency with two strong views and feature
// perturbation, one segmenter (model.*).
TrainResult train_unimatch(const Config& config, const std::filesystem::path& run_dir);

// IGL-DT (Tran, Nguyen et al. 2025): stage 1 trains the global (model.*, SwinUnet) and local
// (cps.arch_b, ResUnet) teachers with CPS into RUN/stage1 (or loads igldt.teachers); stage 2 trains
// the student (igldt.student_*) from the fused teachers plus the global, local and discrepancy terms.
TrainResult train_igldt(const Config& config, const std::filesystem::path& run_dir);

}  // namespace lesseg
