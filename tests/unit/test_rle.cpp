// COCO RLE codec against hand-computed vectors, a plain reference encoder, and goldens from
// tools/coco_rle_reference.py (a line-by-line Python port of cocoapi maskApi.c).
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "lesseg/io/rle.h"

namespace {

using lesseg::rle::Rle;
using nlohmann::json;

json load_golden() {
  std::ifstream in(std::string(LESSEG_FIXTURES) + "/coco/rle_golden.json");
  EXPECT_TRUE(in.good()) << "missing tests/fixtures/coco/rle_golden.json";
  return json::parse(in);
}

std::vector<std::vector<double>> polygons_of(const json& j) { return j.get<std::vector<std::vector<double>>>(); }

// Plain reference: column-major runs, first run zeros.
std::vector<uint32_t> naive_counts(const cv::Mat& m) {
  std::vector<uint32_t> counts;
  uint8_t prev = 0;
  uint32_t run = 0;
  for (int x = 0; x < m.cols; ++x)
    for (int y = 0; y < m.rows; ++y) {
      uint8_t v = m.at<uint8_t>(y, x) ? 1 : 0;
      if (v != prev) {
        counts.push_back(run);
        run = 0;
        prev = v;
      }
      ++run;
    }
  counts.push_back(run);
  return counts;
}

cv::Mat random_mask(std::mt19937& rng, int h, int w, double density) {
  cv::Mat m(h, w, CV_8U);
  std::bernoulli_distribution on(density);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) m.at<uint8_t>(y, x) = on(rng) ? 1 : 0;
  return m;
}

bool same(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::countNonZero(a != b) == 0;
}

TEST(RleString, HandComputedVectors) {
  // 100 = 3*32 + 4: low group 4 with continuation (4|0x20)+48 = 'T', then '3'.
  // 16 needs a second group because 0x10 is the sign bit: '`' then '0'. 31 -> 'o','0'.
  // counts[3] is stored as counts[3]-counts[1]: 1-2 = -1 -> 0x1f+48 = 'O'.
  const std::vector<std::pair<std::vector<uint32_t>, std::string>> cases = {
      {{0, 5}, "05"}, {{3, 2, 4, 1}, "324O"}, {{100}, "T3"},     {{16}, "`0"},
      {{31}, "o0"},   {{5, 3, 5, 3}, "5350"}, {{5, 3, 8}, "538"}, {{0}, "0"},
  };
  for (const auto& [counts, text] : cases) {
    uint64_t sum = 0;
    for (uint32_t c : counts) sum += c;
    Rle r{int64_t(sum), 1, counts};
    EXPECT_EQ(lesseg::rle::to_string(r), text);
    EXPECT_EQ(lesseg::rle::from_string(text, int64_t(sum), 1).counts, counts) << text;
  }
}

TEST(RleString, GoldenStrings) {
  json golden = load_golden();  // keep alive: the loop must not iterate into a temporary
  for (const json& c : golden["strings"]) {
    auto counts = c["counts"].get<std::vector<uint32_t>>();
    uint64_t sum = 0;
    for (uint32_t v : counts) sum += v;
    Rle r{int64_t(sum), 1, counts};
    std::string text = c["string"];
    EXPECT_EQ(lesseg::rle::to_string(r), text);
    EXPECT_EQ(lesseg::rle::from_string(text, int64_t(sum), 1).counts, counts);
  }
}

TEST(RleString, RandomMaskRoundTrips) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    int h = 1 + int(rng() % 40), w = 1 + int(rng() % 40);
    cv::Mat m = random_mask(rng, h, w, (i % 5) / 4.0 * 0.9 + 0.05);
    Rle r = lesseg::rle::encode(m);
    ASSERT_EQ(r.counts, naive_counts(m));
    EXPECT_EQ(lesseg::rle::area(r), uint64_t(cv::countNonZero(m)));
    Rle back = lesseg::rle::from_string(lesseg::rle::to_string(r), h, w);
    EXPECT_EQ(back.counts, r.counts);
    EXPECT_TRUE(same(lesseg::rle::decode(back), m));
  }
}

TEST(RleString, EncodesEmptyAndFullMasks) {
  EXPECT_EQ(lesseg::rle::encode(cv::Mat::zeros(3, 4, CV_8U)).counts, (std::vector<uint32_t>{12}));
  EXPECT_EQ(lesseg::rle::encode(cv::Mat::ones(3, 4, CV_8U) * 255).counts, (std::vector<uint32_t>{0, 12}));
  EXPECT_THROW(lesseg::rle::encode(cv::Mat::zeros(3, 4, CV_8UC3)), std::invalid_argument);
}

TEST(RleString, RejectsMalformedStrings) {
  auto bad = [](const std::string& s, int64_t h, int64_t w) {
    EXPECT_THROW(lesseg::rle::from_string(s, h, w), std::invalid_argument) << "'" << s << "'";
  };
  bad("", 2, 2);                    // counts sum to 0, not 4
  bad("05", 2, 2);                  // sums to 5
  bad("/4", 2, 2);                  // character below '0'
  bad("4p", 2, 2);                  // character above 'o'
  bad(std::string("4\0", 2), 2, 2);  // embedded NUL
  bad("T", 100, 1);                 // ends inside a multi-character value
  bad("0O", 1, 1);                  // second count decodes to -1
  bad(std::string(20, 'o'), 1, 1);  // value longer than any count needs
  bad("05", -1, 5);                 // negative size
  EXPECT_NO_THROW(lesseg::rle::from_string("05", 5, 1));
}

TEST(RleDecode, RejectsCountsNotSummingToSize) {
  EXPECT_THROW(lesseg::rle::decode(Rle{2, 2, {1, 2}}), std::invalid_argument);
  EXPECT_THROW(lesseg::rle::decode(Rle{2, 2, {3, 4}}), std::invalid_argument);
  EXPECT_THROW(lesseg::rle::validate(Rle{2, 2, {}}), std::invalid_argument);
  cv::Mat m = lesseg::rle::decode(Rle{2, 3, {1, 2, 3}});  // column-major: (0,0)=0, (1,0)=1, (0,1)=1
  EXPECT_EQ(m.rows, 2);
  EXPECT_EQ(m.cols, 3);
  EXPECT_EQ(m.at<uint8_t>(1, 0), 1);
  EXPECT_EQ(m.at<uint8_t>(0, 1), 1);
  EXPECT_EQ(cv::countNonZero(m), 2);
}

TEST(RlePolygon, MatchesReferenceGoldens) {
  json golden = load_golden();
  ASSERT_GT(golden["polygons"].size(), 20u);
  for (const json& c : golden["polygons"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    int64_t h = c["height"], w = c["width"];
    Rle r = lesseg::rle::from_polygons(polygons_of(c["polygons"]), h, w);
    EXPECT_EQ(lesseg::rle::to_string(r), c["counts"].get<std::string>());
    EXPECT_EQ(lesseg::rle::area(r), c["area"].get<uint64_t>());
    auto box = lesseg::rle::bbox(r);
    auto want = c["bbox"].get<std::vector<double>>();
    EXPECT_EQ(std::vector<double>(box.begin(), box.end()), want);
  }
}

TEST(RlePolygon, SquareCoversExpectedPixels) {
  // Pixel centres strictly inside [1,4]x[1,4] plus the cocoapi boundary rule -> a 3x3 block.
  Rle r = lesseg::rle::from_polygons({{1, 1, 4, 1, 4, 4, 1, 4}}, 6, 6);
  cv::Mat m = lesseg::rle::decode(r);
  EXPECT_EQ(cv::countNonZero(m(cv::Rect(1, 1, 3, 3))), 9);
  EXPECT_EQ(cv::countNonZero(m), 9);
}

TEST(RlePolygon, RejectsBadPolygons) {
  EXPECT_THROW(lesseg::rle::from_polygons({{1, 1, 4, 1, 4}}, 6, 6), std::invalid_argument);
  EXPECT_THROW(lesseg::rle::from_polygons({{1, 1, 4, 1, NAN, 4}}, 6, 6), std::invalid_argument);
  EXPECT_THROW(lesseg::rle::from_polygons({{1, 1, 4, 1, 1e12, 4}}, 6, 6), std::invalid_argument);
  EXPECT_EQ(lesseg::rle::from_polygons({}, 3, 3).counts, (std::vector<uint32_t>{9}));
}

TEST(RleMerge, UnionAndIntersectionMatchPixelOps) {
  std::mt19937 rng(11);
  for (int i = 0; i < 50; ++i) {
    int h = 1 + int(rng() % 20), w = 1 + int(rng() % 20);
    cv::Mat a = random_mask(rng, h, w, 0.3), b = random_mask(rng, h, w, 0.6), c = random_mask(rng, h, w, 0.5);
    std::vector<Rle> rles = {lesseg::rle::encode(a), lesseg::rle::encode(b), lesseg::rle::encode(c)};
    cv::Mat uni = (a | b | c), inter = (a & b & c);
    EXPECT_EQ(lesseg::rle::merge(rles, false).counts, lesseg::rle::encode(uni).counts);
    EXPECT_EQ(lesseg::rle::merge(rles, true).counts, lesseg::rle::encode(inter).counts);
  }
}

TEST(RleMerge, EdgeCases) {
  Rle a{2, 2, {1, 3}};
  EXPECT_EQ(lesseg::rle::merge({}).counts.size(), 0u);
  EXPECT_EQ(lesseg::rle::merge({a}).counts, a.counts);
  EXPECT_THROW(lesseg::rle::merge({a, Rle{4, 1, {4}}}), std::invalid_argument);
  EXPECT_THROW(lesseg::rle::merge({a, Rle{2, 2, {5}}}), std::invalid_argument);
}

TEST(RleIou, HandComputed) {
  cv::Mat dt = cv::Mat::zeros(4, 4, CV_8U), gt = cv::Mat::zeros(4, 4, CV_8U), far = cv::Mat::zeros(4, 4, CV_8U);
  dt.colRange(0, 2).setTo(1);  // 8 pixels
  gt.colRange(1, 3).setTo(1);  // 8 pixels, 4 shared
  far.col(3).setTo(1);
  Rle d = lesseg::rle::encode(dt), g = lesseg::rle::encode(gt);
  EXPECT_DOUBLE_EQ(lesseg::rle::iou(d, g), 4.0 / 12.0);
  EXPECT_DOUBLE_EQ(lesseg::rle::iou(d, g, true), 4.0 / 8.0);  // crowd: union = detection area
  EXPECT_DOUBLE_EQ(lesseg::rle::iou(d, lesseg::rle::encode(far)), 0.0);
  EXPECT_DOUBLE_EQ(lesseg::rle::iou(d, d), 1.0);
  EXPECT_THROW(lesseg::rle::iou(d, Rle{2, 8, {16}}), std::invalid_argument);
}

TEST(RleIou, MatchesReferenceGoldens) {
  json golden = load_golden();
  for (const json& c : golden["iou"]) {
    int64_t h = c["height"], w = c["width"];
    Rle d = lesseg::rle::from_polygons(polygons_of(c["detection"]), h, w);
    Rle g = lesseg::rle::from_polygons(polygons_of(c["ground_truth"]), h, w);
    EXPECT_NEAR(lesseg::rle::iou(d, g), c["iou"].get<double>(), 1e-12);
    EXPECT_NEAR(lesseg::rle::iou(d, g, true), c["crowd_iou"].get<double>(), 1e-12);
    EXPECT_EQ(lesseg::rle::area(lesseg::rle::merge({d, g}, true)), c["intersection_area"].get<uint64_t>());
  }
}

TEST(RleBbox, FollowsCocoapiRules) {
  EXPECT_EQ(lesseg::rle::bbox(Rle{3, 3, {9}}), (std::array<double, 4>{0, 0, 0, 0}));
  EXPECT_EQ(lesseg::rle::bbox(Rle{4, 4, {5, 3, 8}}), (std::array<double, 4>{1, 1, 1, 3}));
  // A run from (x=0,y=3) into (x=1,y=0) crosses a column: rleToBbox then spans every row.
  EXPECT_EQ(lesseg::rle::bbox(Rle{4, 2, {3, 2, 3}}), (std::array<double, 4>{0, 0, 2, 4}));
}

}  // namespace
