#pragma once
// Small helpers for writing self-contained HTML: escaping, base64 and PNG data URIs.
#include <string>

#include <opencv2/core.hpp>

namespace lesseg {

// Escapes & < > " ' for text and attribute values.
std::string html_escape(const std::string& text);
// Standard base64 (RFC 4648, with '=' padding).
std::string base64_encode(const std::string& bytes);
// "data:image/png;base64,..." of a CV_8UC3 RGB (or CV_8U grey) image.
std::string png_data_uri(const cv::Mat& image);
// A number for humans: up to `digits` significant digits, no trailing zeros; "n/a" when not finite.
std::string format_number(double value, int digits = 4);

}  // namespace lesseg
