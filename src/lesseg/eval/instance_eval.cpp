#include "lesseg/eval/instance_eval.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <nlohmann/json.hpp>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"

namespace lesseg {
namespace {

// ref: cocoapi PythonAPI/pycocotools/cocoeval.py Params.setDetParams: np.linspace as numpy computes it.
std::vector<double> iou_thresholds() {
  std::vector<double> t(10);
  const double step = (0.95 - 0.5) / 9.0;
  for (int i = 0; i < 10; ++i) t[size_t(i)] = 0.5 + i * step;
  t.back() = 0.95;
  return t;
}
std::vector<double> recall_thresholds() {
  std::vector<double> r(101);
  for (int i = 0; i <= 100; ++i) r[size_t(i)] = i * 0.01;
  r.back() = 1.0;
  return r;
}
constexpr std::array<std::array<double, 2>, 4> kAreaRanges{{{0, 1e10}, {0, 32 * 32}, {32 * 32, 96 * 96}, {96 * 96, 1e10}}};

double box_iou(const std::array<double, 4>& d, const std::array<double, 4>& g, bool crowd) {
  // ref: maskApi.c bbIou: no +1, a crowd ground truth divides by the detection's area.
  const double w = std::min(d[0] + d[2], g[0] + g[2]) - std::max(d[0], g[0]);
  const double h = std::min(d[1] + d[3], g[1] + g[3]) - std::max(d[1], g[1]);
  if (w <= 0 || h <= 0) return 0;
  const double inter = w * h;
  const double uni = crowd ? d[2] * d[3] : d[2] * d[3] + g[2] * g[3] - inter;
  return uni > 0 ? inter / uni : 0;
}

// What one image contributes at one area range: per threshold, each kept detection's match and
// ignore flag, in score order (cocoeval.evaluateImg).
struct ImageResult {
  std::vector<double> scores;
  std::vector<std::vector<uint8_t>> matched, ignored;  // [threshold][detection]
  int64_t countable_ground_truth = 0;
};

ImageResult evaluate_image(const std::vector<EvalInstance>& gts, const std::vector<EvalInstance>& dts,
                           const std::array<double, 2>& range, size_t max_det, InstanceIou kind,
                           const std::vector<double>& thresholds) {
  ImageResult r;
  // Ground truth: non-ignored first (stable), as evaluateImg's mergesort on the ignore flags.
  std::vector<size_t> g_order(gts.size());
  std::iota(g_order.begin(), g_order.end(), 0);
  std::vector<uint8_t> g_ignore(gts.size());
  for (size_t g = 0; g < gts.size(); ++g)
    g_ignore[g] = gts[g].crowd || gts[g].area < range[0] || gts[g].area > range[1];
  std::stable_sort(g_order.begin(), g_order.end(), [&](size_t a, size_t b) { return g_ignore[a] < g_ignore[b]; });
  for (size_t g = 0; g < gts.size(); ++g) r.countable_ground_truth += !g_ignore[g];
  std::vector<size_t> d_order(dts.size());
  std::iota(d_order.begin(), d_order.end(), 0);
  std::stable_sort(d_order.begin(), d_order.end(), [&](size_t a, size_t b) { return dts[a].score > dts[b].score; });
  if (d_order.size() > max_det) d_order.resize(max_det);
  const size_t nd = d_order.size(), ng = g_order.size();
  std::vector<double> ious(nd * ng);
  for (size_t d = 0; d < nd; ++d)
    for (size_t g = 0; g < ng; ++g) {
      const EvalInstance& dt = dts[d_order[d]];
      const EvalInstance& gt = gts[g_order[g]];
      ious[d * ng + g] =
          kind == InstanceIou::mask ? rle::iou(dt.mask, gt.mask, gt.crowd) : box_iou(dt.box, gt.box, gt.crowd);
    }
  for (size_t d = 0; d < nd; ++d) r.scores.push_back(dts[d_order[d]].score);
  for (double t : thresholds) {
    std::vector<uint8_t> gt_matched(ng, 0), dt_matched(nd, 0), dt_ignored(nd, 0);
    for (size_t d = 0; d < nd; ++d) {
      double best = std::min(t, 1 - 1e-10);
      int m = -1;
      for (size_t g = 0; g < ng; ++g) {
        const size_t gi = g_order[g];
        if (gt_matched[g] && !gts[gi].crowd) continue;  // taken, and not a crowd region
        if (m > -1 && !g_ignore[g_order[size_t(m)]] && g_ignore[gi]) break;  // only ignored ones left
        if (ious[d * ng + g] < best) continue;
        best = ious[d * ng + g];
        m = int(g);
      }
      if (m == -1) continue;
      dt_ignored[d] = g_ignore[g_order[size_t(m)]];
      dt_matched[d] = 1;
      gt_matched[size_t(m)] = 1;
    }
    // Unmatched detections outside the area range do not count against precision.
    for (size_t d = 0; d < nd; ++d) {
      const double area = dts[d_order[d]].area;
      if (!dt_matched[d] && (area < range[0] || area > range[1])) dt_ignored[d] = 1;
    }
    r.matched.push_back(std::move(dt_matched));
    r.ignored.push_back(std::move(dt_ignored));
  }
  return r;
}

struct Accumulated {
  std::vector<std::vector<double>> precision;  // [threshold][recall threshold], -1 when not countable
  std::vector<double> recall;                  // [threshold], -1 when not countable
};

// ref: cocoeval.accumulate for one category, area range and maximum detections.
Accumulated accumulate(const std::vector<ImageResult>& images, size_t max_det, size_t thresholds) {
  const auto recall_points = recall_thresholds();
  Accumulated a;
  a.precision.assign(thresholds, std::vector<double>(recall_points.size(), -1));
  a.recall.assign(thresholds, -1);
  std::vector<double> scores;
  std::vector<std::pair<size_t, size_t>> where;  // (image, detection)
  int64_t countable = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    countable += images[i].countable_ground_truth;
    for (size_t d = 0; d < std::min(max_det, images[i].scores.size()); ++d) {
      scores.push_back(images[i].scores[d]);
      where.emplace_back(i, d);
    }
  }
  if (countable == 0) return a;
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return scores[x] > scores[y]; });
  const double spacing = std::numeric_limits<double>::epsilon();  // np.spacing(1)
  for (size_t t = 0; t < thresholds; ++t) {
    std::vector<double> rc, pr;
    double tp = 0, fp = 0;
    for (size_t k : order) {
      const auto [i, d] = where[k];
      if (images[i].ignored[t][d]) continue;  // ignored detections are neither tp nor fp (cumsum of 0)
      (images[i].matched[t][d] ? tp : fp) += 1;
      rc.push_back(tp / double(countable));
      pr.push_back(tp / (fp + tp + spacing));
    }
    a.recall[t] = rc.empty() ? 0 : rc.back();
    for (size_t j = pr.size(); j-- > 1;) pr[j - 1] = std::max(pr[j - 1], pr[j]);  // precision envelope
    for (size_t r = 0; r < recall_points.size(); ++r) {
      const size_t p = size_t(std::lower_bound(rc.begin(), rc.end(), recall_points[r]) - rc.begin());
      a.precision[t][r] = p < pr.size() ? pr[p] : 0;
    }
  }
  return a;
}

double mean_countable(const std::vector<double>& values) {
  double sum = 0;
  int n = 0;
  for (double v : values)
    if (v > -1) {
      sum += v;
      ++n;
    }
  return n ? sum / n : -1;
}

double mean_precision(const Accumulated& a, int threshold) {  // threshold -1: all of them
  std::vector<double> values;
  for (size_t t = 0; t < a.precision.size(); ++t)
    if (threshold < 0 || int(t) == threshold) values.insert(values.end(), a.precision[t].begin(), a.precision[t].end());
  return mean_countable(values);
}

}  // namespace

std::vector<EvalInstance> coco_instances(const coco::Dataset& data, const coco::Image& image, bool prediction) {
  std::vector<EvalInstance> out;
  auto it = data.annotations_by_image.find(image.id);
  if (it == data.annotations_by_image.end()) return out;
  for (size_t index : it->second) {
    const coco::Annotation& a = data.annotations[index];
    EvalInstance e;
    e.mask = a.mask;
    e.box = rle::bbox(a.mask);
    // ref: loadRes computes a prediction's area from its mask; the ground truth keeps its own.
    e.area = prediction || a.area == 0 ? double(rle::area(a.mask)) : a.area;
    e.score = prediction ? (a.score >= 0 ? a.score : 1.0) : 1.0;
    e.crowd = !prediction && a.iscrowd;
    e.category = a.category_id;
    out.push_back(std::move(e));
  }
  return out;
}


InstanceMetrics evaluate_instances(const std::vector<std::vector<EvalInstance>>& ground_truth,
                                   const std::vector<std::vector<EvalInstance>>& predictions,
                                   const InstanceEvalOptions& options) {
  if (ground_truth.size() != predictions.size())
    throw std::invalid_argument("evaluate_instances: one prediction list per ground-truth image");
  const auto thresholds = iou_thresholds();
  const size_t largest = size_t(*std::max_element(options.max_dets.begin(), options.max_dets.end()));
  InstanceMetrics m;
  m.images = int64_t(ground_truth.size());
  std::array<std::vector<ImageResult>, 4> per_area;
  for (size_t i = 0; i < ground_truth.size(); ++i) {
    m.ground_truth += int64_t(ground_truth[i].size());
    m.predictions += int64_t(predictions[i].size());
    if (ground_truth[i].empty() && predictions[i].empty()) continue;  // evaluateImg returns None
    for (size_t a = 0; a < kAreaRanges.size(); ++a)
      per_area[a].push_back(
          evaluate_image(ground_truth[i], predictions[i], kAreaRanges[a], largest, options.iou, thresholds));
  }
  // ref: cocoeval.summarize (_summarizeDets).
  const size_t last = size_t(options.max_dets[2]);
  const Accumulated all = accumulate(per_area[0], last, thresholds.size());
  m.values["AP"] = mean_precision(all, -1);
  m.values["AP50"] = mean_precision(all, 0);
  m.values["AP75"] = mean_precision(all, 5);
  const char* sizes[] = {"s", "m", "l"};
  for (size_t a = 1; a < 4; ++a) {
    const Accumulated acc = accumulate(per_area[a], last, thresholds.size());
    m.values[std::string("AP") + sizes[a - 1]] = mean_precision(acc, -1);
    m.values[std::string("AR") + sizes[a - 1]] = mean_countable(acc.recall);
  }
  for (int max_det : options.max_dets)
    m.values["AR" + std::to_string(max_det)] =
        mean_countable(accumulate(per_area[0], size_t(max_det), thresholds.size()).recall);
  return m;
}

std::map<std::string, double> mean_average_recall_split(const std::vector<std::vector<EvalInstance>>& ground_truth,
                                                        const std::vector<std::vector<EvalInstance>>& predictions,
                                                        InstanceIou iou) {
  const auto thresholds = iou_thresholds();
  std::map<std::string, std::vector<ImageResult>> splits;
  for (size_t i = 0; i < ground_truth.size(); ++i) {
    if (ground_truth[i].empty() && predictions[i].empty()) continue;
    std::map<int64_t, int> per_category;
    bool multi = false;
    for (const EvalInstance& g : ground_truth[i])
      if (!g.crowd) multi = multi || ++per_category[g.category] >= 2;
    ImageResult r = evaluate_image(ground_truth[i], predictions[i], kAreaRanges[0], predictions[i].size() + 1, iou,
                                   thresholds);
    splits[multi ? "multi_instance" : "single"].push_back(r);
    splits["all"].push_back(std::move(r));
  }
  std::map<std::string, double> out;
  for (const char* name : {"all", "multi_instance", "single"}) {
    const auto& images = splits[name];
    size_t most = 1;
    for (const auto& r : images) most = std::max(most, r.scores.size());
    const double mar = mean_countable(accumulate(images, most, thresholds.size()).recall);
    out[name] = mar < 0 ? NAN : mar;
  }
  return out;
}

InstancePairs read_instance_pairs(const std::filesystem::path& ground_truth_json,
                                  const std::filesystem::path& predictions_json) {
  const coco::Dataset truth = coco::read(ground_truth_json);
  const std::string text = read_file(predictions_json);
  coco::Dataset predicted;
  std::map<int64_t, int64_t> prediction_image;  // prediction image id -> ground-truth image id
  const bool results_list = text.find_first_not_of(" \t\r\n") != std::string::npos &&
                            text[text.find_first_not_of(" \t\r\n")] == '[';
  if (results_list) {
    // A COCO results list: wrap it with the ground truth's images so the reader validates it.
    nlohmann::json list = nlohmann::json::parse(text, nullptr, false);
    if (list.is_discarded()) throw_bad_input(predictions_json, "malformed JSON");
    nlohmann::json root{{"images", nlohmann::json::array()}, {"annotations", nlohmann::json::array()}};
    for (const coco::Image& im : truth.images) {
      root["images"].push_back({{"id", im.id}, {"file_name", im.file_name}, {"height", im.height}, {"width", im.width}});
      prediction_image[im.id] = im.id;
    }
    int64_t id = 1;
    for (nlohmann::json& r : list) {
      if (r.is_object()) {
        r["id"] = id++;
        if (!r.contains("category_id")) r["category_id"] = 1;
      }
      root["annotations"].push_back(r);
    }
    predicted = coco::parse(root.dump(), predictions_json);
  } else {
    predicted = coco::parse(text, predictions_json);
    std::map<std::string, int64_t> by_name;
    for (const coco::Image& im : truth.images) by_name[im.file_name] = im.id;
    for (const coco::Image& im : predicted.images) {
      auto it = by_name.find(im.file_name);
      if (it == by_name.end())
        throw_bad_input(predictions_json, "image '" + im.file_name + "' is not in " + ground_truth_json.string());
      prediction_image[im.id] = it->second;
    }
  }
  std::map<int64_t, const coco::Image*> predicted_by_truth_id;
  for (const coco::Image& im : predicted.images) predicted_by_truth_id[prediction_image.at(im.id)] = &im;
  InstancePairs pairs;
  for (const coco::Image& im : truth.images) {
    pairs.ground_truth.push_back(coco_instances(truth, im, false));
    auto it = predicted_by_truth_id.find(im.id);
    if (it == predicted_by_truth_id.end()) {
      pairs.predictions.emplace_back();
      continue;
    }
    if (it->second->height != im.height || it->second->width != im.width)
      throw_bad_input(predictions_json, "image '" + im.file_name + "' is " + std::to_string(it->second->width) + "x" +
                                            std::to_string(it->second->height) + " here but " +
                                            std::to_string(im.width) + "x" + std::to_string(im.height) +
                                            " in the ground truth");
    pairs.predictions.push_back(coco_instances(predicted, *it->second, true));
  }
  return pairs;
}

nlohmann::json instance_metrics_json(const InstanceMetrics& mask, const InstanceMetrics& box,
                                     const std::map<std::string, double>& mar) {
  auto values = [](const InstanceMetrics& m) {
    nlohmann::json j;
    for (const auto& [k, v] : m.values) j[k] = v;
    return j;
  };
  nlohmann::json out{{"images", mask.images},
                     {"ground_truth_instances", mask.ground_truth},
                     {"predictions", mask.predictions},
                     {"mask", values(mask)},
                     {"box", values(box)},
                     {"mar", nlohmann::json::object()}};
  for (const auto& [k, v] : mar) out["mar"][k] = std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
  return out;
}

}  // namespace lesseg
