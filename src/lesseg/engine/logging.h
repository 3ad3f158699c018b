#pragma once
// Run logs: metrics.jsonl (one JSON object per logged step or evaluation) and a progress line on
// stderr (a redrawn bar on a terminal, plain lines otherwise).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace lesseg {

class MetricsLog {
 public:
  // Opens for appending; records with "iter" > keep_through_iter are dropped first (a resumed run
  // repeats those iterations, so the log never holds a step twice). -1 keeps everything.
  explicit MetricsLog(const std::filesystem::path& file, int64_t keep_through_iter = -1);
  void write(const nlohmann::json& record);  // one line, flushed

 private:
  std::filesystem::path file_;
  std::ofstream out_;
};

class Progress {
 public:
  explicit Progress(int64_t total);
  void update(int64_t iter, const std::string& text);
  void finish();

 private:
  int64_t total_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
};

}  // namespace lesseg
