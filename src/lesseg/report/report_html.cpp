#include "lesseg/report/report_html.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "lesseg/report/html.h"
#include "lesseg/report/svg_chart.h"

namespace lesseg {

namespace {

using nlohmann::json;

const char* kStyle = R"CSS(
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f4f6; color: #1f2937;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 12px; padding-bottom: 4px; border-bottom: 2px solid #d1d5db; }
h3 { font-size: 15px; margin: 20px 0 8px; }
.muted { color: #6b7280; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0; }
.card { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 8px 14px; min-width: 120px; }
.card .label { font-size: 12px; color: #6b7280; }
.card .value { font-size: 18px; font-weight: 600; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: 12px; }
.panel { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 10px; overflow-x: auto; }
svg.chart { width: 100%; height: auto; display: block; font-size: 11px; }
svg.chart text { fill: #374151; }
svg.chart .chart-title { font-size: 13px; font-weight: 600; fill: #111827; }
svg.chart .grid { stroke: #e5e7eb; }
svg.chart .tick { stroke: #9ca3af; }
svg.chart .frame { fill: none; stroke: #9ca3af; }
svg.chart path.series { fill: none; stroke-width: 1.8; stroke-linejoin: round; }
svg.chart .legend line { stroke-width: 2.5; }
svg.chart .no-data { fill: #9ca3af; font-size: 14px; }
table { border-collapse: collapse; background: #fff; }
th, td { padding: 4px 8px; border: 1px solid #e5e7eb; text-align: right; }
th { background: #f9fafb; font-weight: 600; }
td.name, th.name { text-align: left; white-space: nowrap; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px;
          vertical-align: -1px; border: 1px solid rgba(0,0,0,.25); }
td.bar { width: 220px; text-align: left; }
td.bar div { height: 12px; background: #3b82f6; border-radius: 2px; }
tr.mean td { font-weight: 600; background: #f9fafb; }
table#confusion td { width: 52px; min-width: 52px; text-align: center; font-variant-numeric: tabular-nums; }
table#confusion th.col { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left;
                         vertical-align: bottom; padding: 6px 2px; font-weight: 500; }
table#confusion th.corner { font-weight: 400; color: #6b7280; font-size: 12px; text-align: left; vertical-align: bottom; }
.legend-row { display: flex; flex-wrap: wrap; gap: 6px 16px; margin: 8px 0 12px; }
.samples { display: grid; grid-template-columns: 120px repeat(3, minmax(0, 280px)); gap: 8px; align-items: center; }
.samples .head { font-weight: 600; text-align: center; }
.samples .id { font-size: 12px; color: #6b7280; word-break: break-all; }
img.overlay { width: 100%; height: auto; display: block; image-rendering: pixelated; border-radius: 4px;
              border: 1px solid #e5e7eb; background: #fff; }
pre#config { background: #111827; color: #e5e7eb; padding: 12px 14px; border-radius: 8px; overflow-x: auto;
             font: 12px/1.5 ui-monospace, "DejaVu Sans Mono", monospace; }
#render-check { display: none; }
)CSS";

// Fills #render-check once everything has loaded, so a headless browser's DOM dump shows what
// actually rendered: decoded images, drawn chart paths, where each chart landed.
const char* kRenderCheck = R"JS(
window.addEventListener('load', function () {
  var images = document.querySelectorAll('img.overlay'), loaded = 0, drawn = 0, rects = [];
  images.forEach(function (i) { if (i.complete && i.naturalWidth > 0) loaded++; });
  document.querySelectorAll('svg.chart path.series').forEach(function (p) { if (p.getTotalLength() > 0) drawn++; });
  document.querySelectorAll('svg.chart').forEach(function (s) {
    var r = s.getBoundingClientRect();
    rects.push(s.id + ':' + [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height].map(Math.round).join(','));
  });
  var check = document.getElementById('render-check');
  check.setAttribute('data-images-loaded', loaded);
  check.setAttribute('data-images-total', images.length);
  check.setAttribute('data-series-drawn', drawn);
  check.setAttribute('data-chart-rects', rects.join(' '));
});
)JS";

double number_or_nan(const json& record, const std::string& key) {
  auto it = record.find(key);
  return it != record.end() && it->is_number() ? it->get<double>() : NAN;
}

ChartSeries series_of(const std::vector<json>& records, const std::string& key, const std::string& name) {
  ChartSeries s{name, {}};
  for (const json& r : records)
    if (r.contains(key)) s.points.emplace_back(r["iter"].get<double>(), number_or_nan(r, key));
  return s;
}

std::string color_css(const std::array<uint8_t, 3>& c) {
  return "rgb(" + std::to_string(c[0]) + "," + std::to_string(c[1]) + "," + std::to_string(c[2]) + ")";
}

std::string swatch(const ClassInfo& classes, size_t i) {
  if (i >= classes.colors.size()) return "";
  return "<span class=\"swatch\" style=\"background:" + color_css(classes.colors[i]) + "\"></span>";
}

std::string class_name(const ClassInfo& classes, size_t i) {
  return i < classes.names.size() ? classes.names[i] : "class " + std::to_string(i);
}

std::string card(const std::string& label, const std::string& value) {
  return "<div class=\"card\"><div class=\"label\">" + html_escape(label) + "</div><div class=\"value\">" +
         html_escape(value) + "</div></div>\n";
}

double median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return NAN;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

std::string training_charts(const ReportData& d) {
  std::ostringstream out;
  const auto& steps = d.log.steps;
  std::vector<std::string> terms;  // loss_<term> keys, in first-seen order
  for (const json& r : steps)
    for (auto it = r.begin(); it != r.end(); ++it)
      if (it.key().rfind("loss_", 0) == 0 && std::find(terms.begin(), terms.end(), it.key()) == terms.end())
        terms.push_back(it.key());
  std::vector<ChartSeries> losses{series_of(steps, "loss", "total")};
  for (const auto& t : terms) {
    losses.push_back(series_of(steps, t, t.substr(5)));
    losses.back().dashed = true;
  }
  ChartOptions o;
  out << "<h2>Training</h2>\n<div class=\"charts\">\n";
  o.id = "loss", o.title = "Loss", o.y_label = "loss";
  out << "<div class=\"panel\">" << svg_line_chart(losses, o) << "</div>\n";
  o.id = "lr", o.title = "Learning rate", o.y_label = "lr", o.y_from_zero = true;
  out << "<div class=\"panel\">" << svg_line_chart({series_of(steps, "lr", "lr")}, o) << "</div>\n";
  o.id = "throughput", o.title = "Throughput", o.y_label = "images / s";
  out << "<div class=\"panel\">" << svg_line_chart({series_of(steps, "images_per_s", "images/s")}, o) << "</div>\n";
  out << "</div>\n";
  return out.str();
}

// A segmenter's validation metrics; a pretraining run's kNN accuracy where the log has it.
std::vector<ChartSeries> metric_series(const ReportData& d) {
  const auto& evals = d.log.evals;
  if (d.instances) {
    std::vector<ChartSeries> ap;
    for (auto [key, name] : {std::pair{"mask_ap", "mask AP"}, std::pair{"mask_ap50", "mask AP50"},
                             std::pair{"mask_ar100", "mask AR@100"}, std::pair{"box_ap", "box AP"}})
      if (ChartSeries s = series_of(evals, key, name); !s.points.empty()) ap.push_back(std::move(s));
    return ap;
  }
  if (!d.pretraining)
    return {series_of(evals, "miou", "mIoU"), series_of(evals, "macc", "mAcc"), series_of(evals, "pixel_acc", "pixel acc")};
  std::vector<ChartSeries> knn;
  for (auto [key, name] : {std::pair{"knn_top1", "kNN top-1"}, std::pair{"knn_top5", "kNN top-5"}})
    if (ChartSeries s = series_of(evals, key, name); !s.points.empty()) knn.push_back(std::move(s));
  return knn;
}

std::vector<ChartSeries> class_iou_series(const ReportData& d) {
  std::vector<ChartSeries> per_class;
  for (int c = 0; c < d.classes.num_classes(); ++c) {
    ChartSeries s{class_name(d.classes, size_t(c)), {}};
    if (size_t(c) < d.classes.colors.size()) s.color = color_css(d.classes.colors[size_t(c)]);
    for (const json& r : d.log.evals)
      if (r.contains("iou") && r["iou"].is_array() && size_t(c) < r["iou"].size())
        s.points.emplace_back(r["iter"].get<double>(), r["iou"][size_t(c)].is_number() ? r["iou"][size_t(c)].get<double>() : NAN);
    per_class.push_back(std::move(s));
  }
  return per_class;
}

// A pretraining run's collapse diagnostics (SimCLR's feature spread, DINO's teacher entropies and KL).
std::vector<ChartSeries> collapse_series(const ReportData& d) {
  std::vector<ChartSeries> out;
  if (!d.pretraining) return out;
  for (auto [key, name] : {std::pair{"feature_std", "feature std"}, std::pair{"teacher_entropy", "teacher entropy"},
                           std::pair{"teacher_batch_entropy", "batch-mean entropy"},
                           std::pair{"kl_teacher_student", "KL(teacher || student)"}})
    if (ChartSeries s = series_of(d.log.evals, key, name); !s.points.empty()) out.push_back(std::move(s));
  return out;
}

std::string evaluation_charts(const ReportData& d) {
  const std::vector<ChartSeries> metrics = metric_series(d), collapse = collapse_series(d);
  if (metrics.empty() && collapse.empty()) return "";
  std::ostringstream out;
  ChartOptions o;
  o.y_from_zero = true;
  out << "<h2>Evaluation</h2>\n<div class=\"charts\">\n";
  o.id = "metrics", o.title = d.pretraining ? "kNN accuracy (validation)" : "Validation metrics";
  o.y_label = d.pretraining ? "accuracy" : "score";
  if (!metrics.empty()) out << "<div class=\"panel\">" << svg_line_chart(metrics, o) << "</div>\n";
  if (!collapse.empty()) {
    o.id = "collapse", o.title = "Collapse diagnostics", o.y_label = "value";
    out << "<div class=\"panel\">" << svg_line_chart(collapse, o) << "</div>\n";
  }
  if (d.classes.num_classes() > 0) {
    o.id = "class-iou", o.title = "IoU per class", o.y_label = "IoU";
    out << "<div class=\"panel\">" << svg_line_chart(class_iou_series(d), o) << "</div>\n";
  }
  out << "</div>\n";
  return out.str();
}

std::string iou_table(const ReportData& d, const json& last, const std::string& source) {
  std::ostringstream out;
  out << "<h3>Per-class IoU</h3>\n<p class=\"muted\">" << html_escape(source) << "</p>\n";
  out << "<table id=\"iou-table\">\n<tr><th class=\"name\">class</th><th>IoU</th><th></th><th>accuracy</th></tr>\n";
  auto value_at = [&](const char* key, size_t i) {
    return last.contains(key) && last[key].is_array() && i < last[key].size() && last[key][i].is_number()
               ? last[key][i].get<double>()
               : NAN;
  };
  for (int c = 0; c < d.classes.num_classes(); ++c) {
    const double iou = value_at("iou", size_t(c)), acc = value_at("acc", size_t(c));
    const double width = std::isfinite(iou) ? std::clamp(iou, 0.0, 1.0) * 100 : 0;
    out << "<tr class=\"class\"><td class=\"name\">" << swatch(d.classes, size_t(c))
        << html_escape(class_name(d.classes, size_t(c))) << "</td><td>" << format_number(iou, 3)
        << "</td><td class=\"bar\"><div style=\"width:" << format_number(width, 4) << "%\"></div></td><td>"
        << format_number(acc, 3) << "</td></tr>\n";
  }
  out << "<tr class=\"mean\"><td class=\"name\">mean</td><td>" << format_number(number_or_nan(last, "miou"), 3)
      << "</td><td class=\"bar\"></td><td>" << format_number(number_or_nan(last, "macc"), 3) << "</td></tr>\n";
  out << "</table>\n";
  return out.str();
}

// "0" for no pixels, "<0.01" for a few, else two decimals.
std::string share_text(int64_t count, double share) {
  if (count == 0) return "0";
  if (share < 0.005) return "&lt;0.01";
  char buffer[16];
  std::snprintf(buffer, sizeof(buffer), "%.2f", share);
  return buffer;
}

std::string confusion_table(const ReportData& d) {
  const int n = d.classes.num_classes();
  std::ostringstream out;
  out << "<h3>Confusion matrix</h3>\n<p class=\"muted\">Rows: ground truth, columns: prediction; each row "
         "normalized to 1 (the share of that class's pixels predicted as each class). Computed now on "
      << d.eval_images << " validation images: mIoU " << format_number(number_or_nan(d.eval_now, "miou"), 3)
      << ", pixel accuracy " << format_number(number_or_nan(d.eval_now, "pixel_acc"), 3) << ".</p>\n";
  out << "<div class=\"panel\"><table id=\"confusion\">\n<tr><th class=\"corner\">truth \\ prediction</th>";
  for (int c = 0; c < n; ++c)
    out << "<th class=\"col\">" << swatch(d.classes, size_t(c)) << html_escape(class_name(d.classes, size_t(c))) << "</th>";
  out << "</tr>\n";
  for (int t = 0; t < n; ++t) {
    int64_t row_total = 0;
    for (int p = 0; p < n; ++p) row_total += d.confusion[size_t(t * n + p)];
    out << "<tr><th class=\"name\">" << swatch(d.classes, size_t(t)) << html_escape(class_name(d.classes, size_t(t)))
        << "</th>";
    for (int p = 0; p < n; ++p) {
      const int64_t count = d.confusion[size_t(t * n + p)];
      if (row_total == 0) {
        out << "<td class=\"empty\" title=\"no pixels of this class\">&ndash;</td>";
        continue;
      }
      const double share = double(count) / double(row_total);
      // White to dark blue; light text on dark cells.
      const int r = int(std::lround(248 + (30 - 248) * share)), g = int(std::lround(250 + (58 - 250) * share)),
                b = int(std::lround(252 + (138 - 252) * share));
      out << "<td style=\"background:rgb(" << r << ',' << g << ',' << b << ");color:" << (share > 0.5 ? "#fff" : "#1f2937")
          << "\" title=\"" << html_escape(class_name(d.classes, size_t(t))) << " predicted as "
          << html_escape(class_name(d.classes, size_t(p))) << ": " << count << " px\">"
          << share_text(count, share) << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</table></div>\n";
  return out.str();
}

std::string samples_section(const ReportData& d) {
  std::ostringstream out;
  out << "<h2>Predictions</h2>\n<p class=\"muted\">The first " << d.samples.size()
      << (d.instances ? " validation images: the image, the ground-truth instances and the predicted ones, each its "
                        "own colour, predictions with their score.</p>\n<div class=\"legend-row\">"
                      : " validation images: the image, the ground truth and the prediction blended over it "
                        "(unlabeled pixels show the image).</p>\n<div class=\"legend-row\">");
  for (int c = 0; c < d.classes.num_classes(); ++c)
    out << "<span>" << swatch(d.classes, size_t(c)) << html_escape(class_name(d.classes, size_t(c))) << "</span>";
  out << "</div>\n<div class=\"panel\"><div class=\"samples\" id=\"samples\">\n"
         "<div></div><div class=\"head\">image</div><div class=\"head\">ground truth</div>"
         "<div class=\"head\">prediction</div>\n";
  for (const ReportSample& s : d.samples) {
    const std::string id = html_escape(s.id);
    out << "<div class=\"id\">" << id << "</div>";
    const std::pair<const char*, const cv::Mat*> kinds[] = {{"image", &s.image}, {"truth", &s.truth}, {"prediction", &s.prediction}};
    for (auto [kind, mat] : kinds)
      out << "<div><img class=\"overlay\" data-kind=\"" << kind << "\" alt=\"" << id << ' ' << kind << "\" width=\""
          << mat->cols << "\" height=\"" << mat->rows << "\" src=\"" << png_data_uri(*mat) << "\"></div>";
    out << "\n";
  }
  out << "</div></div>\n";
  return out.str();
}

std::string image_cell(const char* kind, const std::string& id, const cv::Mat& mat) {
  std::ostringstream out;
  out << "<div><img class=\"overlay\" data-kind=\"" << kind << "\" alt=\"" << id << ' ' << kind << "\" width=\""
      << mat.cols << "\" height=\"" << mat.rows << "\" src=\"" << png_data_uri(mat) << "\"></div>";
  return out.str();
}

std::string stylized_section(const ReportData& d) {
  std::ostringstream out;
  out << "<h2>Stylized source</h2>\n<p class=\"muted\">Labeled source images as the segmenter sees them in training: "
         "each in the look of an unlabeled target image (" << html_escape(d.stylizer) << ").</p>\n"
      << "<div class=\"panel\"><div class=\"samples\" id=\"stylized\">\n"
         "<div></div><div class=\"head\">source</div><div class=\"head\">stylized</div><div class=\"head\">target</div>\n";
  for (const StylizedSample& s : d.stylized) {
    const std::string id = html_escape(s.id);
    out << "<div class=\"id\">" << id << "</div>" << image_cell("source", id, s.source) << image_cell("stylized", id, s.stylized)
        << image_cell("target", id, s.target) << "\n";
  }
  out << "</div></div>\n";
  return out.str();
}

std::string summary_cards(const ReportData& d, const json& last) {
  std::vector<double> speeds;
  for (const json& r : d.log.steps) speeds.push_back(number_or_nan(r, "images_per_s"));
  const int64_t iters = d.log.steps.empty() ? 0 : d.log.steps.back()["iter"].get<int64_t>();
  std::string out = card("iterations", std::to_string(iters));
  if (d.instances) {
    out += card("val mask AP", format_number(number_or_nan(last, "mask_ap"), 3)) +
           card("val mask AP50", format_number(number_or_nan(last, "mask_ap50"), 3)) +
           card("val mask AR@100", format_number(number_or_nan(last, "mask_ar100"), 3));
  } else if (d.pretraining) {
    if (last.contains("knn_top1")) out += card("val kNN top-1", format_number(number_or_nan(last, "knn_top1"), 3));
    if (last.contains("knn_top5")) out += card("val kNN top-5", format_number(number_or_nan(last, "knn_top5"), 3));
  } else {
    out += card("val mIoU", format_number(number_or_nan(last, "miou"), 3)) +
           card("val mAcc", format_number(number_or_nan(last, "macc"), 3)) +
           card("pixel accuracy", format_number(number_or_nan(last, "pixel_acc"), 3));
  }
  out += card("images / s (median)", format_number(median(speeds), 3)) + card("model", d.model);
  if (d.classes.num_classes() > 0) out += card("classes", std::to_string(d.classes.num_classes()));
  return "<div class=\"cards\">\n" + out + "</div>\n";
}

// The IoU table, the confusion matrix and the overlays, each only where there is data for it.
std::string segmentation_sections(const ReportData& d, const json& last) {
  const int n = d.classes.num_classes();
  std::string out;
  if (n > 0) {
    const std::string source = d.log.evals.empty()
                                   ? "metrics.jsonl has no evaluation; values from the evaluation made for this report."
                                   : "From the last evaluation in metrics.jsonl (iteration " +
                                         std::to_string(last.value("iter", int64_t(0))) + ").";
    out += iou_table(d, last, source);
  }
  if (n > 0 && d.confusion.size() == size_t(n) * size_t(n)) out += confusion_table(d);
  if (!d.samples.empty()) out += samples_section(d);
  if (!d.stylized.empty()) out += stylized_section(d);
  return out;
}

}  // namespace

std::string render_report_html(const ReportData& d) {
  const json& last = d.log.evals.empty() ? d.eval_now : d.log.evals.back();
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>lesseg report: "
      << html_escape(d.title) << "</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n<main>\n";
  out << "<h1>lesseg report: " << html_escape(d.title) << "</h1>\n<div class=\"muted\">" << html_escape(d.run_dir)
      << " &middot; generated " << html_escape(d.generated) << "</div>\n";
  out << summary_cards(d, last) << training_charts(d) << evaluation_charts(d) << segmentation_sections(d, last);
  out << "<h2>Configuration</h2>\n<p class=\"muted\">The resolved config.yaml of the run.</p>\n<pre id=\"config\">"
      << html_escape(d.config_yaml) << "</pre>\n";
  out << "<div id=\"render-check\"></div>\n</main>\n<script>" << kRenderCheck << "</script>\n</body>\n</html>\n";
  return out.str();
}

}  // namespace lesseg
