#include "lesseg/io/safetensors.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/io/safetensors_layout.h"

namespace lesseg {
namespace {

// The same names as safetensors::dtype_names(), with their LibTorch types.
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

at::ScalarType scalar_type(const safetensors::Entry& e) {
  at::ScalarType type = at::kFloat;
  if (!dtype_from_name(e.dtype, type)) throw Error(ExitCode::internal, "safetensors: no ScalarType for dtype " + e.dtype);
  return type;
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

at::Tensor copy_tensor(const safetensors::Entry& e, const char* buffer) {
  at::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(scalar_type(e)));
  if (e.end > e.begin) std::memcpy(t.data_ptr(), buffer + e.begin, e.end - e.begin);
  return t;
}

}  // namespace

TensorFile parse_safetensors(const std::string& bytes, const std::filesystem::path& origin) {
  safetensors::Layout layout = safetensors::parse_layout(bytes.data(), bytes.size(), origin);
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
  safetensors::Layout layout = safetensors::parse_layout(bytes, mapped->size, path);
  TensorFile file;
  file.metadata = layout.metadata;
  char* buffer = static_cast<char*>(mapped->data) + layout.buffer_begin;
  for (const auto& e : layout.entries) {
    char* start = buffer + e.begin;
    const bool aligned = reinterpret_cast<uintptr_t>(start) % e.element_size == 0;
    if (!aligned || e.end == e.begin) {
      file.tensors.emplace_back(e.name, copy_tensor(e, buffer));
      continue;
    }
    auto keep_alive = [mapped](void*) {};
    file.tensors.emplace_back(e.name, torch::from_blob(start, e.shape, keep_alive, torch::TensorOptions().dtype(scalar_type(e))));
  }
  return file;
}

}  // namespace lesseg
