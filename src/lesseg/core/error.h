#pragma once
// Errors carry the process exit code the CLI returns for them (README: "Exit codes").
#include <filesystem>
#include <stdexcept>
#include <string>

namespace lesseg {

enum class ExitCode : int {
  ok = 0,
  internal = 1,     // a bug or an unexpected library failure
  usage = 2,        // bad command line or config (unknown key, wrong type, out of range)
  bad_input = 3,    // a dataset file is missing, corrupt or inconsistent
  bad_weights = 4,  // a weight or checkpoint file is invalid or does not fit the model
  io = 5,           // an output could not be written (disk full, permissions)
  peer_failed = 6,  // distributed run: another rank died, hung or failed, or a collective timed out
  interrupted = 130,
  terminated = 143,
};

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

[[noreturn]] void throw_usage(const std::string& message);
// "<file>: <reason>" with exit code bad_input.
[[noreturn]] void throw_bad_input(const std::filesystem::path& file, const std::string& reason);
[[noreturn]] void throw_bad_weights(const std::filesystem::path& file, const std::string& reason);
[[noreturn]] void throw_io(const std::filesystem::path& file, const std::string& reason);

}  // namespace lesseg
