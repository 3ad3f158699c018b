// Feature probes: kNN votes against a hand-computed example and a plain reference loop, the linear
// probe learning a separable problem, the seg-linear probe (runs on a real backbone; learns when
// the features encode the class), DINO attention masks, PNG export and foreground IoU.
#include <algorithm>
#include <cmath>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/data/open.h"
#include "lesseg/data/synth/synth.h"
#include "lesseg/engine/checkpoint.h"
#include "lesseg/eval/probe.h"
#include "lesseg/io/safetensors.h"
#include "lesseg/models/registry.h"
#include "lesseg/models/resnet.h"
#include "lesseg/models/vit.h"
#include "seg_fixtures.h"

namespace lesseg {
namespace {
using test::TempDir;

// Four bank vectors in 2-D; query (1, 0.2). Cosine similarities:
//   b0 (1,0) class 0: 1/|q| = 0.98058;  b1 (0,1) class 1: 0.2/|q| = 0.19612;
//   b2 (1,1) class 1: 1.2/(|q| sqrt 2) = 0.83205;  b3 (-1,0) class 2: -0.98058.
struct TinyBank {
  torch::Tensor bank = torch::tensor({1.f, 0.f, 0.f, 1.f, 1.f, 1.f, -1.f, 0.f}).view({4, 2});
  torch::Tensor labels = torch::tensor({0, 1, 1, 2}, torch::kLong);
  torch::Tensor query = torch::tensor({1.f, 0.2f}).view({1, 2});
};

TEST(ProbeKnn, VotesMatchAHandComputedExample) {
  TinyBank t;
  const double s0 = 1 / std::sqrt(1.04), s1 = 0.2 / std::sqrt(1.04), s2 = 1.2 / std::sqrt(1.04 * 2);
  // k = 3 takes b0, b2, b1: one close class-0 neighbour against two class-1 neighbours.
  auto sharp = knn_votes(t.bank, t.labels, t.query, 3, KnnOptions{3, 0.07});
  EXPECT_NEAR(sharp[0][0].item<double>(), std::exp(s0 / 0.07), 1e-3 * std::exp(s0 / 0.07));
  EXPECT_NEAR(sharp[0][1].item<double>(), std::exp(s2 / 0.07) + std::exp(s1 / 0.07), 1e-3 * std::exp(s2 / 0.07));
  EXPECT_EQ(sharp[0][2].item<double>(), 0.0);  // b3 is not among the 3 nearest
  // T = 0.07: the closest neighbour wins; T = 1: two votes of 2.30 + 1.22 beat one of 2.67.
  EXPECT_EQ(sharp.argmax(1).item<int64_t>(), 0);
  auto flat = knn_votes(t.bank, t.labels, t.query, 3, KnnOptions{3, 1.0});
  EXPECT_NEAR(flat[0][0].item<double>(), std::exp(s0), 1e-5);
  EXPECT_NEAR(flat[0][1].item<double>(), std::exp(s2) + std::exp(s1), 1e-5);
  EXPECT_EQ(flat.argmax(1).item<int64_t>(), 1);
  // k larger than the bank is capped; accuracy against the labels.
  auto accuracy = knn_classify(t.bank, t.labels, t.query, torch::tensor({1}, torch::kLong), 3, KnnOptions{20, 1.0});
  EXPECT_DOUBLE_EQ(accuracy.top1, 1.0);
  EXPECT_TRUE(std::isnan(accuracy.top5));  // fewer than 5 classes
}

// The plain reference: per query, sort all cosine similarities, sum exp(s / T) of the k best by class.
torch::Tensor reference_votes(const torch::Tensor& bank, const torch::Tensor& labels, const torch::Tensor& queries,
                              int64_t classes, int64_t k, double t) {
  auto b = bank.to(torch::kDouble).contiguous(), q = queries.to(torch::kDouble).contiguous();
  auto ba = b.accessor<double, 2>(), qa = q.accessor<double, 2>();
  auto la = labels.accessor<int64_t, 1>();
  auto out = torch::zeros({q.size(0), classes}, torch::kDouble);
  auto oa = out.accessor<double, 2>();
  auto cosine = [&](int64_t i, int64_t j) {
    double dot = 0, nq = 0, nb = 0;
    for (int64_t d = 0; d < b.size(1); ++d) {
      dot += qa[i][d] * ba[j][d];
      nq += qa[i][d] * qa[i][d];
      nb += ba[j][d] * ba[j][d];
    }
    return dot / std::sqrt(nq * nb);
  };
  for (int64_t i = 0; i < q.size(0); ++i) {
    std::vector<std::pair<double, int64_t>> sims;
    for (int64_t j = 0; j < b.size(0); ++j) sims.push_back({cosine(i, j), la[j]});
    std::sort(sims.begin(), sims.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
    for (int64_t n = 0; n < k; ++n) oa[i][sims[size_t(n)].second] += std::exp(sims[size_t(n)].first / t);
  }
  return out;
}

TEST(ProbeKnn, MatchesAPlainReferenceOnRandomFeatures) {
  torch::manual_seed(3);
  auto bank = torch::randn({120, 16}), queries = torch::randn({300, 16});  // > one 256-row chunk
  auto labels = torch::randint(7, {120}, torch::kLong);
  auto fast = knn_votes(bank, labels, queries, 7, KnnOptions{20, 0.07}).to(torch::kDouble);
  auto slow = reference_votes(bank, labels, queries, 7, 20, 0.07);
  EXPECT_TRUE(torch::allclose(fast, slow, 1e-4, 1e-6)) << (fast - slow).abs().max();
}

// Goldens from a numpy port of DINO's knn_classifier (tools/make_goldens.py write_knn).
TEST(ProbeKnn, MatchesNumpyGolden) {
  std::ifstream in(std::string(LESSEG_FIXTURES) + "/probe/knn_golden.json");
  ASSERT_TRUE(in.good());
  auto cases = nlohmann::json::parse(in);
  ASSERT_EQ(cases.size(), 2u);
  auto matrix = [](const nlohmann::json& rows) {
    std::vector<torch::Tensor> out;
    for (const auto& row : rows) out.push_back(torch::tensor(row.get<std::vector<double>>(), torch::kDouble));
    return torch::stack(out);
  };
  for (const auto& c : cases) {
    auto bank_labels = torch::tensor(c["bank_labels"].get<std::vector<int64_t>>());
    auto query_labels = torch::tensor(c["query_labels"].get<std::vector<int64_t>>());
    KnnOptions options{c["k"].get<int64_t>(), c["temperature"].get<double>()};
    const int64_t classes = c["classes"].get<int64_t>();
    auto votes = knn_votes(matrix(c["bank"]), bank_labels, matrix(c["queries"]), classes, options);
    auto expected = matrix(c["votes"]);
    EXPECT_TRUE(torch::allclose(votes.to(torch::kDouble), expected, 1e-4, 1e-6))
        << (votes.to(torch::kDouble) - expected).abs().max();
    auto accuracy = knn_classify(matrix(c["bank"]), bank_labels, matrix(c["queries"]), query_labels, classes, options);
    EXPECT_DOUBLE_EQ(accuracy.top1, c["top1"].get<double>());
    if (c.contains("top5")) EXPECT_DOUBLE_EQ(accuracy.top5, c["top5"].get<double>());
    else EXPECT_TRUE(std::isnan(accuracy.top5));
  }
}

TEST(ProbeKnn, TopKAccuracyCountsRanks) {
  // 6 classes; row 0 right at rank 1, row 1 at rank 3, row 2 at rank 6.
  auto scores = torch::tensor({9.f, 1.f, 2.f, 3.f, 4.f, 5.f,  //
                               9.f, 1.f, 8.f, 7.f, 0.f, 0.5f, //
                               6.f, 5.f, 4.f, 3.f, 2.f, 1.f})
                    .view({3, 6});
  auto accuracy = top_k_accuracy(scores, torch::tensor({0, 3, 5}, torch::kLong));
  EXPECT_NEAR(accuracy.top1, 1.0 / 3, 1e-12);
  EXPECT_NEAR(accuracy.top5, 2.0 / 3, 1e-12);
}

// Three Gaussian blobs in 8-D, far apart: linearly separable.
std::pair<torch::Tensor, torch::Tensor> blobs(int64_t n, double scale, uint64_t seed) {
  torch::manual_seed(seed);
  auto labels = torch::arange(n, torch::kLong) % 3;
  auto centres = torch::eye(3).repeat({1, 3}).narrow(1, 0, 8) * 4.0;
  return {(centres.index({labels}) + torch::randn({n, 8})) * scale, labels};
}

TEST(ProbeLinear, LearnsASeparableProblemAtAnyFeatureScale) {
  for (double scale : {1.0, 1000.0}) {  // standardization makes one lr fit both
    auto [train, train_labels] = blobs(150, scale, 1);
    auto [test, test_labels] = blobs(150, scale, 2);
    LinearProbeOptions options;
    options.iters = 200;
    options.batch_size = 32;
    auto result = linear_probe(train, train_labels, test, test_labels, 3, options);
    EXPECT_GT(result.test.top1, 0.95) << "scale " << scale;
    EXPECT_GT(result.train.top1, 0.95) << "scale " << scale;
    EXPECT_LT(result.final_loss, 0.3) << "scale " << scale;
  }
}

TEST(ProbeLinear, IsDeterministicForASeed) {
  auto [train, labels] = blobs(60, 1.0, 1);
  LinearProbeOptions options;
  options.iters = 20;
  auto a = linear_probe(train, labels, train, labels, 3, options);
  auto b = linear_probe(train, labels, train, labels, 3, options);
  EXPECT_EQ(a.final_loss, b.final_loss);
}

// A "backbone" whose dense features are the image itself: each class has its own colour channel,
// so a 1x1 conv separates them exactly.
class ColourBackbone : public BackboneImpl {
 public:
  std::vector<torch::Tensor> features(const torch::Tensor& images) override { return {images}; }
  std::vector<FeatureSpec> feature_specs() const override { return {{1, 3}}; }
};

class VectorDataset : public SegDataset {
 public:
  VectorDataset(std::vector<SegSample> samples, ClassInfo classes) : samples_(std::move(samples)), classes_(classes) {}
  size_t size() const override { return samples_.size(); }
  SegSample get(size_t index) const override {
    SegSample s = samples_.at(index);
    return {s.image.clone(), s.mask.clone(), s.id, {}};
  }
  const ClassInfo& classes() const override { return classes_; }

 private:
  std::vector<SegSample> samples_;
  ClassInfo classes_;
};

// Background (class 0, red) with two rectangles of classes 1 (green) and 2 (blue), some ignore.
SegDatasetPtr colour_rectangles(int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<SegSample> samples;
  for (int i = 0; i < count; ++i) {
    cv::Mat mask(24, 24, CV_8U, cv::Scalar(0));
    for (uchar c : {uchar(1), uchar(2)}) {
      int x = int(rng() % 14), y = int(rng() % 14);
      mask(cv::Rect(x, y, 6 + int(rng() % 4), 6 + int(rng() % 4))).setTo(c);
    }
    mask(cv::Rect(0, 0, 3, 3)).setTo(255);
    cv::Mat image(24, 24, CV_8UC3);
    for (int y = 0; y < 24; ++y)
      for (int x = 0; x < 24; ++x) {
        const uchar c = mask.at<uchar>(y, x);
        image.at<cv::Vec3b>(y, x) = c == 255 ? cv::Vec3b(9, 9, 9) : cv::Vec3b(c == 0 ? 200 : 0, c == 1 ? 200 : 0, c == 2 ? 200 : 0);
      }
    samples.push_back({image, mask, "r" + std::to_string(i), {}});
  }
  ClassInfo classes;
  classes.names = {"background", "green", "blue"};
  classes.colors = {{0, 0, 0}, {0, 255, 0}, {0, 0, 255}};
  return std::make_shared<VectorDataset>(std::move(samples), classes);
}

TEST(ProbeSegLinear, LearnsWhenFeaturesEncodeTheClass) {
  ColourBackbone backbone;
  SegProbeOptions options;
  options.iters = 60;
  options.lr = 0.5;
  options.batch_size = 4;
  options.workers = 1;
  auto result = seg_linear_probe(backbone, colour_rectangles(8, 1), colour_rectangles(4, 2), options);
  EXPECT_GT(result["miou"].get<double>(), 0.95) << result.dump();
  EXPECT_LT(result["final_loss"].get<double>(), 0.2) << result.dump();
}

TEST(ProbeSegLinear, RunsOnResnet18OnTheSynthWorld) {
  Config config = Config::load("", {"model.backbone=resnet18", "data.synth.size=64", "data.synth.num_train=4",
                                    "data.synth.num_val=2", "data.crop=[64, 64]", "probe.seg_iters=2",
                                    "probe.seg_batch_size=2", "data.workers=1"});
  ProbeBackbone probe = build_probe_backbone(config, torch::kCPU);
  probe.backbone->train();
  auto result = seg_linear_probe(*probe.backbone, config, torch::kCPU);
  EXPECT_TRUE(probe.backbone->is_training());  // the caller's mode comes back
  const double miou = result["miou"].get<double>();
  EXPECT_GE(miou, 0.0);
  EXPECT_LE(miou, 1.0);
  EXPECT_EQ(result["iou"].size(), 8u) << result.dump();  // synth: background + 7 object classes
}

TEST(ProbeAttention, MassMaskKeepsTheTopShareInPlace) {
  auto maps = torch::tensor({0.4f, 0.1f, 0.3f, 0.2f, 0.25f, 0.25f, 0.25f, 0.25f}).view({2, 2, 2});
  // Row 0 ascending 0.1 0.2 0.3 0.4, cumulative 0.1 0.3 0.6 1.0: > 0.4 keeps 0.3 and 0.4.
  auto mask = attention_mass_mask(maps, 0.6);
  EXPECT_TRUE(torch::equal(mask[0], torch::tensor({true, false, true, false}).view({2, 2})));
  EXPECT_EQ(mask[1].sum().item<int64_t>(), 3);  // uniform: cumulative 0.25 0.5 0.75 1, three > 0.4
  EXPECT_TRUE(torch::equal(attention_mass_mask(maps, 0.35)[0], torch::tensor({true, false, false, false}).view({2, 2})));
}

TEST(ProbeAttention, ForegroundIouOfAKnownMask) {
  // labels: 4x4, foreground = classes 1/2 in 5 pixels, one ignored pixel under the mask.
  auto labels = torch::tensor({0, 1, 1, 0,  //
                               0, 2, 1, 0,  //
                               0, 0, 1, 255, //
                               0, 0, 0, 0},
                              torch::kLong)
                    .view({4, 4});
  auto mask = torch::tensor({0, 1, 1, 1,  //
                             0, 1, 0, 0,  //
                             0, 0, 0, 1,  //
                             0, 0, 0, 0},
                            torch::kLong)
                  .view({4, 4});
  // intersection 3 (1,2,5); union = 5 truth + 1 predicted background (3) = 6; ignore pixel 11 skipped.
  EXPECT_DOUBLE_EQ(foreground_iou(mask, labels, 255), 0.5);
  EXPECT_TRUE(std::isnan(foreground_iou(torch::zeros({4, 4}), torch::zeros({4, 4}, torch::kLong), 255)));
}

Vit small_vit() { return Vit(vit_tiny(8).depth(2).img_size(32)); }

TEST(ProbeAttention, ClsAttentionIsTheLastBlockCLSRow) {
  torch::manual_seed(0);
  Vit vit = small_vit();
  vit->eval();
  auto image = torch::randn({1, 3, 32, 24});
  auto maps = cls_attention(*vit, image);
  ASSERT_EQ(maps.sizes(), (std::vector<int64_t>{3, 4, 3}));
  auto full = vit->forward_tokens(image, VitForwardOptions().last_attention(true)).attention;
  // the CLS row sums to 1 over CLS + patches
  EXPECT_TRUE(torch::allclose(maps.flatten(1).sum(1) + full.index({0, torch::indexing::Slice(), 0, 0}),
                              torch::ones({3}), 1e-5, 1e-5));
}

TEST(ProbeAttention, WritesPngsOfTheImageSizeAndScores) {
  TempDir dir;
  torch::manual_seed(0);
  Vit vit = small_vit();
  synth::Options synth_options;
  synth_options.size = 48;
  auto dataset = std::make_shared<synth::SynthDataset>(synth_options, 2, 0);
  AttentionProbeOptions options;
  options.image_size = 32;
  options.max_images = 2;
  options.out_dir = dir / "att";
  auto result = attention_probe(*vit, dataset, options);
  const std::string id = dataset->get(0).id;
  for (const std::string name : {"_image", "_head0", "_head2_mask", "_mean", "_mean_mask"}) {
    cv::Mat png = cv::imread((dir / ("att/" + id + name + ".png")).string());
    ASSERT_FALSE(png.empty()) << name;
    EXPECT_EQ(png.rows, 32);
    EXPECT_EQ(png.cols, 32);
  }
  cv::Mat mask = cv::imread((dir / ("att/" + id + "_head1_mask.png")).string(), cv::IMREAD_GRAYSCALE);
  for (auto it = mask.begin<uchar>(); it != mask.end<uchar>(); ++it) EXPECT_TRUE(*it == 0 || *it == 255);
  ASSERT_EQ(result["iou_per_head"].size(), 3u) << result.dump();
  const double best = result["attention_iou"].get<double>();
  EXPECT_GE(best, 0.0);
  EXPECT_LE(best, 1.0);
  for (const auto& v : result["iou_per_head"]) EXPECT_LE(v.get<double>(), best);
  EXPECT_EQ(result["scored_images"].get<int>(), 2);
  options.image_size = 36;  // not a multiple of the patch
  EXPECT_THROW(attention_probe(*vit, dataset, options), Error);
}

TEST(ProbeBackboneWeights, LoadsSavedBackboneWeights) {
  TempDir dir;
  Config first = Config::load("", {"model.backbone=vit_tiny16", "seed=1"});
  ProbeBackbone saved = build_probe_backbone(first, torch::kCPU);
  save_safetensors(dir / "b.safetensors", module_tensors(*saved.backbone), {});
  Config second = Config::load("", {"model.backbone=vit_tiny16", "seed=2", "model.weights=" + (dir / "b.safetensors").string()});
  ProbeBackbone loaded = build_probe_backbone(second, torch::kCPU);
  EXPECT_EQ(loaded.missing, 0u);
  EXPECT_EQ(loaded.matched, module_tensors(*saved.backbone).size());
  EXPECT_TRUE(torch::equal(loaded.backbone->parameters()[0], saved.backbone->parameters()[0]));
  ProbeBackbone random = build_probe_backbone(Config::load("", {"model.backbone=vit_tiny16", "seed=2"}), torch::kCPU);
  bool differs = false;
  for (size_t i = 0; i < random.backbone->parameters().size(); ++i)
    differs |= !torch::equal(random.backbone->parameters()[i], saved.backbone->parameters()[i]);
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace lesseg

namespace lesseg {
namespace {

// Calibration replaces a random ResNet's 0 / 1 statistics with the cumulative average over the
// batches: after two batches, bn1's running mean is the mean of conv1's per-batch channel means.
TEST(CalibrateBatchNorm, AveragesStatisticsOverTheBatches) {
  torch::manual_seed(0);
  ResNet net(resnet18());
  net->eval();
  std::vector<torch::Tensor> batches{torch::randn({4, 3, 32, 32}) + 2.0, torch::randn({4, 3, 32, 32}) - 1.0};
  size_t next = 0;
  const int64_t used = calibrate_batchnorm(*net, [&] { return next < batches.size() ? batches[next++] : torch::Tensor(); }, 5);
  EXPECT_EQ(used, 2);
  torch::NoGradGuard no_grad;
  auto* conv1 = net->named_modules()["conv1"]->as<torch::nn::Conv2dImpl>();
  auto* bn1 = net->named_modules()["bn1"]->as<torch::nn::BatchNorm2dImpl>();
  auto mean0 = conv1->forward(batches[0]).mean({0, 2, 3}), mean1 = conv1->forward(batches[1]).mean({0, 2, 3});
  EXPECT_TRUE(torch::allclose(bn1->running_mean, (mean0 + mean1) / 2, 1e-4, 1e-5));
  EXPECT_FALSE(net->is_training());  // the mode comes back
  EXPECT_EQ(bn1->options.momentum().value(), 0.1);  // and the momentum
  Vit vit(VitOptions().patch_size(8).embed_dim(32).depth(1).num_heads(2).img_size(32));
  EXPECT_EQ(calibrate_batchnorm(*vit, [&] { return batches[0]; }, 3), 0);  // no BatchNorm: nothing to do
}

}  // namespace
}  // namespace lesseg

namespace lesseg {
namespace {

// A backbone file names its position-embedding kind; every loader rebuilds that kind (MAE's sin-cos
// is recomputed for a new grid, never resized as a learned table). Files without the key: learned.
TEST(ProbeBackbone, RebuildsThePositionEmbeddingKindOfTheWeights) {
  test::TempDir dir;
  torch::manual_seed(0);
  Vit mae_vit(vit_tiny(8).depth(1).pos_embed(PosEmbedKind::sincos));
  save_safetensors(dir.path() / "mae.safetensors", module_tensors(*mae_vit),
                   {{"lesseg.backbone", "vit_tiny8"}, {kPosEmbedMetadataKey, "sincos"}});
  Vit dino_vit(vit_tiny(8).depth(1));
  save_safetensors(dir.path() / "dino.safetensors", module_tensors(*dino_vit), {{"lesseg.backbone", "vit_tiny8"}});
  for (const auto& [file, kind] : {std::pair{"mae.safetensors", PosEmbedKind::sincos},
                                   std::pair{"dino.safetensors", PosEmbedKind::learned}}) {
    Config config;
    config.set("method", "dino");
    config.set("model.backbone", "vit_tiny8");
    config.set("model.weights", (dir.path() / file).string());
    config.set("model.allow_partial", "true");  // the files hold one block of twelve
    auto vit = std::dynamic_pointer_cast<VitImpl>(build_probe_backbone(config, torch::kCPU).backbone);
    ASSERT_TRUE(vit);
    EXPECT_EQ(vit->options.pos_embed(), kind) << file;
  }
  Config config;
  config.set("method", "dino");
  config.set("model.backbone", "vit_tiny8");
  config.set("model.weights", (dir.path() / "mae.safetensors").string());
  config.set("model.allow_partial", "true");
  auto vit = std::dynamic_pointer_cast<VitImpl>(build_probe_backbone(config, torch::kCPU).backbone);
  EXPECT_TRUE(torch::allclose(vit->position_embedding(32, 48), sincos_pos_embed_2d(192, 4, 6, true)));

  // a saved segmenter records the kind in its model spec; an unknown kind is bad weights, naming the file
  save_safetensors(dir.path() / "segmenter.safetensors", module_tensors(*mae_vit),
                   {{"lesseg.model", R"({"arch": "deeplabv3plus", "pos_embed": "sincos"})"}});
  config.set("model.weights", (dir.path() / "segmenter.safetensors").string());
  EXPECT_EQ(model_spec_from(config, 2).pos_embed, "sincos");
  save_safetensors(dir.path() / "odd.safetensors", module_tensors(*mae_vit), {{kPosEmbedMetadataKey, "rope"}});
  config.set("model.weights", (dir.path() / "odd.safetensors").string());
  try {
    model_spec_from(config, 2);
    FAIL() << "an unknown kind was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::bad_weights);
    EXPECT_NE(std::string(e.what()).find("odd.safetensors"), std::string::npos) << e.what();
  }
  config.set("model.pos_embed", "rope");
  EXPECT_THROW(model_spec_from(config, 2), Error);
}

}  // namespace
}  // namespace lesseg

namespace lesseg {
namespace {

// probe.pool: a ViT's image vector is its CLS token or the mean of its normed patch tokens. A uniform
// image makes the probe's input known exactly: every pixel (v / 255 - mean) / std.
TEST(ProbeFeatures, PoolChoosesClsOrMeanPatchToken) {
  TempDir dir;
  torch::manual_seed(0);
  Vit vit(vit_tiny(8).depth(2).img_size(32));
  cv::imwrite((dir / "grey.png").string(), cv::Mat(32, 32, CV_8UC3, cv::Scalar(50, 100, 200)));  // BGR
  ProbeImageOptions options;
  options.image_size = 32;
  auto input = torch::empty({1, 3, 32, 32});
  const double rgb[3] = {200, 100, 50};
  for (int c = 0; c < 3; ++c) input[0][c].fill_((rgb[c] / 255.0 - options.mean[size_t(c)]) / options.std[size_t(c)]);
  vit->eval();
  auto tokens = vit->forward_tokens(input);
  const std::vector<LabeledImage> images{{dir / "grey.png", 0}};
  auto cls = extract_features(*vit, images, options);
  options.pool = "mean";
  auto mean = extract_features(*vit, images, options);
  EXPECT_TRUE(torch::allclose(cls, tokens.cls(), 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(mean, tokens.patch_tokens().mean(1), 1e-4, 1e-5));
  EXPECT_FALSE(torch::allclose(cls, mean, 1e-2, 1e-2));
  EXPECT_THROW(probe_image_options(Config::load("", {"probe.pool=max"}), torch::kCPU), Error);
}

}  // namespace
}  // namespace lesseg
