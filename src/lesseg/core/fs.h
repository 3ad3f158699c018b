#pragma once
// File helpers. Every output goes through write_file_atomic so that nothing appears under its
// final name before it is complete (temp file in the same folder, fsync, rename, fsync folder).
#include <filesystem>
#include <string>

namespace lesseg {

std::string read_file(const std::filesystem::path& path);
void write_file_atomic(const std::filesystem::path& path, const std::string& bytes);
// Removes "*.tmp-lesseg" leftovers of an interrupted write in a folder.
void remove_stale_temp_files(const std::filesystem::path& dir);
// Checks that `path` names a readable, non-empty regular file; throws bad_input otherwise.
void require_readable_file(const std::filesystem::path& path);

}  // namespace lesseg
