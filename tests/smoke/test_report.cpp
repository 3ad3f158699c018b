// `lesseg report`: a small trained run becomes one self-contained report.html with every part
// present, the CLI refuses bad run folders with the documented exit codes, and a headless
// Chromium renders the page (charts drawn, images decoded, pixels on screen).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/fs.h"
#include "lesseg/core/threads.h"
#include "lesseg/methods/saved_segmenter.h"
#include "lesseg/methods/supervised/supervised.h"
#include "lesseg/report/report.h"
#include "smoke_util.h"

namespace lesseg {
namespace {
namespace fs = std::filesystem;
using smoke::fresh_dir;
using smoke::run_cli;
using smoke::run_command;

constexpr int kImages = 4;

// An independent base64 decoder (the report's encoder is under test).
std::string base64_decode(const std::string& text) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '+' ? 62 : c == '/' ? 63 : -1;
    if (v < 0) break;  // '=' padding
    buffer = buffer << 6 | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char(buffer >> bits & 0xff);
    }
  }
  return out;
}

// The text between `open` (first occurrence) and the next `close`, or "" when absent.
std::string section(const std::string& html, const std::string& open, const std::string& close) {
  auto begin = html.find(open);
  if (begin == std::string::npos) return "";
  auto end = html.find(close, begin);
  return end == std::string::npos ? "" : html.substr(begin, end - begin);
}

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

// One tiny run (4 logged iterations, evaluations at 2 and 4) shared by the tests of this file.
class Report : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    configure_threads(2);
    run_ = fresh_dir("report_run");
    auto settings = smoke::small_run(4);
    for (const char* s : {"train.batch_size=2", "train.log_every=1", "train.eval_every=2", "eval.max_images=4"})
      settings.push_back(s);
    train_supervised(Config::load("", settings), run_);
    ReportOptions options;
    options.images = kImages;
    const auto start = std::chrono::steady_clock::now();
    report_ = write_report(run_, options);
    report_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    html_ = read_file(report_);
    classes_ = load_segmenter(run_ / "model.safetensors", torch::kCPU).classes.names;
  }
  static inline fs::path run_, report_;
  static inline std::string html_;
  static inline std::vector<std::string> classes_;
  static inline double report_seconds_ = 0;
};

TEST_F(Report, HasChartsTablesOverlaysAndConfig) {
  ASSERT_EQ(report_, run_ / "report.html");
  EXPECT_LT(report_seconds_, 30) << "the report took " << report_seconds_ << " s";
  EXPECT_EQ(html_.rfind("<!DOCTYPE html>", 0), 0u);
  // Charts: every loss term and the lr, metric curves over the two evaluations.
  const std::string loss = section(html_, "<svg class=\"chart\" id=\"loss\"", "</svg>");
  ASSERT_FALSE(loss.empty()) << "no loss chart";
  EXPECT_NE(loss.find("<path class=\"series\" data-series=\"total\" d=\"M"), std::string::npos);
  EXPECT_NE(loss.find("data-series=\"ce\""), std::string::npos) << "the loss term is not charted";
  const std::string lr = section(html_, "<svg class=\"chart\" id=\"lr\"", "</svg>");
  EXPECT_NE(lr.find("data-series=\"lr\""), std::string::npos);
  const std::string metrics = section(html_, "<svg class=\"chart\" id=\"metrics\"", "</svg>");
  for (const char* s : {"mIoU", "mAcc", "pixel acc"})
    EXPECT_NE(metrics.find(std::string("data-series=\"") + s + "\""), std::string::npos) << s;
  // Four step records: the loss path has four points.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(loss, m, std::regex("data-series=\"total\" d=\"([^\"]*)\"")));
  EXPECT_EQ(count_of(m[1].str(), " L") + 1, 4u) << m[1].str();
  EXPECT_NE(html_.find("<svg class=\"chart\" id=\"class-iou\""), std::string::npos);

  // The per-class IoU table and the confusion matrix name every class.
  ASSERT_EQ(classes_.size(), 8u);
  const std::string iou = section(html_, "<table id=\"iou-table\">", "</table>");
  const std::string confusion = section(html_, "<table id=\"confusion\">", "</table>");
  ASSERT_FALSE(iou.empty());
  ASSERT_FALSE(confusion.empty());
  EXPECT_EQ(count_of(iou, "<tr class=\"class\">"), classes_.size());
  for (const auto& name : classes_) {
    EXPECT_NE(iou.find(">" + name + "</td>"), std::string::npos) << name;
    EXPECT_NE(confusion.find(">" + name + "</th>"), std::string::npos) << name;
  }
  // A row-normalized matrix: 8 x 8 cells, each "0", a share in [0, 1] or "–" for an absent class.
  EXPECT_EQ(count_of(confusion, "<td"), classes_.size() * classes_.size());
  EXPECT_EQ(count_of(confusion, "<tr>"), classes_.size() + 1);

  // The overlay grid: image / truth / prediction for kImages images, each a PNG data URI that decodes.
  EXPECT_EQ(count_of(html_, "data-kind=\"prediction\""), size_t(kImages));
  std::regex img_re("<img class=\"overlay\" data-kind=\"(image|truth|prediction)\"[^>]* src=\"data:image/png;base64,([^\"]+)\"");
  size_t decoded = 0;
  for (std::sregex_iterator it(html_.begin(), html_.end(), img_re), end; it != end; ++it) {
    std::string png = base64_decode((*it)[2].str());
    ASSERT_GE(png.size(), 8u);
    EXPECT_EQ(png.substr(1, 3), "PNG");
    cv::Mat image = cv::imdecode(std::vector<uchar>(png.begin(), png.end()), cv::IMREAD_UNCHANGED);
    ASSERT_FALSE(image.empty()) << "an overlay does not decode";
    EXPECT_EQ(image.cols, 96);
    EXPECT_EQ(image.rows, 96);
    ++decoded;
  }
  EXPECT_EQ(decoded, size_t(3 * kImages));
  EXPECT_EQ(count_of(html_, "<img"), size_t(3 * kImages));

  // The resolved config, and nothing from the network.
  const std::string config = section(html_, "<pre id=\"config\">", "</pre>");
  EXPECT_NE(config.find("iters: 4"), std::string::npos) << config;
  EXPECT_EQ(html_.find("http"), std::string::npos) << "the report refers to the network";
  EXPECT_EQ(html_.find("<link"), std::string::npos);
  EXPECT_EQ(html_.find("src=\"//"), std::string::npos);
}

TEST_F(Report, CliWritesTheReportAndRefusesBadRunFolders) {
  const fs::path out = fresh_dir("report_cli") / "page.html";
  auto ok = run_cli("report " + run_.string() + " --out " + out.string() + " --images 2 --threads 2");
  ASSERT_EQ(ok.code, 0) << ok.output;
  EXPECT_NE(ok.output.find(out.string()), std::string::npos) << ok.output;
  EXPECT_EQ(count_of(read_file(out), "data-kind=\"prediction\""), 2u);

  auto missing = run_cli("report " + fresh_dir("report_nowhere").string());
  EXPECT_EQ(missing.code, 3) << missing.output;
  EXPECT_NE(missing.output.find("not a run folder"), std::string::npos) << missing.output;
  // A run folder without its weights: exit 3 naming the file; nothing written.
  const fs::path partial = fresh_dir("report_partial");
  fs::create_directories(partial);
  fs::copy_file(run_ / "config.yaml", partial / "config.yaml");
  fs::copy_file(run_ / "metrics.jsonl", partial / "metrics.jsonl");
  auto no_model = run_cli("report " + partial.string());
  EXPECT_EQ(no_model.code, 3) << no_model.output;
  EXPECT_NE(no_model.output.find("model.safetensors"), std::string::npos) << no_model.output;
  EXPECT_NE(no_model.output.find("backbone.safetensors"), std::string::npos) << no_model.output;
  EXPECT_FALSE(fs::exists(partial / "report.html"));
  // A corrupt log line: exit 3 naming the file and the line.
  fs::copy_file(run_ / "model.safetensors", partial / "model.safetensors");
  std::ofstream(partial / "metrics.jsonl", std::ios::app) << "{not json\n";
  auto bad_log = run_cli("report " + partial.string());
  EXPECT_EQ(bad_log.code, 3) << bad_log.output;
  EXPECT_NE(bad_log.output.find("metrics.jsonl: line"), std::string::npos) << bad_log.output;
  EXPECT_EQ(run_cli("report " + run_.string() + " --images -1").code, 2);
}

// A self-supervised pretraining run (backbone.safetensors, no model.safetensors): the log's curves,
// the kNN accuracy once the log has it, the config, and none of the segmenter's parts.
TEST(ReportPretraining, ChartsTheLogWithoutSegmenterParts) {
  const fs::path run = fresh_dir("report_pretrain");
  std::string command = "pretrain " + std::string(LESSEG_SOURCE_DIR) + "/configs/quick/mae.yaml --threads 1 --run-dir " + run.string();
  for (const char* s : {"data.synth.size=64", "data.synth.num_train=16", "views.global_size=32", "train.batch_size=8",
                        "train.iters=4", "train.log_every=1", "train.checkpoint_every=0"})
    command += std::string(" --set ") + s;
  auto pretrain = run_cli(command);
  ASSERT_EQ(pretrain.code, 0) << pretrain.output;
  ASSERT_TRUE(fs::exists(run / "backbone.safetensors"));
  ASSERT_FALSE(fs::exists(run / "model.safetensors"));

  auto report = run_cli("report " + run.string() + " --threads 1");
  ASSERT_EQ(report.code, 0) << report.output;
  const std::string html = read_file(run / "report.html");
  const std::string loss = section(html, "<svg class=\"chart\" id=\"loss\"", "</svg>");
  EXPECT_NE(loss.find("data-series=\"total\" d=\"M"), std::string::npos) << loss;
  EXPECT_NE(loss.find("data-series=\"mae\" d=\"M"), std::string::npos) << "loss_mae is not charted";
  for (const char* chart : {"lr", "throughput"})
    EXPECT_NE(html.find(std::string("<svg class=\"chart\" id=\"") + chart + "\""), std::string::npos) << chart;
  EXPECT_NE(html.find("vit_tiny8 pretrained with mae (self-supervised)"), std::string::npos);
  EXPECT_NE(section(html, "<pre id=\"config\">", "</pre>").find("method: mae"), std::string::npos);
  for (const char* absent : {"id=\"confusion\"", "id=\"iou-table\"", "id=\"class-iou\"", "<img", "id=\"samples\"",
                             "id=\"metrics\"", "<table"})
    EXPECT_EQ(html.find(absent), std::string::npos) << absent << " in a pretraining report";

  // kNN evaluations (as `probe.data` makes them) become the metrics chart and a summary card.
  std::ofstream(run / "metrics.jsonl", std::ios::app)
      << R"({"iter": 2, "split": "val", "knn_top1": 0.25, "knn_top5": 0.75, "teacher_entropy": 8.1})" << "\n"
      << R"({"iter": 4, "split": "val", "knn_top1": 0.5, "knn_top5": 0.875, "teacher_entropy": 6.5})" << "\n";
  const std::string with_knn = read_file(write_report(run, ReportOptions{}));
  const std::string metrics = section(with_knn, "<svg class=\"chart\" id=\"metrics\"", "</svg>");
  EXPECT_NE(metrics.find("data-series=\"kNN top-1\" d=\"M"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("data-series=\"kNN top-5\" d=\"M"), std::string::npos) << metrics;
  EXPECT_NE(with_knn.find("val kNN top-1</div><div class=\"value\">0.5<"), std::string::npos);
  // and the collapse diagnostics logged with them, their own chart
  const std::string collapse = section(with_knn, "<svg class=\"chart\" id=\"collapse\"", "</svg>");
  EXPECT_NE(collapse.find("data-series=\"teacher entropy\" d=\"M"), std::string::npos) << collapse;
  EXPECT_EQ(with_knn.find("id=\"confusion\""), std::string::npos);
}

std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    auto r = run_command(std::string("command -v ") + name);
    if (r.code == 0 && !r.output.empty()) return r.output.substr(0, r.output.find('\n'));
  }
  return "";
}

TEST_F(Report, RendersInHeadlessChromium) {
  const std::string chromium = find_chromium();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (apt-get install chromium)";
  const fs::path dir = fresh_dir("report_chromium");
  fs::create_directories(dir);
  const fs::path shot = dir / "report.png";
  const std::string common = "timeout 25 " + chromium +
                             " --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run"
                             " --user-data-dir=" + (dir / "profile").string() + " --window-size=1200,2400 ";
  const auto start = std::chrono::steady_clock::now();
  auto screenshot = run_command(common + "--screenshot=" + shot.string() + " file://" + report_.string());
  ASSERT_EQ(screenshot.code, 0) << screenshot.output.substr(screenshot.output.size() > 3000 ? screenshot.output.size() - 3000 : 0);
  auto dom = run_command(common + "--dump-dom file://" + report_.string() + " 2>/dev/null");
  ASSERT_EQ(dom.code, 0) << dom.output.substr(0, 2000);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fs::remove_all(dir / "profile");  // tens of MB of browser profile
  EXPECT_LT(seconds, 30) << "chromium took " << seconds << " s";

  // The rendered DOM: the inline check ran after load and saw every image decoded, the charts'
  // paths drawn with a length, and where each chart landed.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(dom.output, m, std::regex("<div id=\"render-check\"([^>]*)>"))) << "no render check";
  const std::string check = m[1].str();
  auto attribute = [&](const std::string& name) {
    std::smatch a;
    return std::regex_search(check, a, std::regex(name + "=\"([^\"]*)\"")) ? a[1].str() : std::string("missing");
  };
  EXPECT_EQ(attribute("data-images-total"), std::to_string(3 * kImages)) << check;
  EXPECT_EQ(attribute("data-images-loaded"), std::to_string(3 * kImages)) << check;
  // total + ce, lr, images/s, mIoU + mAcc + pixel acc, and the classes' IoU curves.
  const std::string drawn = attribute("data-series-drawn");
  ASSERT_NE(drawn, "missing") << check;
  EXPECT_GE(std::stoi(drawn), 7) << check;
  EXPECT_NE(dom.output.find("<svg class=\"chart\" id=\"loss\""), std::string::npos);

  // The screenshot: the requested size, far from blank, the loss chart's area drawn in its colours.
  cv::Mat image = cv::imread(shot.string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(image.empty()) << "no screenshot at " << shot;
  EXPECT_EQ(image.cols, 1200);
  EXPECT_EQ(image.rows, 2400);
  std::set<uint32_t> colours;
  for (int y = 0; y < image.rows; y += 2)
    for (int x = 0; x < image.cols; x += 2) {
      auto p = image.at<cv::Vec3b>(y, x);
      colours.insert(uint32_t(p[0]) << 16 | uint32_t(p[1]) << 8 | p[2]);
    }
  EXPECT_GT(colours.size(), 500u) << "the page looks blank";
  const std::string rects = attribute("data-chart-rects");
  ASSERT_TRUE(std::regex_search(rects, m, std::regex("loss:(\\d+),(\\d+),(\\d+),(\\d+)")))
      << check;
  cv::Rect rect(std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3]), std::stoi(m[4]));
  ASSERT_GT(rect.area(), 100 * 100) << check;
  ASSERT_LE(rect.y + rect.height, image.rows) << "the loss chart is below the screenshot";
  cv::Mat chart = image(rect);
  int non_white = 0, series_blue = 0;
  for (int y = 0; y < chart.rows; ++y)
    for (int x = 0; x < chart.cols; ++x) {
      auto p = chart.at<cv::Vec3b>(y, x);  // BGR
      non_white += p[0] < 230 || p[1] < 230 || p[2] < 230;
      series_blue += std::abs(p[0] - 0xb4) < 40 && std::abs(p[1] - 0x77) < 40 && std::abs(p[2] - 0x1f) < 40;
    }
  EXPECT_GT(non_white, chart.total() / 100) << "the loss chart area is blank";
  EXPECT_GT(series_blue, 50) << "no line in the first series' colour inside the loss chart";
}

}  // namespace
}  // namespace lesseg
