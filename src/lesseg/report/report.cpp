#include "lesseg/report/report.h"

#include <ctime>

#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/data/domains.h"
#include "lesseg/data/open.h"
#include "lesseg/eval/evaluate.h"
#include "lesseg/io/safetensors.h"
#include "lesseg/data/instances.h"
#include "lesseg/methods/instance_model.h"
#include "lesseg/methods/predict.h"
#include "lesseg/methods/saved_segmenter.h"
#include "lesseg/methods/ssl/pretrain.h"
#include "lesseg/methods/uda/stylizers.h"

namespace lesseg {

namespace fs = std::filesystem;

namespace {

constexpr const char* kExpected =
    "not a finished lesseg run folder (expected config.yaml, metrics.jsonl and model.safetensors, "
    "or backbone.safetensors for a pretraining run)";

fs::path required_file(const fs::path& run_dir, const char* name) {
  fs::path path = run_dir / name;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw_bad_input(path, std::string("missing: ") + kExpected);
  require_readable_file(path);
  return path;
}

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buffer[64];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%d %H:%M UTC", &tm);
  return buffer;
}

// The ground truth over the image; unlabeled (ignore_index) pixels keep the image.
cv::Mat truth_overlay(const cv::Mat& rgb, const cv::Mat& mask, const ClassInfo& classes) {
  if (mask.empty()) return rgb.clone();
  cv::Mat blended = overlay(rgb, mask, classes.colors);
  rgb.copyTo(blended, mask == classes.ignore_index);
  return blended;
}

// The parts every run folder has: the resolved config and the log.
ReportData gather_run_data(const fs::path& run_dir, const fs::path& config_file, const fs::path& log_file) {
  ReportData d;
  std::error_code ec;
  d.run_dir = fs::weakly_canonical(run_dir, ec).string();
  if (d.run_dir.empty()) d.run_dir = run_dir.string();
  d.title = fs::path(d.run_dir).filename().string();
  d.generated = utc_now();
  d.config_yaml = read_file(config_file);
  d.log = read_run_log(log_file);
  return d;
}

// A segmenter run: a fresh evaluation on the validation split (confusion matrix) and overlays.
void add_segmenter_data(ReportData& d, const Config& config, const fs::path& model_file, const ReportOptions& options) {
  SavedSegmenter saved = load_segmenter(model_file, options.device);
  d.model = saved.spec.arch + ", backbone " + saved.spec.backbone;
  d.classes = saved.classes;
  SegDatasetPtr val = open_dataset(config, "val");
  if (val->classes().num_classes() != saved.classes.num_classes())
    throw_bad_input(model_file, "the model has " + std::to_string(saved.classes.num_classes()) +
                                    " classes, the run's validation split " + std::to_string(val->classes().num_classes()));

  // The same evaluation `lesseg eval RUN_DIR` makes, bounded like the run's own evaluations.
  EvalOptions eval;
  eval.device = options.device;
  eval.batch_size = config.get<int>("eval.batch_size");
  eval.max_images = config.get<int64_t>("eval.max_images");
  eval.mean = saved.mean;
  eval.std = saved.std;
  eval.augment.resize_h = saved.resize_h;
  eval.augment.resize_w = saved.resize_w;
  ConfusionMatrix confusion = evaluate_segmenter(saved.model, val, eval);
  d.eval_now = metrics_json(confusion.compute(), saved.classes, scored_classes_from(config, saved.classes));
  d.eval_images = eval.max_images > 0 ? std::min<int64_t>(eval.max_images, int64_t(val->size())) : int64_t(val->size());
  torch::Tensor matrix = confusion.matrix().to(torch::kLong).contiguous();
  d.confusion.assign(matrix.data_ptr<int64_t>(), matrix.data_ptr<int64_t>() + matrix.numel());

  const size_t count = std::min(size_t(options.images), val->size());
  for (size_t i = 0; i < count; ++i) {
    SegSample sample = val->get(i);
    cv::Mat prediction = predict_image(saved, sample.image, options.device);
    d.samples.push_back({sample.id, sample.image, truth_overlay(sample.image, sample.mask, saved.classes),
                         overlay(sample.image, prediction, saved.classes.colors)});
  }
}

// A csa run with a stylizer: source training images in the look of target images, as in training.
void add_stylized_data(ReportData& d, const Config& config, const ReportOptions& options) {
  if (config.get<std::string>("method") != "csa" || !is_two_domain(config)) return;
  const FastStylizerOptions stylizer_options = stylizer_options_from(config);
  if (stylizer_options.name != "fda" && stylizer_options.name != "adain") return;  // none, or CUT (in the checkpoints)
  std::unique_ptr<Stylizer> stylizer = make_fast_stylizer(stylizer_options);
  const TrainSplits splits = open_domain_splits(config, {}, false);
  if (!splits.unlabeled) return;
  d.stylizer = stylizer->name();
  const size_t count = std::min({size_t(options.images), splits.labeled->size(), splits.unlabeled->size()});
  for (size_t i = 0; i < count; ++i) {
    const SegSample source = splits.labeled->get(i), target = splits.unlabeled->get(i);
    d.stylized.push_back({source.id, source.image, stylize_image(*stylizer, source.image, target.image), target.image});
  }
}

// An instance segmenter run (cutler): a fresh AP evaluation on instances.val_json and instance overlays.
void add_instance_data(ReportData& d, const Config& config, const fs::path& model_file, const ReportOptions& options) {
  SavedInstanceModel saved = load_instance_model(model_file, options.device);
  d.instances = true;
  d.model = "SOLOv2, backbone " + saved.spec.backbone + " (class-agnostic instances)";
  const std::string json = config.get<std::string>("instances.val_json");
  if (json.empty()) return;  // nothing to score on: curves and config only
  std::string images = config.get<std::string>("instances.val_images");
  if (images.empty()) images = fs::path(json).parent_path().string();
  InstanceDataset truth(json, images, /*drop_empty_images=*/false);
  d.eval_now = evaluate_instance_model(saved, truth, options.device, config.get<int64_t>("eval.max_images"));
  d.eval_images = d.eval_now.value("images", int64_t(0));
  const size_t count = std::min(size_t(options.images), truth.size());
  for (size_t i = 0; i < count; ++i) {
    SegSample sample = truth.get(i);
    SoloInstances expected;
    expected.masks = torch::zeros({int64_t(sample.instances.size()), sample.image.rows, sample.image.cols}, torch::kBool);
    for (size_t k = 0; k < sample.instances.size(); ++k)
      expected.masks[int64_t(k)].copy_(
          torch::from_blob(sample.instances[k].data, {sample.image.rows, sample.image.cols}, torch::kUInt8).ne(0));
    expected.scores = torch::ones({int64_t(sample.instances.size())});
    SoloInstances predicted = predict_instances(*saved.model, sample.image, saved.input, saved.test, options.device);
    d.samples.push_back({sample.id, sample.image, instance_overlay(sample.image, expected),
                         instance_overlay(sample.image, predicted)});
  }
}

// A self-supervised pretraining run: the backbone file's metadata names the backbone and method.
void add_pretraining_data(ReportData& d, const fs::path& backbone_file) {
  const TensorFile file = load_safetensors(backbone_file);  // memory-mapped: only the header is read
  auto meta = [&](const char* key) {
    auto it = file.metadata.find(key);
    return it == file.metadata.end() || it->second.empty() ? std::string("?") : it->second;
  };
  d.pretraining = true;
  d.model = meta(kBackboneMetadataKey) + " pretrained with " + meta("lesseg.method") + " (self-supervised)";
}

}  // namespace

ReportData gather_report_data(const fs::path& run_dir, const ReportOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) throw_bad_input(run_dir, "not a run folder (no such directory)");
  if (options.images < 0) throw_usage("--images must be >= 0");
  const fs::path config_file = required_file(run_dir, "config.yaml");
  ReportData d = gather_run_data(run_dir, config_file, required_file(run_dir, "metrics.jsonl"));
  const Config config = Config::from_yaml_text(d.config_yaml, config_file.string());
  if (!fs::exists(run_dir / "model.safetensors", ec) && fs::exists(run_dir / "backbone.safetensors", ec))
    add_pretraining_data(d, required_file(run_dir, "backbone.safetensors"));
  else if (config.get<std::string>("method") == "cutler")
    add_instance_data(d, config, required_file(run_dir, "model.safetensors"), options);
  else {
    add_segmenter_data(d, config, required_file(run_dir, "model.safetensors"), options);
    add_stylized_data(d, config, options);
  }
  return d;
}

fs::path write_report(const fs::path& run_dir, const ReportOptions& options) {
  ReportData data = gather_report_data(run_dir, options);
  const fs::path out = options.out.empty() ? run_dir / "report.html" : options.out;
  write_file_atomic(out, render_report_html(data));
  return out;
}

}  // namespace lesseg
