#include "lesseg/data/domains.h"

#include <fnmatch.h>

#include <algorithm>
#include <numeric>

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/core/rng.h"
#include "lesseg/data/open.h"

namespace lesseg {
namespace {

// One domain's images of `split`. The synthetic world renders the target's training scenes after
// the validation ones, so that no target scene repeats a source layout.
SegDatasetPtr open_split(const Config& config, const std::string& domain, const std::string& split) {
  const std::string format = config.get<std::string>("uda." + domain + ".format");
  if (format != "synth") return open_dataset_by_format(format, config.get<std::string>("uda." + domain + ".root"), split);
  const synth::Options options = synth_options_from(config, config.get<std::string>("uda." + domain + ".domain"));
  const auto num_train = static_cast<size_t>(config.get<int64_t>("data.synth.num_train"));
  const auto num_val = static_cast<size_t>(config.get<int64_t>("data.synth.num_val"));
  if (split == "val") return std::make_shared<synth::SynthDataset>(options, num_val, num_train);
  if (split != "train") throw_usage("the synthetic world has splits train and val, not '" + split + "'");
  return std::make_shared<synth::SynthDataset>(options, num_train, domain == "target" ? num_train + num_val : 0);
}

bool matches(const std::string& pattern, const std::string& name) {
  return fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

// The images of uda.<domain>.<split> whose names match uda.<domain>.match and not .exclude, in name
// order (CamVid's frame numbers: a sequence in time).
std::vector<size_t> chosen(const Config& config, const std::string& domain, const SegDataset& dataset) {
  const std::string match = config.get<std::string>("uda." + domain + ".match");
  const std::string exclude = config.get<std::string>("uda." + domain + ".exclude");
  std::vector<size_t> kept;
  for (size_t i = 0; i < dataset.size(); ++i) {
    const std::string id = dataset.sample_id(i);
    if ((match.empty() || matches(match, id)) && (exclude.empty() || !matches(exclude, id))) kept.push_back(i);
  }
  std::stable_sort(kept.begin(), kept.end(), [&](size_t a, size_t b) { return dataset.sample_id(a) < dataset.sample_id(b); });
  if (kept.empty())
    throw_usage("uda." + domain + ": no image of the split matches match '" + match + "' / exclude '" + exclude + "'");
  return kept;
}

struct TargetParts {
  SegDatasetPtr adaptation, evaluation;
};

TargetParts open_target(const Config& config) {
  const int64_t tail = config.get<int64_t>("uda.target.eval_tail");
  if (tail < 0) throw_usage("uda.target.eval_tail must be >= 0");
  SegDatasetPtr all = open_split(config, "target", config.get<std::string>("uda.target.split"));
  std::vector<size_t> kept = chosen(config, "target", *all);
  TargetParts parts;
  if (tail == 0) {
    parts.adaptation = std::make_shared<SubsetDataset>(all, std::move(kept));
    SegDatasetPtr eval = open_split(config, "target", config.get<std::string>("uda.target.eval_split"));
    parts.evaluation = std::make_shared<SubsetDataset>(eval, chosen(config, "target", *eval));
    return parts;
  }
  if (static_cast<size_t>(tail) >= kept.size())
    throw_usage("uda.target.eval_tail " + std::to_string(tail) + " leaves no adaptation image of " + std::to_string(kept.size()));
  std::vector<size_t> last(kept.end() - tail, kept.end());
  kept.resize(kept.size() - static_cast<size_t>(tail));
  parts.adaptation = std::make_shared<SubsetDataset>(all, std::move(kept));
  parts.evaluation = std::make_shared<SubsetDataset>(all, std::move(last));
  return parts;
}

int class_index(const ClassInfo& classes, const YAML::Node& node, const std::string& file) {
  const std::string text = node.as<std::string>();
  for (int c = 0; c < classes.num_classes(); ++c)
    if (classes.names[c] == text) return c;
  try {
    size_t used = 0;
    const int index = std::stoi(text, &used);
    if (used == text.size() && index >= 0 && index < classes.num_classes()) return index;
  } catch (const std::exception&) {
  }
  throw_bad_input(file, "'" + text + "' is neither a class name nor a class index");
}

}  // namespace

bool is_two_domain(const Config& config) { return !config.get<std::string>("uda.source.format").empty(); }

std::vector<uint8_t> class_map_table(const ClassInfo& source, const ClassInfo& target, const std::string& map_file) {
  std::vector<uint8_t> table(256, static_cast<uint8_t>(target.ignore_index));
  int mapped = 0;
  if (map_file.empty()) {
    for (int s = 0; s < source.num_classes(); ++s)
      for (int t = 0; t < target.num_classes(); ++t)
        if (source.names[s] == target.names[t]) table[s] = static_cast<uint8_t>(t), ++mapped;
    if (mapped == 0) throw_usage("the source and target classes share no name: give uda.source.class_map");
    return table;
  }
  YAML::Node map;
  try {
    map = YAML::LoadFile(map_file);
  } catch (const YAML::Exception& e) {
    throw_bad_input(map_file, std::string("cannot read the class map: ") + e.what());
  }
  if (!map.IsMap() || map.size() == 0) throw_bad_input(map_file, "a class map is a YAML map {source class: target class}");
  for (const auto& entry : map) {
    const int s = class_index(source, entry.first, map_file), t = class_index(target, entry.second, map_file);
    table[s] = static_cast<uint8_t>(t);
  }
  return table;
}

SegSample ClassMappedDataset::get(size_t index) const {
  SegSample sample = base_->get(index);
  if (!sample.mask.empty()) {
    cv::Mat mapped;
    cv::LUT(sample.mask, cv::Mat(1, 256, CV_8U, const_cast<uint8_t*>(table_.data())), mapped);
    sample.mask = mapped;
  }
  return sample;
}

SegDatasetPtr open_target_eval(const Config& config) { return open_target(config).evaluation; }

TrainSplits open_domain_splits(const Config& config, const std::filesystem::path& run_dir, bool write_lists) {
  if (!config.get<std::string>("data.labeled").empty() || config.get<double>("data.labeled_fraction") != 1.0 ||
      !config.get<std::string>("data.unlabeled_split").empty())
    throw_usage("a two-domain run (uda.source.format set) takes its images from uda.source / uda.target: "
                "data.labeled, data.labeled_fraction and data.unlabeled_split do not apply");
  TargetParts target = open_target(config);
  const bool oracle = config.get<bool>("uda.oracle");
  SegDatasetPtr labeled = target.adaptation;
  if (!oracle) {
    SegDatasetPtr all = open_split(config, "source", config.get<std::string>("uda.source.split"));
    SegDatasetPtr chosen_source = std::make_shared<SubsetDataset>(all, chosen(config, "source", *all));
    const ClassInfo& classes = target.evaluation->classes();
    labeled = std::make_shared<ClassMappedDataset>(
        chosen_source, class_map_table(all->classes(), classes, config.get<std::string>("uda.source.class_map")), classes);
  }
  // data.holdout: labeled images (source ones) held out to choose the checkpoint, never target labels.
  const std::string holdout_text = config.get<std::string>("data.holdout");
  const int64_t held = count_from(holdout_text, labeled->size(), "data.holdout");
  if (held < 0) throw_usage("data.holdout must be a count or a fraction below 1, got '" + holdout_text + "'");
  TrainSplits splits;
  splits.reported = target.evaluation;
  splits.unlabeled = oracle ? nullptr : std::make_shared<UnlabeledDataset>(target.adaptation);
  if (static_cast<size_t>(held) >= labeled->size()) throw_usage("data.holdout " + holdout_text + " leaves no labeled image");
  if (held > 0) {
    const std::vector<size_t> order = seeded_permutation(labeled->size(), mix_seed({static_cast<uint64_t>(config.get<int64_t>("seed")), 0x401d}));
    std::vector<size_t> out(order.begin(), order.begin() + held), in(order.begin() + held, order.end());
    std::sort(out.begin(), out.end());
    std::sort(in.begin(), in.end());
    splits.selection = std::make_shared<SubsetDataset>(labeled, std::move(out));
    labeled = std::make_shared<SubsetDataset>(labeled, std::move(in));
  }
  splits.labeled = labeled;
  spdlog::info("domains: {} labeled {} images, {} target images to adapt to, {} held out, {} target images reported",
               oracle ? "target" : "source", splits.labeled->size(), splits.unlabeled ? splits.unlabeled->size() : 0,
               splits.selection ? splits.selection->size() : 0, splits.reported->size());
  if (write_lists) {
    std::filesystem::create_directories(run_dir);
    write_names(run_dir / "adaptation.txt", *target.adaptation);
    write_names(run_dir / "reported.txt", *splits.reported);
    if (splits.selection) write_names(run_dir / "holdout.txt", *splits.selection);
  }
  return splits;
}

}  // namespace lesseg
