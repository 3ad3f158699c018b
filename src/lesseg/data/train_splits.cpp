#include "lesseg/data/train_splits.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/core/rng.h"
#include "lesseg/data/domains.h"
#include "lesseg/data/open.h"

namespace lesseg {
// A count ("92") or a fraction of `total` ("0.125"); -1 when `text` is neither (a file name).
int64_t count_from(const std::string& text, size_t total, const std::string& key) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    return -1;
  }
  if (used != text.size()) return -1;
  if (value < 0) throw_usage(key + " must not be negative, got " + text);
  if (value < 1) return value == 0 ? 0 : std::max<int64_t>(1, std::llround(value * double(total)));
  if (value != std::floor(value)) throw_usage(key + " must be a whole count or a fraction below 1, got " + text);
  return static_cast<int64_t>(value);
}

void write_names(const std::filesystem::path& file, const SegDataset& dataset) {
  std::string text;
  for (size_t i = 0; i < dataset.size(); ++i) text += dataset.sample_id(i) + "\n";
  write_file_atomic(file, text);
}

namespace {

// `count` indices of `candidates`, drawn with `seed`, in base order.
std::vector<size_t> draw(const std::vector<size_t>& candidates, size_t count, uint64_t seed) {
  std::vector<size_t> order = seeded_permutation(candidates.size(), seed);
  std::vector<size_t> out;
  for (size_t k = 0; k < count; ++k) out.push_back(candidates[order[k]]);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<std::string> read_name_list(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw Error(ExitCode::bad_input, file.string() + ": cannot read the list of labeled images");
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string first;
    if (!(words >> first) || first[0] == '#') continue;
    names.push_back(std::filesystem::path(first).stem().string());
  }
  if (names.empty()) throw Error(ExitCode::bad_input, file.string() + ": the list names no image");
  return names;
}

TrainSplits open_train_splits(const Config& config, const std::filesystem::path& run_dir, bool write_lists) {
  if (is_two_domain(config)) return open_domain_splits(config, run_dir, write_lists);
  const auto seed = static_cast<uint64_t>(config.get<int64_t>("seed"));
  std::string labeled = config.get<std::string>("data.labeled");
  const double fraction = config.get<double>("data.labeled_fraction");
  if (!labeled.empty() && fraction != 1.0) throw_usage("set data.labeled or data.labeled_fraction, not both");
  if (labeled.empty() && fraction != 1.0) {
    if (!(fraction > 0 && fraction < 1)) throw_usage("data.labeled_fraction must be in (0, 1]");
    labeled = std::to_string(fraction);
  }
  SegDatasetPtr train = open_dataset(config, "train", /*apply_labeled_fraction=*/false);
  const size_t total = train->size();
  const int64_t count = labeled.empty() ? static_cast<int64_t>(total) : count_from(labeled, total, "data.labeled");
  if (count == 0) throw_usage("data.labeled must keep at least one image");
  std::vector<bool> named(total, false);  // a list's images are never held out
  std::vector<std::string> names;
  if (count < 0) {
    names = read_name_list(labeled);
    const LabeledSplit listed = split_labeled_ids(train, names);  // kept alive: indices() is a reference
    for (size_t i : listed.labeled->indices()) named[i] = true;
  }

  const std::string holdout_text = config.get<std::string>("data.holdout");
  const int64_t holdout = count_from(holdout_text, total, "data.holdout");
  if (holdout < 0) throw_usage("data.holdout must be a count or a fraction below 1, got '" + holdout_text + "'");
  std::vector<size_t> candidates;
  for (size_t i = 0; i < total; ++i)
    if (!named[i]) candidates.push_back(i);
  if (static_cast<size_t>(holdout) >= candidates.size())
    throw_usage("data.holdout " + holdout_text + " leaves no training image out of " + std::to_string(candidates.size()));
  std::vector<size_t> held = draw(candidates, static_cast<size_t>(holdout), mix_seed({seed, 0x401d}));
  std::vector<bool> is_held(total, false);
  for (size_t i : held) is_held[i] = true;
  std::vector<size_t> kept;
  for (size_t i = 0; i < total; ++i)
    if (!is_held[i]) kept.push_back(i);

  TrainSplits splits;
  splits.reported = open_dataset(config, "val");
  if (!held.empty()) splits.selection = std::make_shared<SubsetDataset>(train, std::move(held));
  SegDatasetPtr rest = std::make_shared<SubsetDataset>(train, std::move(kept));
  LabeledSplit split;
  if (labeled.empty()) {
    std::vector<size_t> all(rest->size());
    std::iota(all.begin(), all.end(), size_t(0));
    split.labeled = std::make_shared<SubsetDataset>(rest, std::move(all));
  } else if (count < 0) {
    split = split_labeled_ids(rest, names);
  } else {
    split = split_labeled_count(rest, std::min<size_t>(static_cast<size_t>(count), rest->size()), seed);
  }
  splits.labeled = split.labeled;
  splits.unlabeled = split.unlabeled;
  const std::string unlabeled_split = config.get<std::string>("data.unlabeled_split");
  if (!unlabeled_split.empty()) {
    if (config.get<std::string>("data.format") == "synth") throw_usage("data.unlabeled_split needs a file dataset");
    // Another split may hold the same images (VOC train_aug holds train): the labeled and held-out
    // ones are dropped from it, as UniMatch's unlabeled lists leave out the labeled ones.
    SegDatasetPtr other = open_dataset_by_format(config.get<std::string>("data.format"),
                                                 config.get<std::string>("data.root"), unlabeled_split);
    std::unordered_set<std::string> taken;
    for (const SegDatasetPtr& part : {SegDatasetPtr(splits.labeled), splits.selection})
      for (size_t i = 0; part && i < part->size(); ++i) taken.insert(part->sample_id(i));
    std::vector<size_t> rest_of_other;
    for (size_t i = 0; i < other->size(); ++i)
      if (!taken.count(other->sample_id(i))) rest_of_other.push_back(i);
    if (rest_of_other.empty()) throw_usage("data.unlabeled_split '" + unlabeled_split + "' holds no image that is not labeled or held out");
    splits.unlabeled = std::make_shared<UnlabeledDataset>(std::make_shared<SubsetDataset>(other, std::move(rest_of_other)));
  }
  spdlog::info("data: {} labeled, {} unlabeled, {} held out for checkpoint selection, {} reported ({})",
               splits.labeled->size(), splits.unlabeled ? splits.unlabeled->size() : 0,
               splits.selection ? splits.selection->size() : 0, splits.reported->size(),
               config.get<std::string>("data.val_split"));
  if (write_lists) {
    std::filesystem::create_directories(run_dir);
    if (splits.unlabeled) write_names(run_dir / "labeled.txt", *splits.labeled);
    if (splits.selection) write_names(run_dir / "holdout.txt", *splits.selection);
  }
  return splits;
}

}  // namespace lesseg
