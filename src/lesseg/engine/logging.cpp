#include "lesseg/engine/logging.h"

#include <sstream>

#include <unistd.h>

#include <cstdio>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"

namespace lesseg {

namespace {
void drop_records_after(const std::filesystem::path& file, int64_t iter) {
  std::error_code ec;
  if (iter < 0 || !std::filesystem::is_regular_file(file, ec)) return;
  std::istringstream in(read_file(file));
  std::string line, kept;
  bool dropped = false;
  while (std::getline(in, line)) {
    auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded() || (record.is_object() && record.value("iter", int64_t{0}) > iter)) {
      dropped = true;  // a torn last line from a kill, or a step the resumed run repeats
      continue;
    }
    kept += line + "\n";
  }
  if (dropped) write_file_atomic(file, kept);
}
}  // namespace

MetricsLog::MetricsLog(const std::filesystem::path& file, int64_t keep_through_iter) : file_(file) {
  drop_records_after(file, keep_through_iter);
  out_.open(file, std::ios::app);
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
