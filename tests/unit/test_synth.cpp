#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <opencv2/imgproc.hpp>
#include <set>
#include <string>

#include "lesseg/data/synth/synth.h"
#include "lesseg/io/coco.h"
#include "lesseg/io/image_io.h"

namespace lesseg::synth {
namespace {
namespace fs = std::filesystem;

Options opts(const std::string& domain, uint64_t seed = 7) {
  Options o;
  o.domain = domain;
  o.seed = seed;
  return o;
}

bool same_bytes(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::countNonZero(a.reshape(1) != b.reshape(1)) == 0;
}

// Median |Laplacian|: flat regions dominate, so this measures pixel noise (0 for clean fills).
double noise_level(const cv::Mat& rgb) {
  cv::Mat grey, lap;
  cv::cvtColor(rgb, grey, cv::COLOR_RGB2GRAY);
  cv::Laplacian(grey, lap, CV_32F);
  std::vector<float> v(lap.begin<float>(), lap.end<float>());
  for (float& x : v) x = std::fabs(x);
  std::nth_element(v.begin(), v.begin() + long(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// Mean gradient magnitude on object boundaries: edge sharpness (blur lowers it).
double edge_sharpness(const cv::Mat& rgb, const cv::Mat& semantic) {
  cv::Mat grey, gx, gy, mag, grown, boundary;
  cv::cvtColor(rgb, grey, cv::COLOR_RGB2GRAY);
  cv::Sobel(grey, gx, CV_32F, 1, 0);
  cv::Sobel(grey, gy, CV_32F, 0, 1);
  cv::magnitude(gx, gy, mag);
  cv::dilate(semantic, grown, cv::Mat::ones(3, 3, CV_8U));
  boundary = grown != semantic;
  return cv::mean(mag, boundary)[0];
}

bool touch_or_overlap(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat grown;
  cv::dilate(a, grown, cv::Mat::ones(3, 3, CV_8U));
  return cv::countNonZero(grown & b) > 0;
}

TEST(Synth, ClassesHaveBackgroundAndAtLeastSixObjects) {
  ClassInfo info = classes();
  EXPECT_GE(info.num_classes(), 7);
  EXPECT_EQ(info.names[0], "background");
  EXPECT_EQ(info.colors.size(), info.names.size());
}

TEST(Synth, DeterministicBySeedAndIndex) {
  for (const char* domain : {"source", "target"}) {
    Scene a = render_scene(opts(domain), 3), b = render_scene(opts(domain), 3);
    EXPECT_TRUE(same_bytes(a.image, b.image)) << domain;
    EXPECT_TRUE(same_bytes(a.semantic, b.semantic)) << domain;
    ASSERT_EQ(a.instances.size(), b.instances.size());
    Scene c = render_scene(opts(domain), 4), d = render_scene(opts(domain, 8), 3);
    EXPECT_FALSE(same_bytes(a.image, c.image)) << domain;
    EXPECT_FALSE(same_bytes(a.image, d.image)) << domain;
  }
}

TEST(Synth, SceneShapesAndTypes) {
  Options o = opts("source");
  o.size = 96;
  Scene s = render_scene(o, 0);
  EXPECT_EQ(s.image.type(), CV_8UC3);
  EXPECT_EQ(s.semantic.type(), CV_8U);
  EXPECT_EQ(s.image.rows, 96);
  EXPECT_EQ(s.image.cols, 96);
  EXPECT_EQ(s.semantic.size(), s.image.size());
}

TEST(Synth, ManyClassesAndSeveralNonEmptyInstances) {
  Options o = opts("source");
  std::set<int> seen;
  for (uint64_t i = 0; i < 50; ++i) {
    Scene s = render_scene(o, i);
    EXPECT_GE(int(s.instances.size()), o.min_objects) << "scene " << i;
    EXPECT_LE(int(s.instances.size()), o.max_objects) << "scene " << i;
    for (const Instance& inst : s.instances) {
      EXPECT_GE(inst.category, 1);
      EXPECT_LT(inst.category, classes().num_classes());
      EXPECT_EQ(inst.mask.type(), CV_8U);
      EXPECT_GT(cv::countNonZero(inst.mask), 30) << "scene " << i;
      seen.insert(inst.category);
    }
  }
  EXPECT_EQ(int(seen.size()), classes().num_classes() - 1);
  EXPECT_GE(seen.size(), 6u);
}

// The semantic mask is exactly the union of the (disjoint, visible) instance masks.
TEST(Synth, SemanticMatchesInstances) {
  for (uint64_t i = 0; i < 20; ++i) {
    Scene s = render_scene(opts("target"), i);
    cv::Mat rebuilt = cv::Mat::zeros(s.semantic.size(), CV_8U), covered = rebuilt.clone();
    for (const Instance& inst : s.instances) {
      EXPECT_EQ(cv::countNonZero(covered & inst.mask), 0) << "instances overlap in scene " << i;
      covered |= inst.mask;
      rebuilt.setTo(inst.category, inst.mask);
      double max_value = 0;
      cv::minMaxLoc(inst.mask, nullptr, &max_value);
      EXPECT_EQ(max_value, 1.0);
    }
    EXPECT_TRUE(same_bytes(rebuilt, s.semantic)) << "scene " << i;
  }
}

TEST(Synth, SomeSameClassInstancesTouch) {
  int scenes_with_touching = 0;
  for (uint64_t i = 0; i < 50; ++i) {
    Scene s = render_scene(opts("source"), i);
    bool found = false;
    for (size_t a = 0; a < s.instances.size() && !found; ++a)
      for (size_t b = a + 1; b < s.instances.size() && !found; ++b)
        found = s.instances[a].category == s.instances[b].category &&
                touch_or_overlap(s.instances[a].mask, s.instances[b].mask);
    scenes_with_touching += found;
  }
  EXPECT_GE(scenes_with_touching, 10);
}

TEST(Synth, TargetDiffersFromSourceSameLayout) {
  double diff = 0, noise_s = 0, noise_t = 0, sharp_s = 0, sharp_t = 0;
  const int n = 10;
  for (uint64_t i = 0; i < n; ++i) {
    Scene s = render_scene(opts("source"), i), t = render_scene(opts("target"), i);
    EXPECT_TRUE(same_bytes(s.semantic, t.semantic)) << "layout should not depend on the domain";
    cv::Mat d;
    cv::absdiff(s.image, t.image, d);
    diff += cv::mean(d)[0] / n;
    noise_s += noise_level(s.image) / n;
    noise_t += noise_level(t.image) / n;
    sharp_s += edge_sharpness(s.image, s.semantic) / n;
    sharp_t += edge_sharpness(t.image, t.semantic) / n;
  }
  EXPECT_GT(diff, 12.0);
  EXPECT_GT(noise_t, noise_s + 4) << "sensor noise";
  EXPECT_LT(sharp_t, 0.75 * sharp_s) << "blur";
}

TEST(Synth, ZeroShiftTargetEqualsSource) {
  Options t = opts("target");
  t.shift = 0;
  for (uint64_t i = 0; i < 3; ++i)
    EXPECT_TRUE(same_bytes(render_scene(opts("source"), i).image, render_scene(t, i).image));
}

// Colour alone must not identify the class: the per-instance mean colours of every class spread
// over most of the colour space, and each class's mean-colour range overlaps every other's.
TEST(Synth, ColourDoesNotIdentifyClass) {
  int k = classes().num_classes();
  std::vector<std::vector<cv::Scalar>> means(static_cast<size_t>(k));
  for (uint64_t i = 0; i < 150; ++i) {
    Scene s = render_scene(opts("source"), i);
    for (const Instance& inst : s.instances)
      means[size_t(inst.category)].push_back(cv::mean(s.image, inst.mask));
  }
  for (int c = 1; c < k; ++c) {
    ASSERT_GE(means[size_t(c)].size(), 20u) << "class " << c;
    for (int ch = 0; ch < 3; ++ch) {
      double lo = 255, hi = 0;
      for (const auto& m : means[size_t(c)]) lo = std::min(lo, m[ch]), hi = std::max(hi, m[ch]);
      EXPECT_LT(lo, 90) << "class " << c << " channel " << ch;
      EXPECT_GT(hi, 170) << "class " << c << " channel " << ch;
    }
  }
  // A nearest-class-mean colour classifier must be poor (chance is 1/(k-1)).
  std::vector<cv::Scalar> centre(static_cast<size_t>(k));
  for (int c = 1; c < k; ++c) {
    for (const auto& m : means[size_t(c)]) centre[size_t(c)] += m / double(means[size_t(c)].size());
  }
  int right = 0, total = 0;
  for (int c = 1; c < k; ++c)
    for (const auto& m : means[size_t(c)]) {
      int best = 1;
      for (int d = 2; d < k; ++d)
        if (cv::norm(m - centre[size_t(d)]) < cv::norm(m - centre[size_t(best)])) best = d;
      right += best == c;
      ++total;
    }
  EXPECT_LT(double(right) / total, 2.0 / (k - 1)) << right << " / " << total;
}

TEST(Synth, CropsCentreOneObject) {
  std::set<int> labels;
  for (uint64_t i = 0; i < 40; ++i) {
    Crop c = render_crop(opts(i % 2 ? "target" : "source"), i);
    EXPECT_EQ(c.image.type(), CV_8UC3);
    EXPECT_EQ(c.image.rows, 128);
    EXPECT_GE(c.label, 1);
    EXPECT_LT(c.label, classes().num_classes());
    labels.insert(c.label);
  }
  EXPECT_EQ(int(labels.size()), classes().num_classes() - 1);
  EXPECT_TRUE(same_bytes(render_crop(opts("source"), 5).image, render_crop(opts("source"), 5).image));
}

TEST(Synth, DatasetRendersOnDemandWithOffset) {
  Options o = opts("target");
  SynthDataset val(o, 3, 10);
  ASSERT_EQ(val.size(), 3u);
  SegSample s = val.get(1);
  EXPECT_EQ(s.id, "target_000011");
  Scene direct = render_scene(o, 11);
  EXPECT_TRUE(same_bytes(s.image, direct.image));
  EXPECT_TRUE(same_bytes(s.mask, direct.semantic));
  EXPECT_EQ(val.classes().num_classes(), classes().num_classes());
  EXPECT_THROW(val.get(3), std::out_of_range);
}

TEST(Synth, RejectsBadOptions) {
  Options o = opts("sim");
  EXPECT_ANY_THROW(render_scene(o, 0));
  o = opts("source");
  o.min_objects = 5;
  o.max_objects = 2;
  EXPECT_ANY_THROW(render_scene(o, 0));
}

std::vector<std::string> read_lines(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

TEST(Synth, WriteDatasetLayout) {
  fs::path out = fs::temp_directory_path() / ("lesseg_synth_test_" + std::to_string(::getpid()));
  fs::remove_all(out);
  Options o = opts("source");
  o.size = 64;
  write_dataset(out, o, 4, 2, 3);
  std::vector<std::string> train = read_lines(out / "splits" / "train.txt"),
                           val = read_lines(out / "splits" / "val.txt");
  ASSERT_EQ(train.size(), 4u);
  ASSERT_EQ(val.size(), 2u);
  EXPECT_EQ(train[0], "source_000000");
  EXPECT_EQ(val[0], "source_000004");  // val continues after the train indices
  for (const auto& id : train) {
    cv::Mat image = read_image_rgb(out / "images" / (id + ".png"));
    cv::Mat mask = read_label_raw(out / "masks" / (id + ".png"));
    Scene s = render_scene(o, uint64_t(std::stoi(id.substr(7))));
    EXPECT_TRUE(same_bytes(image, s.image)) << id;
    EXPECT_TRUE(same_bytes(mask, s.semantic)) << id;
  }
  EXPECT_TRUE(fs::exists(out / "masks" / (val[1] + ".png")));
  std::vector<std::string> crops = read_lines(out / "crops" / "labels.txt");
  ASSERT_EQ(crops.size(), 3u);
  EXPECT_TRUE(fs::exists(out / "crops" / crops[0].substr(0, crops[0].find(' '))));
  // These writers belong to other modules; skip (not fail) while they are still placeholders.
  for (const char* f : {"classes.yaml", "instances_train.json", "instances_val.json"}) {
    if (!fs::exists(out / f) || fs::file_size(out / f) == 0) {
      fs::remove_all(out);
      GTEST_SKIP() << f << " not written yet (writer not implemented)";
    }
  }
  // Read back: the COCO file reproduces each scene's instances and semantic mask.
  coco::Dataset ds = coco::read(out / "instances_train.json");
  ASSERT_EQ(ds.images.size(), 4u);
  EXPECT_EQ(int(ds.categories.size()), classes().num_classes() - 1);
  for (const coco::Image& image : ds.images) {
    Scene s = render_scene(o, uint64_t(std::stoi(image.file_name.substr(7, 6))));
    EXPECT_EQ(ds.annotations_by_image[image.id].size(), s.instances.size()) << image.file_name;
    EXPECT_TRUE(same_bytes(coco::semantic_mask(ds, image), s.semantic)) << image.file_name;
  }
  EXPECT_EQ(load_classes_yaml(out / "classes.yaml").names, classes().names);
  fs::remove_all(out);
}

}  // namespace
}  // namespace lesseg::synth
