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

// Every config the project ships loads against the schema (no unknown keys, right types), and
// the self-supervised ones describe valid views.
TEST(Config, EveryShippedConfigLoads) {
  int count = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(std::filesystem::path(LESSEG_SOURCE_DIR) / "configs")) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    lesseg::Config config = lesseg::Config::load(entry.path(), {});
    const std::string method = config.get<std::string>("method");
    if (method != "supervised") {
      EXPECT_FALSE(lesseg::view_specs_from(config).empty());
    }
    ++count;
  }
  EXPECT_GE(count, 10);
}
