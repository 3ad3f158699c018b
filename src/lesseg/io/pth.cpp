#include "lesseg/io/pth.h"

#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <unordered_map>

#include <c10/core/CPUAllocator.h>
#include <caffe2/serialize/inline_container.h>
#include <zip.h>
#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/io/pickle.h"

// ref: torch/serialization.py (_save / _legacy_save / _load / _legacy_load) for the container layouts.
namespace lesseg {
namespace {
namespace fs = std::filesystem;
using pickle::Kind;
using pickle::Value;

// The legacy format starts with pickle.dump(0x1950a86a20f9469cfc6c, protocol 2): PROTO 2, LONG1 10 bytes.
const std::string kLegacyMagic("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14);
const std::string kMagicNumber = kLegacyMagic.substr(4);  // little-endian bytes of the number
constexpr int64_t kLegacyProtocol = 1001;
constexpr int kMaxDepth = 100;

at::ScalarType dtype_from_storage(const std::string& name, const fs::path& origin) {
  static const std::vector<std::pair<std::string, at::ScalarType>> table = {
      {"Float", at::kFloat}, {"Double", at::kDouble}, {"Half", at::kHalf}, {"BFloat16", at::kBFloat16},
      {"Long", at::kLong},   {"Int", at::kInt},       {"Short", at::kShort}, {"Char", at::kChar},
      {"Byte", at::kByte},   {"Bool", at::kBool}};
  for (const auto& [n, t] : table)
    if (n == name) return t;
  throw_bad_weights(origin, "unsupported storage type torch." + name + "Storage");
}

// Storages by key: one CPU buffer each, shared by the tensors that view it.
class Storages {
 public:
  // Supplies the bytes of a storage the first time a tensor needs it (zip: one record per key).
  using Loader = std::function<at::Storage(const pickle::StorageRef&, size_t nbytes)>;
  Storages(const fs::path& origin, Loader loader) : origin_(origin), loader_(std::move(loader)) {}

  void add(const std::string& key, at::Storage storage, at::ScalarType dtype) {
    loaded_[key] = {std::move(storage), dtype};
  }

  at::Tensor tensor(const pickle::TensorRef& ref) {
    const pickle::StorageRef& s = ref.storage->storage;
    const at::ScalarType dtype = dtype_from_storage(s.dtype, origin_);
    auto it = loaded_.find(s.key);
    if (it == loaded_.end()) {
      if (!loader_) throw_bad_weights(origin_, "storage '" + s.key + "' has no data in the file");
      const size_t nbytes = static_cast<size_t>(s.numel) * c10::elementSize(dtype);
      it = loaded_.emplace(s.key, Entry{loader_(s, nbytes), dtype}).first;
    }
    const Entry& e = it->second;
    if (e.dtype != dtype)
      throw_bad_weights(origin_, "storage '" + s.key + "' is used as " + c10::toString(e.dtype) + " and as " +
                                     c10::toString(dtype));
    const size_t elements = e.storage.nbytes() / c10::elementSize(dtype);
    if (static_cast<size_t>(s.numel) > elements)
      throw_bad_weights(origin_, "storage '" + s.key + "' holds " + std::to_string(elements) + " elements, a tensor expects " +
                                     std::to_string(s.numel));
    const int64_t offset = ref.storage_offset + (s.is_view ? s.view_offset : 0);
    at::Tensor t = at::empty({0}, at::TensorOptions().dtype(dtype));
    t.set_(e.storage, offset, ref.sizes, ref.strides);
    return t;
  }

 private:
  struct Entry {
    at::Storage storage;
    at::ScalarType dtype;
  };
  const fs::path& origin_;
  Loader loader_;
  std::unordered_map<std::string, Entry> loaded_;
};

at::Storage storage_from_bytes(const char* data, size_t nbytes) {
  at::Storage storage(at::Storage::use_byte_size_t(), nbytes, c10::GetCPUAllocator(), /*resizable=*/false);
  if (nbytes) std::memcpy(storage.data(), data, nbytes);
  return storage;
}

// Turns the value tree into dotted names: tensors, and scalars as metadata text.
class Flattener {
 public:
  Flattener(const fs::path& origin, Storages& storages, const pickle::Pickle& p)
      : origin_(origin), storages_(storages), budget_(4 * p.arena.size() + 1024) {}

  TensorFile run(const Value& root) {
    if (root.kind == Kind::tensor || root.kind == Kind::storage) visit(root, "tensor", 0);
    else visit(root, "", 0);
    return std::move(out_);
  }

 private:
  std::string key_text(const Value& key, const std::string& prefix) {
    std::string text;
    if (key.kind == Kind::string || key.kind == Kind::integer || key.kind == Kind::bigint || key.kind == Kind::boolean)
      if (pickle::scalar_text(key, text)) return text;
    throw_bad_weights(origin_, "unsupported " + std::string(key.kind == Kind::none ? "None" : "non-scalar") +
                                   " dictionary key in '" + prefix + "' (only strings and ints become names)");
  }
  static std::string join(const std::string& prefix, const std::string& key) {
    return prefix.empty() ? key : prefix + "." + key;
  }
  void claim(const std::string& name) {
    if (!names_.insert(name).second) throw_bad_weights(origin_, "two entries flatten to the same name '" + name + "'");
  }

  void visit(const Value& v, const std::string& name, int depth) {
    // Shared references (the memo) can make a DAG whose paths grow exponentially, or a cycle.
    if (depth > kMaxDepth) throw_bad_weights(origin_, "nesting deeper than " + std::to_string(kMaxDepth) + " levels (or a cycle)");
    if (budget_-- == 0) throw_bad_weights(origin_, "too many shared references (a cyclic or exponential structure)");
    std::string text;
    switch (v.kind) {
      case Kind::tensor:
        claim(name);
        out_.tensors.emplace_back(name, storages_.tensor(v.tensor));
        return;
      case Kind::storage: {  // a bare storage: one flat tensor over all of it
        pickle::TensorRef whole;
        whole.storage = &v;
        whole.sizes = {v.storage.is_view ? v.storage.view_numel : v.storage.numel};
        whole.strides = {1};
        claim(name);
        out_.tensors.emplace_back(name, storages_.tensor(whole));
        return;
      }
      case Kind::dict:
        for (const auto& [key, value] : v.entries) visit(*value, join(name, key_text(*key, name)), depth + 1);
        return;
      case Kind::list:
      case Kind::tuple:
        if (pickle::scalar_text(v, text)) break;
        for (size_t i = 0; i < v.items.size(); ++i) visit(*v.items[i], join(name, std::to_string(i)), depth + 1);
        return;
      case Kind::bytes:
      case Kind::global:
        return;  // nothing a model needs
      default:
        pickle::scalar_text(v, text);
        break;
    }
    claim(name);
    out_.metadata[name] = text;
  }

  const fs::path& origin_;
  Storages& storages_;
  size_t budget_;
  std::set<std::string> names_;
  TensorFile out_;
};

TensorFile flatten(const pickle::Pickle& p, Storages& storages, const fs::path& origin) {
  return Flattener(origin, storages, p).run(*p.root);
}

std::string c10_reason(const c10::Error& e) {
  std::string s = e.what_without_backtrace();
  const size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// torch.save stores every record uncompressed. A compressed record (or a declared size beyond the
// file) could expand into gigabytes before any check: refuse it from the zip directory, before reading.
void refuse_compressed_records(const fs::path& path) {
  int error = 0;
  std::unique_ptr<zip_t, int (*)(zip_t*)> archive(zip_open(path.c_str(), ZIP_RDONLY, &error), zip_close);
  if (!archive) {
    zip_error_t reason;
    zip_error_init_with_code(&reason, error);
    const std::string text = zip_error_strerror(&reason);
    zip_error_fini(&reason);
    throw_bad_weights(path, "unreadable zip archive: " + text);
  }
  const uint64_t file_size = fs::file_size(path);
  const zip_int64_t entries = zip_get_num_entries(archive.get(), 0);
  for (zip_int64_t i = 0; i < entries; ++i) {
    zip_stat_t stat;
    if (zip_stat_index(archive.get(), static_cast<zip_uint64_t>(i), 0, &stat) != 0) continue;
    const std::string name = (stat.valid & ZIP_STAT_NAME) ? stat.name : "#" + std::to_string(i);
    if ((stat.valid & ZIP_STAT_COMP_METHOD) && stat.comp_method != ZIP_CM_STORE)
      throw_bad_weights(path, "zip record '" + name + "' is compressed; torch.save never compresses, refusing it");
    if ((stat.valid & ZIP_STAT_SIZE) && stat.size > file_size)
      throw_bad_weights(path, "zip record '" + name + "' declares " + std::to_string(stat.size) +
                                  " bytes, more than the whole file");
  }
}

TensorFile load_zip(const fs::path& path) {
  refuse_compressed_records(path);
  try {
    caffe2::serialize::PyTorchStreamReader reader(path.string());
    if (!reader.hasRecord("data.pkl")) throw_bad_weights(path, "zip archive has no data.pkl (not a torch.save file?)");
    if (reader.hasRecord("byteorder")) {
      auto [ptr, size] = reader.getRecord("byteorder");
      std::string order(static_cast<const char*>(ptr.get()), size);
      if (order != "little") throw_bad_weights(path, "byte order '" + order + "' is not supported (little-endian only)");
    }
    auto [pkl, pkl_size] = reader.getRecord("data.pkl");
    const pickle::Pickle p =
        pickle::unpickle(std::string_view(static_cast<const char*>(pkl.get()), pkl_size), 0, path);
    Storages storages(path, [&](const pickle::StorageRef& s, size_t nbytes) {
      const std::string record = "data/" + s.key;
      if (!reader.hasRecord(record)) throw_bad_weights(path, "missing storage record '" + record + "'");
      auto [ptr, size] = reader.getRecord(record);
      if (size < nbytes)
        throw_bad_weights(path, "storage record '" + record + "' has " + std::to_string(size) + " bytes, expected " +
                                    std::to_string(nbytes));
      return at::Storage(at::Storage::use_byte_size_t(), size, std::move(ptr), /*allocator=*/nullptr, /*resizable=*/false);
    });
    return flatten(p, storages, path);
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw_bad_weights(path, "unreadable zip archive: " + c10_reason(e));
  } catch (const std::bad_alloc&) {
    throw_bad_weights(path, "a record claims more memory than is available (corrupt archive?)");
  }
}

TensorFile load_legacy(const fs::path& path) {
  const std::string bytes = read_file(path);
  const std::string_view view(bytes);
  // 1. magic number, 2. protocol version, 3. sys_info
  pickle::Pickle magic = pickle::unpickle(view, 0, path);
  if (magic.root->kind != Kind::bigint || magic.root->text != kMagicNumber)
    throw_bad_weights(path, "legacy checkpoint with a wrong magic number");
  pickle::Pickle protocol = pickle::unpickle(view, magic.end, path);
  if (protocol.root->kind != Kind::integer || protocol.root->integer != kLegacyProtocol)
    throw_bad_weights(path, "unsupported legacy protocol version (expected 1001)");
  pickle::Pickle sys_info = pickle::unpickle(view, protocol.end, path);
  if (sys_info.root->kind == Kind::dict)
    for (const auto& [key, value] : sys_info.root->entries)
      if (key->kind == Kind::string && key->text == "little_endian" && value->kind == Kind::boolean && !value->boolean)
        throw_bad_weights(path, "big-endian legacy checkpoint is not supported");
  // 4. the object, 5. the storage keys in the order their data follows
  pickle::Pickle main = pickle::unpickle(view, sys_info.end, path);
  pickle::Pickle keys = pickle::unpickle(view, main.end, path);
  if (keys.root->kind != Kind::list) throw_bad_weights(path, "legacy storage key list is not a list");
  std::unordered_map<std::string, const pickle::StorageRef*> refs;  // key -> one persistent id naming it
  for (const Value& v : main.arena)
    if (v.kind == Kind::storage) {
      auto [it, inserted] = refs.emplace(v.storage.key, &v.storage);
      if (!inserted && (it->second->numel != v.storage.numel || it->second->dtype != v.storage.dtype))
        throw_bad_weights(path, "storage '" + v.storage.key + "' is described with two sizes or types");
    }
  Storages storages(path, nullptr);
  size_t pos = keys.end;
  for (const Value* key : keys.root->items) {
    if (key->kind != Kind::string) throw_bad_weights(path, "legacy storage key is not a string");
    auto it = refs.find(key->text);
    if (it == refs.end()) throw_bad_weights(path, "storage '" + key->text + "' is listed but never used");
    const pickle::StorageRef& s = *it->second;
    const at::ScalarType dtype = dtype_from_storage(s.dtype, path);
    if (bytes.size() - pos < 8) throw_bad_weights(path, "truncated before the data of storage '" + key->text + "'");
    uint64_t count = 0;
    for (int i = 0; i < 8; ++i) count |= uint64_t(static_cast<unsigned char>(bytes[pos + i])) << (8 * i);
    pos += 8;
    if (count != static_cast<uint64_t>(s.numel))
      throw_bad_weights(path, "storage '" + key->text + "' has " + std::to_string(count) + " elements, expected " +
                                  std::to_string(s.numel));
    const uint64_t nbytes = count * c10::elementSize(dtype);
    if (nbytes > bytes.size() - pos)
      throw_bad_weights(path, "truncated in the data of storage '" + key->text + "' (" + std::to_string(nbytes) +
                                  " bytes expected, " + std::to_string(bytes.size() - pos) + " left)");
    storages.add(key->text, storage_from_bytes(bytes.data() + pos, nbytes), dtype);
    pos += nbytes;
  }
  return flatten(main, storages, path);
}

std::string file_head(const fs::path& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string head(n, '\0');
  in.read(head.data(), static_cast<std::streamsize>(n));
  head.resize(static_cast<size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  return head;
}

}  // namespace

bool looks_like_pth(const fs::path& path) {
  const std::string head = file_head(path, kLegacyMagic.size());
  return head.rfind("PK\x03\x04", 0) == 0 || head == kLegacyMagic;
}

TensorFile load_pth(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw_bad_weights(path, "file does not exist or is not a regular file");
  const std::string head = file_head(path, kLegacyMagic.size());
  if (head.rfind("PK\x03\x04", 0) == 0) return load_zip(path);
  if (head == kLegacyMagic) return load_legacy(path);
  if (head.rfind("\x80", 0) == 0)
    throw_bad_weights(path, "a bare pickle without the torch.save magic number (not a PyTorch checkpoint)");
  throw_bad_weights(path, "not a PyTorch checkpoint (neither a zip archive nor a legacy torch.save file)");
}

}  // namespace lesseg
