// safetensors round trips and errors, checkpoints with `latest` and retention, optimizer state.
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/engine/checkpoint.h"
#include "lesseg/engine/optim.h"
#include "lesseg/io/safetensors.h"

namespace lesseg {
namespace {
namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("lesseg_ckpt_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

TEST(Safetensors, RoundTripsEveryDtype) {
  TempDir dir;
  std::vector<std::pair<std::string, at::Tensor>> tensors = {
      {"f32", torch::randn({2, 3})},
      {"f64", torch::randn({4}, torch::kDouble)},
      {"f16", torch::randn({3}).to(torch::kHalf)},
      {"bf16", torch::randn({3}).to(torch::kBFloat16)},
      {"i64", torch::arange(5)},
      {"i32", torch::arange(3, torch::kInt)},
      {"u8", torch::arange(4, torch::kByte)},
      {"b", torch::tensor({true, false})},
      {"scalar", torch::tensor(7L)},
      {"empty", torch::zeros({0, 3})}};
  save_safetensors(dir.path / "t.safetensors", tensors, {{"k", "v"}});
  TensorFile file = load_safetensors(dir.path / "t.safetensors");
  EXPECT_EQ(file.metadata.at("k"), "v");
  ASSERT_EQ(file.tensors.size(), tensors.size());
  std::map<std::string, at::Tensor> loaded(file.tensors.begin(), file.tensors.end());
  for (auto& [name, t] : tensors) {
    ASSERT_TRUE(loaded.count(name)) << name;
    EXPECT_EQ(loaded[name].scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(loaded[name], t)) << name;
  }
}

std::string header_file(const std::string& json, size_t buffer_bytes) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = char((json.size() >> (8 * i)) & 0xff);
  return out + json + std::string(buffer_bytes, '\0');
}

void expect_weights_error(const std::string& bytes, const std::string& needle) {
  try {
    parse_safetensors(bytes, "bad.safetensors");
    FAIL() << "accepted a file that should fail with: " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::bad_weights);
    EXPECT_NE(std::string(e.what()).find("bad.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

template <typename F>
void expect_error_names_file(F load, const std::string& file) {
  try {
    load();
    FAIL() << "no error for " << file;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::bad_weights);
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
  }
}

TEST(Safetensors, EachViolationHasItsOwnError) {
  expect_weights_error("abc", "too small");
  expect_weights_error(header_file("[1]", 0), "does not start with '{'");
  expect_weights_error(header_file("{\"a\":", 0), "not valid JSON");
  expect_weights_error(header_file("{\"a\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "unknown dtype");
  // A deeply nested dtype once overflowed the stack while being printed into the message.
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  expect_weights_error(header_file("{\"a\":{\"dtype\":" + deep + ",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                       "unknown dtype <array>");
  expect_weights_error(header_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4), "!= data span");
  expect_weights_error(header_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 2), "out of range");
  expect_weights_error(header_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                   "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 6), "overlaps");
  expect_weights_error(header_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "hole");
  expect_weights_error(header_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                   "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "duplicate");
  expect_weights_error(header_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,8],\"data_offsets\":[0,4]}}", 4), "overflow");
  expect_weights_error(header_file("{\"\xff\":1}", 0), "header is not valid UTF-8");
  expect_weights_error(header_file("{\"\xc0\xaf\":1}", 0), "header is not valid UTF-8");  // overlong "/"
  expect_weights_error(header_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 6), "trailing bytes");
  expect_weights_error(header_file("{\"__metadata__\":{\"k\":1}}", 0), "is not a string");
  expect_weights_error(header_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0), "needs dtype, shape and data_offsets");
  expect_weights_error(header_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4), "end before begin");
  expect_weights_error(header_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4), "non-negative");
  std::string short_header = header_file("{}", 0);
  short_header[0] = 40;  // claims 40 header bytes, has 2
  expect_weights_error(short_header, "does not fit the file");
  std::string huge(8, '\0');
  huge[4] = 1;  // 2^32 bytes of header
  expect_weights_error(huge, "exceeds");
}

TEST(Safetensors, AcceptsSpacePaddedHeaderAndMapsWithoutWritingBack) {
  TempDir dir;
  std::string json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}   ";
  json.append((8 - json.size() % 8) % 8, ' ');  // aligned: the tensor aliases the mapping
  std::string bytes = header_file(json, 0);
  float values[2] = {1.5f, -2.0f};
  bytes.append(reinterpret_cast<const char*>(values), sizeof(values));
  write_file_atomic(dir.path / "p.safetensors", bytes);
  TensorFile file = load_safetensors(dir.path / "p.safetensors");
  ASSERT_EQ(file.tensors.size(), 1u);
  EXPECT_TRUE(torch::equal(file.tensors[0].second, torch::tensor({1.5f, -2.0f})));
  file.tensors[0].second.add_(1.0);  // copy-on-write: the file must not change
  EXPECT_EQ(read_file(dir.path / "p.safetensors"), bytes);
  EXPECT_TRUE(torch::equal(load_safetensors(dir.path / "p.safetensors").tensors[0].second, torch::tensor({1.5f, -2.0f})));
}

TEST(Safetensors, MissingAndEmptyFilesNameTheFile) {
  TempDir dir;
  expect_error_names_file([&] { load_safetensors(dir.path / "none.safetensors"); }, "none.safetensors");
  write_file_atomic(dir.path / "empty.safetensors", "");
  expect_error_names_file([&] { load_safetensors(dir.path / "empty.safetensors"); }, "empty.safetensors");
}

TEST(Checkpoint, LatestMovesAfterWriteAndRetentionKeepsTheNewest) {
  TempDir dir;
  torch::nn::Linear model(3, 2);
  for (int64_t iter : {10, 20, 30}) {
    Checkpoint ckpt;
    ckpt.tensors = module_tensors(*model);
    ckpt.state = {{"iter", iter}};
    save_checkpoint(dir.path, iter, ckpt, 2);
  }
  auto latest = load_latest_checkpoint(dir.path);
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->state["iter"], 30);
  EXPECT_FALSE(fs::exists(dir.path / "ckpt_00000010.json"));
  EXPECT_TRUE(fs::exists(dir.path / "ckpt_00000020.safetensors"));
  for (auto& entry : fs::directory_iterator(dir.path))
    EXPECT_EQ(entry.path().string().find("tmp-lesseg"), std::string::npos) << entry.path();
}

TEST(Checkpoint, ModuleLoadListsMissingUnexpectedAndMismatchedKeys) {
  torch::nn::Linear a(3, 2), b(4, 2);
  auto tensors = module_tensors(*b);
  tensors.emplace_back("extra.weight", torch::zeros({1}));
  try {
    load_module_tensors(*a, tensors, "w.safetensors");
    FAIL() << "a mismatched load was accepted";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("unexpected: extra.weight"), std::string::npos) << message;
    EXPECT_NE(message.find("shape mismatch: weight"), std::string::npos) << message;
  }
  EXPECT_NO_THROW(load_module_tensors(*a, tensors, "w.safetensors", /*allow_partial=*/true));
}

TEST(Optimizer, StateRoundTripsThroughNamedTensors) {
  for (const char* name : {"sgd", "adamw"}) {
    torch::manual_seed(0);
    torch::nn::Linear model(4, 3);
    auto x = torch::randn({8, 4});
    auto step = [&](torch::optim::Optimizer& opt, torch::nn::Linear& m) {
      opt.zero_grad();
      m(x).pow(2).sum().backward();
      opt.step();
    };
    auto opt = make_optimizer(model->parameters(), {name, 0.1, 0.9, 0.01});
    step(*opt, model);
    // Clone the model and optimizer through named tensors, then step both once more.
    torch::nn::Linear copy(4, 3);
    load_module_tensors(*copy, module_tensors(*model), "mem");
    auto opt2 = make_optimizer(copy->parameters(), {name, 0.1, 0.9, 0.01});
    load_optimizer_state(*opt2, optimizer_state_tensors(*opt));
    step(*opt, model);
    step(*opt2, copy);
    EXPECT_TRUE(torch::equal(model->weight, copy->weight)) << name;
  }
}

// train.head_lr_multiplier: the head's step is the multiplier times the backbone's for the same
// gradient (plain SGD), the schedules keep the ratio, weight decay follows only the decaying groups.
TEST(Optimizer, HeadGroupsStepAtTheMultipliedLr) {
  torch::manual_seed(0);
  torch::nn::Linear backbone(4, 4), head(4, 2);
  std::vector<torch::Tensor> all = backbone->parameters(), head_params = head->parameters();
  all.insert(all.end(), head_params.begin(), head_params.end());
  OptimizerOptions o{"sgd", 0.1, 0.0, 0.0};
  EXPECT_EQ(make_optimizer(all, o, {}, head_params)->param_groups().size(), 1u) << "multiplier 1: one group";
  o.head_lr_multiplier = 10;
  auto opt = make_optimizer(all, o, {head->bias}, head_params);
  ASSERT_EQ(opt->param_groups().size(), 3u);  // backbone decaying, head decaying, head bias not decaying
  set_learning_rate(opt, 0.05);
  const auto before_backbone = backbone->weight.clone(), before_head = head->weight.clone();
  opt->zero_grad();
  head(backbone(torch::randn({8, 4}))).pow(2).sum().backward();
  opt->step();
  EXPECT_TRUE(torch::allclose(before_backbone - backbone->weight, 0.05 * backbone->weight.grad(), 1e-6, 1e-7));
  EXPECT_TRUE(torch::allclose(before_head - head->weight, 0.5 * head->weight.grad(), 1e-6, 1e-7));
  set_weight_decay(opt, 0.3);
  auto decay_of = [&](size_t g) {
    return static_cast<torch::optim::SGDOptions&>(opt->param_groups()[g].options()).weight_decay();
  };
  EXPECT_DOUBLE_EQ(decay_of(0), 0.3);
  EXPECT_DOUBLE_EQ(decay_of(1), 0.3);
  EXPECT_DOUBLE_EQ(decay_of(2), 0.0);
  o.head_lr_multiplier = 0;
  EXPECT_THROW(make_optimizer(all, o, {}, head_params), Error);
}

TEST(Schedule, PolyCosineAndWarmup) {
  ScheduleOptions poly{"poly", 100, 0, 1.0};
  EXPECT_DOUBLE_EQ(lr_factor(poly, 0), 1.0);
  EXPECT_NEAR(lr_factor(poly, 50), 0.5, 1e-12);
  ScheduleOptions cosine{"cosine", 110, 10, 0.9};
  EXPECT_NEAR(lr_factor(cosine, 4), 0.5, 1e-12);  // warmup: (4+1)/10
  EXPECT_NEAR(lr_factor(cosine, 60), 0.5, 1e-12);
  EXPECT_THROW(lr_factor({"step", 10, 0, 1}, 1), Error);
}

}  // namespace
}  // namespace lesseg

namespace lesseg {
namespace {

// Two checkpoints (iterations 10 and 20) of a small module; returns the folder.
Checkpoint small_checkpoint(float value) {
  Checkpoint ckpt;
  ckpt.tensors = {{"w", torch::full({64, 64}, value)}};
  ckpt.state = {{"iter", static_cast<int64_t>(value)}};
  return ckpt;
}

TEST(CheckpointCorruption, TruncatedAndBitFlippedFilesAreDetectedAndSkipped) {
  TempDir dir;
  int detected = 0, tried = 0;
  std::mt19937 rng(5);
  for (int trial = 0; trial < 8; ++trial) {
    fs::remove_all(dir.path);
    save_checkpoint(dir.path, 10, small_checkpoint(10), 5);
    save_checkpoint(dir.path, 20, small_checkpoint(20), 5);
    const fs::path tensors = dir.path / "ckpt_00000020.safetensors";
    std::string bytes = read_file(tensors);
    const size_t sizes[] = {0, 1, rng() % bytes.size(), bytes.size() - 1};
    if (trial < 4) {
      bytes.resize(sizes[trial]);  // truncated: 0, 1, random, size-1 bytes
    } else {
      const size_t at = rng() % bytes.size();
      bytes[at] = static_cast<char>(bytes[at] ^ (1 << (rng() % 8)));  // one flipped bit
    }
    write_file_atomic(tensors, bytes);
    ++tried;
    try {
      load_checkpoint(dir.path / "ckpt_00000020.json");
    } catch (const Error& e) {
      ++detected;
      EXPECT_EQ(e.code(), ExitCode::bad_weights);
      EXPECT_NE(std::string(e.what()).find("ckpt_00000020.safetensors"), std::string::npos) << e.what();
    }
    auto fallback = load_latest_checkpoint(dir.path);  // `latest` names the broken one
    ASSERT_TRUE(fallback.has_value());
    EXPECT_EQ(fallback->state["iter"], 10);
    EXPECT_NE(fallback->skipped.find("SHA-256 mismatch"), std::string::npos) << fallback->skipped;
  }
  EXPECT_EQ(detected, tried);
  std::printf("  %d corrupted checkpoints, %d detected\n", tried, detected);
}

TEST(CheckpointCorruption, NoUsableCheckpointIsAnErrorNamingEach) {
  TempDir dir;
  save_checkpoint(dir.path, 10, small_checkpoint(10), 5);
  write_file_atomic(dir.path / "ckpt_00000010.safetensors", "x");
  try {
    load_latest_checkpoint(dir.path);
    FAIL() << "a corrupt checkpoint loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::bad_weights);
    EXPECT_NE(std::string(e.what()).find("ckpt_00000010.safetensors"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lesseg
