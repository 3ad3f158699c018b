#include "lesseg/core/error.h"

namespace lesseg {

void throw_usage(const std::string& message) { throw Error(ExitCode::usage, message); }

void throw_bad_input(const std::filesystem::path& file, const std::string& reason) {
  throw Error(ExitCode::bad_input, file.string() + ": " + reason);
}

void throw_bad_weights(const std::filesystem::path& file, const std::string& reason) {
  throw Error(ExitCode::bad_weights, file.string() + ": " + reason);
}

void throw_io(const std::filesystem::path& file, const std::string& reason) {
  throw Error(ExitCode::io, file.string() + ": " + reason);
}

}  // namespace lesseg
