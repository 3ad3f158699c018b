#pragma once
// Two domains in one run (unsupervised domain adaptation, spec uda.md): a labeled source (a
// renderer's images: GTA5, SYNTHIA, the synthetic world's source domain) and an unlabeled target
// (the real images a model is for). uda.source.* and uda.target.* each name a dataset (any
// data.format) and which of its images to take; data.* keeps the augmentation settings for both.
// The source's classes are mapped onto the target's; the target's labels are read only to score.
#include <filesystem>
#include <string>
#include <vector>

#include "lesseg/data/dataset.h"
#include "lesseg/data/train_splits.h"

namespace lesseg {

class Config;

// uda.source.format is set.
bool is_two_domain(const Config& config);

// labeled = the source images (minus data.holdout, which selects checkpoints without target labels)
// with classes mapped onto the target's; unlabeled = the target's adaptation images, labels
// withheld; reported = the target's evaluation images. With uda.oracle the target's adaptation
// images are the labeled ones instead (the target-trained ceiling). With write_lists,
// RUN/{holdout,adaptation,reported}.txt name the images.
TrainSplits open_domain_splits(const Config& config, const std::filesystem::path& run_dir, bool write_lists);

// The target's evaluation images (what `lesseg eval RUN` and reports score).
SegDatasetPtr open_target_eval(const Config& config);

// Source class index -> target class index (ignore_index where a source class has no target one),
// a 256-entry table. `map_file` "": classes with the same name map onto each other; otherwise a YAML
// map {source class: target class} by name or index, classes it leaves out are ignored.
std::vector<uint8_t> class_map_table(const ClassInfo& source, const ClassInfo& target, const std::string& map_file);

// Another dataset's samples with their labels passed through a class map table and the target's
// classes reported.
class ClassMappedDataset : public SegDataset {
 public:
  ClassMappedDataset(SegDatasetPtr base, std::vector<uint8_t> table, ClassInfo classes)
      : base_(std::move(base)), table_(std::move(table)), classes_(std::move(classes)) {}
  size_t size() const override { return base_->size(); }
  SegSample get(size_t index) const override;
  const ClassInfo& classes() const override { return classes_; }
  std::string sample_id(size_t index) const override { return base_->sample_id(index); }

 private:
  SegDatasetPtr base_;
  std::vector<uint8_t> table_;
  ClassInfo classes_;
};

}  // namespace lesseg
