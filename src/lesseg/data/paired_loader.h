#pragma once
// Semi-supervised batches: each step draws a labeled and an unlabeled batch. The unlabeled images
// set the epoch and the labeled list is repeated to its length (UniMatch); one position is saved,
// the unlabeled loader's, and the labeled loader's follows from the number of steps.
#include <memory>

#include "lesseg/data/loader.h"

namespace lesseg {

class PairedLoader {
 public:
  // The two option sets differ in batch size, seed and strong views; both must repeat and drop
  // the last partial batch (so that every step draws the same counts).
  PairedLoader(SegDatasetPtr labeled, LoaderOptions labeled_options, SegDatasetPtr unlabeled,
               LoaderOptions unlabeled_options, SamplerState start = {});
  void next(Batch& labeled, Batch& unlabeled);
  SamplerState state() const { return unlabeled_->state(); }
  int64_t skipped() const { return labeled_->skipped() + unlabeled_->skipped(); }

 private:
  std::unique_ptr<Loader> labeled_, unlabeled_;
};

}  // namespace lesseg
