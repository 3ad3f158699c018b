#pragma once
// A restricted unpickler for PyTorch checkpoints (../shared/specs/formats.md, ".pth").
// It interprets the opcodes a state dict uses and builds a small value tree; it never calls anything
// named in the file. Only the globals in allowed_pickle_globals() may appear: OrderedDict and
// argparse.Namespace become dicts, torch.*Storage types tag persistent ids, and
// torch._utils._rebuild_tensor(_v2) / _rebuild_parameter(_with_state) become tensor references (built
// later by the .pth reader from the raw storages). Any other global, unknown opcode or malformed stream throws
// Error(bad_weights) naming the file. Needs no LibTorch.
#include <cstdint>
#include <deque>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lesseg::pickle {

enum class Kind {
  none,
  boolean,
  integer,   // fits int64
  bigint,    // wider than 64 bits: `text` holds the little-endian two's-complement bytes
  floating,
  string,    // UTF-8 text (BINUNICODE...) or BINSTRING bytes read as text
  bytes,
  list,
  tuple,
  dict,      // dict, OrderedDict and argparse.Namespace (ordered entries)
  global,    // an allowed class or function, `text` = "module.name"
  storage,   // a persistent id ('storage', type, key, location, numel[, view])
  tensor,    // _rebuild_tensor_v2 / _rebuild_parameter
};

struct Value;

struct StorageRef {
  std::string dtype;     // "Float", "Half", ... (from torch.<dtype>Storage)
  std::string key;       // record name (zip) or storage key (legacy)
  std::string location;  // "cpu", "cuda:0", ...: ignored, everything is loaded on the CPU
  int64_t numel = 0;     // elements of the whole storage
  // Legacy files only: the persistent id names a view [view_offset, view_offset + view_numel) of it.
  bool is_view = false;
  int64_t view_offset = 0, view_numel = 0;
};

struct TensorRef {
  const Value* storage = nullptr;  // Kind::storage
  int64_t storage_offset = 0;      // elements
  std::vector<int64_t> sizes, strides;
  bool requires_grad = false;
};

// Values live in Pickle::arena; the pointers between them never own.
struct Value {
  Kind kind = Kind::none;
  bool boolean = false;
  int64_t integer = 0;
  double floating = 0.0;
  std::string text;                                   // string, bytes, bigint, global
  std::vector<const Value*> items;                    // list, tuple
  std::vector<std::pair<const Value*, const Value*>> entries;  // dict, in insertion order
  bool is_namespace = false;                          // dict built from argparse.Namespace
  StorageRef storage;
  TensorRef tensor;
};

struct Pickle {
  Pickle() = default;
  Pickle(Pickle&&) = default;  // moving keeps the arena's addresses; copying would not
  Pickle& operator=(Pickle&&) = default;
  Pickle(const Pickle&) = delete;
  Pickle& operator=(const Pickle&) = delete;

  std::deque<Value> arena;  // stable addresses
  const Value* root = nullptr;
  size_t end = 0;           // offset just past the STOP opcode
};

// Unpickles the pickle that starts at `offset` of `bytes`; `origin` names the file in errors.
Pickle unpickle(std::string_view bytes, size_t offset, const std::filesystem::path& origin);

// "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", ... (documentation and tests).
const std::vector<std::string>& allowed_pickle_globals();

// Python-like text of a scalar (None, True, 3, 0.1, 'abc' without quotes, big ints in decimal),
// or of a list/tuple of scalars ("[1, 2]", "(0.05, 0.4)"). Returns false for anything else.
bool scalar_text(const Value& value, std::string& out);

}  // namespace lesseg::pickle
