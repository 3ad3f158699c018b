#include "lesseg/data/loader.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/core/rng.h"
#include "lesseg/data/semi_views.h"

namespace lesseg {

at::Tensor image_to_tensor(const cv::Mat& rgb, const std::array<double, 3>& mean, const std::array<double, 3>& std) {
  CV_Assert(rgb.type() == CV_8UC3 && rgb.isContinuous());
  auto t = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8).permute({2, 0, 1}).to(torch::kFloat);
  auto m = torch::tensor({mean[0], mean[1], mean[2]}, torch::kFloat).view({3, 1, 1}) * 255.0;
  auto s = torch::tensor({std[0], std[1], std[2]}, torch::kFloat).view({3, 1, 1}) * 255.0;
  return ((t - m) / s).contiguous();
}

namespace {
// Object masks (CV_8U 0/1, height x width) -> [N, height, width] uint8.
at::Tensor instances_to_tensor(const std::vector<cv::Mat>& masks, int height, int width) {
  auto out = torch::zeros({static_cast<int64_t>(masks.size()), height, width}, torch::kUInt8);
  for (size_t i = 0; i < masks.size(); ++i) {
    CV_Assert(masks[i].type() == CV_8U && masks[i].rows == height && masks[i].cols == width);
    cv::Mat mask = masks[i].isContinuous() ? masks[i] : masks[i].clone();
    out[static_cast<int64_t>(i)].copy_(torch::from_blob(mask.data, {height, width}, torch::kUInt8).ne(0));
  }
  return out;
}
}  // namespace

Loader::Loader(SegDatasetPtr dataset, LoaderOptions options, SamplerState start)
    : dataset_(std::move(dataset)),
      options_(options),
      sampler_(dataset_->size(), options.shuffle, options.seed, options.rank, options.world_size),
      planned_(start),
      consumed_(start) {
  if (!options_.sample_weights.empty()) sampler_.set_weights(options_.sample_weights);
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { worker_loop(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (auto& t : workers_) t.join();
}

size_t Loader::batches_per_epoch() const {
  size_t n = sampler_.per_rank(), b = static_cast<size_t>(options_.batch_size);
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

bool Loader::plan_next(Plan& plan) {
  const size_t b = static_cast<size_t>(options_.batch_size);
  if (batches_per_epoch() == 0) return false;
  if (planned_.cursor >= static_cast<int64_t>(batches_per_epoch() * b) ||
      static_cast<size_t>(planned_.cursor) >= sampler_.per_rank()) {
    if (!options_.repeat) return false;
    planned_ = {planned_.epoch + 1, 0};
  }
  if (epoch_order_for_ != planned_.epoch) {
    epoch_order_ = sampler_.epoch_indices(planned_.epoch);
    epoch_order_for_ = planned_.epoch;
  }
  plan.samples.clear();
  for (size_t k = 0; k < b && static_cast<size_t>(planned_.cursor) < epoch_order_.size(); ++k) {
    // Seeded by the sample's place in the unsharded epoch order, not by rank, so that N ranks
    // augment every sample exactly as one process does (world size 1: the position is the cursor).
    uint64_t seed = mix_seed({options_.seed, static_cast<uint64_t>(planned_.epoch),
                              static_cast<uint64_t>(sampler_.global_position(planned_.cursor)), 0});
    plan.samples.emplace_back(epoch_order_[planned_.cursor], seed);
    ++planned_.cursor;
  }
  plan.after = planned_;
  return true;
}

// ref: specs/reliability.md item 10. The substitute is the next dataset index, so a run with the
// same bad files stays deterministic.
SegSample Loader::get_or_skip(size_t index, int64_t& skipped) const {
  for (size_t tries = 0;; ++tries) {
    try {
      return dataset_->get((index + tries) % dataset_->size());
    } catch (const Error& e) {
      if (!options_.skip_bad_images || e.code() != ExitCode::bad_input) throw;
      ++skipped;
      {
        std::lock_guard<std::mutex> lock(skip_mutex_);
        if (warned_.insert(e.what()).second) spdlog::warn("skipping a bad sample: {}", e.what());
      }
      if (tries + 1 >= dataset_->size()) throw_bad_input(e.what(), "every sample of the dataset is unreadable");
    }
  }
}

Batch Loader::build(const Plan& plan) const {
  Batch batch;
  std::vector<at::Tensor> images, masks, instances;
  std::vector<std::vector<at::Tensor>> strong(static_cast<size_t>(std::max(0, options_.strong_views)));
  bool labeled = true, has_instances = false;
  const int ignore = dataset_->classes().ignore_index;
  if (options_.views) return build_views(plan);
  for (const auto& [index, seed] : plan.samples) {
    SegSample sample = get_or_skip(index, batch.skipped);
    std::mt19937_64 rng(seed);
    augment(sample, options_.augment, ignore, rng);
    images.push_back(image_to_tensor(sample.image, options_.mean, options_.std));
    for (auto& views : strong)  // drawn after the weak view's augmentation, from the same sample seed
      views.push_back(image_to_tensor(strong_view(sample.image, options_.strong_spec, rng), options_.mean, options_.std));
    if (sample.mask.empty()) {
      labeled = false;
    } else {
      masks.push_back(torch::from_blob(sample.mask.data, {sample.mask.rows, sample.mask.cols}, torch::kUInt8)
                          .to(torch::kLong));
    }
    has_instances = has_instances || !sample.instances.empty();
    instances.push_back(instances_to_tensor(sample.instances, sample.image.rows, sample.image.cols));
    batch.ids.push_back(sample.id);
  }
  for (size_t i = 1; i < images.size(); ++i)
    TORCH_CHECK(images[i].sizes() == images[0].sizes(), "images of one batch differ in size (",
                batch.ids[0], " vs ", batch.ids[i], "): set data.resize or data.crop, or eval.batch_size 1");
  batch.images = torch::stack(images);
  for (auto& views : strong) batch.strong.push_back(torch::stack(views));
  if (labeled && !masks.empty()) batch.masks = torch::stack(masks);
  if (has_instances) batch.instances = std::move(instances);
  return batch;
}

Batch Loader::build_views(const Plan& plan) const {
  Batch batch;
  std::vector<std::vector<at::Tensor>> per_view(options_.views->num_views());
  for (const auto& [index, seed] : plan.samples) {
    SegSample sample = get_or_skip(index, batch.skipped);
    std::mt19937_64 rng(seed);
    Views views = options_.views->make(sample, index, rng);
    TORCH_CHECK(views.images.size() == per_view.size(), "view maker returned ", views.images.size(), " views, expected ",
                per_view.size());
    for (size_t v = 0; v < per_view.size(); ++v)
      per_view[v].push_back(image_to_tensor(views.images[v], options_.mean, options_.std));
    batch.fallbacks += views.fallback ? 1 : 0;
    batch.ids.push_back(sample.id);
  }
  for (auto& tensors : per_view) batch.views.push_back(torch::stack(tensors));
  return batch;
}

void Loader::worker_loop() {
  for (;;) {
    std::packaged_task<Batch()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();  // exceptions travel to the consumer through the future
  }
}

bool Loader::next(Batch& batch) {
  while (pending_.size() < static_cast<size_t>(std::max(1, options_.prefetch))) {
    Plan plan;
    if (!plan_next(plan)) break;
    std::packaged_task<Batch()> job([this, plan] { return build(plan); });
    pending_.emplace_back(plan.after, job.get_future());
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    work_ready_.notify_one();
  }
  if (pending_.empty()) return false;
  auto [after, future] = std::move(pending_.front());
  pending_.pop_front();
  batch = future.get();
  consumed_ = after;
  skipped_ += batch.skipped;  // counted when handed out, not when prefetched
  fallbacks_ += batch.fallbacks;
  return true;
}

}  // namespace lesseg
