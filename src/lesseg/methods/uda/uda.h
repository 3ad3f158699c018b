#pragma once
// Unsupervised domain adaptation (specs/uda.md): a labeled source and an unlabeled target in one
// run (uda.source / uda.target, data/domains.h); the segmenter is scored on the target. The
// source-only baseline is `--method supervised` on the same config.
#include <filesystem>

#include "lesseg/methods/train.h"

namespace lesseg {

// Refused (exit 2) unless uda.source.format is set and uda.oracle is off.
void require_two_domains(const Config& config, const std::string& method);

// DACS: ClassMix self-training with an EMA teacher (methods/uda/dacs_task.h). Saves the student as
// model.safetensors.
TrainResult train_dacs(const Config& config, const std::filesystem::path& run_dir);

// CSA (CONFETI): DACS plus a stylized source (csa.stylizer: fda or adain; CUT to come), a CAM head,
// CAM-weighted class prototypes of the teacher and a pixel-to-prototype contrast; csa.* switches
// each part off for the ablations. Saves the student as model.safetensors (the heads stay in the
// checkpoints: a deployed segmenter does not need them).
TrainResult train_csa(const Config& config, const std::filesystem::path& run_dir);

}  // namespace lesseg
