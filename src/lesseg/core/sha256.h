#pragma once
// SHA-256 (OpenSSL) of bytes in memory or of a file read in chunks, as lowercase hex.
#include <filesystem>
#include <string>

namespace lesseg {

std::string sha256_hex(const std::string& bytes);
// Streams the file (never loads it whole); throws bad_input naming the file when it cannot be read.
std::string sha256_file_hex(const std::filesystem::path& path);

}  // namespace lesseg
