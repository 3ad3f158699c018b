#include "lesseg/data/rare_class.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <cmath>
#include <thread>

#include <spdlog/spdlog.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"

namespace lesseg {

std::vector<std::vector<int64_t>> class_pixel_counts(const SegDataset& dataset, int threads) {
  const int num_classes = dataset.classes().num_classes(), ignore = dataset.classes().ignore_index;
  std::vector<std::vector<int64_t>> counts(dataset.size(), std::vector<int64_t>(num_classes, 0));
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto work = [&] {
    for (size_t i = next++; i < dataset.size(); i = next++) {
      try {
        const cv::Mat mask = dataset.get(i).mask;
        if (mask.empty()) throw Error(ExitCode::bad_input, dataset.sample_id(i) + ": rare-class sampling needs labels");
        for (int y = 0; y < mask.rows; ++y) {
          const uint8_t* row = mask.ptr<uint8_t>(y);
          for (int x = 0; x < mask.cols; ++x)
            if (row[x] != ignore && row[x] < num_classes) ++counts[i][row[x]];
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        next = dataset.size();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < std::max(1, threads); ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
  return counts;
}

RareClassSampling rare_class_sampling(const std::vector<std::vector<int64_t>>& counts, int num_classes,
                                      double temperature, int64_t min_pixels) {
  if (!(temperature > 0)) throw_usage("the rare-class temperature must be > 0");
  std::vector<double> total(num_classes, 0);
  double all = 0;
  std::vector<int64_t> showing(num_classes, 0);
  for (const auto& image : counts)
    for (int c = 0; c < num_classes; ++c) {
      total[c] += double(image.at(c));
      all += double(image[c]);
      if (image[c] >= std::max<int64_t>(1, min_pixels)) ++showing[c];
    }
  if (all == 0) throw_usage("rare-class sampling: the labeled images hold no labeled pixel");
  RareClassSampling out;
  out.class_probability.assign(num_classes, 0.0);
  double max_logit = -1e300, norm = 0;
  for (int c = 0; c < num_classes; ++c)
    if (showing[c] > 0) max_logit = std::max(max_logit, (1 - total[c] / all) / temperature);
  for (int c = 0; c < num_classes; ++c)
    if (showing[c] > 0) norm += out.class_probability[c] = std::exp((1 - total[c] / all) / temperature - max_logit);
  if (norm == 0) throw_usage("rare-class sampling: no class covers rare_class_min_pixels pixels in any image");
  for (double& p : out.class_probability) p /= norm;
  out.image_weight.assign(counts.size(), 0.0);
  for (size_t i = 0; i < counts.size(); ++i)
    for (int c = 0; c < num_classes; ++c)
      if (showing[c] > 0 && counts[i][c] >= std::max<int64_t>(1, min_pixels))
        out.image_weight[i] += out.class_probability[c] / double(showing[c]);
  return out;
}

std::vector<double> rare_class_weights_from(const Config& config, const SegDataset& labeled) {
  const double temperature = config.get<double>("uda.rare_class_temperature");
  if (temperature < 0) throw_usage("uda.rare_class_temperature must be >= 0");
  if (temperature == 0) return {};
  const int64_t min_pixels = config.get<int64_t>("uda.rare_class_min_pixels");
  const ClassInfo& classes = labeled.classes();
  RareClassSampling sampling = rare_class_sampling(class_pixel_counts(labeled, config.get<int>("data.workers")),
                                                   classes.num_classes(), temperature, min_pixels);
  std::string text;
  for (int c = 0; c < classes.num_classes(); ++c) text += fmt::format(" {} {:.3f}", classes.names[c], sampling.class_probability[c]);
  spdlog::info("rare-class sampling (T = {}): class probabilities{}", temperature, text);
  return sampling.image_weight;
}

}  // namespace lesseg
