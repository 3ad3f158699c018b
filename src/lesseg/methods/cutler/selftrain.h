#pragma once
// CutLER's self-training (its README "Self-training", tools/get_self_training_ann.py): after the
// first training on pseudo-masks, each round predicts on the training images, keeps confident
// predictions, adds back earlier pseudo-masks they do not cover, and retrains without DropLoss from
// the previous round's model.
#include <filesystem>
#include <vector>

#include "lesseg/io/coco.h"
#include "lesseg/methods/train.h"

namespace lesseg {

struct SelfTrainMerge {
  double threshold = 0.7;     // prediction score kept (CutLER: 0.7 in round 1, 0.65 in round 2)
  double keep_old_iou = 0.5;  // an earlier mask stays when its max IoU with every kept prediction is below this
};

// Per image of `previous` (matched to `predicted` by file_name): the predictions scoring >=
// threshold, then the earlier masks whose max mask IoU with them is < keep_old_iou; an image
// without a kept prediction keeps all its earlier masks. Images and categories are `previous`'s;
// annotations are renumbered, predictions keep their score.
coco::Dataset merge_self_training(const coco::Dataset& previous, const coco::Dataset& predicted,
                                  const SelfTrainMerge& options);

struct SelfTrainResult {
  std::vector<TrainResult> rounds;                   // round 0 = training on the pseudo-masks
  std::vector<std::filesystem::path> annotations;    // the training JSON of each round
};

// Round 0 (cutler, as configured) in run_dir/round0, then selftrain.rounds rounds in
// run_dir/round<r>: <r>/pseudo_train.json and <r>/model.safetensors. Finished rounds are reused
// and an interrupted one resumes, so the command can be run again after a stop.
SelfTrainResult self_train(const Config& config, const std::filesystem::path& run_dir);

}  // namespace lesseg
