#include "lesseg/io/rle.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>

#include <opencv2/core.hpp>

namespace lesseg::rle {
namespace {

constexpr double kPolyScale = 5;               // rleFrPoly's boundary upsampling factor
constexpr double kMaxCoordinate = 1e6;         // keeps scaled vertices far from int overflow
constexpr size_t kMaxBoundaryPoints = 1 << 25;  // bounds the walk's memory on absurd polygons
constexpr int kMaxGroups = 12;                 // 60 bits: more than any uint32 delta needs

// h*w, checked: counts are uint32 in cocoapi, so larger masks cannot be represented.
uint64_t pixel_count(int64_t height, int64_t width) {
  if (height < 0 || width < 0) throw std::invalid_argument("negative mask size");
  if (height > INT_MAX || width > INT_MAX) throw std::invalid_argument("mask side exceeds INT_MAX");
  uint64_t n = uint64_t(height) * uint64_t(width);
  if (n > std::numeric_limits<uint32_t>::max()) throw std::invalid_argument("mask has more than 2^32-1 pixels");
  return n;
}

uint64_t counts_sum(const std::vector<uint32_t>& counts) {
  uint64_t sum = 0;
  for (uint32_t c : counts) sum += c;
  return sum;
}

void require_consistent(const Rle& r) {
  uint64_t expected = pixel_count(r.height, r.width);
  uint64_t sum = counts_sum(r.counts);
  if (sum != expected)
    throw std::invalid_argument("RLE counts sum to " + std::to_string(sum) + ", expected h*w = " +
                                std::to_string(r.height) + "*" + std::to_string(r.width) + " = " +
                                std::to_string(expected));
}

// Walks the runs of an RLE; run i holds ones when i is odd. Zero-length runs are skipped.
class RunCursor {
 public:
  explicit RunCursor(const std::vector<uint32_t>& counts) : counts_(counts) { skip_empty(); }
  bool done() const { return left_ == 0; }
  uint64_t left() const { return left_; }
  bool on() const { return on_; }
  void consume(uint64_t n) {
    left_ -= n;
    skip_empty();
  }

 private:
  void skip_empty() {
    while (left_ == 0 && next_ < counts_.size()) {
      on_ = next_ % 2 == 1;
      left_ = counts_[next_++];
    }
  }
  const std::vector<uint32_t>& counts_;
  size_t next_ = 0;
  uint64_t left_ = 0;
  bool on_ = false;
};

// Builds canonical counts (first run zeros, possibly 0; no other empty runs), as rleEncode does.
class RunWriter {
 public:
  void push(bool on, uint64_t n) {
    if (n == 0) return;
    if (counts_.empty() && on) counts_.push_back(0);
    if (!counts_.empty() && on == last_on_)
      counts_.back() += uint32_t(n);
    else
      counts_.push_back(uint32_t(n));
    last_on_ = on;
  }
  std::vector<uint32_t> finish() {
    if (counts_.empty()) counts_.push_back(0);  // 0-pixel mask: rleEncode yields {0}
    return std::move(counts_);
  }

 private:
  std::vector<uint32_t> counts_;
  bool last_on_ = false;
};

void require_same_size(const Rle& a, const Rle& b) {
  if (a.height != b.height || a.width != b.width)
    throw std::invalid_argument("RLE sizes differ: " + std::to_string(a.height) + "x" + std::to_string(a.width) +
                                " vs " + std::to_string(b.height) + "x" + std::to_string(b.width));
}

Rle merge_two(const Rle& a, const Rle& b, bool intersect) {
  RunCursor ca(a.counts), cb(b.counts);
  RunWriter out;
  while (!ca.done() && !cb.done()) {
    uint64_t n = std::min(ca.left(), cb.left());
    out.push(intersect ? (ca.on() && cb.on()) : (ca.on() || cb.on()), n);
    ca.consume(n);
    cb.consume(n);
  }
  return Rle{a.height, a.width, out.finish()};
}

// One LEB128-like group value of the compressed string; throws on characters outside '0'..'o'.
int group_value(char ch, size_t pos) {
  int c = static_cast<unsigned char>(ch) - 48;
  if (c < 0 || c > 63)
    throw std::invalid_argument("invalid character (code " + std::to_string(static_cast<unsigned char>(ch)) +
                                ") at position " + std::to_string(pos) + " of RLE string");
  return c;
}

// Reads one signed value starting at `pos`, advancing it.
int64_t read_value(const std::string& s, size_t& pos) {
  uint64_t bits = 0;
  for (int k = 0; k < kMaxGroups; ++k) {
    if (pos >= s.size()) throw std::invalid_argument("RLE string ends inside a value");
    int c = group_value(s[pos], pos);
    ++pos;
    bits |= uint64_t(c & 0x1f) << (5 * k);
    if (!(c & 0x20)) {
      if ((c & 0x10) && k + 1 < kMaxGroups) bits |= ~uint64_t(0) << (5 * (k + 1));  // sign-extend
      return static_cast<int64_t>(bits);
    }
  }
  throw std::invalid_argument("RLE string value longer than " + std::to_string(kMaxGroups) + " characters");
}

void append_value(std::string& s, int64_t x) {
  bool more = true;
  while (more) {
    int c = static_cast<int>(x & 0x1f);
    x >>= 5;  // arithmetic shift: negative values end at -1
    more = (c & 0x10) ? x != -1 : x != 0;
    if (more) c |= 0x20;
    s.push_back(static_cast<char>(c + 48));
  }
}

void check_polygon(const std::vector<double>& xy) {
  if (xy.size() % 2 != 0)
    throw std::invalid_argument("polygon has an odd number of coordinates (" + std::to_string(xy.size()) + ")");
  for (double v : xy)
    if (!std::isfinite(v) || std::abs(v) > kMaxCoordinate)
      throw std::invalid_argument("polygon coordinate out of range: " + std::to_string(v));
}

struct Boundary {
  std::vector<int> u, v;  // upsampled boundary points in walk order
};

// ref: cocoapi maskApi.c rleFrPoly (upsample, then walk each edge along its major axis)
Boundary walk_boundary(const std::vector<double>& xy) {
  size_t k = xy.size() / 2;
  std::vector<int> x(k + 1), y(k + 1);
  for (size_t j = 0; j < k; ++j) {
    x[j] = static_cast<int>(kPolyScale * xy[2 * j] + .5);
    y[j] = static_cast<int>(kPolyScale * xy[2 * j + 1] + .5);
  }
  x[k] = x[0];
  y[k] = y[0];
  size_t total = 0;
  for (size_t j = 0; j < k; ++j) total += size_t(std::max(std::abs(x[j] - x[j + 1]), std::abs(y[j] - y[j + 1]))) + 1;
  if (total > kMaxBoundaryPoints) throw std::invalid_argument("polygon boundary too long");
  Boundary b;
  b.u.reserve(total);
  b.v.reserve(total);
  for (size_t j = 0; j < k; ++j) {
    int xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
    int dx = std::abs(xe - xs), dy = std::abs(ys - ye);
    bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      std::swap(xs, xe);
      std::swap(ys, ye);
    }
    if (dx >= dy) {
      // cocoapi divides 0/0 for a repeated vertex; that point's v is never read, so 0 is safe.
      double s = dx == 0 ? 0.0 : double(ye - ys) / dx;
      for (int d = 0; d <= dx; ++d) {
        int t = flip ? dx - d : d;
        b.u.push_back(t + xs);
        b.v.push_back(static_cast<int>(ys + s * t + .5));
      }
    } else {
      double s = double(xe - xs) / dy;
      for (int d = 0; d <= dy; ++d) {
        int t = flip ? dy - d : d;
        b.v.push_back(t + ys);
        b.u.push_back(static_cast<int>(xs + s * t + .5));
      }
    }
  }
  return b;
}

// ref: cocoapi maskApi.c rleFrPoly (x-steps of the walk, downsampled, become column-major
// transitions; duplicates cancel pairwise)
std::vector<uint32_t> boundary_transitions(const Boundary& b, int64_t h, int64_t w) {
  std::vector<uint32_t> a;
  for (size_t j = 1; j < b.u.size(); ++j) {
    if (b.u[j] == b.u[j - 1]) continue;
    double xd = b.u[j] < b.u[j - 1] ? b.u[j] : b.u[j] - 1;
    xd = (xd + .5) / kPolyScale - .5;
    if (std::floor(xd) != xd || xd < 0 || xd > double(w - 1)) continue;
    double yd = std::min(b.v[j], b.v[j - 1]);
    yd = (yd + .5) / kPolyScale - .5;
    yd = std::ceil(std::clamp(yd, 0.0, double(h)));
    a.push_back(uint32_t(int64_t(xd) * h + int64_t(yd)));
  }
  a.push_back(uint32_t(h * w));
  std::sort(a.begin(), a.end());
  return a;
}

// ref: cocoapi maskApi.c rleFrPoly (sorted positions -> run lengths, zero runs folded forward)
std::vector<uint32_t> transitions_to_counts(std::vector<uint32_t> a) {
  uint32_t prev = 0;
  for (uint32_t& p : a) {
    uint32_t t = p;
    p -= prev;
    prev = t;
  }
  std::vector<uint32_t> counts{a[0]};
  size_t j = 1;
  while (j < a.size()) {
    if (a[j] > 0) {
      counts.push_back(a[j++]);
    } else {
      ++j;
      if (j < a.size()) counts.back() += a[j++];
    }
  }
  return counts;
}

Rle polygon_to_rle(const std::vector<double>& xy, int64_t h, int64_t w) {
  if (h == 0 || w == 0) return Rle{h, w, {0}};
  Boundary b = walk_boundary(xy);
  return Rle{h, w, transitions_to_counts(boundary_transitions(b, h, w))};
}

}  // namespace

Rle encode(const cv::Mat& mask) {
  if (mask.type() != CV_8UC1) throw std::invalid_argument("rle::encode expects a single-channel CV_8U mask");
  Rle r{mask.rows, mask.cols, {}};
  RunWriter out;
  if (!mask.empty()) {
    cv::Mat t;
    cv::transpose(mask, t);  // column-major scan of mask == row-major scan of its transpose
    for (int row = 0; row < t.rows; ++row) {
      const uint8_t* p = t.ptr<uint8_t>(row);
      int start = 0;
      for (int i = 1; i <= t.cols; ++i) {
        if (i < t.cols && (p[i] != 0) == (p[start] != 0)) continue;
        out.push(p[start] != 0, uint64_t(i - start));
        start = i;
      }
    }
  }
  r.counts = out.finish();
  return r;
}

cv::Mat decode(const Rle& rle) {
  require_consistent(rle);
  int h = static_cast<int>(rle.height), w = static_cast<int>(rle.width);
  if (h == 0 || w == 0) return cv::Mat(h, w, CV_8U);
  cv::Mat t = cv::Mat::zeros(w, h, CV_8U);  // transposed, so runs are contiguous
  uint8_t* data = t.ptr<uint8_t>(0);
  uint64_t pos = 0;
  for (size_t i = 0; i < rle.counts.size(); ++i) {
    if (i % 2 == 1) std::memset(data + pos, 1, rle.counts[i]);
    pos += rle.counts[i];
  }
  cv::Mat mask;
  cv::transpose(t, mask);
  return mask;
}

// ref: cocoapi maskApi.c rleToString
std::string to_string(const Rle& rle) {
  std::string s;
  s.reserve(rle.counts.size() * 2);
  for (size_t i = 0; i < rle.counts.size(); ++i) {
    int64_t x = rle.counts[i];
    if (i > 2) x -= int64_t(rle.counts[i - 2]);
    append_value(s, x);
  }
  return s;
}

// ref: cocoapi maskApi.c rleFrString (plus bounds and range checks)
Rle from_string(const std::string& counts, int64_t height, int64_t width) {
  Rle r{height, width, {}};
  pixel_count(height, width);
  size_t pos = 0;
  while (pos < counts.size()) {
    size_t start = pos;
    int64_t x = read_value(counts, pos);
    if (r.counts.size() > 2) x += int64_t(r.counts[r.counts.size() - 2]);
    if (x < 0 || x > int64_t(std::numeric_limits<uint32_t>::max()))
      throw std::invalid_argument("RLE string value at position " + std::to_string(start) + " decodes to " +
                                  std::to_string(x) + ", outside 0..2^32-1");
    r.counts.push_back(uint32_t(x));
  }
  require_consistent(r);
  return r;
}

Rle from_polygons(const std::vector<std::vector<double>>& polygons, int64_t height, int64_t width) {
  pixel_count(height, width);
  std::vector<Rle> parts;
  parts.reserve(polygons.size());
  for (const auto& xy : polygons) {
    check_polygon(xy);
    parts.push_back(polygon_to_rle(xy, height, width));
  }
  if (parts.empty()) return Rle{height, width, {uint32_t(height * width)}};
  return merge(parts, false);
}

void validate(const Rle& rle) { require_consistent(rle); }

uint64_t area(const Rle& rle) {
  uint64_t a = 0;
  for (size_t j = 1; j < rle.counts.size(); j += 2) a += rle.counts[j];
  return a;
}

// ref: cocoapi maskApi.c rleToBbox (uint arithmetic; a run crossing columns spans all rows)
std::array<double, 4> bbox(const Rle& rle) {
  uint32_t h = uint32_t(rle.height), w = uint32_t(rle.width);
  size_t m = rle.counts.size() / 2 * 2;
  if (m == 0 || h == 0) return {0, 0, 0, 0};
  uint32_t xs = w, ys = h, xe = 0, ye = 0, cc = 0, xp = 0;
  for (size_t j = 0; j < m; ++j) {
    cc += rle.counts[j];
    uint32_t t = cc - uint32_t(j % 2);
    uint32_t y = t % h, x = (t - y) / h;
    if (j % 2 == 0) {
      xp = x;
    } else if (xp < x) {
      ys = 0;
      ye = h - 1;
    }
    xs = std::min(xs, x);
    xe = std::max(xe, x);
    ys = std::min(ys, y);
    ye = std::max(ye, y);
  }
  return {double(xs), double(ys), double(xe) - xs + 1, double(ye) - ys + 1};
}

Rle merge(const std::vector<Rle>& rles, bool intersect) {
  if (rles.empty()) return Rle{};
  for (const Rle& r : rles) {
    require_same_size(rles[0], r);
    require_consistent(r);
  }
  if (rles.size() == 1) return rles[0];
  Rle out = merge_two(rles[0], rles[1], intersect);
  for (size_t i = 2; i < rles.size(); ++i) out = merge_two(out, rles[i], intersect);
  return out;
}

// ref: cocoapi maskApi.c rleIou (crowd ground truth: union = detection area; no overlap -> 0)
double iou(const Rle& detection, const Rle& ground_truth, bool ground_truth_is_crowd) {
  require_same_size(detection, ground_truth);
  require_consistent(detection);
  require_consistent(ground_truth);
  RunCursor cd(detection.counts), cg(ground_truth.counts);
  uint64_t inter = 0, uni = 0;
  while (!cd.done() && !cg.done()) {
    uint64_t n = std::min(cd.left(), cg.left());
    if (cd.on() || cg.on()) uni += n;
    if (cd.on() && cg.on()) inter += n;
    cd.consume(n);
    cg.consume(n);
  }
  if (inter == 0) return 0.0;
  if (ground_truth_is_crowd) uni = area(detection);
  return double(inter) / double(uni);
}

}  // namespace lesseg::rle
