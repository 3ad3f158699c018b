#pragma once
// The HTML of `lesseg report`: one self-contained page (inline CSS, inline SVG charts, PNGs as
// data URIs, no network). Rendering only; report.h gathers the data from a run folder.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "lesseg/data/classes.h"
#include "lesseg/report/run_log.h"

namespace lesseg {

// One validation image: the image, the ground truth over it and the prediction over it (RGB).
struct ReportSample {
  std::string id;
  cv::Mat image, truth, prediction;
};

// A domain-adaptation run's stylizer at work: a source image, it in the target's style, the target.
struct StylizedSample {
  std::string id;
  cv::Mat source, stylized, target;
};

struct ReportData {
  std::string title;        // usually the run folder's name
  std::string run_dir;
  std::string generated;    // when the report was made (shown, not parsed)
  std::string model;        // e.g. "resunet, backbone resnet18"
  bool pretraining = false; // a self-supervised pretraining run: no classes, confusion or samples
  bool instances = false;   // an instance segmenter (cutler): mask AP curves and instance overlays, no classes
  ClassInfo classes;
  RunLog log;
  std::vector<int64_t> confusion;  // [truth][prediction] pixel counts, row-major, classes^2
  nlohmann::json eval_now;         // metrics_json() of `confusion`
  int64_t eval_images = 0;         // validation images behind `confusion`
  std::vector<ReportSample> samples;
  std::vector<StylizedSample> stylized;  // csa runs with a stylizer
  std::string stylizer;
  std::string config_yaml;
};

// Stable hooks for tests and readers: <svg class="chart" id="loss|lr|throughput|metrics|class-iou">,
// <table id="iou-table">, <table id="confusion">, <img class="overlay" data-kind="image|truth|prediction">,
// <div id="stylized"> (img.overlay data-kind="source|stylized|target"), <pre id="config">, and <div id="render-check"> which a small inline script fills on load with
// data-images-loaded / data-images-total / data-series-drawn / data-chart-rects. Parts without data
// are left out: no confusion table without `confusion`, no overlays without `samples`; a pretraining
// run has no class-iou chart or IoU table, and its metrics chart (kNN top-1 / top-5) only when the
// log has kNN evaluations.
std::string render_report_html(const ReportData& data);

}  // namespace lesseg
