// The report's building blocks: base64, escaping, chart geometry and the page's structure on
// hand-made data (no model, no training).
#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "lesseg/report/html.h"
#include "lesseg/report/report_html.h"
#include "lesseg/report/svg_chart.h"

namespace lesseg {
namespace {

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

TEST(ReportHtml, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(ReportHtml, EscapesMarkup) {
  EXPECT_EQ(html_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  EXPECT_EQ(format_number(0.123456, 3), "0.123");
  EXPECT_EQ(format_number(NAN), "n/a");
}

TEST(ReportHtml, NiceTicksAreRoundAndCoverTheRange) {
  auto ticks = nice_ticks(0, 1, 6);
  ASSERT_EQ(ticks.size(), 6u);
  EXPECT_DOUBLE_EQ(ticks[1], 0.2);
  EXPECT_DOUBLE_EQ(ticks.back(), 1.0);
  ticks = nice_ticks(3, 1998, 5);
  EXPECT_DOUBLE_EQ(ticks.front(), 500);
  EXPECT_DOUBLE_EQ(ticks.back(), 1500);
}

TEST(ReportHtml, ChartPathsBreakAtNonFiniteValuesAndEmptyChartsSaySo) {
  ChartOptions o;
  o.id = "c";
  std::string svg = svg_line_chart({{"a", {{0, 1}, {1, 2}, {2, NAN}, {3, 1}, {4, 0.5}}}}, o);
  EXPECT_EQ(svg.rfind("<svg class=\"chart\" id=\"c\"", 0), 0u);
  EXPECT_EQ(count_of(svg, "<path class=\"series\""), 1u);
  EXPECT_EQ(count_of(svg, " M"), 1u) << "the NaN should start a second sub-path";
  EXPECT_EQ(count_of(svg, "<circle"), 4u);
  EXPECT_EQ(svg.find("no data"), std::string::npos);
  std::string empty = svg_line_chart({{"a", {}}}, o);
  EXPECT_NE(empty.find("no data"), std::string::npos);
  EXPECT_EQ(empty.find("<path"), std::string::npos);
  // One point, a constant series: still a valid range (no NaN coordinates).
  std::string flat = svg_line_chart({{"a", {{5, 2}}}}, o);
  EXPECT_EQ(flat.find("nan"), std::string::npos);
  EXPECT_EQ(flat.find("inf"), std::string::npos);
  // Too many series for the title line: legend rows under the title make the chart taller.
  std::vector<ChartSeries> many;
  for (int i = 0; i < 19; ++i) many.push_back({"class number " + std::to_string(i), {{0, double(i)}, {1, 1.0}}});
  std::string tall = svg_line_chart(many, o);
  EXPECT_EQ(count_of(tall, "<g class=\"legend\">"), 19u);
  EXPECT_EQ(tall.find("height=\"300\""), std::string::npos) << "expected a taller chart";
}

TEST(ReportHtml, PageHasEverySectionAndNoNetworkReference) {
  ReportData d;
  d.title = "demo <run>";
  d.classes.names = {"background", "disc", "never"};
  d.classes.colors = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}};
  d.log.steps = {{{"iter", 10}, {"lr", 0.01}, {"loss", 2.0}, {"loss_ce", 1.5}, {"loss_aux", 0.5}, {"images_per_s", 30.0}},
                 {{"iter", 20}, {"lr", 0.005}, {"loss", 1.0}, {"loss_ce", 0.8}, {"loss_aux", 0.2}, {"images_per_s", 31.0}}};
  d.log.evals = {{{"iter", 20}, {"split", "val"}, {"miou", 0.5}, {"macc", 0.6}, {"pixel_acc", 0.9},
                  {"iou", {0.9, 0.1, nullptr}}, {"acc", {0.95, 0.2, nullptr}}}};
  d.confusion = {90, 10, 0, 30, 70, 0, 0, 0, 0};  // the third class never appears in the truth
  d.eval_now = d.log.evals[0];
  d.eval_images = 1;
  cv::Mat image(8, 12, CV_8UC3, cv::Scalar(10, 200, 30));
  d.samples.push_back({"s1", image, image, image});
  d.config_yaml = "train:\n  iters: 20  # <b>\n";
  const std::string html = render_report_html(d);
  for (const char* id : {"loss", "lr", "throughput", "metrics", "class-iou"})
    EXPECT_NE(html.find(std::string("<svg class=\"chart\" id=\"") + id + "\""), std::string::npos) << id;
  for (const char* term : {"total", "ce", "aux"})
    EXPECT_NE(html.find(std::string("data-series=\"") + term + "\""), std::string::npos) << term;
  EXPECT_NE(html.find("demo &lt;run&gt;"), std::string::npos);
  EXPECT_NE(html.find("iters: 20  # &lt;b&gt;"), std::string::npos);
  EXPECT_EQ(count_of(html, "<img class=\"overlay\""), 3u);
  EXPECT_NE(html.find("src=\"data:image/png;base64,iVBORw0KGgo"), std::string::npos);
  EXPECT_NE(html.find(">0.70</td>"), std::string::npos) << "row-normalized share 70 / 100";
  EXPECT_NE(html.find("no pixels of this class"), std::string::npos);
  EXPECT_NE(html.find("<div id=\"render-check\">"), std::string::npos);
  EXPECT_EQ(html.find("http"), std::string::npos);
}

}  // namespace
}  // namespace lesseg
