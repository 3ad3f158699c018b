// Shared pieces of the semi-supervised methods: the strong view leaves pixels in place, CutMix /
// ClassMix move an image's pixels and its labels together, the confidence-masked pseudo-label loss
// and IGL-DT's terms match hand-computed values; labeled / unlabeled / held-out splits; the paired
// loader resumes exactly.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/data/paired_loader.h"
#include "lesseg/data/semi_views.h"
#include "lesseg/data/synth/synth.h"
#include "lesseg/data/train_splits.h"
#include "lesseg/methods/common/mixing.h"
#include "lesseg/methods/common/pseudo_label.h"
#include "lesseg/methods/semi/igldt_losses.h"

namespace lesseg {
namespace {

// Images whose pixels encode where they come from: channel 0 the batch index, 1 the row, 2 the
// column; the label of pixel (b, y, x) is b * 10000 + y * 100 + x.
struct Encoded {
  at::Tensor images, labels;
};
Encoded encoded(int64_t batch, int64_t height, int64_t width) {
  auto b = torch::arange(batch).view({batch, 1, 1}).expand({batch, height, width});
  auto y = torch::arange(height).view({1, height, 1}).expand({batch, height, width});
  auto x = torch::arange(width).view({1, 1, width}).expand({batch, height, width});
  return {torch::stack({b, y, x}, 1).to(torch::kFloat), b * 10000 + y * 100 + x};
}

TEST(CutMix, ImagesAndLabelsMoveTogether) {
  std::mt19937_64 rng(3);
  const int64_t batch = 64, height = 40, width = 56;
  Encoded target = encoded(batch, height, width);
  // The source is the batch rolled by one, as CPS / DACS pair images.
  Encoded source{target.images.roll(1, 0), target.labels.roll(1, 0)};
  CutMixOptions options;
  at::Tensor boxes = cutmix_boxes(batch, height, width, options, rng);
  at::Tensor images = mix(target.images, source.images, boxes), labels = mix(target.labels, source.labels, boxes);
  // Every pixel's label is the one its image pixel came with, and nothing moved within an image.
  auto decoded = images.select(1, 0).to(torch::kLong) * 10000 + images.select(1, 1).to(torch::kLong) * 100 +
                 images.select(1, 2).to(torch::kLong);
  EXPECT_TRUE(torch::equal(decoded, labels));
  EXPECT_TRUE(torch::equal(images.slice(1, 1, 3), target.images.slice(1, 1, 3)));
  // Each box is one axis-aligned rectangle of 2-40 % of the image (truncating its sides to whole
  // pixels takes up to a third off the smallest boxes here).
  int64_t with_box = 0;
  for (int64_t b = 0; b < batch; ++b) {
    auto box = boxes[b];
    const int64_t area = box.sum().item<int64_t>();
    if (area == 0) continue;
    ++with_box;
    auto rows = box.any(1).nonzero().flatten(), cols = box.any(0).nonzero().flatten();
    const int64_t h = rows.numel(), w = cols.numel();
    EXPECT_EQ(area, h * w) << "not a rectangle in image " << b;
    EXPECT_EQ(rows[-1].item<int64_t>() - rows[0].item<int64_t>() + 1, h);
    EXPECT_GE(double(area), 0.02 * height * width * 0.6);
    EXPECT_LE(double(area), 0.4 * height * width);
    EXPECT_TRUE(torch::all(labels[b].masked_select(box).div(10000, "floor") == (b + batch - 1) % batch).item<bool>());
  }
  // Probability 0.5 over 64 images: 32 expected, outside [16, 48] has probability < 1e-4.
  EXPECT_GE(with_box, 16);
  EXPECT_LE(with_box, 48);
}

TEST(ClassMix, MasksCoverHalfTheClassesPresentAndNoIgnoredPixel) {
  std::mt19937_64 rng(5);
  // Image 0: classes 0..3 in four stripes plus an ignored stripe; image 1: one class.
  auto labels = torch::zeros({2, 5, 8}, torch::kLong);
  for (int64_t r = 0; r < 4; ++r) labels[0][r].fill_(r);
  labels[0][4].fill_(255);
  labels[1].fill_(7);
  at::Tensor masks = classmix_masks(labels, 255, rng);
  auto rows = masks[0].all(1);  // a stripe is taken whole or not at all
  EXPECT_TRUE(torch::equal(rows, masks[0].any(1)));
  EXPECT_EQ(rows.sum().item<int64_t>(), 2);  // ceil(4 / 2) of the classes
  EXPECT_FALSE(rows[4].item<bool>());        // ignored pixels are never a class
  EXPECT_TRUE(masks[1].all().item<bool>());  // ceil(1 / 2) = the one class
  // Different draws pick different classes.
  bool differs = false;
  for (int i = 0; i < 20 && !differs; ++i) differs = !torch::equal(classmix_masks(labels, 255, rng)[0], masks[0]);
  EXPECT_TRUE(differs);
}

TEST(StrongView, ChangesColoursButNoPixelMoves) {
  // Dark left half, bright right half: after any strong view the edge is still between columns 15
  // and 16 (blur spreads it by at most a few pixels symmetrically) and the size is unchanged.
  cv::Mat weak(24, 32, CV_8UC3, cv::Scalar(40, 60, 80));
  weak(cv::Rect(16, 0, 16, 24)).setTo(cv::Scalar(200, 180, 160));
  std::mt19937_64 rng(11);
  const ViewSpec spec = strong_view_spec(32);
  int changed = 0;
  for (int i = 0; i < 40; ++i) {
    cv::Mat strong = strong_view(weak, spec, rng);
    ASSERT_EQ(strong.size(), weak.size());
    ASSERT_EQ(strong.type(), weak.type());
    changed += cv::norm(strong, weak, cv::NORM_L1) > 0;
    cv::Mat grey;
    cv::cvtColor(strong, grey, cv::COLOR_RGB2GRAY);
    cv::Mat column_means;
    cv::reduce(grey, column_means, 0, cv::REDUCE_AVG, CV_64F);
    // The largest step between neighbouring columns sits at the true edge (15 | 16), whatever the
    // jitter did to the two levels (it may swap which side is brighter, so the absolute step).
    int best = -1;
    double best_step = -1;
    for (int x = 0; x + 1 < grey.cols; ++x) {
      const double step = std::abs(column_means.at<double>(0, x + 1) - column_means.at<double>(0, x));
      if (step > best_step) best_step = step, best = x;
    }
    if (best_step > 1.0) {
      EXPECT_EQ(best, 15) << "draw " << i;
    }
  }
  EXPECT_GE(changed, 30);  // jitter p 0.8, grayscale 0.2, blur 0.5: almost every view differs
}

TEST(ConfidentCrossEntropy, MatchesAHandComputedExample) {
  // Two classes, one image of 1 x 3 pixels; the student is undecided (CE = ln 2 per pixel).
  auto logits = torch::zeros({1, 2, 1, 3}, torch::requires_grad());
  // Teacher: pixel 0 class 1 at 0.97, pixel 1 class 0 at 0.6, pixel 2 class 0 at 0.99.
  auto probabilities = torch::tensor({0.03, 0.6, 0.99, 0.97, 0.4, 0.01}).view({1, 2, 1, 3});
  PseudoLabel target = pseudo_label(probabilities);
  EXPECT_TRUE(torch::equal(target.label, torch::tensor({1, 0, 0}, torch::kLong).view({1, 1, 3})));
  // Threshold 0.95: pixels 0 and 2 count, divided by all 3 valid pixels.
  auto loss = confident_cross_entropy(logits, target, 0.95);
  EXPECT_NEAR(loss.item<double>(), 2 * std::log(2.0) / 3, 1e-6);
  loss.backward();
  // d/dlogit of CE at uniform softmax: (0.5 - onehot) / 3 on kept pixels, 0 on pixel 1.
  auto grad = logits.grad();
  EXPECT_NEAR(grad[0][1][0][0].item<double>(), (0.5 - 1) / 3, 1e-6);
  EXPECT_NEAR(grad[0][0][0][1].item<double>(), 0.0, 1e-9);
  EXPECT_NEAR(grad[0][0][0][2].item<double>(), (0.5 - 1) / 3, 1e-6);
  // Pixel 2 ignored (padding): one kept pixel over two valid ones; threshold 0 (CPS) keeps all.
  auto ignored = torch::tensor({false, false, true}).view({1, 1, 3});
  EXPECT_NEAR(confident_cross_entropy(logits, target, 0.95, ignored).item<double>(), std::log(2.0) / 2, 1e-6);
  EXPECT_NEAR(confident_cross_entropy(logits, target, 0.0).item<double>(), std::log(2.0), 1e-6);
}

TEST(IgldtLosses, GlobalAndLocalMatchHandComputedL1) {
  // One image, one channel, 2 x 2: student [[1, 2], [3, 4]] (mean 2.5), teacher all 1 (mean 1).
  auto student = torch::tensor({1.0, 2.0, 3.0, 4.0}).view({1, 1, 2, 2});
  auto teacher = torch::ones({1, 1, 2, 2});
  EXPECT_NEAR(global_context_loss(student, teacher).item<double>(), 1.5, 1e-6);
  // A 2 x 2 grid on a 2 x 2 map: each pixel is a region, mean |s - 1| = (0 + 1 + 2 + 3) / 4.
  EXPECT_NEAR(local_regional_loss(student, teacher, 2).item<double>(), 1.5, 1e-6);
  // The same pixels in reverse order: the same mean (no global difference), but every region differs.
  auto flipped = torch::tensor({4.0, 3.0, 2.0, 1.0}).view({1, 1, 2, 2});
  EXPECT_NEAR(global_context_loss(student, flipped).item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(local_regional_loss(student, flipped, 2).item<double>(), (3 + 1 + 1 + 3) / 4.0, 1e-6);
  // Grids of different sizes compare after pooling (student stride 8 vs a teacher at another size).
  EXPECT_NEAR(local_regional_loss(torch::ones({1, 1, 4, 4}), torch::zeros({1, 1, 2, 2}), 2).item<double>(), 1.0, 1e-6);
}

TEST(IgldtLosses, DiscrepancyWeighsEachTeacherByItsConfidenceWhereTheyDisagree) {
  // Two classes, 1 x 3 pixels, an undecided student (CE = ln 2 for either class).
  auto logits = torch::zeros({1, 2, 1, 3}, torch::requires_grad());
  // Global teacher: class 0 at 0.9, 0.8, 0.7; local: class 1 at 0.6 on pixel 0, class 0 elsewhere.
  auto global = torch::tensor({0.9, 0.8, 0.7, 0.1, 0.2, 0.3}).view({1, 2, 1, 3});
  auto local = torch::tensor({0.4, 0.9, 0.9, 0.6, 0.1, 0.1}).view({1, 2, 1, 3});
  // Only pixel 0 disagrees: weights 0.9 / 1.5 and 0.6 / 1.5 sum to 1, times ln 2, over 3 pixels.
  auto loss = discrepancy_loss(logits, global, local);
  EXPECT_NEAR(loss.item<double>(), std::log(2.0) / 3, 1e-6);
  loss.backward();
  // d/dlogit_0 at pixel 0: (0.5 - 0.6) / 3 (the weighted target is 0.6 class 0, 0.4 class 1).
  EXPECT_NEAR(logits.grad()[0][0][0][0].item<double>(), (0.5 - 0.6) / 3, 1e-6);
  EXPECT_NEAR(logits.grad()[0][0][0][1].item<double>(), 0.0, 1e-9);
  // A student that follows the more confident teacher pays less than one that follows the other.
  auto follows_global = torch::tensor({2.0, 0.0, 0.0, 0.0, 0.0, 0.0}).view({1, 2, 1, 3});
  auto follows_local = torch::tensor({0.0, 0.0, 0.0, 2.0, 0.0, 0.0}).view({1, 2, 1, 3});
  EXPECT_LT(discrepancy_loss(follows_global, global, local).item<double>(),
            discrepancy_loss(follows_local, global, local).item<double>());
  // Ignored pixels count neither as disagreement nor in the denominator.
  auto ignored = torch::tensor({false, true, true}).view({1, 1, 3});
  EXPECT_NEAR(discrepancy_loss(torch::zeros({1, 2, 1, 3}), global, local, ignored).item<double>(), std::log(2.0), 1e-6);
}

namespace fs = std::filesystem;

Config synth_config(std::vector<std::string> settings) {
  settings.insert(settings.begin(), {"data.synth.size=48", "data.synth.num_train=40", "data.synth.num_val=4"});
  return Config::load("", settings);
}

std::vector<std::string> ids_of(const SegDataset& dataset) {
  std::vector<std::string> ids;
  for (size_t i = 0; i < dataset.size(); ++i) ids.push_back(dataset.sample_id(i));
  return ids;
}

std::vector<std::string> read_lines(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A count, a fraction and a list name the labeled images; the held-out ones are disjoint from both
// parts; the written lists read back give the same split.
TEST(TrainSplits, CountFractionListAndHoldout) {
  const fs::path run = fs::temp_directory_path() / ("lesseg_splits_" + std::to_string(::getpid()));
  fs::remove_all(run);
  TrainSplits by_count = open_train_splits(synth_config({"data.labeled=5", "data.holdout=0.25"}), run, true);
  ASSERT_EQ(by_count.labeled->size(), 5u);
  ASSERT_EQ(by_count.selection->size(), 10u);
  ASSERT_EQ(by_count.unlabeled->size(), 25u);
  std::set<std::string> all;
  for (auto* part : {&by_count.labeled, &by_count.unlabeled, &by_count.selection})
    for (const auto& id : ids_of(**part)) all.insert(id);
  EXPECT_EQ(all.size(), 40u);  // a partition of the training split
  EXPECT_EQ(read_lines(run / "labeled.txt"), ids_of(*by_count.labeled));
  EXPECT_EQ(read_lines(run / "holdout.txt"), ids_of(*by_count.selection));
  EXPECT_EQ(by_count.reported->size(), 4u);
  // The unlabeled part withholds labels; the held-out part keeps them (it is scored).
  EXPECT_EQ(cv::countNonZero(by_count.unlabeled->get(0).mask), 0);
  EXPECT_GT(cv::countNonZero(by_count.selection->get(0).mask), 0);

  // The list written above, given back, labels the same images (the held-out draw avoids them).
  TrainSplits by_list = open_train_splits(
      synth_config({"data.labeled=" + (run / "labeled.txt").string(), "data.holdout=10"}), run / "again", false);
  EXPECT_EQ(ids_of(*by_list.labeled), ids_of(*by_count.labeled));
  EXPECT_EQ(by_list.selection->size(), 10u);
  EXPECT_FALSE(fs::exists(run / "again"));
  // A fraction of the training split (0.125 x 40 = 5) and the older data.labeled_fraction agree.
  EXPECT_EQ(ids_of(*open_train_splits(synth_config({"data.labeled=0.125"}), run, false).labeled),
            ids_of(*open_train_splits(synth_config({"data.labeled_fraction=0.125"}), run, false).labeled));
  // Same seed, same split; another seed, another one.
  EXPECT_EQ(ids_of(*open_train_splits(synth_config({"data.labeled=5", "data.holdout=0.25"}), run, false).labeled),
            ids_of(*by_count.labeled));
  EXPECT_NE(ids_of(*open_train_splits(synth_config({"data.labeled=5", "data.holdout=0.25", "seed=1"}), run, false).labeled),
            ids_of(*by_count.labeled));

  // Errors name what is wrong.
  std::ofstream(run / "bad.txt") << "source_000000\nno_such_image\n";
  try {
    open_train_splits(synth_config({"data.labeled=" + (run / "bad.txt").string()}), run, false);
    FAIL() << "an unknown name was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_image"), std::string::npos) << e.what();
  }
  EXPECT_THROW(open_train_splits(synth_config({"data.labeled=5", "data.holdout=40"}), run, false), Error);
  EXPECT_THROW(open_train_splits(synth_config({"data.labeled=" + (run / "missing.txt").string()}), run, false), Error);
  EXPECT_THROW(open_train_splits(synth_config({"data.labeled=5", "data.labeled_fraction=0.5"}), run, false), Error);
  fs::remove_all(run);
}

// data.unlabeled_split may hold the labeled and held-out images too (VOC train_aug holds train):
// they are left out of the unlabeled part.
TEST(TrainSplits, AnotherUnlabeledSplitLeavesOutLabeledAndHeldOutImages) {
  const fs::path root = fs::temp_directory_path() / ("lesseg_unlabeled_split_" + std::to_string(::getpid()));
  fs::remove_all(root);
  synth::Options options;
  options.size = 32;
  synth::write_dataset(root, options, 12, 2, 0);
  std::ofstream all(root / "splits" / "all.txt");
  for (const char* split : {"train", "val"})
    for (const auto& line : read_lines(root / "splits" / (std::string(split) + ".txt"))) all << line << "\n";
  all.close();
  TrainSplits splits = open_train_splits(
      Config::load("", {"data.format=folder", "data.root=" + root.string(), "data.labeled=3", "data.holdout=3",
                        "data.unlabeled_split=all"}),
      root, false);
  ASSERT_EQ(splits.unlabeled->size(), 8u);  // 14 images, 3 labeled and 3 held out
  std::set<std::string> unlabeled;
  for (const auto& id : ids_of(*splits.unlabeled)) unlabeled.insert(id);
  for (auto* part : {&splits.labeled, &splits.selection})
    for (const auto& id : ids_of(**part)) EXPECT_EQ(unlabeled.count(id), 0u) << id;
  fs::remove_all(root);
}

// The paired loader saves one position; restored there, both streams continue with the same batches.
TEST(PairedLoader, ResumesBothStreamsFromOnePosition) {
  synth::Options options;
  options.size = 32;
  auto labeled = std::make_shared<synth::SynthDataset>(options, 5, 0);     // 2 batches per epoch
  auto unlabeled = std::make_shared<synth::SynthDataset>(options, 13, 5);  // 6 batches per epoch
  LoaderOptions o;
  o.batch_size = 2;
  o.augment.crop_h = o.augment.crop_w = 32;
  LoaderOptions u = o;
  u.seed = 99;
  auto steps = [&](PairedLoader& loader, int n) {
    std::vector<std::string> ids;
    for (int k = 0; k < n; ++k) {
      Batch a, b;
      loader.next(a, b);
      for (auto* batch : {&a, &b})
        for (const auto& id : batch->ids) ids.push_back(id);
    }
    return ids;
  };
  PairedLoader straight(labeled, o, unlabeled, u);
  steps(straight, 7);  // across an unlabeled epoch and three labeled ones
  const SamplerState at7 = straight.state();
  EXPECT_EQ(at7.epoch, 1);
  const auto next = steps(straight, 4);
  PairedLoader resumed(labeled, o, unlabeled, u, at7);
  EXPECT_EQ(steps(resumed, 4), next);
}

}  // namespace
}  // namespace lesseg
