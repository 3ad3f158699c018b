#include "lesseg/data/open.h"

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/data/domains.h"
#include "lesseg/data/formats/formats.h"
#include "lesseg/data/synth/synth.h"

namespace lesseg {

SegDatasetPtr open_dataset_by_format(const std::string& format, const std::string& root, const std::string& split) {
  if (root.empty()) throw_usage("data.root is required for format '" + format + "'");
  if (format == "folder") return open_folder(root, split);
  if (format == "camvid") return open_camvid(root, split);
  if (format == "cityscapes") return open_cityscapes(root, split);
  if (format == "gta5") return open_gta5(root, split);
  if (format == "synthia") return open_synthia(root, split);
  if (format == "ade20k") return open_ade20k(root, split);
  if (format == "voc") return open_voc(root, split);
  if (format == "coco") return open_coco(root, split);
  throw_usage("unknown data.format '" + format +
              "' (known: synth, folder, camvid, cityscapes, gta5, synthia, ade20k, voc, coco)");
}

synth::Options synth_options_from(const Config& config, const std::string& domain) {
  synth::Options options;
  options.domain = domain;
  if (options.domain != "source" && options.domain != "target")
    throw_usage("the synthetic world's domain must be 'source' or 'target', got '" + options.domain + "'");
  options.shift = config.get<double>("data.synth.shift");
  options.degrade = config.get<double>("data.synth.degrade");
  options.size = config.get<int>("data.synth.size");
  options.seed = static_cast<uint64_t>(config.get<int64_t>("data.synth.seed"));
  return options;
}

namespace {
SegDatasetPtr open_synth(const Config& config, const std::string& split) {
  std::string domain = config.get<std::string>("data.synth.domain");
  const std::string val_domain = config.get<std::string>("data.synth.val_domain");
  if (split == "val" && !val_domain.empty()) domain = val_domain;
  const synth::Options options = synth_options_from(config, domain);
  const int64_t num_train = config.get<int64_t>("data.synth.num_train");
  const int64_t num_val = config.get<int64_t>("data.synth.num_val");
  if (split == "train") return std::make_shared<synth::SynthDataset>(options, num_train, 0);
  return std::make_shared<synth::SynthDataset>(options, num_val, num_train);
}

std::pair<int, int> pair_of(const Config& config, const std::string& key) {
  auto values = config.get<std::vector<int>>(key);
  if (values.size() != 2) throw_usage("config key '" + key + "' must be a list [h, w]");
  return {values[0], values[1]};
}
}  // namespace

SegDatasetPtr open_dataset(const Config& config, const std::string& split, bool apply_labeled_fraction) {
  if (split == "val" && is_two_domain(config)) return open_target_eval(config);
  const std::string format = config.get<std::string>("data.format");
  SegDatasetPtr dataset;
  if (format == "synth") {
    dataset = open_synth(config, split);
  } else {
    const std::string name = config.get<std::string>(split == "train" ? "data.train_split" : "data.val_split");
    dataset = open_dataset_by_format(format, config.get<std::string>("data.root"), name);
  }
  const double fraction = config.get<double>("data.labeled_fraction");
  if (fraction <= 0 || fraction > 1) throw_usage("data.labeled_fraction must be in (0, 1]");
  if (split == "train" && fraction < 1.0 && apply_labeled_fraction)
    dataset = labeled_fraction(dataset, fraction, static_cast<uint64_t>(config.get<int64_t>("seed")));
  return dataset;
}

AugmentOptions train_augment_from(const Config& config) {
  AugmentOptions a = eval_augment_from(config);
  std::tie(a.crop_h, a.crop_w) = pair_of(config, "data.crop");
  auto scale = config.get<std::vector<double>>("data.scale");
  if (scale.size() != 2 || scale[0] <= 0 || scale[1] < scale[0])
    throw_usage("data.scale must be [min, max] with 0 < min <= max");
  a.scale_min = scale[0];
  a.scale_max = scale[1];
  a.flip = config.get<bool>("data.flip");
  a.color_jitter = config.get<double>("data.color_jitter");
  a.blur_prob = config.get<double>("data.blur_prob");
  return a;
}

AugmentOptions eval_augment_from(const Config& config) {
  AugmentOptions a;
  std::tie(a.resize_h, a.resize_w) = pair_of(config, "data.resize");
  return a;
}

}  // namespace lesseg
