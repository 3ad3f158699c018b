#pragma once
// PyTorch checkpoints (.pth / .pt / .th) read without executing anything (../shared/specs/formats.md).
#include <filesystem>

#include "lesseg/io/safetensors.h"

namespace lesseg {

// Reads a PyTorch checkpoint (zip container or the legacy pre-zip format) WITHOUT executing anything:
// the pickle inside is interpreted by lesseg's restricted unpickler (io/pickle.h), any global other than
// OrderedDict / argparse.Namespace / torch tensor and storage rebuilders is refused.
// Nested dicts are flattened with '.' ({'student': {'module.x': T}} -> "student.module.x");
// argparse.Namespace is read as a dict; non-tensor leaves (None, bools, ints, floats, strings, lists of
// them) go into metadata as Python-like text under their dotted name ("best_prec1" -> "91.78");
// other lists/tuples get ".0", ".1" suffixes; bytes leaves and OrderedDict attributes are dropped.
// A bare tensor at the top level is named "tensor". Every storage becomes a CPU tensor whatever
// location it was saved with (cuda:0 ...); tensors sharing a storage are views of one CPU buffer.
// Every problem throws Error(bad_weights) naming the file and the reason.
TensorFile load_pth(const std::filesystem::path& path);

// Zip magic "PK\x03\x04" or the legacy torch.save magic-number pickle.
bool looks_like_pth(const std::filesystem::path& path);

}  // namespace lesseg
