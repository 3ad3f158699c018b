#include "lesseg/io/safetensors.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"

namespace lesseg {
namespace {

constexpr uint64_t kMaxHeader = 100'000'000;

const std::vector<std::pair<std::string, at::ScalarType>>& dtype_table() {
  static const std::vector<std::pair<std::string, at::ScalarType>> table = {
      {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf}, {"BF16", at::kBFloat16},
      {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
      {"U8", at::kByte},    {"BOOL", at::kBool}};
  return table;
}

std::string dtype_name(at::ScalarType type) {
  for (const auto& [name, t] : dtype_table())
    if (t == type) return name;
  throw Error(ExitCode::internal, std::string("safetensors: unsupported dtype ") + c10::toString(type));
}

bool dtype_from_name(const std::string& name, at::ScalarType& type) {
  for (const auto& [n, t] : dtype_table())
    if (n == name) {
      type = t;
      return true;
    }
  return false;
}

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int extra;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
    if (c < 0x80) extra = 0;
    else if (c >= 0xC2 && c <= 0xDF) extra = 1;
    else if (c >= 0xE0 && c <= 0xEF) extra = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) extra = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return false;
    if (i + extra >= s.size() + (extra == 0)) return false;
    for (int k = 1; k <= extra; ++k) {
      const unsigned char b = static_cast<unsigned char>(s[i + k]);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return false;
    }
    i += extra + 1;
  }
  return true;
}

struct Entry {
  std::string name;
  at::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& name, const nlohmann::json& info, const std::filesystem::path& origin) {
  auto bad = [&](const std::string& reason) { throw_bad_weights(origin, "tensor '" + name + "': " + reason); };
  if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
    bad("entry needs dtype, shape and data_offsets");
  Entry e{name, at::kFloat, {}, 0, 0};
  if (!info["dtype"].is_string() || !dtype_from_name(info["dtype"].get<std::string>(), e.dtype))
    bad("unknown dtype " + info["dtype"].dump());
  const auto& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
    bad("data_offsets must be two non-negative integers");
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  if (e.end < e.begin) bad("data_offsets end before begin");
  if (!info["shape"].is_array()) bad("shape must be a list");
  unsigned __int128 bytes = c10::elementSize(e.dtype);
  for (const auto& dim : info["shape"]) {
    if (!dim.is_number_unsigned()) bad("shape entries must be non-negative integers");
    uint64_t d = dim.get<uint64_t>();
    if (d > uint64_t(INT64_MAX)) bad("shape entry too large");
    bytes *= d;
    if (bytes > (unsigned __int128)UINT64_MAX) bad("shape x dtype size overflows");
    e.shape.push_back(static_cast<int64_t>(d));
  }
  if (bytes != e.end - e.begin)
    bad("shape x dtype size (" + std::to_string(uint64_t(bytes)) + " bytes) != data span (" +
        std::to_string(e.end - e.begin) + " bytes)");
  return e;
}

}  // namespace

std::string safetensors_bytes(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> contiguous;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__" || header.contains(name))
      throw Error(ExitCode::internal, "safetensors: duplicate or reserved tensor name '" + name + "'");
    at::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    uint64_t size = t.numel() * t.element_size();
    header[name] = {{"dtype", dtype_name(t.scalar_type())}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + size}}};
    offset += size;
    contiguous.push_back(t);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // align the buffer to 8 bytes
  std::string out(8, '\0');
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += text;
  out.reserve(out.size() + offset);
  for (const auto& t : contiguous) out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  return out;
}

void save_safetensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, safetensors_bytes(tensors, metadata));
}

namespace {

// A read-only view of a whole file; tensors point into it (copy-on-write) and keep it alive.
struct MappedFile {
  void* data = MAP_FAILED;
  size_t size = 0;
  ~MappedFile() {
    if (data != MAP_FAILED) munmap(data, size);
  }
};

struct Layout {
  std::vector<Entry> entries;
  std::map<std::string, std::string> metadata;
  uint64_t buffer_begin = 0;  // file offset of the data buffer
};

// Validates the header and the offsets against a file of `size` bytes whose first bytes are `head`.
Layout parse_layout(const char* head, uint64_t size, const std::filesystem::path& origin) {
  if (size < 8) throw_bad_weights(origin, "file too small for a safetensors header (" + std::to_string(size) + " bytes)");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(static_cast<unsigned char>(head[i])) << (8 * i);
  if (n > kMaxHeader) throw_bad_weights(origin, "header length " + std::to_string(n) + " exceeds the 100 MB limit");
  if (n < 2 || 8 + n > size) throw_bad_weights(origin, "header length " + std::to_string(n) + " does not fit the file");
  std::string text(head + 8, n);
  if (text[0] != '{') throw_bad_weights(origin, "header does not start with '{'");
  if (!valid_utf8(text)) throw_bad_weights(origin, "header is not valid UTF-8");
  std::set<std::string> seen;
  std::string duplicate_name;
  auto parser = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (depth == 1 && event == nlohmann::json::parse_event_t::key && !seen.insert(parsed.get<std::string>()).second)
      duplicate_name = parsed.get<std::string>();
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text, parser);
  } catch (const nlohmann::json::exception& e) {
    throw_bad_weights(origin, std::string("header is not valid JSON: ") + e.what());
  }
  if (!duplicate_name.empty()) throw_bad_weights(origin, "duplicate tensor name '" + duplicate_name + "'");
  if (!header.is_object()) throw_bad_weights(origin, "header is not a JSON object");
  Layout layout;
  layout.buffer_begin = 8 + n;
  for (auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) throw_bad_weights(origin, "__metadata__ must be an object of strings");
      for (auto& [k, v] : info.items()) {
        if (!v.is_string()) throw_bad_weights(origin, "__metadata__ value of '" + k + "' is not a string");
        layout.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    layout.entries.push_back(parse_entry(name, info, origin));
  }
  const uint64_t buffer_size = size - layout.buffer_begin;
  std::vector<const Entry*> by_offset;
  for (const auto& e : layout.entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expected = 0;
  for (const Entry* e : by_offset) {
    if (e->end > buffer_size) throw_bad_weights(origin, "tensor '" + e->name + "' data_offsets out of range of the file");
    if (e->begin < expected) throw_bad_weights(origin, "tensor '" + e->name + "' overlaps another tensor");
    if (e->begin > expected) throw_bad_weights(origin, "hole in the data buffer before tensor '" + e->name + "'");
    expected = e->end;
  }
  if (expected != buffer_size)
    throw_bad_weights(origin, "data buffer has " + std::to_string(buffer_size - expected) +
                                  " trailing bytes not covered by any tensor");
  return layout;
}

at::Tensor copy_tensor(const Entry& e, const char* buffer) {
  at::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype));
  if (e.end > e.begin) std::memcpy(t.data_ptr(), buffer + e.begin, e.end - e.begin);
  return t;
}

}  // namespace

TensorFile parse_safetensors(const std::string& bytes, const std::filesystem::path& origin) {
  Layout layout = parse_layout(bytes.data(), bytes.size(), origin);
  TensorFile file;
  file.metadata = layout.metadata;
  for (const auto& e : layout.entries) file.tensors.emplace_back(e.name, copy_tensor(e, bytes.data() + layout.buffer_begin));
  return file;
}

// Memory-maps the file privately: tensors alias the mapping (copy-on-write, so in-place updates never
// reach the file) and large weights are never copied whole; misaligned tensors are copied.
TensorFile load_safetensors(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw_bad_weights(path, "file does not exist or is not a regular file");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_bad_weights(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat info {};
  auto mapped = std::make_shared<MappedFile>();
  if (::fstat(fd, &info) == 0 && info.st_size > 0) {
    mapped->size = static_cast<size_t>(info.st_size);
    mapped->data = ::mmap(nullptr, mapped->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  }
  const int map_errno = errno;
  ::close(fd);
  if (info.st_size > 0 && mapped->data == MAP_FAILED)
    throw_bad_weights(path, std::string("cannot map: ") + std::strerror(map_errno));
  const char* bytes = mapped->size ? static_cast<const char*>(mapped->data) : "";
  Layout layout = parse_layout(bytes, mapped->size, path);
  TensorFile file;
  file.metadata = layout.metadata;
  char* buffer = static_cast<char*>(mapped->data) + layout.buffer_begin;
  for (const auto& e : layout.entries) {
    char* start = buffer + e.begin;
    const bool aligned = reinterpret_cast<uintptr_t>(start) % c10::elementSize(e.dtype) == 0;
    if (!aligned || e.end == e.begin) {
      file.tensors.emplace_back(e.name, copy_tensor(e, buffer));
      continue;
    }
    auto keep_alive = [mapped](void*) {};
    file.tensors.emplace_back(e.name, torch::from_blob(start, e.shape, keep_alive, torch::TensorOptions().dtype(e.dtype)));
  }
  return file;
}

}  // namespace lesseg
