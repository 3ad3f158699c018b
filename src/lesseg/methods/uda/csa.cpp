// ref: Li et al. 2023, "Contrast, Stylize and Adapt" (CONFETI); facts from cxa9264/CONFETI
// (specs/uda.md). DACS plus a stylized source, a CAM head, CAM-weighted class prototypes of the
// teacher and a pixel-to-prototype contrast on source, mixed and target pixels.
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/engine/ema.h"
#include "lesseg/models/cut.h"
#include "lesseg/methods/uda/dacs_task.h"
#include "lesseg/methods/uda/prototypes.h"
#include "lesseg/methods/uda/stylizers.h"
#include "lesseg/methods/uda/uda.h"

namespace lesseg {
namespace {
namespace F = torch::nn::functional;

// On the backbone's deepest features: the CAM head (1x1 conv to the classes, no bias, N(0, 0.01))
// and the projection head (1x1 conv to the contrast space, no bias).
struct CsaHeadsImpl : torch::nn::Module {
  CsaHeadsImpl(int64_t in, int64_t classes, int64_t dim)
      : cam(register_module("cam", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, classes, 1).bias(false)))),
        projection(register_module("projection", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, dim, 1).bias(false)))) {
    torch::NoGradGuard no_grad;
    cam->weight.normal_(0.0, 0.01);
  }
  torch::nn::Conv2d cam, projection;
};
TORCH_MODULE(CsaHeads);

// What the student or teacher sees of a batch.
struct Views {
  at::Tensor logits;      // [B, C, H, W]
  at::Tensor cam_logits;  // [B, C, h, w] before the ReLU
  at::Tensor projected;   // [B, D, h, w], unit length along D
};

struct CsaOptions {
  std::string stylizer = "fda";
  FastStylizerOptions fast;
  bool cam = true, contrast = true;
  int64_t dim = 512, top_k = 32, pixels = 4096;
  double prototype_ema = 0.999, tau = 0.1;
  double contrast_weight = 0.5, diversity_weight = 2.0, cam_weight = 0.1;
  int64_t cam_from = 0, contrast_from = 0;  // iterations
  // CUT (csa.stylizer cut): trained in stage 1 (the first stage1_until iterations), frozen after.
  int64_t cut_ngf = 64, cut_blocks = 9, cut_patches = 256, stage1_until = 0;
  double cut_lr = 2e-4, consistency_weight = 0.1;
};

CsaOptions csa_options_from(const Config& config) {
  CsaOptions o;
  o.fast = stylizer_options_from(config);
  o.stylizer = o.fast.name;
  o.cam = config.get<bool>("csa.cam");
  o.contrast = config.get<bool>("csa.contrast");
  o.dim = config.get<int64_t>("csa.projection_dim");
  o.top_k = config.get<int64_t>("csa.top_k");
  o.pixels = config.get<int64_t>("csa.pixels");
  o.prototype_ema = config.get<double>("csa.prototype_ema");
  o.tau = config.get<double>("csa.tau");
  o.contrast_weight = config.get<double>("csa.contrast_weight");
  o.diversity_weight = config.get<double>("csa.diversity_weight");
  o.cam_weight = config.get<double>("csa.cam_weight");
  const auto iters = static_cast<double>(config.get<int64_t>("train.iters"));
  const double cam_start = config.get<double>("csa.cam_start"), contrast_start = config.get<double>("csa.contrast_start");
  if (cam_start < 0 || cam_start > 1 || contrast_start < 0 || contrast_start > 1)
    throw_usage("csa.cam_start and csa.contrast_start are fractions of train.iters in [0, 1]");
  o.cam_from = static_cast<int64_t>(std::llround(cam_start * iters));
  o.contrast_from = static_cast<int64_t>(std::llround(contrast_start * iters));
  if (o.stylizer != "none" && o.stylizer != "fda" && o.stylizer != "adain" && o.stylizer != "cut")
    throw_usage("csa.stylizer must be none, fda, adain or cut, got '" + o.stylizer + "'");
  o.cut_ngf = config.get<int64_t>("csa.cut_ngf");
  o.cut_blocks = config.get<int64_t>("csa.cut_blocks");
  o.cut_patches = config.get<int64_t>("csa.cut_patches");
  o.cut_lr = config.get<double>("csa.cut_lr");
  o.consistency_weight = config.get<double>("csa.consistency_weight");
  const double stage1 = config.get<double>("csa.stage1");
  if (stage1 < 0 || stage1 > 1) throw_usage("csa.stage1 is a fraction of train.iters in [0, 1]");
  o.stage1_until = static_cast<int64_t>(std::llround(stage1 * iters));
  if (o.cut_ngf < 1 || o.cut_blocks < 5 || o.cut_patches < 1) throw_usage("csa.cut_ngf >= 1, csa.cut_blocks >= 5, csa.cut_patches >= 1");
  if (o.dim < 1 || o.top_k < 1 || o.pixels < 1 || !(o.tau > 0)) throw_usage("csa: projection_dim, top_k, pixels and tau must be > 0");
  if (o.prototype_ema < 0 || o.prototype_ema >= 1) throw_usage("csa.prototype_ema must be in [0, 1)");
  return o;
}

// [B, H, W] labels -> [B, C] multi-hot of the classes present (ignore_index left out).
at::Tensor classes_present(const at::Tensor& labels, int64_t classes, int64_t ignore_index) {
  auto valid = labels.ne(ignore_index);
  auto one_hot = F::one_hot(labels.masked_fill(valid.logical_not(), 0), classes).masked_fill(valid.logical_not().unsqueeze(-1), 0);
  return one_hot.flatten(1, 2).amax(1).to(torch::kFloat);
}

// A per-pixel map [B, H, W] (labels, weights) nearest-downsampled to the feature grid [h, w], as float.
at::Tensor nearest_on_grid(const at::Tensor& map, int64_t h, int64_t w) {
  return F::interpolate(map.unsqueeze(1).to(torch::kFloat),
                        F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).mode(torch::kNearest))
      .squeeze(1);
}

at::Tensor to_grid(const at::Tensor& labels, int64_t h, int64_t w) { return nearest_on_grid(labels, h, w).to(torch::kLong); }

// [B, D, h, w] -> [B h w, D]
at::Tensor rows(const at::Tensor& map) { return map.permute({0, 2, 3, 1}).reshape({-1, map.size(1)}); }

class CsaTask : public DacsTask {
 public:
  CsaTask(const Config& config, const SegmentationRun& run, Segmenter student, Segmenter teacher)
      : DacsTask(config, run, std::move(student), std::move(teacher)), options_(csa_options_from(config)) {
    const int64_t channels = student_->backbone().feature_specs().back().channels, classes = run.num_classes();
    heads_ = modules_->register_module("heads", CsaHeads(channels, classes, options_.dim));
    teacher_heads_ = modules_->register_module("teacher_heads", CsaHeads(channels, classes, options_.dim));
    bank_ = modules_->register_module("prototypes", PrototypeBank(classes, options_.dim));
    heads_->to(run.device);
    teacher_heads_->to(run.device);
    bank_->to(run.device);
    copy_weights(*teacher_heads_, *heads_);
    for (auto& p : teacher_heads_->parameters()) p.set_requires_grad(false);
    extra_trainable_ = heads_->parameters();
    if (options_.stylizer == "cut") {
      generator_ = modules_->register_module("cut_generator",
                                             CutGenerator(CutGeneratorOptions().ngf(options_.cut_ngf).blocks(options_.cut_blocks)));
      discriminator_ = modules_->register_module("cut_discriminator", PatchDiscriminator(options_.cut_ngf));
      sampler_ = modules_->register_module("cut_sampler", PatchSampler(generator_->encoder_channels()));
      reg_projection_ = modules_->register_module(
          "reg_projection", torch::nn::Conv2d(torch::nn::Conv2dOptions(options_.dim, options_.dim, 1).bias(false)));
      for (torch::nn::Module* m : std::vector<torch::nn::Module*>{generator_.get(), discriminator_.get(), sampler_.get(),
                                                                   reg_projection_.get()})
        m->to(run.device);
    } else if (options_.stylizer != "none") {
      stylizer_ = make_fast_stylizer(options_.fast);
    }
    if (options_.contrast && !mix_) throw_usage("csa.contrast needs dacs.mix: the prototypes come from the mixed images");
  }

  LossTerms train_step(int64_t iter) override {
    prepare_student();
    heads_->train();
    SemiBatch batch = next_batch();
    const bool contrast = options_.contrast && iter >= options_.contrast_from;
    LossTerms losses;
    // 1. The stylized source: segmentation, image-level CAM loss, contrast.
    const at::Tensor source = stylize(batch.images, batch.weak, iter, losses);
    Views s = look(source);
    losses.emplace_back("source", supervised_loss(s.logits, batch.labels));
    if (options_.cam) losses.emplace_back("cam_source", options_.cam_weight * cam_loss(s, batch.labels));
    if (contrast) add_contrast(losses, "source", s, batch.labels, {});
    if (!mix_) return losses;  // the stylized source alone (an ablation row)
    // 2. DACS: the teacher's pseudo-labels, ClassMix of the stylized source onto the target.
    const TargetLabel target = teacher_label(batch.weak, batch.ignored);
    const ClassMixed mixed = class_mix(source, batch.labels, batch.weak, target);
    // 3. Prototypes from the teacher's view of the mixed images: before the contrast starts, the
    // source pixels with uniform weights; then every labeled pixel, CAM-weighted.
    update_prototypes(mixed, contrast);
    // 4. The mixed images: weighted segmentation loss, CAM, contrast with per-pixel weights.
    Views m = look(mixed.images);
    losses.emplace_back("mix", weighted_cross_entropy(m.logits, mixed.labels, mixed.weights, ignore_index_));
    if (options_.cam && iter >= options_.cam_from) losses.emplace_back("cam_mix", options_.cam_weight * cam_loss(m, mixed.labels));
    if (contrast) add_contrast(losses, "mix", m, mixed.labels, mixed.weights);
    // 5. The target's own pixels pulled to the prototypes of their pseudo-labels, weighted by the
    // confident fraction.
    if (contrast) {
      Views t = look(batch.weak, /*segment=*/false);
      add_contrast(losses, "target", t, target.label.label,
                   torch::full(target.label.label.sizes(), target.weight, t.projected.options()));
    }
    return losses;
  }

  // CUT's generator (with the patch heads and the consistency head) and discriminator: Adam 2e-4,
  // betas (0.5, 0.999), no weight decay, constant lr.
  std::vector<TaskOptimizer> other_optimizers() override {
    if (!generator_) return {};
    TaskOptimizer g, d;
    g.name = "cut";
    g.parameters = generator_->parameters();
    for (auto& p : sampler_->parameters()) g.parameters.push_back(p);
    for (auto& p : reg_projection_->parameters()) g.parameters.push_back(p);
    d.name = "disc";
    d.parameters = discriminator_->parameters();
    for (TaskOptimizer* o : {&g, &d}) {
      o->optimizer.name = "adamw";
      o->optimizer.lr = options_.cut_lr;
      o->optimizer.beta1 = 0.5;
      o->optimizer.weight_decay = 0;
      o->schedule.name = "constant";
    }
    return {g, d};
  }

  void after_step(int64_t iter) override {
    DacsTask::after_step(iter);
    ema_update(*teacher_heads_, *heads_, teacher_momentum(iter));
  }

 private:
  // Source images toward the target batch's look, in the loader's normalization.
  at::Tensor stylize(const at::Tensor& source, const at::Tensor& target, int64_t iter, LossTerms& losses) {
    if (generator_) return stylize_cut(source, target, iter, losses);
    if (!stylizer_) return source;
    torch::NoGradGuard no_grad;
    const auto m = torch::tensor({mean_[0], mean_[1], mean_[2]}, source.options()).view({1, 3, 1, 1});
    const auto s = torch::tensor({std_[0], std_[1], std_[2]}, source.options()).view({1, 3, 1, 1});
    const auto styled = stylizer_->stylize(source * s + m, target * s + m).clamp(0, 1);
    return (styled - m) / s;
  }

  // CUT on the batch (images in [-1, 1]): in stage 1 the generator, patch heads and discriminator
  // learn (LSGAN, PatchNCE on the source and, as identity, on the target) together with the
  // stylizer-consistency loss, each through its own optimizer; the segmenter sees the stylized
  // source detached.
  at::Tensor stylize_cut(const at::Tensor& source, const at::Tensor& target, int64_t iter, LossTerms& losses) {
    const auto m = torch::tensor({mean_[0], mean_[1], mean_[2]}, source.options()).view({1, 3, 1, 1});
    const auto s = torch::tensor({std_[0], std_[1], std_[2]}, source.options()).view({1, 3, 1, 1});
    const auto real_a = (source * s + m) * 2 - 1, real_b = (target * s + m) * 2 - 1;
    auto to_loader = [&](const at::Tensor& x) { return ((x + 1) / 2 - m) / s; };
    const bool training = iter < options_.stage1_until;
    generator_->train(training);
    if (!training) {
      torch::NoGradGuard no_grad;
      return to_loader(generator_->forward(real_a));
    }
    const auto fake = generator_->forward(real_a), identity = generator_->forward(real_b);
    losses.emplace_back("disc/gan", 0.5 * (lsgan_loss(discriminator_->forward(real_b), true) +
                                           lsgan_loss(discriminator_->forward(fake.detach()), false)));
    losses.emplace_back("cut/gan", lsgan_loss(discriminator_->forward(fake), true));
    losses.emplace_back("cut/nce", 0.5 * (patch_nce(real_a, fake) + patch_nce(real_b, identity)));
    if (options_.contrast && iter >= options_.contrast_from) {
      // Prototype scores of the source and of its stylized copy (through the segmenter, which
      // this loss does not train) should agree.
      const auto bank = bank_->prototypes().clone();
      at::Tensor reference;
      {
        torch::NoGradGuard no_grad;
        reference = rows(look(source, false).projected).matmul(bank.t());
      }
      const auto styled = look(to_loader(fake), false).projected;
      const auto scores = rows(reg_projection_->forward(styled)).matmul(bank.t());
      losses.emplace_back("cut/consistency", options_.consistency_weight * torch::mse_loss(scores, reference));
    }
    return to_loader(fake.detach());
  }

  at::Tensor patch_nce(const at::Tensor& input, const at::Tensor& output) {
    std::vector<at::Tensor> ids;
    const auto keys = sampler_->forward(generator_->encode(input), options_.cut_patches, ids);
    const auto queries = sampler_->forward(generator_->encode(output), options_.cut_patches, ids);
    at::Tensor total = torch::zeros({}, input.options());
    for (size_t l = 0; l < queries.size(); ++l) total = total + patch_nce_loss(queries[l], keys[l], input.size(0)).mean();
    return total / double(queries.size());
  }

  Views look(const at::Tensor& images, bool segment = true) {
    std::vector<at::Tensor> features = student_->encode(images);
    Views v;
    if (segment) v.logits = student_->decode(features, images.size(2), images.size(3));
    v.cam_logits = heads_->cam(features.back());
    v.projected = F::normalize(heads_->projection(features.back()), F::NormalizeFuncOptions().dim(1));
    return v;
  }

  at::Tensor cam_loss(const Views& v, const at::Tensor& labels) {
    const auto score = v.cam_logits.mean({2, 3});  // image score: the map's average before the ReLU
    return F::binary_cross_entropy_with_logits(score, classes_present(labels, score.size(1), ignore_index_));
  }

  // 4096 (csa.pixels) random labeled pixels of the feature grid pulled to their class prototype,
  // plus the diversity regulariser.
  void add_contrast(LossTerms& losses, const std::string& name, const Views& v, const at::Tensor& labels,
                    const at::Tensor& weights) {
    const int64_t h = v.projected.size(2), w = v.projected.size(3);
    at::Tensor features = rows(v.projected), grid_labels = to_grid(labels, h, w).flatten();
    at::Tensor grid_weights = weights.defined() ? nearest_on_grid(weights, h, w).flatten() : at::Tensor();
    auto labeled = grid_labels.ne(ignore_index_).nonzero().flatten();
    if (labeled.numel() > options_.pixels)
      labeled = labeled.index_select(0, torch::randperm(labeled.numel(), labeled.options()).slice(0, 0, options_.pixels));
    features = features.index_select(0, labeled);
    grid_labels = grid_labels.index_select(0, labeled);
    if (grid_weights.defined()) grid_weights = grid_weights.index_select(0, labeled);
    losses.emplace_back("contrast_" + name,
                        options_.contrast_weight * prototype_contrast(features, grid_labels, bank_, options_.tau, ignore_index_, grid_weights));
    losses.emplace_back("diversity_" + name, options_.diversity_weight * prototype_diversity(features, bank_, options_.tau));
  }

  void update_prototypes(const ClassMixed& mixed, bool contrast) {
    torch::NoGradGuard no_grad;
    teacher_heads_->train();
    std::vector<at::Tensor> features = teacher_->encode(mixed.images);
    const auto projected = F::normalize(teacher_heads_->projection(features.back()), F::NormalizeFuncOptions().dim(1));
    const int64_t h = projected.size(2), w = projected.size(3);
    at::Tensor labels = to_grid(mixed.labels, h, w);
    if (!contrast) labels = labels.masked_fill(to_grid(mixed.mask.to(torch::kLong), h, w).eq(0), ignore_index_);
    at::Tensor scores;
    if (contrast && options_.cam) scores = rows(torch::relu(teacher_heads_->cam(features.back())));
    bank_->update(rows(projected), labels.flatten(), scores, options_.top_k, options_.prototype_ema, ignore_index_);
  }

  CsaOptions options_;
  CsaHeads heads_{nullptr}, teacher_heads_{nullptr};
  PrototypeBank bank_{nullptr};
  std::unique_ptr<Stylizer> stylizer_;
  CutGenerator generator_{nullptr};
  PatchDiscriminator discriminator_{nullptr};
  PatchSampler sampler_{nullptr};
  torch::nn::Conv2d reg_projection_{nullptr};
};

}  // namespace

TrainResult train_csa(const Config& config, const std::filesystem::path& run_dir) {
  return train_adaptation(config, run_dir, "csa", [](const Config& c, const SegmentationRun& r, Segmenter s, Segmenter t) {
    return std::make_unique<CsaTask>(c, r, std::move(s), std::move(t));
  });
}

}  // namespace lesseg
