// .pth reading without executing anything: fixtures written by tools/make_pth_fixtures.py from torch 1.13
// (names, dtypes, shapes, strides, offsets, sums and metadata text in tests/fixtures/pth/expected.json),
// malicious files that run code under torch.load, crafted pickles and corrupted files.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <zip.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/io/pickle.h"
#include "lesseg/io/pth.h"

namespace lesseg {
namespace {
namespace fs = std::filesystem;

const fs::path kDir = fs::path(LESSEG_FIXTURES) / "pth";
using Metadata = std::map<std::string, std::string>;

const nlohmann::json& expected() {
  static const nlohmann::json j = nlohmann::json::parse(read_file(kDir / "expected.json"));
  return j;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("lesseg_pth_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path / name, std::ios::binary) << bytes;
    return path / name;
  }
};

// The message of the Error(bad_weights) that loading `path` throws ("" and a failure if none).
std::string load_error(const fs::path& path) {
  try {
    load_pth(path);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::bad_weights) << e.what();
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << "message must name the file: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << path << " loaded without an error";
  return "";
}

void expect_matches_python(const std::string& file) {
  SCOPED_TRACE(file);
  const TensorFile loaded = load_pth(kDir / file);
  const nlohmann::json& want = expected().at(file);
  ASSERT_EQ(loaded.tensors.size(), want.at("tensors").size());
  std::map<std::string, at::Tensor> by_name;
  for (size_t i = 0; i < loaded.tensors.size(); ++i) {
    const auto& [name, t] = loaded.tensors[i];
    const nlohmann::json& w = want["tensors"][i];
    SCOPED_TRACE(name);
    EXPECT_EQ(name, w.at("name").get<std::string>());  // file order
    EXPECT_EQ(c10::toString(t.scalar_type()), w.at("dtype").get<std::string>());
    EXPECT_TRUE(t.device().is_cpu());
    EXPECT_EQ(t.sizes().vec(), w.at("shape").get<std::vector<int64_t>>());
    EXPECT_EQ(t.strides().vec(), w.at("stride").get<std::vector<int64_t>>());
    EXPECT_EQ(t.storage_offset(), w.at("offset").get<int64_t>());
    const double sum = t.to(at::kDouble).sum().item<double>();
    EXPECT_NEAR(sum, w.at("sum").get<double>(), 1e-9 * (1 + std::abs(sum)));
    if (w.contains("values")) {
      const at::Tensor flat = t.to(at::kDouble).contiguous().flatten();
      const auto values = w["values"].get<std::vector<double>>();
      ASSERT_EQ(flat.numel(), static_cast<int64_t>(values.size()));
      for (size_t k = 0; k < values.size(); ++k) EXPECT_EQ(flat[k].item<double>(), values[k]) << "element " << k;
    }
    by_name[name] = t;
  }
  EXPECT_EQ(loaded.metadata, want.at("metadata").get<Metadata>());
  // Tensors that shared a storage in Python are views of one CPU buffer.
  for (const auto& group : want.at("shared")) {
    const auto names = group.get<std::vector<std::string>>();
    for (const auto& n : names)
      EXPECT_EQ(by_name.at(n).storage().unsafeGetStorageImpl(), by_name.at(names[0]).storage().unsafeGetStorageImpl()) << n;
  }
}

TEST(Pth, StateDictMatchesPython) { expect_matches_python("state_dict.pth"); }
TEST(Pth, OneItemDictMatchesPython) { expect_matches_python("one_item.pth"); }
TEST(Pth, EveryDtypeViewsParameterAndScalarsMatchPython) { expect_matches_python("mixed.pth"); }
TEST(Pth, Protocol4MatchesPython) { expect_matches_python("protocol4.pth"); }
TEST(Pth, CudaTaggedStoragesLoadOnTheCpu) { expect_matches_python("cuda_tagged.pth"); }
TEST(Pth, LegacyFormatMatchesPython) { expect_matches_python("legacy.pth"); }

TEST(Pth, DinoCheckpointFlattensDictsAndNamespace) {
  expect_matches_python("dino_checkpoint.pth");
  const TensorFile f = load_pth(kDir / "dino_checkpoint.pth");
  std::set<std::string> names;
  for (const auto& [name, t] : f.tensors) names.insert(name);
  for (const char* n : {"student.module.backbone.cls_token", "student.module.head.mlp.0.weight",
                        "teacher.backbone.pos_embed", "optimizer.state.0.momentum_buffer", "dino_loss.center"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_EQ(f.metadata.at("epoch"), "3");
  EXPECT_EQ(f.metadata.at("args.arch"), "vit_small");
  EXPECT_EQ(f.metadata.at("args.lr"), "0.1");
  EXPECT_EQ(f.metadata.at("args.local_crops_scale"), "(0.05, 0.4)");
  EXPECT_EQ(f.metadata.at("args.weight_decay_end"), "None");
  EXPECT_EQ(f.metadata.at("optimizer.param_groups.0.params"), "[0, 1]");
}

TEST(Pth, LegacyKeepsPythonFloatText) { EXPECT_EQ(load_pth(kDir / "legacy.pth").metadata.at("best_prec1"), "91.78"); }

TEST(Pth, LooksLikePth) {
  for (const char* f : {"state_dict.pth", "legacy.pth", "evil_legacy.pth"}) EXPECT_TRUE(looks_like_pth(kDir / f)) << f;
  EXPECT_FALSE(looks_like_pth(kDir / "expected.json"));
  EXPECT_FALSE(looks_like_pth(kDir / "missing.pth"));
}

TEST(PthResnet20, RealLegacyCheckpointMatchesPython) {
  const fs::path path = fs::path(LESSEG_SHARED_DATA) / "weights" / "resnet20-12fca82f.th";
  if (!fs::exists(path)) GTEST_SKIP() << path << " not present";
  ASSERT_TRUE(expected().contains("resnet20"));
  const nlohmann::json& want = expected()["resnet20"];
  EXPECT_TRUE(looks_like_pth(path));
  const TensorFile f = load_pth(path);
  ASSERT_EQ(f.tensors.size(), 97u);
  ASSERT_EQ(f.tensors.size(), want.at("count").get<size_t>());
  std::map<std::string, at::Tensor> by_name;
  for (const auto& [name, t] : f.tensors) {
    EXPECT_EQ(name.rfind("state_dict.module.", 0), 0u) << name;
    EXPECT_EQ(t.scalar_type(), at::kFloat) << name;
    by_name[name] = t;
  }
  EXPECT_EQ(f.metadata, want.at("metadata").get<Metadata>());
  EXPECT_TRUE(f.metadata.count("best_prec1"));
  for (const auto& w : want.at("some")) {
    const std::string name = w.at("name").get<std::string>();
    ASSERT_TRUE(by_name.count(name)) << name;
    const at::Tensor& t = by_name[name];
    EXPECT_EQ(t.sizes().vec(), w.at("shape").get<std::vector<int64_t>>()) << name;
    const double sum = t.to(at::kDouble).sum().item<double>();
    EXPECT_NEAR(sum, w.at("sum").get<double>(), 1e-9 * (1 + std::abs(sum))) << name;
  }
}

// --- files that run code under torch.load (the fixture script proves it) ---

TEST(PthSecurity, MaliciousGlobalsAreRefusedAndNeverRun) {
  const std::string marker_prefix = expected().at("marker").get<std::string>();
  for (const auto& [file, global] : expected().at("evil").items()) {
    SCOPED_TRACE(file);
    const std::string tag = file.substr(5, file.size() - 5 - 4);  // evil_<tag>.pth
    const fs::path marker = marker_prefix + tag;
    fs::remove(marker);
    const std::string message = load_error(kDir / file);
    EXPECT_NE(message.find("refusing global '" + global.get<std::string>() + "'"), std::string::npos) << message;
    EXPECT_FALSE(fs::exists(marker)) << "the payload ran: " << marker;
  }
  // Shorter names the brief asks the message to carry.
  EXPECT_NE(load_error(kDir / "evil_system.pth").find("system"), std::string::npos);
  EXPECT_NE(load_error(kDir / "evil_eval.pth").find("eval"), std::string::npos);
}

// --- crafted pickles (legacy container around a chosen main pickle) ---

std::string le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += char((v >> (8 * i)) & 0xff);
  return s;
}
std::string str(const std::string& s) { return "X" + le(s.size(), 4) + s; }
std::string global(const std::string& module, const std::string& name) { return "c" + module + "\n" + name + "\n"; }
std::string int4(int32_t v) { return "J" + le(static_cast<uint32_t>(v), 4); }
std::string ints(const std::vector<int32_t>& v) {
  std::string s = "(";
  for (int32_t x : v) s += int4(x);
  return s + "t";
}
// _rebuild_tensor_v2 over float storage "0" of `numel` elements (legacy persistent id, optional view).
std::string tensor_op(int32_t numel, int32_t offset, const std::vector<int32_t>& size, const std::vector<int32_t>& stride,
                      const std::string& view = "N") {
  return global("torch._utils", "_rebuild_tensor_v2") + "((" + str("storage") + global("torch", "FloatStorage") + str("0") +
         str("cpu") + int4(numel) + view + "tQ" + int4(offset) + ints(size) + ints(stride) + "\x89N" + "tR";
}
// A legacy file: magic, protocol 1001, sys_info, `main`, keys ["0"], then float storage "0" = 0..numel-1.
std::string legacy_file(const std::string& main, int64_t numel = 0, int64_t declared = -1) {
  std::string s("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);
  s += "\x80\x02M" + le(1001, 2) + ".";
  s += "\x80\x02}" + str("little_endian") + "\x88s.";
  s += "\x80\x02" + main + ".";
  s += "\x80\x02]" + (numel ? str("0") + "a" : std::string()) + ".";
  if (numel) {
    s += le(static_cast<uint64_t>(declared < 0 ? numel : declared), 8);
    for (int64_t i = 0; i < numel; ++i) {
      float f = static_cast<float>(i);
      s += std::string(reinterpret_cast<const char*>(&f), 4);
    }
  }
  return s;
}
std::string dict_of(const std::string& value) { return "}" + str("w") + value + "s"; }
// A tensor whose `dims` sizes and strides are all INT64_MAX (LONG1 operands), over 8 floats.
std::string huge_view_op(int dims) {
  std::string huge = "(";
  for (int i = 0; i < dims; ++i) huge += "\x8a\x08" + le(uint64_t(INT64_MAX), 8);
  huge += "t";
  return global("torch._utils", "_rebuild_tensor_v2") + "((" + str("storage") + global("torch", "FloatStorage") +
         str("0") + str("cpu") + int4(8) + "NtQ" + int4(0) + huge + huge + "\x89N" + "tR";
}

TEST(PthPickle, CraftedTensorViewLoads) {
  TempDir dir;
  // 2x2 view at offset 1 with strides (3, 1) into 0..7: [[1, 2], [4, 5]]
  TensorFile f = load_pth(dir.write("ok.pth", legacy_file(dict_of(tensor_op(8, 1, {2, 2}, {3, 1})), 8)));
  ASSERT_EQ(f.tensors.size(), 1u);
  EXPECT_TRUE(torch::equal(f.tensors[0].second, torch::tensor({{1.f, 2.f}, {4.f, 5.f}})));
  // a legacy storage view (view_key, offset 2, size 4): elements 2..5, tensor offset 1 inside it
  const std::string view = "(" + str("v") + int4(2) + int4(4) + "t";
  f = load_pth(dir.write("view.pth", legacy_file(dict_of(tensor_op(8, 1, {3}, {1}, view)), 8)));
  EXPECT_TRUE(torch::equal(f.tensors[0].second, torch::tensor({3.f, 4.f, 5.f})));
}

TEST(PthPickle, MalformedPicklesGiveClearErrors) {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {dict_of(tensor_op(8, 0, {3, 3}, {3, 1})), "outside its storage"},  // 9 elements of 8
      {dict_of(tensor_op(8, 7, {2}, {1})), "outside its storage"},
      {dict_of(tensor_op(8, 0, {2}, {-1})), "negative tensor size or stride"},
      {dict_of(tensor_op(8, -1, {2}, {1})), "negative storage offset"},
      // seen while writing fuzz/pickle_fuzz.cpp, confirmed by its UBSan: the view's extent overflowed __int128
      {dict_of(huge_view_op(4)), "outside its storage"},
      {dict_of(huge_view_op(64)), "outside its storage"},
      {dict_of(tensor_op(8, 0, {2}, {1}, "(" + str("v") + int4(6) + int4(4) + "t")), "outside its storage of 8"},
      {"s", "stack underflow"},
      {"(s", "stack underflow"},
      {"h\x05", "memo index 5 was never stored"},
      {"j" + le(123456, 4), "memo index 123456"},
      {"X" + le(0xffffffff, 4), "truncated"},
      {"\x8d" + le(uint64_t(1) << 62, 8), "truncated"},
      {"\x8e" + le(~uint64_t(0), 8), "truncated"},
      {"\x8b" + le(0x7fffffff, 4), "truncated"},
      {"\xff", "unsupported pickle opcode 0xff"},
      {"i" + std::string("os\nsystem\n"), "unsupported pickle opcode 0x69 'i'"},  // INST would call the class
      {"e", "no MARK"},
      {"N" + str("k") + str("v") + "s", "SETITEM on a None"},
      {dict_of(tensor_op(8, 0, {8}, {1})) + str("a") + "}NK\x01ss", "unsupported None dictionary key in 'a'"},
      {global("torch", "FloatStorage") + ")R", "cannot call 'torch.FloatStorage'"},
      {global("collections", "OrderedDict") + "N" + "R", "REDUCE arguments are not a tuple"},
      {global("subprocess", "Popen"), "refusing global 'subprocess.Popen'"},
      {global("builtins", "getattr"), "refusing global 'builtins.getattr'"},
      {global("torch", "ComplexFloatStorage"), "refusing global 'torch.ComplexFloatStorage'"},
      {str("os") + str("system") + "\x93", "refusing global 'os.system'"},  // STACK_GLOBAL
      {"]" + std::string(200, '\x8a') , "truncated"},
      {"\x80\x06", "unsupported pickle protocol 6"},
      {"Q", "stack underflow"},
      {"(" + str("storage") + "t" + "Q", "storage persistent id has 1 fields"},
      {"(" + str("file") + "tQ", "not a ('storage', ...) tuple"},
  };
  int i = 0;
  for (const auto& [body, needle] : cases) {
    const fs::path file = dir.write("case" + std::to_string(i++) + ".pth", legacy_file(body, 8));
    const std::string message = load_error(file);
    EXPECT_NE(message.find(needle), std::string::npos) << "want '" << needle << "' in: " << message;
  }
}

TEST(PthPickle, NoStopAndMissingDataAreErrors) {
  TempDir dir;
  const std::string good = legacy_file(dict_of(tensor_op(8, 0, {8}, {1})), 8);
  EXPECT_NO_THROW(load_pth(dir.write("good.pth", good)));
  EXPECT_NE(load_error(dir.write("count.pth", legacy_file(dict_of(tensor_op(8, 0, {8}, {1})), 8, 9))).find("has 9 elements, expected 8"),
            std::string::npos);
  EXPECT_NE(load_error(dir.write("nodata.pth", legacy_file(dict_of(tensor_op(8, 0, {8}, {1})), 0))).find("no data"),
            std::string::npos);
  // Every truncation of a valid file fails cleanly.
  for (size_t n = 0; n < good.size(); ++n) {
    SCOPED_TRACE(n);
    load_error(dir.write("cut.pth", good.substr(0, n)));
  }
}

TEST(PthPickle, DeepCyclicAndExponentialStructuresAreRefused) {
  TempDir dir;
  // 100000 nested lists: unpickled without recursion, refused when flattened
  std::string deep = std::string(100000, ']') + std::string(99999, 'a');
  EXPECT_NE(load_error(dir.write("deep.pth", legacy_file(deep))).find("nesting deeper"), std::string::npos);
  // a list that contains itself (via the memo)
  const std::string cycle("]q\x00h\x00" "a", 6);
  EXPECT_NE(load_error(dir.write("cycle.pth", legacy_file(cycle))).find("nesting deeper"), std::string::npos);
  // (x, x) nested 60 times: 2^60 paths through 61 objects
  std::string bomb = "N";
  for (int i = 0; i < 60; ++i) bomb += "2\x86";
  EXPECT_NE(load_error(dir.write("bomb.pth", legacy_file(bomb))).find("too many shared references"), std::string::npos);
}

TEST(PthPickle, ScalarTextIsPythonLike) {
  auto text_of = [](const std::string& body) {
    const std::string bytes = "\x80\x02" + body + ".";
    pickle::Pickle p = pickle::unpickle(bytes, 0, "x");
    std::string out;
    EXPECT_TRUE(pickle::scalar_text(*p.root, out));
    return out;
  };
  EXPECT_EQ(text_of("G" + std::string("\x3f\xb9\x99\x99\x99\x99\x99\x9a", 8)), "0.1");
  EXPECT_EQ(text_of("G" + std::string("\x40\x08\0\0\0\0\0\0", 8)), "3.0");
  EXPECT_EQ(text_of("\x8a\x01\xff"), "-1");
  EXPECT_EQ(text_of("\x8a\x09" + std::string("\0\0\0\0\0\0\0\x80\0", 9)), "9223372036854775808");
  EXPECT_EQ(text_of("\x8a\x09" + std::string("\0\0\0\0\0\0\0\x80\xff", 9)), "-9223372036854775808");
  EXPECT_EQ(text_of("\x8a\x08" + std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8)), "9223372036854775807");
  EXPECT_EQ(text_of("(K\x01" + str("a") + "N\x88t"), "(1, 'a', None, True)");
  EXPECT_EQ(text_of("]K\x07" "a"), "[7]");
  EXPECT_EQ(text_of("K\x07\x85"), "(7,)");
}

// --- corrupted containers ---

// Re-packs a valid checkpoint with every record deflated: the shape of a zip bomb.
void write_deflated_copy(const fs::path& src, const fs::path& dst) {
  int error = 0;
  zip_t* in = zip_open(src.c_str(), ZIP_RDONLY, &error);
  zip_t* out = zip_open(dst.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  ASSERT_TRUE(in && out);
  std::vector<std::string> contents(static_cast<size_t>(zip_get_num_entries(in, 0)));
  for (size_t i = 0; i < contents.size(); ++i) {
    zip_stat_t stat;
    ASSERT_EQ(zip_stat_index(in, i, 0, &stat), 0);
    contents[i].resize(stat.size);
    zip_file_t* file = zip_fopen_index(in, i, 0);
    ASSERT_EQ(zip_fread(file, contents[i].data(), stat.size), static_cast<zip_int64_t>(stat.size));
    zip_fclose(file);
    zip_source_t* source = zip_source_buffer(out, contents[i].data(), contents[i].size(), 0);
    const zip_int64_t index = zip_file_add(out, stat.name, source, ZIP_FL_OVERWRITE);
    ASSERT_GE(index, 0);
    zip_set_file_compression(out, static_cast<zip_uint64_t>(index), ZIP_CM_DEFLATE, 9);
  }
  ASSERT_EQ(zip_close(out), 0);
  zip_discard(in);
}

TEST(PthMalformed, CompressedRecordsAreRefusedBeforeReading) {
  TempDir dir;
  write_deflated_copy(kDir / "state_dict.pth", dir.path / "deflated.pth");
  try {
    load_pth(dir.path / "deflated.pth");
    FAIL() << "a compressed archive was read";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::bad_weights);
    EXPECT_NE(std::string(e.what()).find("is compressed"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("deflated.pth"), std::string::npos) << e.what();
  }
}

TEST(PthMalformed, TruncatedAndCorruptedFilesGiveErrorsNotCrashes) {
  TempDir dir;
  for (const char* name : {"state_dict.pth", "legacy.pth", "dino_checkpoint.pth"}) {
    SCOPED_TRACE(name);
    const std::string bytes = read_file(kDir / name);
    for (size_t n = 0; n < bytes.size(); n += 53) load_error(dir.write("cut.pth", bytes.substr(0, n)));
    std::mt19937 rng(7);
    for (int trial = 0; trial < 300; ++trial) {
      std::string bad = bytes;
      for (int k = 0; k < 3; ++k) bad[rng() % bad.size()] = static_cast<char>(rng());
      const fs::path file = dir.write("flip.pth", bad);
      try {
        load_pth(file);  // a flip inside tensor data or a name can still be a valid file
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ExitCode::bad_weights) << e.what();
      }
    }
  }
  EXPECT_NE(load_error(kDir / "short_record.pth").find("storage record 'data/0' has 4 bytes"), std::string::npos);
  EXPECT_NE(load_error(dir.write("text.pth", "hello world")).find("not a PyTorch checkpoint"), std::string::npos);
  EXPECT_NE(load_error(dir.write("bare.pth", "\x80\x02N.")).find("without the torch.save magic"), std::string::npos);
  EXPECT_NE(load_error(dir.path / "missing.pth").find("does not exist"), std::string::npos);
}

}  // namespace
}  // namespace lesseg
