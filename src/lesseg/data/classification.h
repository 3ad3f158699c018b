#pragma once
// A labelled image-classification set for feature probes (kNN, linear probe). Two layouts:
//  - a folder with labels.txt: one "relative/path.png label" per line (what `lesseg synth` writes
//    under crops/); labels are integers in [0, 65535];
//  - ImageFolder: one subfolder per class; sorted folder names give labels 0, 1, ...
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace lesseg {

struct LabeledImage {
  std::filesystem::path image;
  int64_t label = 0;
};

struct ClassificationSet {
  std::vector<LabeledImage> items;
  std::vector<std::string> class_names;  // ImageFolder: folder names; labels.txt: "0" .. max label
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
};

// Reads either layout (labels.txt wins when present). Throws Error(bad_input) naming the file (and
// line) for a missing folder or image, a malformed line, a non-integer label or an empty set.
ClassificationSet read_classification_set(const std::filesystem::path& root);

struct ClassificationSplit {
  ClassificationSet train, test;
};

// Seeded stratified split: per class, a std::mt19937_64(seed) shuffle; the first
// round(n * train_fraction) images (at least 1, and at most n - 1 when n >= 2) go to train, the
// rest to test; base order is kept inside each part. train_fraction must be in (0, 1).
ClassificationSplit split_classification_set(const ClassificationSet& set, double train_fraction, uint64_t seed);

}  // namespace lesseg
