#pragma once
// CutLER's copy-paste augmentation (facebookresearch/CutLER cutler/engine/train_loop.py), on a batch
// after the loader's geometry: image b receives objects of image B-1-b (the reversed batch).
#include <random>
#include <vector>

#include <ATen/core/Tensor.h>

namespace lesseg {

struct CopyPasteOptions {
  double probability = 1.0;  // per image
  double scale_min = 0.3, scale_max = 1.0;  // the source image is resized by one ratio in this range
};

// images [B, 3, H, W] (any normalization: compositing commutes with it), instances[b] [N_b, H, W]
// uint8 0/1. Per image, with `probability`: 1 object if the source has one, else a uniform number in
// [1, n - 1] drawn without replacement; the whole source image and those masks are resized by the
// ratio (bilinear, a mask keeps every pixel > 0) and placed at a uniform offset. A pasted object
// that covers >= 50 % of an existing one is dropped; existing masks lose the pasted pixels and
// vanish when empty. Returns the number of objects pasted.
int64_t copy_paste(at::Tensor& images, std::vector<at::Tensor>& instances, const CopyPasteOptions& options,
                   std::mt19937_64& rng);

}  // namespace lesseg
