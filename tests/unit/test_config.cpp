// Config: defaults are the schema; unknown keys and wrong types name the key path.
#include <filesystem>
#include <fstream>

#include <functional>

#include <gtest/gtest.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/data/ssl/views.h"

namespace lesseg {
namespace {

std::string usage_message(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    return e.what();
  }
  ADD_FAILURE() << "no usage error";
  return "";
}

std::filesystem::path write_yaml(const std::string& name, const std::string& text) {
  auto path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path) << text;
  return path;
}

TEST(Config, FileAndOverridesApplyOverDefaults) {
  auto file = write_yaml("lesseg_cfg_ok.yaml", "train:\n  iters: 77\n  lr: 1\ndata:\n  crop: [64, 32]\n");
  Config c = Config::load(file, {"train.batch_size=3", "data.synth.domain=target", "model.weights="});
  EXPECT_EQ(c.get<int>("train.iters"), 77);
  EXPECT_DOUBLE_EQ(c.get<double>("train.lr"), 1.0);  // an integer is accepted for a number
  EXPECT_EQ(c.get<int>("train.batch_size"), 3);
  EXPECT_EQ(c.get<std::string>("data.synth.domain"), "target");
  EXPECT_EQ(c.get<std::vector<int>>("data.crop"), (std::vector<int>{64, 32}));
  EXPECT_EQ(c.get<std::string>("model.arch"), "resunet");  // untouched default
  EXPECT_EQ(c.get<std::string>("model.weights"), "");
}

TEST(Config, UnknownKeysNameTheirPath) {
  auto file = write_yaml("lesseg_cfg_unknown.yaml", "train:\n  iterations: 5\n");
  EXPECT_NE(usage_message([&] { Config::load(file, {}); }).find("'train.iterations'"), std::string::npos);
  EXPECT_NE(usage_message([] { Config::load("", {"model.depth=50"}); }).find("'model.depth'"), std::string::npos);
  EXPECT_NE(usage_message([] { Config::load("", {"nosuch.key=1"}); }).find("'nosuch'"), std::string::npos);
}

TEST(Config, WrongTypesNameKeyAndExpectedType) {
  std::string m = usage_message([] { Config::load("", {"train.iters=many"}); });
  EXPECT_NE(m.find("'train.iters' must be an integer"), std::string::npos) << m;
  m = usage_message([] { Config::load("", {"data.flip=3.5"}); });
  EXPECT_NE(m.find("'data.flip' must be a boolean"), std::string::npos) << m;
  m = usage_message([] { Config::load("", {"train=5"}); });
  EXPECT_NE(m.find("'train'"), std::string::npos) << m;
  m = usage_message([] { Config::load("", {"data.crop=7"}); });
  EXPECT_NE(m.find("must be a list"), std::string::npos) << m;
}

// Types are checked against the defaults, not against what a file set earlier: `lr: 1` (an
// integer for a real-valued key) does not make a later --set train.lr=0.5 a type error.
TEST(Config, OverridesAreCheckedAgainstTheDefaultsTypes) {
  Config config;
  config.set("train.lr", "1");
  config.set("train.lr", "0.5");
  EXPECT_DOUBLE_EQ(config.get<double>("train.lr"), 0.5);
  EXPECT_THROW(config.set("train.lr", "fast"), Error);
}

TEST(Config, MalformedInputIsAUsageError) {
  auto file = write_yaml("lesseg_cfg_bad.yaml", "train: [unclosed\n");
  EXPECT_NE(usage_message([&] { Config::load(file, {}); }).find("invalid YAML"), std::string::npos);
  EXPECT_NE(usage_message([] { Config::load("/nonexistent/x.yaml", {}); }).find("not found"), std::string::npos);
  EXPECT_NE(usage_message([] { Config::load("", {"novalue"}); }).find("key.path=value"), std::string::npos);
}

TEST(Config, ResolvedDumpRoundTrips) {
  Config c = Config::load("", {"train.iters=12", "seed=4"});
  Config back = Config::from_yaml_text(c.dump(), "dump");
  EXPECT_EQ(back.get<int>("train.iters"), 12);
  EXPECT_EQ(back.get<int>("seed"), 4);
  EXPECT_EQ(back.dump(), c.dump());
}

}  // namespace
}  // namespace lesseg

namespace lesseg {
namespace {

TEST(Config, CopiesAreIndependentAndDifferencesAreListed) {
  Config a = Config::load("", {});
  Config b = a;
  b.set("train.lr", "0.5");
  EXPECT_DOUBLE_EQ(a.get<double>("train.lr"), 0.01);
  auto diff = a.differences(b);
  ASSERT_EQ(diff.size(), 1u);
  EXPECT_EQ(diff[0], "train.lr: 0.01 -> 0.5");
  EXPECT_FALSE(a.has("no.such.key"));
  EXPECT_EQ(a.dump(), Config().dump());  // has() on a missing key must not insert it
}

}  // namespace
}  // namespace lesseg

namespace lesseg {
namespace {

// A fresh folder per test: ctest runs tests as separate, possibly parallel, processes.
std::filesystem::path fresh_dir() {
  auto dir = std::filesystem::temp_directory_path() /
             (std::string("lesseg_cfg_base_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::filesystem::path write_at(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
  return path;
}

TEST(ConfigBase, ChildMergesOverBase) {
  auto dir = fresh_dir();
  write_at(dir / "base.yaml",
           "train:\n  iters: 10\n  lr: 0.5\ndata:\n  crop: [64, 64]\n  scale: [0.5, 2.0]\n"
           "  synth:\n    size: 64\n    num_train: 10\n");
  auto child = write_at(dir / "child.yaml",
                        "_base_: base.yaml\ntrain:\n  iters: 20\ndata:\n  crop: [32]\n  synth:\n    size: 48\n");
  Config c = Config::load(child, {});
  EXPECT_EQ(c.get<int>("train.iters"), 20);
  EXPECT_DOUBLE_EQ(c.get<double>("train.lr"), 0.5);  // maps merge key by key, at every depth
  EXPECT_EQ(c.get<int>("data.synth.size"), 48);
  EXPECT_EQ(c.get<int>("data.synth.num_train"), 10);
  EXPECT_EQ(c.get<std::vector<int>>("data.crop"), (std::vector<int>{32}));  // sequences replace
  EXPECT_EQ(c.get<std::vector<double>>("data.scale"), (std::vector<double>{0.5, 2.0}));
  EXPECT_EQ(c.get<int>("train.batch_size"), 8);  // untouched default
}

TEST(ConfigBase, ChainOfThree) {
  auto dir = fresh_dir();
  write_at(dir / "a.yaml", "seed: 1\ntrain:\n  iters: 1\n  batch_size: 1\n");
  write_at(dir / "b.yaml", "_base_: a.yaml\ntrain:\n  iters: 2\n  lr: 0.2\n");
  auto c_file = write_at(dir / "c.yaml", "_base_: b.yaml\ntrain:\n  iters: 3\n");
  Config c = Config::load(c_file, {});
  EXPECT_EQ(c.get<int>("seed"), 1);
  EXPECT_EQ(c.get<int>("train.batch_size"), 1);
  EXPECT_DOUBLE_EQ(c.get<double>("train.lr"), 0.2);
  EXPECT_EQ(c.get<int>("train.iters"), 3);
}

TEST(ConfigBase, PathsAreRelativeToTheNamingFile) {
  auto dir = fresh_dir();
  write_at(dir / "common/root.yaml", "seed: 7\n");
  write_at(dir / "common/base.yaml", "_base_: root.yaml\ntrain:\n  iters: 9\n");
  auto child = write_at(dir / "runs/sub/child.yaml", "_base_: ../../common/base.yaml\n");
  Config c = Config::load(child, {});
  EXPECT_EQ(c.get<int>("seed"), 7);
  EXPECT_EQ(c.get<int>("train.iters"), 9);
}

TEST(ConfigBase, CycleIsRefusedWithTheChain) {
  auto dir = fresh_dir();
  auto a = write_at(dir / "a.yaml", "_base_: b.yaml\n");
  auto b = write_at(dir / "b.yaml", "_base_: a.yaml\n");
  std::string m = usage_message([&] { Config::load(a, {}); });
  EXPECT_NE(m.find("config inheritance cycle: " + a.string() + " -> " + b.string() + " -> " + a.string()),
            std::string::npos) << m;
}

TEST(ConfigBase, SelfCycleIsRefused) {
  auto dir = fresh_dir();
  auto a = write_at(dir / "a.yaml", "_base_: ./a.yaml\nseed: 1\n");
  std::string m = usage_message([&] { Config::load(a, {}); });
  EXPECT_NE(m.find("config inheritance cycle: " + a.string() + " -> " + a.string()), std::string::npos) << m;
}

TEST(ConfigBase, MissingBaseNamesChildAndPath) {
  auto dir = fresh_dir();
  auto child = write_at(dir / "child.yaml", "_base_: nowhere/missing.yaml\n");
  std::string m = usage_message([&] { Config::load(child, {}); });
  EXPECT_NE(m.find(child.string() + ":"), std::string::npos) << m;
  EXPECT_NE(m.find("nowhere/missing.yaml"), std::string::npos) << m;
}

TEST(ConfigBase, NonStringBaseNamesTheFile) {
  auto dir = fresh_dir();
  for (const std::string value : {"[a.yaml]", "{file: a.yaml}", "3", "", "''"}) {
    SCOPED_TRACE(value);
    auto child = write_at(dir / "child.yaml", "_base_: " + value + "\n");
    std::string m = usage_message([&] { Config::load(child, {}); });
    EXPECT_NE(m.find(child.string() + ": _base_ must be"), std::string::npos) << m;
  }
}

TEST(ConfigBase, ErrorsInABaseNameTheBase) {
  auto dir = fresh_dir();
  auto base = write_at(dir / "base.yaml", "train:\n  iterations: 5\n");
  auto child = write_at(dir / "child.yaml", "_base_: base.yaml\n");
  std::string m = usage_message([&] { Config::load(child, {}); });
  EXPECT_NE(m.find(base.string() + ": unknown config key 'train.iterations'"), std::string::npos) << m;
  // `_base_` is only a top-level key.
  auto nested = write_at(dir / "nested.yaml", "train:\n  _base_: base.yaml\n");
  EXPECT_NE(usage_message([&] { Config::load(nested, {}); }).find("'train._base_'"), std::string::npos);
}

TEST(ConfigBase, BaseKeyIsNotInTheResolvedConfig) {
  auto dir = fresh_dir();
  write_at(dir / "base.yaml", "seed: 3\n");
  auto child = write_at(dir / "child.yaml", "_base_: base.yaml\n");
  Config c = Config::load(child, {});
  EXPECT_EQ(c.dump().find("_base_"), std::string::npos);
  EXPECT_FALSE(c.has("_base_"));
  EXPECT_EQ(Config::from_yaml_text(c.dump(), "dump").dump(), c.dump());
}

TEST(ConfigBase, SetOverridesWinOverChildAndBase) {
  auto dir = fresh_dir();
  write_at(dir / "base.yaml", "train:\n  iters: 10\n  lr: 0.5\n");
  auto child = write_at(dir / "child.yaml", "_base_: base.yaml\ntrain:\n  iters: 20\n");
  Config c = Config::load(child, {"train.iters=30", "train.lr=0.25"});
  EXPECT_EQ(c.get<int>("train.iters"), 30);
  EXPECT_DOUBLE_EQ(c.get<double>("train.lr"), 0.25);
}

}  // namespace
}  // namespace lesseg

// Every config the project ships loads against the schema (no unknown keys, right types), and
// the self-supervised ones describe valid views; inherited ones (`_base_`) resolve fully.
TEST(Config, EveryShippedConfigLoads) {
  int count = 0, with_base = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(std::filesystem::path(LESSEG_SOURCE_DIR) / "configs")) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    lesseg::Config config = lesseg::Config::load(entry.path(), {});
    const std::string method = config.get<std::string>("method");
    if (method != "supervised") {
      EXPECT_FALSE(lesseg::view_specs_from(config).empty());
    }
    EXPECT_EQ(config.dump().find("_base_"), std::string::npos);
    if (YAML::LoadFile(entry.path().string())["_base_"].IsDefined()) ++with_base;
    ++count;
  }
  EXPECT_GE(count, 10);
  EXPECT_GE(with_base, 2);  // configs/{quick,ssl}/samclr.yaml inherit their simclr.yaml
}
