#include "lesseg/engine/logging.h"

#include <unistd.h>

#include <cstdio>

#include "lesseg/core/error.h"

namespace lesseg {

MetricsLog::MetricsLog(const std::filesystem::path& file) : file_(file), out_(file, std::ios::app) {
  if (!out_) throw_io(file, "cannot open for appending");
}

void MetricsLog::write(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
  if (!out_) throw_io(file_, "write failed");
}

Progress::Progress(int64_t total)
    : total_(total), terminal_(::isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()), last_print_() {}

void Progress::update(int64_t iter, const std::string& text) {
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - start_).count();
  double eta = iter > 0 ? elapsed / iter * (total_ - iter) : 0;
  if (terminal_) {
    if (now - last_print_ < std::chrono::milliseconds(200) && iter < total_) return;
    const int width = 30;
    int filled = total_ > 0 ? int(width * iter / total_) : width;
    std::fprintf(stderr, "\r[%s%s] %lld/%lld ETA %4.0fs %s\x1b[K", std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), (long long)iter, (long long)total_, eta, text.c_str());
  } else {
    std::fprintf(stderr, "iter %lld/%lld  ETA %.0fs  %s\n", (long long)iter, (long long)total_, eta, text.c_str());
  }
  last_print_ = now;
}

void Progress::finish() {
  if (terminal_) std::fprintf(stderr, "\n");
}

}  // namespace lesseg
