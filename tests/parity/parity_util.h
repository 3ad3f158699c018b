#pragma once
// Parity goldens written by tools/parity/make_all.py (a CTest fixture runs it before these tests):
// LESSEG_PARITY_DIR/<case>/{weights.pth, io.safetensors}.
#include <filesystem>
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lesseg/io/safetensors.h"
#include "lesseg/models/weights.h"

namespace lesseg::parity {

inline std::filesystem::path case_dir(const std::string& name) {
  return std::filesystem::path(LESSEG_PARITY_DIR) / name;
}

// Inputs and the reference's outputs by name.
inline std::map<std::string, at::Tensor> reference_io(const std::string& name) {
  auto file = load_safetensors(case_dir(name) / "io.safetensors");
  return {file.tensors.begin(), file.tensors.end()};
}

// The reference's weights read straight from the user's file: plain torch.save(model.state_dict()).
inline std::vector<std::pair<std::string, at::Tensor>> reference_weights(const std::string& name) {
  return read_weight_file(case_dir(name) / "weights.pth");
}

// Largest absolute difference relative to the reference's largest magnitude.
inline double relative_error(const at::Tensor& ours, const at::Tensor& reference) {
  auto ref = reference.to(torch::kFloat64);
  double scale = std::max(ref.abs().max().item<double>(), 1e-12);
  return (ours.to(torch::kFloat64) - ref).abs().max().item<double>() / scale;
}

inline void expect_close(const at::Tensor& ours, const at::Tensor& reference, const std::string& what,
                         double tolerance = 1e-4) {
  ASSERT_EQ(ours.sizes(), reference.sizes()) << what;
  const double error = relative_error(ours, reference);
  std::printf("  %-40s max relative error %.1e\n", what.c_str(), error);
  EXPECT_LE(error, tolerance) << what;
}

}  // namespace lesseg::parity
