#include "lesseg/report/run_log.h"

#include <map>
#include <sstream>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"

namespace lesseg {

RunLog read_run_log(const std::filesystem::path& file) {
  require_readable_file(file);
  std::istringstream in(read_file(file));
  std::map<int64_t, nlohmann::json> steps, evals;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json record;
    try {
      record = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw_bad_input(file, "line " + std::to_string(line_no) + " is not JSON: " + e.what());
    }
    if (!record.is_object() || !record.contains("iter") || !record["iter"].is_number_integer())
      throw_bad_input(file, "line " + std::to_string(line_no) + " has no integer \"iter\"");
    const int64_t iter = record["iter"].get<int64_t>();
    if (record.contains("split")) evals[iter] = std::move(record);
    else if (record.contains("loss")) steps[iter] = std::move(record);
    // Anything else (a future record kind) is not charted.
  }
  RunLog log;
  for (auto& [iter, record] : steps) log.steps.push_back(std::move(record));
  for (auto& [iter, record] : evals) log.evals.push_back(std::move(record));
  return log;
}

}  // namespace lesseg
