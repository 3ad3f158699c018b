#include "lesseg/methods/predict.h"

#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "lesseg/data/loader.h"
#include "lesseg/io/image_io.h"

namespace lesseg {

cv::Mat predict_image(SavedSegmenter& s, const cv::Mat& rgb, torch::Device device) {
  cv::Mat input = rgb;
  if (s.resize_h > 0 && s.resize_w > 0) cv::resize(rgb, input, cv::Size(s.resize_w, s.resize_h), 0, 0, cv::INTER_LINEAR);
  torch::NoGradGuard no_grad;
  auto logits = s.model->forward(image_to_tensor(input.isContinuous() ? input : input.clone(), s.mean, s.std)
                                     .unsqueeze(0)
                                     .to(device));
  auto labels = logits.argmax(1).squeeze(0).to(torch::kU8).cpu().contiguous();
  cv::Mat out(int(labels.size(0)), int(labels.size(1)), CV_8U, labels.data_ptr<uint8_t>());
  out = out.clone();
  if (out.size() != rgb.size()) cv::resize(out, out, rgb.size(), 0, 0, cv::INTER_NEAREST);
  return out;
}

cv::Mat overlay(const cv::Mat& rgb, const cv::Mat& labels, const Palette& palette) {
  cv::Mat colors(labels.size(), CV_8UC3);
  for (int y = 0; y < labels.rows; ++y)
    for (int x = 0; x < labels.cols; ++x) {
      uint8_t c = labels.at<uint8_t>(y, x);
      auto color = c < palette.size() ? palette[c] : std::array<uint8_t, 3>{0, 0, 0};
      colors.at<cv::Vec3b>(y, x) = cv::Vec3b(color[0], color[1], color[2]);
    }
  cv::Mat blended;
  cv::addWeighted(rgb, 0.5, colors, 0.5, 0, blended);
  return blended;
}

void predict_files(SavedSegmenter& s, const std::vector<std::filesystem::path>& images,
                   const std::filesystem::path& out_dir, torch::Device device) {
  std::filesystem::create_directories(out_dir);
  for (const auto& path : images) {
    cv::Mat rgb = read_image_rgb(path);
    cv::Mat labels = predict_image(s, rgb, device);
    const std::string stem = path.stem().string();
    write_label_png(out_dir / (stem + ".png"), labels, s.classes.colors);
    write_image_rgb(out_dir / (stem + "_overlay.png"), overlay(rgb, labels, s.classes.colors));
  }
}

}  // namespace lesseg
