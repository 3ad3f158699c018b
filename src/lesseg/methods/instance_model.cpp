#include "lesseg/methods/instance_model.h"

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/data/loader.h"
#include "lesseg/engine/checkpoint.h"
#include "lesseg/core/fs.h"
#include "lesseg/data/classes.h"
#include "lesseg/data/instances.h"
#include "lesseg/eval/instance_eval.h"
#include "lesseg/io/image_io.h"
#include "lesseg/io/safetensors.h"

namespace lesseg {

namespace {

nlohmann::json solo_to_json(const Solov2Options& o) {
  return {{"grids", o.num_grids()},         {"fpn_channels", o.fpn_channels()},   {"head_channels", o.head_channels()},
          {"stacked_convs", o.stacked_convs()}, {"mask_hidden", o.mask_hidden()}, {"mask_channels", o.mask_channels()},
          {"num_classes", o.num_classes()}, {"norm_groups", o.norm_groups()}};
}

Solov2Options solo_from_json(const nlohmann::json& j) {
  return Solov2Options()
      .num_grids(j.at("grids").get<std::vector<int64_t>>())
      .fpn_channels(j.at("fpn_channels"))
      .head_channels(j.at("head_channels"))
      .stacked_convs(j.at("stacked_convs"))
      .mask_hidden(j.at("mask_hidden"))
      .mask_channels(j.at("mask_channels"))
      .num_classes(j.at("num_classes"))
      .norm_groups(j.at("norm_groups"));
}

nlohmann::json test_to_json(const SoloTestOptions& t) {
  return {{"score_thr", t.score_thr},       {"mask_thr", t.mask_thr},       {"nms_kernel", t.nms.kernel},
          {"nms_sigma", t.nms.sigma},       {"update_thr", t.nms.filter_thr}, {"nms_pre", t.nms.nms_pre},
          {"max_per_image", t.nms.max_num}};
}

SoloTestOptions test_from_json(const nlohmann::json& j) {
  SoloTestOptions t;
  t.score_thr = j.at("score_thr");
  t.mask_thr = j.at("mask_thr");
  t.nms.kernel = j.at("nms_kernel");
  t.nms.sigma = j.at("nms_sigma");
  t.nms.filter_thr = j.at("update_thr");
  t.nms.nms_pre = j.at("nms_pre");
  t.nms.max_num = j.at("max_per_image");
  return t;
}

}  // namespace

Solov2Options solov2_options_from(const Config& config) {
  return Solov2Options()
      .num_grids(config.get<std::vector<int64_t>>("solo.grids"))
      .fpn_channels(config.get<int64_t>("solo.fpn_channels"))
      .head_channels(config.get<int64_t>("solo.head_channels"))
      .stacked_convs(config.get<int64_t>("solo.stacked_convs"))
      .mask_hidden(config.get<int64_t>("solo.mask_hidden"))
      .mask_channels(config.get<int64_t>("solo.mask_channels"))
      .num_classes(1);
}

SoloTestOptions solo_test_options_from(const Config& config) {
  SoloTestOptions t;
  t.score_thr = config.get<double>("solo.score_thr");
  t.mask_thr = config.get<double>("solo.mask_thr");
  t.nms.kernel = config.get<std::string>("solo.nms_kernel");
  if (t.nms.kernel != "gaussian" && t.nms.kernel != "linear")
    throw_usage("solo.nms_kernel must be gaussian or linear, got '" + t.nms.kernel + "'");
  t.nms.sigma = config.get<double>("solo.nms_sigma");
  t.nms.filter_thr = config.get<double>("solo.update_thr");
  t.nms.nms_pre = config.get<int64_t>("solo.nms_pre");
  t.nms.max_num = config.get<int64_t>("solo.max_per_image");
  return t;
}

SoloTargetOptions solo_target_options_from(const Config& config) {
  SoloTargetOptions t;
  t.num_grids = config.get<std::vector<int64_t>>("solo.grids");
  t.scale_ranges.clear();
  for (const auto& range : config.get<std::vector<std::vector<double>>>("solo.scale_ranges")) {
    if (range.size() != 2 || range[0] > range[1]) throw_usage("solo.scale_ranges: each entry must be [low, high]");
    t.scale_ranges.push_back({range[0], range[1]});
  }
  if (t.scale_ranges.size() != t.num_grids.size() || t.num_grids.size() != 5)
    throw_usage("solo.grids and solo.scale_ranges need 5 entries each (levels P2..P6)");
  t.sigma = config.get<double>("solo.sigma");
  return t;
}

SoloLossOptions solo_loss_options_from(const Config& config) {
  SoloLossOptions o;
  o.targets = solo_target_options_from(config);
  o.focal_alpha = config.get<double>("solo.focal_alpha");
  o.focal_gamma = config.get<double>("solo.focal_gamma");
  o.dice_weight = config.get<double>("solo.dice_weight");
  o.drop_loss = config.get<bool>("cutler.drop_loss");
  o.drop_iou = config.get<double>("cutler.drop_iou");
  return o;
}

InstanceInput instance_input_from(const Config& config) {
  InstanceInput input;
  auto mean = config.get<std::vector<double>>("data.mean"), std = config.get<std::vector<double>>("data.std");
  if (mean.size() != 3 || std.size() != 3) throw_usage("data.mean and data.std need 3 values");
  input.mean = {mean[0], mean[1], mean[2]};
  input.std = {std[0], std[1], std[2]};
  auto resize = config.get<std::vector<int>>("data.resize");
  input.resize_h = resize.at(0);
  input.resize_w = resize.at(1);
  input.max_size = config.get<int>("solo.test_max_size");
  if (input.max_size < 32) throw_usage("solo.test_max_size must be at least 32");
  return input;
}

void save_instance_model(const std::filesystem::path& path, const SavedInstanceModel& s) {
  nlohmann::json input = {{"mean", s.input.mean}, {"std", s.input.std}, {"resize", {s.input.resize_h, s.input.resize_w}},
                          {"max_size", s.input.max_size}};
  std::map<std::string, std::string> metadata = {{"lesseg.kind", "instance_segmenter"},
                                                 {"lesseg.model", model_spec_to_json(s.spec).dump()},
                                                 {"lesseg.solo", solo_to_json(s.solo).dump()},
                                                 {"lesseg.test", test_to_json(s.test).dump()},
                                                 {"lesseg.input", input.dump()}};
  save_safetensors(path, module_tensors(*s.model), metadata);
}

SavedInstanceModel load_instance_model(const std::filesystem::path& path, c10::Device device) {
  TensorFile file = load_safetensors(path);
  if (file.metadata["lesseg.kind"] != "instance_segmenter")
    throw_bad_weights(path, "not a lesseg instance segmenter (metadata lesseg.kind is '" + file.metadata["lesseg.kind"] +
                                "')");
  SavedInstanceModel s;
  try {
    s.spec = model_spec_from_json(nlohmann::json::parse(file.metadata.at("lesseg.model")));
    s.solo = solo_from_json(nlohmann::json::parse(file.metadata.at("lesseg.solo")));
    s.test = test_from_json(nlohmann::json::parse(file.metadata.at("lesseg.test")));
    auto input = nlohmann::json::parse(file.metadata.at("lesseg.input"));
    s.input.mean = input.at("mean").get<std::array<double, 3>>();
    s.input.std = input.at("std").get<std::array<double, 3>>();
    s.input.resize_h = input.at("resize").at(0).get<int>();
    s.input.resize_w = input.at("resize").at(1).get<int>();
    s.input.max_size = input.value("max_size", 1333);
  } catch (const std::exception& e) {
    throw_bad_weights(path, std::string("invalid lesseg metadata: ") + e.what());
  }
  s.model = Solov2(build_backbone(s.spec), s.solo);
  load_module_tensors(*s.model, file.tensors, path);
  s.model->to(device);
  s.model->eval();
  return s;
}

SoloInstances predict_instances(Solov2Impl& model, const cv::Mat& rgb, const InstanceInput& input,
                                const SoloTestOptions& test, c10::Device device) {
  torch::NoGradGuard no_grad;
  cv::Mat resized = rgb;
  if (input.resize_h > 0 && input.resize_w > 0) {
    cv::resize(rgb, resized, cv::Size(input.resize_w, input.resize_h), 0, 0, cv::INTER_LINEAR);
  } else if (std::max(rgb.rows, rgb.cols) > input.max_size) {
    const double scale = double(input.max_size) / std::max(rgb.rows, rgb.cols);
    cv::resize(rgb, resized, cv::Size(std::max(1, int(std::lround(rgb.cols * scale))), std::max(1, int(std::lround(rgb.rows * scale)))),
               0, 0, cv::INTER_AREA);
  }
  if (!resized.isContinuous()) resized = resized.clone();
  auto x = image_to_tensor(resized, input.mean, input.std).unsqueeze(0);
  const int64_t h = x.size(2), w = x.size(3);
  const int64_t ph = (h + 31) / 32 * 32, pw = (w + 31) / 32 * 32;
  x = torch::constant_pad_nd(x, {0, pw - w, 0, ph - h}, 0).to(device);
  SoloOutput out = model.forward(x);
  return solo_instances(out, 0, h, w, rgb.rows, rgb.cols, test);
}

cv::Mat instance_overlay(const cv::Mat& rgb, const SoloInstances& instances) {
  cv::Mat out = rgb.clone();
  for (int64_t k = instances.masks.size(0) - 1; k >= 0; --k) {  // the best instance drawn last, on top
    auto m = instances.masks[k].to(torch::kUInt8).contiguous();
    cv::Mat mask(static_cast<int>(m.size(0)), static_cast<int>(m.size(1)), CV_8U, m.data_ptr());
    const auto c = default_class_color(static_cast<int>(k) + 1);
    const cv::Scalar color(c[0], c[1], c[2]);
    cv::Mat tinted;
    cv::addWeighted(out, 0.5, cv::Mat(out.size(), out.type(), color), 0.5, 0, tinted);
    tinted.copyTo(out, mask);
    std::vector<std::vector<cv::Point>> contours;
    cv::findContours(mask.clone(), contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
    cv::drawContours(out, contours, -1, color, 1);
    const cv::Rect box = cv::boundingRect(mask);
    char text[16];
    std::snprintf(text, sizeof(text), "%.2f", instances.scores[k].item<double>());
    cv::putText(out, text, cv::Point(box.x, std::max(box.y + 8, 8)), cv::FONT_HERSHEY_PLAIN, 0.7,
                cv::Scalar(255, 255, 255), 1);
  }
  return out;
}

coco::Dataset predict_instance_files(SavedInstanceModel& saved, const std::filesystem::path& root,
                                     const std::vector<std::filesystem::path>& files, c10::Device device,
                                     const std::filesystem::path& overlay_dir) {
  coco::Dataset out;
  out.categories.push_back({1, "object"});
  if (!overlay_dir.empty()) std::filesystem::create_directories(overlay_dir);
  for (size_t i = 0; i < files.size(); ++i) {
    cv::Mat rgb = read_image_rgb(root / files[i]);
    SoloInstances instances = predict_instances(*saved.model, rgb, saved.input, saved.test, device);
    coco::Image image{static_cast<int64_t>(i + 1), files[i].generic_string(), rgb.rows, rgb.cols};
    out.images.push_back(image);
    for (int64_t k = 0; k < instances.masks.size(0); ++k) {
      auto m = instances.masks[k].to(torch::kUInt8).contiguous();
      coco::Annotation a;
      a.id = static_cast<int64_t>(out.annotations.size() + 1);
      a.image_id = image.id;
      a.category_id = 1;
      a.mask = rle::encode(cv::Mat(rgb.rows, rgb.cols, CV_8U, m.data_ptr()));
      a.area = static_cast<double>(rle::area(a.mask));
      a.score = instances.scores[k].item<double>();
      out.annotations_by_image[image.id].push_back(out.annotations.size());
      out.annotations.push_back(std::move(a));
    }
    if (!overlay_dir.empty())
      write_image_rgb(overlay_dir / (files[i].stem().string() + "_instances.png"), instance_overlay(rgb, instances));
  }
  return out;
}

namespace {
EvalInstance predicted_instance(const at::Tensor& mask, double score) {
  auto m = mask.to(torch::kUInt8).contiguous();
  EvalInstance e;
  e.mask = rle::encode(cv::Mat(static_cast<int>(m.size(0)), static_cast<int>(m.size(1)), CV_8U, m.data_ptr()));
  e.box = rle::bbox(e.mask);
  e.area = static_cast<double>(rle::area(e.mask));
  e.score = score;
  return e;
}
}  // namespace

nlohmann::json evaluate_instance_model(SavedInstanceModel& saved, const InstanceDataset& truth, c10::Device device,
                                       int64_t max_images) {
  saved.model->eval();
  std::vector<std::vector<EvalInstance>> expected, predicted;
  const size_t count = max_images > 0 ? std::min<size_t>(truth.size(), static_cast<size_t>(max_images)) : truth.size();
  for (size_t i = 0; i < count; ++i) {
    cv::Mat rgb = read_image_rgb(truth.image_path(i));
    SoloInstances instances = predict_instances(*saved.model, rgb, saved.input, saved.test, device);
    std::vector<EvalInstance> mine;
    for (int64_t k = 0; k < instances.scores.size(0); ++k)
      mine.push_back(predicted_instance(instances.masks[k], instances.scores[k].item<double>()));
    predicted.push_back(std::move(mine));
    expected.push_back(coco_instances(truth.coco(), truth.image(i), false));
  }
  InstanceEvalOptions options;
  InstanceMetrics mask = evaluate_instances(expected, predicted, options);
  options.iou = InstanceIou::box;
  InstanceMetrics box = evaluate_instances(expected, predicted, options);
  return {{"mask_ap", mask.values.at("AP")},     {"mask_ap50", mask.values.at("AP50")},
          {"mask_ap75", mask.values.at("AP75")}, {"mask_ar100", mask.values.at("AR100")},
          {"box_ap", box.values.at("AP")},       {"box_ap50", box.values.at("AP50")},
          {"images", static_cast<int64_t>(count)}, {"predictions", mask.predictions}};
}

}  // namespace lesseg
