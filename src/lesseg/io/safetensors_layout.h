#pragma once
// The torch-free half of the safetensors reader (../shared/specs/formats.md): the 8-byte header length,
// the JSON header and every tensor's dtype, shape and data_offsets, checked against the file size.
// safetensors.cpp turns a validated layout into tensors; the fuzzer (fuzz/) drives it directly.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace lesseg::safetensors {

struct Entry {
  std::string name;
  std::string dtype;         // "F32", "BF16", ... (one of dtype_names())
  size_t element_size = 0;   // bytes per element of `dtype`
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte span inside the data buffer; end - begin = element_size * prod(shape)
};

struct Layout {
  std::vector<Entry> entries;  // by name (nlohmann keeps object keys sorted)
  std::map<std::string, std::string> metadata;
  uint64_t buffer_begin = 0;   // file offset of the data buffer
};

// Validates the header and the offsets against a file of `size` bytes starting at `head`: afterwards every
// entry's [begin, end) lies inside [0, size - buffer_begin), the entries tile the buffer exactly and no name
// repeats. Every violation throws Error(bad_weights) naming `origin` and the reason.
Layout parse_layout(const char* head, uint64_t size, const std::filesystem::path& origin);

// The dtypes lesseg reads and writes: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL.
const std::vector<std::string>& dtype_names();

}  // namespace lesseg::safetensors
