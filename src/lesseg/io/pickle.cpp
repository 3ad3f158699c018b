#include "lesseg/io/pickle.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <unordered_map>

#include "lesseg/core/error.h"

// ref: CPython Lib/pickle.py (opcode table and _Unpickler.load_* semantics) and
// torch/serialization.py (persistent ids). Written from the protocol description, not ported.
namespace lesseg::pickle {
namespace {

constexpr size_t kMaxBigIntBytes = 1024;   // LONG1/LONG4 wider than this are refused
constexpr size_t kMaxLineBytes = 1024;     // GLOBAL / text opcodes
constexpr size_t kMaxDims = 64;            // tensor rank

const std::vector<std::string>& storage_dtypes() {
  static const std::vector<std::string> dtypes = {"Float", "Double", "Half", "BFloat16", "Long",
                                                  "Int",   "Short",  "Char", "Byte",     "Bool"};
  return dtypes;
}

// Printable, bounded text of a name from the file for error messages.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 200)) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  if (s.size() > 200) out += "...";
  return out;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::none: return "None";
    case Kind::boolean: return "bool";
    case Kind::integer: case Kind::bigint: return "int";
    case Kind::floating: return "float";
    case Kind::string: return "str";
    case Kind::bytes: return "bytes";
    case Kind::list: return "list";
    case Kind::tuple: return "tuple";
    case Kind::dict: return "dict";
    case Kind::global: return "global";
    case Kind::storage: return "storage";
    case Kind::tensor: return "tensor";
  }
  return "?";
}

class Unpickler {
 public:
  Unpickler(std::string_view bytes, size_t offset, const std::filesystem::path& origin)
      : bytes_(bytes), pos_(offset), origin_(origin) {}

  Pickle run();

 private:
  [[noreturn]] void fail(const std::string& reason) const {
    throw_bad_weights(origin_, "pickle at byte " + std::to_string(op_pos_) + ": " + reason);
  }

  // --- reading the stream ---
  void need(uint64_t n) {
    if (n > bytes_.size() - pos_)
      fail("truncated (needs " + std::to_string(n) + " more bytes, " + std::to_string(bytes_.size() - pos_) +
           " left)");
  }
  uint64_t read_le(int n) {
    need(n);
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t(static_cast<unsigned char>(bytes_[pos_ + i])) << (8 * i);
    pos_ += n;
    return v;
  }
  std::string_view read_bytes(uint64_t n) {
    need(n);
    std::string_view s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string_view read_line() {
    size_t end = bytes_.find('\n', pos_);
    if (end == std::string_view::npos) fail("truncated (line without newline)");
    if (end - pos_ > kMaxLineBytes) fail("text line longer than " + std::to_string(kMaxLineBytes) + " bytes");
    std::string_view s = bytes_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  int64_t parse_decimal(std::string_view s) {
    if (!s.empty() && s.back() == 'L') s.remove_suffix(1);  // protocol 0 LONG
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) fail("bad decimal integer '" + printable(s) + "'");
    return v;
  }

  // --- values ---
  Value* make(Kind kind) {
    Value& v = out_.arena.emplace_back();
    v.kind = kind;
    return &v;
  }
  Value* make_int(int64_t i) {
    Value* v = make(Kind::integer);
    v->integer = i;
    return v;
  }
  Value* make_text(Kind kind, std::string_view s) {
    Value* v = make(kind);
    v->text.assign(s.data(), s.size());
    return v;
  }
  Value* make_long(std::string_view le);

  // --- stack ---
  void push(Value* v) { stack_.push_back(v); }
  Value* pop() {
    if (stack_.size() <= stack_floor()) fail("stack underflow");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    if (stack_.size() <= stack_floor()) fail("stack underflow");
    return stack_.back();
  }
  size_t stack_floor() const { return marks_.empty() ? 0 : marks_.back(); }
  // Pops everything above the last MARK.
  std::vector<Value*> pop_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Value*> items(stack_.begin() + mark, stack_.end());
    stack_.resize(mark);
    return items;
  }

  void memo_put(uint64_t index) { memo_[index] = top(); }
  Value* memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo index " + std::to_string(index) + " was never stored");
    return it->second;
  }

  // --- interpretation ---
  void global(std::string module, std::string name);
  Value* reduce(const Value& callable, const Value& args);
  Value* new_object(const Value& cls);
  void build(Value& object, const Value& state);
  Value* persistent_id(const Value& pid);
  Value* rebuild_tensor(const Value& args);
  void set_item(Value* dict, Value* key, Value* value) {
    if (dict->kind != Kind::dict) fail(std::string("SETITEM on a ") + kind_name(dict->kind) + ", not a dict");
    dict->entries.emplace_back(key, value);
  }
  void append(Value* list, Value* item) {
    if (list->kind != Kind::list) fail(std::string("APPEND on a ") + kind_name(list->kind) + ", not a list");
    list->items.push_back(item);
  }
  int64_t as_int(const Value* v, const char* what) {
    if (v->kind == Kind::integer) return v->integer;
    if (v->kind == Kind::boolean) return v->boolean;
    fail(std::string(what) + " must be an int, not " + kind_name(v->kind));
  }
  const Value* as_tuple(const Value* v, const char* what) {
    if (v->kind != Kind::tuple && v->kind != Kind::list)
      fail(std::string(what) + " must be a tuple, not " + kind_name(v->kind));
    return v;
  }

  std::string_view bytes_;
  size_t pos_;
  size_t op_pos_ = 0;
  const std::filesystem::path& origin_;
  Pickle out_;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
};

Value* Unpickler::make_long(std::string_view le) {
  // Little-endian two's complement; it fits int64 when every byte above the 8th repeats the sign.
  const size_t n = le.size();
  if (n == 0) return make_int(0);
  const bool negative = static_cast<unsigned char>(le[n - 1]) & 0x80;
  bool fits = true;
  for (size_t i = 8; i < n; ++i)
    if (static_cast<unsigned char>(le[i]) != (negative ? 0xff : 0x00)) fits = false;
  if (n > 8 && fits && (static_cast<unsigned char>(le[7]) & 0x80) != (negative ? 0x80 : 0)) fits = false;
  if (!fits) {
    if (n > kMaxBigIntBytes) fail("integer of " + std::to_string(n) + " bytes is too large");
    return make_text(Kind::bigint, le);
  }
  uint64_t v = negative ? ~uint64_t(0) : 0;
  for (size_t i = 0; i < std::min<size_t>(n, 8); ++i) {
    v &= ~(uint64_t(0xff) << (8 * i));
    v |= uint64_t(static_cast<unsigned char>(le[i])) << (8 * i);
  }
  return make_int(static_cast<int64_t>(v));
}

void Unpickler::global(std::string module, std::string name) {
  const std::string full = module + "." + name;
  const auto& allowed = allowed_pickle_globals();
  if (std::find(allowed.begin(), allowed.end(), full) == allowed.end())
    fail("refusing global '" + printable(full) + "': lesseg only loads tensors and never runs code from a file");
  push(make_text(Kind::global, full));
}

Value* Unpickler::persistent_id(const Value& pid) {
  // ('storage', torch.<T>Storage, key, location, numel) in zip files, plus view_metadata in legacy ones.
  if (pid.kind != Kind::tuple || pid.items.empty() || pid.items[0]->kind != Kind::string ||
      pid.items[0]->text != "storage")
    fail("persistent id is not a ('storage', ...) tuple");
  if (pid.items.size() != 5 && pid.items.size() != 6)
    fail("storage persistent id has " + std::to_string(pid.items.size()) + " fields, expected 5 or 6");
  const Value& type = *pid.items[1];
  const std::string prefix = "torch.", suffix = "Storage";
  if (type.kind != Kind::global || type.text.rfind(prefix, 0) != 0 || type.text.size() < prefix.size() + suffix.size() ||
      type.text.compare(type.text.size() - suffix.size(), suffix.size(), suffix) != 0)
    fail("storage type is not a torch.*Storage class");
  Value* v = make(Kind::storage);
  StorageRef& s = v->storage;
  s.dtype = type.text.substr(prefix.size(), type.text.size() - prefix.size() - suffix.size());
  const Value& key = *pid.items[2];
  if (key.kind == Kind::string) s.key = key.text;
  else if (key.kind == Kind::integer) s.key = std::to_string(key.integer);
  else fail("storage key must be a string");
  if (pid.items[3]->kind != Kind::string) fail("storage location must be a string");
  s.location = pid.items[3]->text;
  s.numel = as_int(pid.items[4], "storage size");
  if (s.numel < 0) fail("negative storage size");
  if (pid.items.size() == 6 && pid.items[5]->kind != Kind::none) {
    const Value& view = *as_tuple(pid.items[5], "storage view metadata");
    if (view.items.size() != 3) fail("storage view metadata must be (key, offset, size)");
    s.is_view = true;
    s.view_offset = as_int(view.items[1], "storage view offset");
    s.view_numel = as_int(view.items[2], "storage view size");
    if (s.view_offset < 0 || s.view_numel < 0 || s.view_offset > s.numel || s.view_numel > s.numel - s.view_offset)
      fail("storage view [" + std::to_string(s.view_offset) + ", +" + std::to_string(s.view_numel) +
           ") lies outside its storage of " + std::to_string(s.numel) + " elements");
  }
  return v;
}

Value* Unpickler::rebuild_tensor(const Value& args) {
  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]),
  // _rebuild_tensor(storage, storage_offset, size, stride) in older files
  if (args.items.size() < 4 || args.items.size() > 7) fail("_rebuild_tensor takes 4 to 7 arguments");
  const Value* storage = args.items[0];
  if (storage->kind != Kind::storage) fail("_rebuild_tensor_v2: first argument is not a storage");
  Value* v = make(Kind::tensor);
  TensorRef& t = v->tensor;
  t.storage = storage;
  t.storage_offset = as_int(args.items[1], "storage offset");
  const Value& sizes = *as_tuple(args.items[2], "tensor size");
  const Value& strides = *as_tuple(args.items[3], "tensor stride");
  if (sizes.items.size() != strides.items.size()) fail("tensor size and stride have different lengths");
  if (sizes.items.size() > kMaxDims) fail("tensor has more than " + std::to_string(kMaxDims) + " dimensions");
  if (args.items.size() > 4) t.requires_grad = args.items[4]->kind == Kind::boolean && args.items[4]->boolean;
  // The view must lie inside its storage: offset + sum((size - 1) * stride) < numel.
  const int64_t limit = storage->storage.is_view ? storage->storage.view_numel : storage->storage.numel;
  if (t.storage_offset < 0) fail("negative storage offset");
  __int128 last = t.storage_offset;
  bool empty = false;
  for (size_t d = 0; d < sizes.items.size(); ++d) {
    const int64_t size = as_int(sizes.items[d], "tensor size");
    const int64_t stride = as_int(strides.items[d], "tensor stride");
    if (size < 0 || stride < 0) fail("negative tensor size or stride");
    t.sizes.push_back(size);
    t.strides.push_back(stride);
    if (size == 0) empty = true;
    // Saturates at INT64_MAX (above any storage): 64 terms of up to 2^126 would overflow __int128.
    else last = std::min<__int128>(last + static_cast<__int128>(size - 1) * stride, INT64_MAX);
  }
  if (!empty && last >= limit)
    fail("tensor view (offset " + std::to_string(t.storage_offset) + ", last element " +
         std::to_string(static_cast<long long>(std::min<__int128>(last, INT64_MAX))) + ") lies outside its storage of " +
         std::to_string(limit) + " elements");
  if (empty && t.storage_offset > limit) fail("storage offset beyond the end of its storage");
  return v;
}

Value* Unpickler::reduce(const Value& callable, const Value& args) {
  if (callable.kind != Kind::global) fail(std::string("REDUCE on a ") + kind_name(callable.kind) + ", not a global");
  if (args.kind != Kind::tuple) fail("REDUCE arguments are not a tuple");
  const std::string& f = callable.text;
  if (f == "collections.OrderedDict") {
    Value* d = make(Kind::dict);
    if (args.items.empty()) return d;
    // OrderedDict([(k, v), ...])
    if (args.items.size() != 1 || (args.items[0]->kind != Kind::list && args.items[0]->kind != Kind::tuple))
      fail("OrderedDict takes one list of pairs");
    for (const Value* pair : args.items[0]->items) {
      if ((pair->kind != Kind::tuple && pair->kind != Kind::list) || pair->items.size() != 2)
        fail("OrderedDict item is not a pair");
      d->entries.emplace_back(pair->items[0], pair->items[1]);
    }
    return d;
  }
  if (f == "argparse.Namespace") {
    if (!args.items.empty()) fail("argparse.Namespace takes no positional arguments");
    Value* d = make(Kind::dict);
    d->is_namespace = true;
    return d;
  }
  if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") return rebuild_tensor(args);
  if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
    // (data, requires_grad, backward_hooks[, state])
    if (args.items.size() < 2 || args.items.size() > 4 || args.items[0]->kind != Kind::tensor)
      fail(f + " takes a tensor, requires_grad, hooks");
    Value* v = make(Kind::tensor);
    v->tensor = args.items[0]->tensor;
    v->tensor.requires_grad = args.items[1]->kind == Kind::boolean && args.items[1]->boolean;
    return v;
  }
  fail("cannot call '" + f + "'");
}

Value* Unpickler::new_object(const Value& cls) {
  if (cls.kind != Kind::global) fail(std::string("NEWOBJ on a ") + kind_name(cls.kind) + ", not a class");
  if (cls.text != "collections.OrderedDict" && cls.text != "argparse.Namespace")
    fail("cannot instantiate '" + cls.text + "'");
  Value* d = make(Kind::dict);
  d->is_namespace = cls.text == "argparse.Namespace";
  return d;
}

void Unpickler::build(Value& object, const Value& state) {
  if (object.kind == Kind::dict && object.is_namespace) {
    // Namespace.__dict__.update(state); a (dict, slotstate) pair carries it first.
    const Value* dict = &state;
    if (state.kind == Kind::tuple && state.items.size() == 2) dict = state.items[0];
    if (dict->kind == Kind::none) return;
    if (dict->kind != Kind::dict) fail("argparse.Namespace state is not a dict");
    const auto entries = dict->entries;  // a copy: the state may be the object itself (DUP, BUILD)
    object.entries.insert(object.entries.end(), entries.begin(), entries.end());
    return;
  }
  // OrderedDict attributes (state_dict()._metadata): not part of the contents, dropped.
  if (object.kind == Kind::dict) return;
  fail(std::string("BUILD on a ") + kind_name(object.kind) + " is not supported");
}

Pickle Unpickler::run() {
  for (;;) {
    op_pos_ = pos_;
    if (pos_ >= bytes_.size()) fail("truncated (no STOP opcode)");
    const unsigned char op = static_cast<unsigned char>(bytes_[pos_++]);
    switch (op) {
      case 0x80: {  // PROTO
        const uint64_t proto = read_le(1);
        if (proto > 5) fail("unsupported pickle protocol " + std::to_string(proto));
        break;
      }
      case 0x95:  // FRAME: a length hint, the opcodes follow inline
        need(read_le(8));
        break;
      case '.': {  // STOP
        if (stack_.empty()) fail("STOP with an empty stack");
        out_.root = stack_.back();
        out_.end = pos_;
        return std::move(out_);
      }
      case 'c': {  // GLOBAL "module\nname\n"
        std::string module(read_line());
        std::string name(read_line());
        global(std::move(module), std::move(name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        Value* name = pop();
        Value* module = pop();
        if (name->kind != Kind::string || module->kind != Kind::string) fail("STACK_GLOBAL needs two strings");
        global(module->text, name->text);
        break;
      }
      case 'q': memo_put(read_le(1)); break;                // BINPUT
      case 'r': memo_put(read_le(4)); break;                // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); break;             // MEMOIZE
      case 'p': {                                           // PUT
        const int64_t i = parse_decimal(read_line());
        if (i < 0) fail("negative memo index");
        memo_put(static_cast<uint64_t>(i));
        break;
      }
      case 'h': push(memo_get(read_le(1))); break;          // BINGET
      case 'j': push(memo_get(read_le(4))); break;          // LONG_BINGET
      case 'g': {                                           // GET
        const int64_t i = parse_decimal(read_line());
        if (i < 0) fail("negative memo index");
        push(memo_get(static_cast<uint64_t>(i)));
        break;
      }
      case '(': marks_.push_back(stack_.size()); break;     // MARK
      case '0': pop(); break;                               // POP
      case '1': pop_mark(); break;                          // POP_MARK
      case '2': push(top()); break;                         // DUP
      case '}': push(make(Kind::dict)); break;              // EMPTY_DICT
      case ']': push(make(Kind::list)); break;              // EMPTY_LIST
      case ')': push(make(Kind::tuple)); break;             // EMPTY_TUPLE
      case 'd': {                                           // DICT
        std::vector<Value*> items = pop_mark();
        if (items.size() % 2) fail("DICT with an odd number of items");
        Value* d = make(Kind::dict);
        for (size_t i = 0; i < items.size(); i += 2) d->entries.emplace_back(items[i], items[i + 1]);
        push(d);
        break;
      }
      case 'l': case 't': {                                 // LIST, TUPLE
        std::vector<Value*> items = pop_mark();
        Value* v = make(op == 'l' ? Kind::list : Kind::tuple);
        v->items.assign(items.begin(), items.end());
        push(v);
        break;
      }
      case 0x85: case 0x86: case 0x87: {                    // TUPLE1, TUPLE2, TUPLE3
        const size_t n = op - 0x84;
        Value* v = make(Kind::tuple);
        v->items.resize(n);
        for (size_t i = n; i-- > 0;) v->items[i] = pop();
        push(v);
        break;
      }
      case 'a': {                                           // APPEND
        Value* item = pop();
        append(top(), item);
        break;
      }
      case 'e': {                                           // APPENDS
        std::vector<Value*> items = pop_mark();
        Value* list = top();
        for (Value* item : items) append(list, item);
        break;
      }
      case 's': {                                           // SETITEM
        Value* value = pop();
        Value* key = pop();
        set_item(top(), key, value);
        break;
      }
      case 'u': {                                           // SETITEMS
        std::vector<Value*> items = pop_mark();
        if (items.size() % 2) fail("SETITEMS with an odd number of items");
        Value* dict = top();
        for (size_t i = 0; i < items.size(); i += 2) set_item(dict, items[i], items[i + 1]);
        break;
      }
      case 'N': push(make(Kind::none)); break;              // NONE
      case 0x88: case 0x89: {                               // NEWTRUE, NEWFALSE
        Value* v = make(Kind::boolean);
        v->boolean = op == 0x88;
        push(v);
        break;
      }
      case 'K': push(make_int(static_cast<int64_t>(read_le(1)))); break;                     // BININT1
      case 'M': push(make_int(static_cast<int64_t>(read_le(2)))); break;                     // BININT2
      case 'J': push(make_int(static_cast<int32_t>(static_cast<uint32_t>(read_le(4))))); break;  // BININT
      case 0x8a: push(make_long(read_bytes(read_le(1)))); break;                            // LONG1
      case 0x8b: {                                                                          // LONG4
        const int32_t n = static_cast<int32_t>(static_cast<uint32_t>(read_le(4)));
        if (n < 0) fail("negative LONG4 length");
        push(make_long(read_bytes(static_cast<uint64_t>(n))));
        break;
      }
      case 'I': {                                           // INT (protocol 0; "00"/"01" are bools)
        std::string_view line = read_line();
        if (line == "00" || line == "01") {
          Value* v = make(Kind::boolean);
          v->boolean = line == "01";
          push(v);
        } else {
          push(make_int(parse_decimal(line)));
        }
        break;
      }
      case 'L': push(make_int(parse_decimal(read_line()))); break;  // LONG (protocol 0)
      case 'G': {                                           // BINFLOAT, big-endian
        std::string_view b = read_bytes(8);
        uint64_t bits = 0;
        for (char c : b) bits = (bits << 8) | static_cast<unsigned char>(c);
        Value* v = make(Kind::floating);
        std::memcpy(&v->floating, &bits, sizeof bits);
        push(v);
        break;
      }
      case 'F': {                                           // FLOAT (protocol 0)
        std::string line(read_line());
        char* end = nullptr;
        Value* v = make(Kind::floating);
        v->floating = std::strtod(line.c_str(), &end);
        if (line.empty() || end != line.c_str() + line.size()) fail("bad float '" + printable(line) + "'");
        push(v);
        break;
      }
      case 0x8c: push(make_text(Kind::string, read_bytes(read_le(1)))); break;  // SHORT_BINUNICODE
      case 'X': push(make_text(Kind::string, read_bytes(read_le(4)))); break;   // BINUNICODE
      case 0x8d: push(make_text(Kind::string, read_bytes(read_le(8)))); break;  // BINUNICODE8
      case 'U': push(make_text(Kind::string, read_bytes(read_le(1)))); break;   // SHORT_BINSTRING
      case 'T': {                                                                // BINSTRING
        const int32_t n = static_cast<int32_t>(static_cast<uint32_t>(read_le(4)));
        if (n < 0) fail("negative BINSTRING length");
        push(make_text(Kind::string, read_bytes(static_cast<uint64_t>(n))));
        break;
      }
      case 'C': push(make_text(Kind::bytes, read_bytes(read_le(1)))); break;    // SHORT_BINBYTES
      case 'B': push(make_text(Kind::bytes, read_bytes(read_le(4)))); break;    // BINBYTES
      case 0x8e: push(make_text(Kind::bytes, read_bytes(read_le(8)))); break;   // BINBYTES8
      case 'R': {                                           // REDUCE
        Value* args = pop();
        Value* callable = pop();
        push(reduce(*callable, *args));
        break;
      }
      case 0x81: {                                          // NEWOBJ cls args
        pop();
        Value* cls = pop();
        push(new_object(*cls));
        break;
      }
      case 0x92: {                                          // NEWOBJ_EX cls args kwargs
        pop();
        pop();
        Value* cls = pop();
        push(new_object(*cls));
        break;
      }
      case 'b': {                                           // BUILD
        Value* state = pop();
        build(*top(), *state);
        break;
      }
      case 'Q': {                                           // BINPERSID
        Value* pid = pop();
        push(persistent_id(*pid));
        break;
      }
      default: {
        static const char* hex = "0123456789abcdef";
        std::string name = "0x";
        name += hex[op >> 4];
        name += hex[op & 15];
        if (op >= 0x20 && op < 0x7f) name += std::string(" '") + char(op) + "'";
        fail("unsupported pickle opcode " + name + " (lesseg reads state dicts only)");
      }
    }
  }
}

// Decimal text of a little-endian two's-complement integer.
std::string bigint_text(const std::string& le) {
  std::vector<uint8_t> mag(le.begin(), le.end());  // little-endian magnitude
  const bool negative = !mag.empty() && (mag.back() & 0x80);
  if (negative) {  // two's complement negate
    unsigned carry = 1;
    for (auto& b : mag) {
      const unsigned v = static_cast<uint8_t>(~b) + carry;
      b = static_cast<uint8_t>(v);
      carry = v >> 8;
    }
  }
  std::string digits;
  while (!mag.empty()) {
    while (!mag.empty() && mag.back() == 0) mag.pop_back();
    if (mag.empty()) break;
    uint32_t rem = 0;  // divide by 10, most significant byte first
    for (size_t i = mag.size(); i-- > 0;) {
      const uint32_t cur = (rem << 8) | mag[i];
      mag[i] = static_cast<uint8_t>(cur / 10);
      rem = cur % 10;
    }
    digits += char('0' + rem);
  }
  if (digits.empty()) digits = "0";
  if (negative) digits += '-';
  std::reverse(digits.begin(), digits.end());
  return digits;
}

std::string float_text(double f) {
  // Python repr: shortest round-trip digits, always with a '.' or an exponent.
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, f);
  std::string s(buf, end);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

}  // namespace

const std::vector<std::string>& allowed_pickle_globals() {
  static const std::vector<std::string> globals = [] {
    std::vector<std::string> g = {"collections.OrderedDict", "torch._utils._rebuild_tensor",
                                  "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
                                  "argparse.Namespace"};
    for (const auto& dtype : storage_dtypes()) g.push_back("torch." + dtype + "Storage");
    return g;
  }();
  return globals;
}

Pickle unpickle(std::string_view bytes, size_t offset, const std::filesystem::path& origin) {
  if (offset > bytes.size()) throw_bad_weights(origin, "pickle offset beyond the end of the data");
  return Unpickler(bytes, offset, origin).run();
}

bool scalar_text(const Value& value, std::string& out) {
  switch (value.kind) {
    case Kind::none: out = "None"; return true;
    case Kind::boolean: out = value.boolean ? "True" : "False"; return true;
    case Kind::integer: out = std::to_string(value.integer); return true;
    case Kind::bigint: out = bigint_text(value.text); return true;
    case Kind::floating: out = float_text(value.floating); return true;
    case Kind::string: out = value.text; return true;
    case Kind::list: case Kind::tuple: {
      std::string s = value.kind == Kind::list ? "[" : "(";
      for (size_t i = 0; i < value.items.size(); ++i) {
        const Value& item = *value.items[i];
        std::string t;
        if (item.kind == Kind::list || item.kind == Kind::tuple || !scalar_text(item, t)) return false;
        if (i) s += ", ";
        s += item.kind == Kind::string ? "'" + t + "'" : t;
      }
      if (value.kind == Kind::tuple && value.items.size() == 1) s += ",";
      s += value.kind == Kind::list ? "]" : ")";
      out = s;
      return true;
    }
    default: return false;
  }
}

}  // namespace lesseg::pickle
