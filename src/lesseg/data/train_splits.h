#pragma once
// The training data of a run with scarce labels: which training images are labeled (data.labeled:
// a count, a fraction or a list of names), which are only seen without their labels, and which are
// held out (data.holdout) to choose the checkpoint on, never on the split that is reported.
#include <filesystem>
#include <string>
#include <vector>

#include "lesseg/data/dataset.h"

namespace lesseg {

class Config;

struct TrainSplits {
  SegDatasetPtr labeled;    // with labels
  SegDatasetPtr unlabeled;  // labels withheld (UnlabeledDataset); null when every image is labeled
  SegDatasetPtr selection;  // the held-out images evaluated during training; null: data.holdout 0
  SegDatasetPtr reported;   // data.val_split, evaluated once at the end
};

// data.labeled: "" (data.labeled_fraction), a count ("92"), a fraction ("0.125", of the training
// split), or a list file (one name per line; a line's first word, path and extension dropped:
// UniMatch's labeled.txt and lesseg's own lists both read). The held-out images are drawn first
// (seeded by `seed`), out of the images a list does not name; the labeled ones from the rest, with
// `seed`; data.unlabeled_split, when set, replaces the rest as the unlabeled images. With
// write_lists, RUN/labeled.txt and RUN/holdout.txt name the images, so a split can be read back.
TrainSplits open_train_splits(const Config& config, const std::filesystem::path& run_dir, bool write_lists);

// A count ("92") or a fraction of `total` ("0.125", at least 1 unless 0); -1 when `text` is neither
// (a file name); a usage error naming `key` for a negative or fractional count.
int64_t count_from(const std::string& text, size_t total, const std::string& key);

// Writes the dataset's sample ids, one per line (RUN/labeled.txt, holdout.txt, ...).
void write_names(const std::filesystem::path& file, const SegDataset& dataset);

// The names in a list file (see above); bad_input naming the file when it cannot be read.
std::vector<std::string> read_name_list(const std::filesystem::path& file);

}  // namespace lesseg
