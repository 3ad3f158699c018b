#include "lesseg/core/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "lesseg/core/error.h"

namespace lesseg {
namespace fs = std::filesystem;

namespace {
constexpr const char* kTempSuffix = ".tmp-lesseg";

std::string errno_text() { return std::strerror(errno); }

void fsync_path(const fs::path& path, int flags) {
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) return;  // best effort for folders on filesystems that refuse O_RDONLY dirs
  ::fsync(fd);
  ::close(fd);
}
}  // namespace

void require_readable_file(const fs::path& path) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (!fs::exists(status)) {
    if (fs::is_symlink(fs::symlink_status(path, ec))) throw_bad_input(path, "dangling symbolic link");
    throw_bad_input(path, "file does not exist");
  }
  if (fs::is_directory(status)) throw_bad_input(path, "is a directory, expected a file");
  if (!fs::is_regular_file(status)) throw_bad_input(path, "not a regular file");
  if (fs::file_size(path, ec) == 0) throw_bad_input(path, "file is empty (0 bytes)");
  if (::access(path.c_str(), R_OK) != 0) throw_bad_input(path, "cannot be read: " + errno_text());
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_bad_input(path, "cannot open: " + errno_text());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void write_file_atomic(const fs::path& path, const std::string& bytes) {
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  fs::path tmp = path;
  tmp += kTempSuffix;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_io(tmp, "cannot create: " + errno_text());
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string reason = errno_text();
      ::close(fd);
      fs::remove(tmp, ec);
      throw_io(path, "write failed: " + reason);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    std::string reason = errno_text();
    fs::remove(tmp, ec);
    throw_io(path, "flush failed: " + reason);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string reason = errno_text();
    fs::remove(tmp, ec);
    throw_io(path, "rename failed: " + reason);
  }
  fsync_path(dir, O_RDONLY | O_DIRECTORY);
}

void remove_stale_temp_files(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > std::strlen(kTempSuffix) &&
        name.compare(name.size() - std::strlen(kTempSuffix), std::string::npos, kTempSuffix) == 0) {
      fs::remove(entry.path(), ec);
    }
  }
}

}  // namespace lesseg
