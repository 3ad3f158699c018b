#pragma once
// Standalone networks by name, for `lesseg import --arch NAME` and feature extraction: backbones and
// classifiers whose parameter names follow the reference implementations, so official files load.
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "lesseg/models/weights.h"

namespace lesseg {

// Names `build_named_model` accepts.
std::vector<std::string> model_zoo_names();

// Builds `arch`. A classifier's class count is read from the file's head tensor when present
// (e.g. fc.weight [1000, 2048]), so classifier files import whole; otherwise the network is headless.
std::shared_ptr<torch::nn::Module> build_named_model(const std::string& arch, const NamedTensors& file = {});

}  // namespace lesseg
