#pragma once
// The semantic-segmentation dataset interface every format and method shares.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "lesseg/data/classes.h"

namespace lesseg {

struct SegSample {
  cv::Mat image;   // CV_8UC3, RGB
  cv::Mat mask;    // CV_8U class indices, ignore_index where unlabeled; empty for unlabeled images
  std::string id;  // stable name (file stem or generated id), used for outputs
  // Instance datasets only: one CV_8U 0/1 mask per object, the image's size; the transforms move
  // them with the image (nearest, padded with 0), and the loader batches them (Batch::instances).
  std::vector<cv::Mat> instances;
};

class SegDataset {
 public:
  virtual ~SegDataset() = default;
  virtual size_t size() const = 0;
  // Thread-safe; throws Error(bad_input) naming the offending file.
  virtual SegSample get(size_t index) const = 0;
  virtual const ClassInfo& classes() const = 0;
  // get(index).id without reading the files where the format knows it (labeled lists, splits).
  virtual std::string sample_id(size_t index) const { return get(index).id; }
};
using SegDatasetPtr = std::shared_ptr<const SegDataset>;

// Turns a raw label map (as read by read_label_raw) into CV_8U class indices.
using LabelMapper = std::function<cv::Mat(const cv::Mat& raw, const std::filesystem::path& file)>;

struct SegItem {
  std::filesystem::path image;
  std::filesystem::path mask;  // empty: unlabeled
};

// Image/mask file pairs + a label mapper. Checks every sample: mask size equals image size, one
// channel after mapping, each value < num_classes or == ignore_index (error names value and pixel).
class FileSegDataset : public SegDataset {
 public:
  FileSegDataset(std::vector<SegItem> items, ClassInfo classes, LabelMapper mapper);
  size_t size() const override { return items_.size(); }
  SegSample get(size_t index) const override;
  const ClassInfo& classes() const override { return classes_; }
  std::string sample_id(size_t index) const override { return items_.at(index).image.stem().string(); }
  const SegItem& item(size_t index) const { return items_.at(index); }

 private:
  std::vector<SegItem> items_;
  ClassInfo classes_;
  LabelMapper mapper_;
};

// Keeps a subset of another dataset's indices (labeled fractions, splits).
class SubsetDataset : public SegDataset {
 public:
  SubsetDataset(SegDatasetPtr base, std::vector<size_t> indices);
  size_t size() const override { return indices_.size(); }
  SegSample get(size_t index) const override { return base_->get(indices_.at(index)); }
  const ClassInfo& classes() const override { return base_->classes(); }
  std::string sample_id(size_t index) const override { return base_->sample_id(indices_.at(index)); }
  // The base dataset's indices kept, in order.
  const std::vector<size_t>& indices() const { return indices_; }

 private:
  SegDatasetPtr base_;
  std::vector<size_t> indices_;
};

// A seeded subset: the first max(1, round(size * fraction)) indices of a permutation drawn with
// std::mt19937_64(seed), kept in base order. fraction must be in (0, 1].
SegDatasetPtr labeled_fraction(SegDatasetPtr base, double fraction, uint64_t seed);

// 0..n-1 in an order drawn with std::mt19937_64(seed) by Fisher-Yates on the raw engine output (the
// same on every toolchain).
std::vector<size_t> seeded_permutation(size_t n, uint64_t seed);

// Semi-supervised splits of one training set: `labeled` is labeled_fraction's subset, `unlabeled`
// the rest with its labels withheld (UnlabeledDataset); both keep base order. Empty `unlabeled`
// (a null pointer) when the fraction keeps every image.
struct LabeledSplit {
  std::shared_ptr<const SubsetDataset> labeled;
  SegDatasetPtr unlabeled;
};
LabeledSplit split_labeled(SegDatasetPtr base, double fraction, uint64_t seed);
// The same with a count: the first `count` (1..size) indices of the seeded permutation.
LabeledSplit split_labeled_count(SegDatasetPtr base, size_t count, uint64_t seed);
// The same with the labeled images named: the samples whose sample_id is in `ids`; a usage error
// names the first id that is not in the dataset.
LabeledSplit split_labeled_ids(SegDatasetPtr base, const std::vector<std::string>& ids);

// The images of another dataset with their labels withheld: each sample's mask is all 0 (class 0 =
// "a real pixel"), so that after a crop the padding is ignore_index and a method can tell real
// pixels from padding (UniMatch's ignore mask) without seeing any label. Instances are dropped too.
class UnlabeledDataset : public SegDataset {
 public:
  explicit UnlabeledDataset(SegDatasetPtr base) : base_(std::move(base)) {}
  size_t size() const override { return base_->size(); }
  SegSample get(size_t index) const override;
  const ClassInfo& classes() const override { return base_->classes(); }
  std::string sample_id(size_t index) const override { return base_->sample_id(index); }

 private:
  SegDatasetPtr base_;
};

// Label mappers.
LabelMapper identity_mapper();  // single-channel 8-bit indices, used as they are
// 256-entry lookup table (values absent from the table map to 255).
LabelMapper lut_mapper(std::vector<uint8_t> lut);
// Checks a mapped mask against its image and classes; throws bad_input naming file, value, pixel.
void validate_mask(const cv::Mat& mask, const cv::Mat& image, const ClassInfo& classes,
                   const std::filesystem::path& mask_file);

// Reads "a b" pairs (or single paths) per line from a split list, relative to `root`.
std::vector<SegItem> read_split_list(const std::filesystem::path& list_file, const std::filesystem::path& root);

}  // namespace lesseg
