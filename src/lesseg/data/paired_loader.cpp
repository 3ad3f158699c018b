#include "lesseg/data/paired_loader.h"

#include "lesseg/core/error.h"

namespace lesseg {

PairedLoader::PairedLoader(SegDatasetPtr labeled, LoaderOptions labeled_options, SegDatasetPtr unlabeled,
                           LoaderOptions unlabeled_options, SamplerState start) {
  for (const LoaderOptions* options : {&labeled_options, &unlabeled_options})
    if (!options->repeat || !options->drop_last) throw_usage("paired semi-supervised loaders must repeat and drop_last");
  unlabeled_ = std::make_unique<Loader>(std::move(unlabeled), unlabeled_options, start);
  if (unlabeled_->batches_per_epoch() == 0)
    throw_usage("fewer unlabeled images than the unlabeled batch size (" + std::to_string(unlabeled_options.batch_size) + ")");
  const int64_t steps = batches_done(start, static_cast<int64_t>(unlabeled_->batches_per_epoch()), unlabeled_options.batch_size);
  const int64_t batch = labeled_options.batch_size;
  const ShardedSampler sampler(labeled->size(), labeled_options.shuffle, labeled_options.seed, labeled_options.rank,
                               labeled_options.world_size);
  const auto per_epoch = static_cast<int64_t>(sampler.per_rank()) / batch;  // as Loader::batches_per_epoch with drop_last
  if (per_epoch == 0) throw_usage("fewer labeled images than the batch size (" + std::to_string(batch) + ")");
  labeled_ = std::make_unique<Loader>(std::move(labeled), labeled_options, state_after_batches(steps, per_epoch, batch));
}

void PairedLoader::next(Batch& labeled, Batch& unlabeled) {
  labeled_->next(labeled);
  unlabeled_->next(unlabeled);
}

}  // namespace lesseg
