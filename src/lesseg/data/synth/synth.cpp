#include "lesseg/data/synth/synth.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <opencv2/imgproc.hpp>
#include <random>
#include <sstream>
#include <stdexcept>

#include "lesseg/core/error.h"
#include "lesseg/core/fs.h"
#include "lesseg/core/rng.h"
#include "lesseg/io/coco.h"
#include "lesseg/io/image_io.h"
#include "lesseg/io/rle.h"

namespace lesseg::synth {
namespace fs = std::filesystem;

namespace {

constexpr double kPi = 3.14159265358979323846;
// Independent random streams: the layout stream has no domain in it, so a scene index gives the
// same objects in both domains and only the appearance differs.
constexpr uint64_t kLayoutStream = 0x5ce1e;
constexpr uint64_t kTargetStream = 0x7a26e7;
constexpr uint64_t kDistractorStream = 0xd157a;
constexpr uint64_t kCropStream = 0xc209;
constexpr uint64_t kCropTargetStream = 0xc2097a;

// Portable draws from mt19937_64 (std distributions differ between standard libraries).
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  double uniform() { return double(engine_() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int integer(int lo, int hi) { return lo + int(engine_() % uint64_t(hi - lo + 1)); }  // inclusive
  bool chance(double p) { return uniform() < p; }
  double normal() {  // Box-Muller
    double u = std::max(uniform(), 1e-300);
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * kPi * uniform());
  }

 private:
  std::mt19937_64 engine_;
};

enum class Texture { stripes, checker, dots, solid, gradient, rings };

struct ClassSpec {
  const char* name;
  Texture texture;
  double stripe_angle;  // degrees; only for stripes (0 and 90 survive horizontal flips)
  std::array<uint8_t, 3> color;
};

// Each class = a shape AND a texture; instance colours are random, so colour never tells the class.
const std::array<ClassSpec, 8> kClasses = {{
    {"background", Texture::solid, 0, {0, 0, 0}},
    {"disc", Texture::stripes, 0, {230, 25, 75}},
    {"square", Texture::checker, 0, {60, 180, 75}},
    {"triangle", Texture::stripes, 90, {255, 225, 25}},
    {"star", Texture::dots, 0, {0, 130, 200}},
    {"ring", Texture::solid, 0, {245, 130, 48}},
    {"cross", Texture::gradient, 0, {145, 30, 180}},
    {"hexagon", Texture::rings, 0, {70, 240, 240}},
}};
constexpr int kNumObjectClasses = int(kClasses.size()) - 1;
enum Category { kDisc = 1, kSquare, kTriangle, kStar, kRing, kCross, kHexagon };

// Look of one object: two tones and texture geometry.
struct Look {
  cv::Vec3f a, b;
  double period = 6, phase = 0, angle = 0;
};

struct Object {
  int category = 0;
  cv::Point2d centre;
  double radius = 0, rotation = 0, aspect = 1;
  Look look;
};

cv::Vec3f hsv_to_rgb(double h, double s, double v) {
  double hp = std::fmod(h, 360.0) / 60.0, c = v * s, x = c * (1 - std::fabs(std::fmod(hp, 2.0) - 1));
  // (r, g, b) before adding the grey level m, per 60-degree hue sector.
  const double sectors[6][3] = {{c, x, 0}, {x, c, 0}, {0, c, x}, {0, x, c}, {x, 0, c}, {c, 0, x}};
  const double* rgb = sectors[std::min(5, int(hp))];
  double m = v - c;
  return cv::Vec3f(float(255 * (rgb[0] + m)), float(255 * (rgb[1] + m)), float(255 * (rgb[2] + m)));
}

cv::Vec3f object_color(Rng& rng) {
  return hsv_to_rgb(rng.uniform(0, 360), rng.uniform(0.2, 1.0), rng.uniform(0.3, 1.0));
}

// Second tone: the first one made darker or lighter, so textures read as a pattern in any colour.
cv::Vec3f second_tone(Rng& rng, const cv::Vec3f& a) {
  double c = rng.uniform(0.35, 0.65);
  double luma = 0.3 * a[0] + 0.59 * a[1] + 0.11 * a[2];
  cv::Vec3f b;
  for (int k = 0; k < 3; ++k) b[k] = float(luma > 128 ? a[k] * (1 - c) : a[k] + (255 - a[k]) * c);
  return b;
}

double color_distance(const cv::Vec3f& p, const cv::Vec3f& q) { return cv::norm(p - q); }

// ---- shapes -------------------------------------------------------------------------------

constexpr int kShiftBits = 4;  // sub-pixel vertex precision for fillPoly
constexpr double kShiftScale = 1 << kShiftBits;

// Maps unit-shape points into the image (aspect squash, rotation, translation, fixed-point).
std::vector<cv::Point> place(const std::vector<cv::Point2d>& unit, const Object& o) {
  std::vector<cv::Point> out;
  double cr = std::cos(o.rotation), sr = std::sin(o.rotation);
  for (const auto& p : unit) {
    double x = p.x * o.radius * o.aspect, y = p.y * o.radius / o.aspect;
    double u = o.centre.x + cr * x - sr * y, v = o.centre.y + sr * x + cr * y;
    out.emplace_back(int(std::lround(u * kShiftScale)), int(std::lround(v * kShiftScale)));
  }
  return out;
}

std::vector<cv::Point2d> regular(int n, double r, double start = -kPi / 2) {
  std::vector<cv::Point2d> pts;
  for (int i = 0; i < n; ++i)
    pts.emplace_back(r * std::cos(start + 2 * kPi * i / n), r * std::sin(start + 2 * kPi * i / n));
  return pts;
}

std::vector<cv::Point2d> star_points(double inner) {
  std::vector<cv::Point2d> pts;
  for (int i = 0; i < 10; ++i) {
    double r = i % 2 ? inner : 1.0, t = -kPi / 2 + kPi * i / 5;
    pts.emplace_back(r * std::cos(t), r * std::sin(t));
  }
  return pts;
}

std::vector<cv::Point2d> cross_points(double w) {
  return {{-w, -1}, {w, -1}, {w, -w}, {1, -w}, {1, w},   {w, w},
          {w, 1},   {-w, 1}, {-w, w}, {-1, w}, {-1, -w}, {-w, -w}};
}

// Unit outline per class; sizes are tuned so the shapes have comparable areas.
std::vector<cv::Point2d> outline(int category) {
  switch (category) {
    case kDisc: return regular(48, 0.9);
    case kSquare: return regular(4, 1.0, kPi / 4);
    case kTriangle: return regular(3, 1.15);
    case kStar: return star_points(0.5);
    case kRing: return regular(48, 1.0);
    case kCross: return cross_points(0.36);
    default: return regular(6, 0.95);
  }
}

// Full (unoccluded) CV_8U 0/1 mask of an object.
cv::Mat shape_mask(const Object& o, int size) {
  cv::Mat mask = cv::Mat::zeros(size, size, CV_8U);
  std::vector<std::vector<cv::Point>> poly{place(outline(o.category), o)};
  cv::fillPoly(mask, poly, cv::Scalar(1), cv::LINE_8, kShiftBits);
  if (o.category == kRing) {  // annulus: the hole shows whatever lies below
    std::vector<std::vector<cv::Point>> hole{place(regular(48, 0.52), o)};
    cv::fillPoly(mask, hole, cv::Scalar(0), cv::LINE_8, kShiftBits);
  }
  return mask;
}

// ---- textures -----------------------------------------------------------------------------

double fract(double x) { return x - std::floor(x); }

// Weight of tone b at pixel (x, y): 0/1 patterns (clean two-tone), a ramp for gradients.
double texture_weight(const Object& o, double x, double y) {
  const Look& l = o.look;
  double dx = x - o.centre.x, dy = y - o.centre.y;
  double cr = std::cos(o.rotation), sr = std::sin(o.rotation);
  double u = cr * dx + sr * dy, v = -sr * dx + cr * dy;  // object frame
  switch (kClasses[size_t(o.category)].texture) {
    case Texture::stripes: {
      double ca = std::cos(l.angle), sa = std::sin(l.angle);  // image frame: orientation is the cue
      return fract((-sa * x + ca * y) / l.period + l.phase) < 0.5 ? 1 : 0;
    }
    case Texture::checker:
      return (int64_t(std::floor(u / l.period + l.phase)) + int64_t(std::floor(v / l.period + l.phase))) & 1;
    case Texture::dots: {
      double fu = fract(u / l.period + l.phase) - 0.5, fv = fract(v / l.period + l.phase) - 0.5;
      return fu * fu + fv * fv < 0.09 ? 1 : 0;
    }
    case Texture::gradient: return std::clamp(0.5 + u / (2 * o.radius), 0.0, 1.0);
    case Texture::rings: return fract(std::hypot(dx, dy) / l.period + l.phase) < 0.5 ? 1 : 0;
    case Texture::solid: break;
  }
  return 0;
}

// Paints an object's texture into `canvas` where `mask` is set (later objects paint over).
void paint_object(cv::Mat& canvas, const cv::Mat& mask, const Object& o) {
  for (int y = 0; y < canvas.rows; ++y) {
    const uint8_t* m = mask.ptr<uint8_t>(y);
    auto* px = canvas.ptr<cv::Vec3f>(y);
    for (int x = 0; x < canvas.cols; ++x) {
      if (!m[x]) continue;
      float t = float(texture_weight(o, x + 0.5, y + 0.5));
      px[x] = o.look.a * (1 - t) + o.look.b * t;
    }
  }
}

Look random_look(Rng& rng, int category, double scale, const cv::Vec3f& background) {
  Look l;
  l.a = object_color(rng);
  for (int tries = 0; tries < 20 && color_distance(l.a, background) < 90; ++tries) l.a = object_color(rng);
  l.b = second_tone(rng, l.a);
  bool dots = kClasses[size_t(category)].texture == Texture::dots;
  l.period = rng.uniform(dots ? 6.5 : 5.0, dots ? 9.5 : 8.0) * scale;
  l.phase = rng.uniform();
  l.angle = (kClasses[size_t(category)].stripe_angle + rng.uniform(-12, 12)) * kPi / 180;
  return l;
}

// ---- background ---------------------------------------------------------------------------

cv::Scalar scalar(const cv::Vec3f& c) { return cv::Scalar(c[0], c[1], c[2]); }

cv::Vec3f jitter(Rng& rng, const cv::Vec3f& c, double amount) {
  cv::Vec3f out;
  double common = rng.uniform(-amount, amount);
  for (int k = 0; k < 3; ++k)
    out[k] = float(std::clamp(c[k] + common + rng.uniform(-amount, amount) * 0.4, 0.0, 255.0));
  return out;
}

// An irregular blob: a polygon with random radii (not one of the class shapes).
std::vector<cv::Point> blob(Rng& rng, cv::Point2d c, double r) {
  std::vector<cv::Point> pts;
  int n = rng.integer(5, 9);
  for (int i = 0; i < n; ++i) {
    double t = 2 * kPi * (i + rng.uniform(-0.3, 0.3)) / n, rr = r * rng.uniform(0.35, 1.0);
    pts.emplace_back(int(std::lround((c.x + rr * std::cos(t)) * kShiftScale)),
                     int(std::lround((c.y + rr * std::sin(t)) * kShiftScale)));
  }
  return pts;
}

cv::Point random_point(Rng& rng, int size) {
  return cv::Point(int(rng.uniform(-0.1, 1.1) * size), int(rng.uniform(-0.1, 1.1) * size));
}

// Adds uniform noise inside an ellipse (a "noise patch").
void noise_patch(cv::Mat& canvas, Rng& rng, double amplitude) {
  int size = canvas.rows;
  cv::Mat region = cv::Mat::zeros(size, size, CV_8U);
  cv::ellipse(region, random_point(rng, size),
              cv::Size(int(rng.uniform(0.06, 0.2) * size), int(rng.uniform(0.06, 0.2) * size)),
              rng.uniform(0, 180), 0, 360, cv::Scalar(1), cv::FILLED);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x)
      if (region.at<uint8_t>(y, x))
        canvas.at<cv::Vec3f>(y, x) += cv::Vec3f::all(float(rng.uniform(-amplitude, amplitude)));
}

// A straight line (probability line_chance) or an irregular blob, in colour c.
void draw_line_or_blob(cv::Mat& canvas, Rng& rng, const cv::Scalar& c, double line_chance, double max_width,
                       double min_radius, double max_radius) {
  const int size = canvas.rows;
  const double scale = size / 128.0;
  if (rng.chance(line_chance)) {
    cv::line(canvas, random_point(rng, size), random_point(rng, size), c,
             std::max(1, int(rng.uniform(1, max_width) * scale)));
  } else {
    cv::Point2d centre(rng.uniform(0, size), rng.uniform(0, size));
    std::vector<std::vector<cv::Point>> poly{blob(rng, centre, rng.uniform(min_radius, max_radius) * scale)};
    cv::fillPoly(canvas, poly, c, cv::LINE_8, kShiftBits);
  }
}

// Class-0 clutter: low-contrast shapes and lines, noise patches, and a few small decoys drawn in
// object-like colours so that "saturated colour" does not mean "object".
void draw_clutter(cv::Mat& canvas, Rng& rng, const cv::Vec3f& background) {
  int faint = rng.integer(4, 9);
  for (int i = 0; i < faint; ++i) draw_line_or_blob(canvas, rng, scalar(jitter(rng, background, 28)), 0.35, 4, 6, 30);
  int patches = rng.integer(0, 2);
  for (int i = 0; i < patches; ++i) noise_patch(canvas, rng, 14);
  int decoys = rng.integer(1, 3);
  for (int i = 0; i < decoys; ++i) draw_line_or_blob(canvas, rng, scalar(object_color(rng)), 0.5, 3, 3, 9);
}

cv::Vec3f background_color(Rng& rng) {
  return hsv_to_rgb(rng.uniform(0, 360), rng.uniform(0.0, 0.45), rng.uniform(0.2, 0.9));
}

cv::Mat render_background(Rng& rng, int size, cv::Vec3f& background) {
  background = background_color(rng);
  cv::Mat canvas(size, size, CV_32FC3, scalar(background));
  draw_clutter(canvas, rng, background);
  return canvas;
}

// ---- the target domain --------------------------------------------------------------------

// Smooth random field in [-1, 1] with features about `cell` pixels large.
cv::Mat value_noise(Rng& rng, int size, double cell) {
  int n = std::max(2, int(std::ceil(size / cell)) + 1);
  cv::Mat grid(n, n, CV_32F);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) grid.at<float>(y, x) = float(rng.uniform(-1, 1));
  cv::Mat field;
  cv::resize(grid, field, cv::Size(size, size), 0, 0, cv::INTER_CUBIC);
  return field;
}

// Multiplicative gain: mottled "material" texture, a lighting gradient and vignetting.
cv::Mat gain_field(Rng& rng, int size, double s) {
  cv::Mat gain = 1.0 + s * (0.16 * value_noise(rng, size, 9.0 * size / 128) +
                            0.10 * value_noise(rng, size, 3.0 * size / 128));
  double t = rng.uniform(0, 2 * kPi), slope = s * rng.uniform(0.15, 0.4);
  double vignette = s * rng.uniform(0.25, 0.5);
  for (int y = 0; y < size; ++y) {
    float* g = gain.ptr<float>(y);
    for (int x = 0; x < size; ++x) {
      double u = (x + 0.5) / size - 0.5, v = (y + 0.5) / size - 0.5;
      double light = 1 + slope * 2 * (u * std::cos(t) + v * std::sin(t));
      g[x] *= float(light * (1 - vignette * 2 * (u * u + v * v)));
    }
  }
  return gain;
}

// Global colour shift: a fixed domain tint and desaturation plus a small per-image jitter.
void color_shift(cv::Mat& img, Rng& rng, double s) {
  cv::Vec3f gain(float(1 + s * (0.10 + rng.uniform(-0.06, 0.06))), float(1 + s * rng.uniform(-0.06, 0.06)),
                 float(1 - s * (0.16 + rng.uniform(-0.06, 0.06))));
  float offset = float(s * rng.uniform(5, 25)), desaturate = float(s * 0.35);
  img.forEach<cv::Vec3f>([&](cv::Vec3f& p, const int*) {
    float grey = 0.3f * p[0] + 0.59f * p[1] + 0.11f * p[2];
    for (int k = 0; k < 3; ++k) p[k] = (p[k] + (grey - p[k]) * desaturate) * gain[k] + offset;
  });
}

void apply_target(cv::Mat& img, Rng& rng, double s) {
  if (s <= 0) return;
  int size = img.rows;
  cv::Mat gain = gain_field(rng, size, s), gain3;
  cv::merge(std::vector<cv::Mat>{gain, gain, gain}, gain3);
  img = img.mul(gain3);
  color_shift(img, rng, s);
  double sigma = s * rng.uniform(0.7, 1.3) * size / 128;
  if (sigma > 0.05) cv::GaussianBlur(img, img, cv::Size(0, 0), sigma);
  double noise = s * rng.uniform(5, 11);
  for (int y = 0; y < size; ++y) {
    auto* p = img.ptr<cv::Vec3f>(y);
    for (int x = 0; x < size; ++x)
      for (int k = 0; k < 3; ++k) p[x][k] += float(noise * rng.normal());
  }
}

// Background regions (class 0) wearing object textures: irregular blobs with a class's stripes,
// checker, dots or rings. Source scenes never show them, so a model that learned "texture means
// object" there mislabels them on target, as synthetic-trained models do with real clutter.
void draw_textured_distractors(cv::Mat& canvas, Rng& rng, double s, const cv::Vec3f& background) {
  const int size = canvas.rows, count = int(std::lround(s * rng.integer(2, 4)));
  for (int i = 0; i < count; ++i) {
    Object o;
    o.category = rng.integer(1, kNumObjectClasses);
    o.centre = cv::Point2d(rng.uniform(0, size), rng.uniform(0, size));
    o.radius = rng.uniform(0.12, 0.28) * size;
    o.rotation = rng.uniform(0, 2 * kPi);
    o.look = random_look(rng, o.category, size / 128.0, background);
    cv::Mat mask = cv::Mat::zeros(size, size, CV_8U);
    std::vector<std::vector<cv::Point>> poly{blob(rng, o.centre, o.radius)};
    cv::fillPoly(mask, poly, cv::Scalar(1), cv::LINE_8, kShiftBits);
    paint_object(canvas, mask, o);
  }
}

// Target objects wear their class texture at a coarser scale and lower contrast, an appearance the
// source never shows (the cue stays the same pattern, so labels keep their meaning).
void restyle_textures(std::vector<Object>& objects, double s) {
  for (Object& o : objects) {
    o.look.period *= 1 + 0.6 * s;
    o.look.b = o.look.a + (o.look.b - o.look.a) * float(1 - 0.5 * std::min(s, 1.0));
  }
}

cv::Mat to_rgb8(const cv::Mat& img) {
  cv::Mat out;
  img.convertTo(out, CV_8UC3);  // saturates to 0..255
  return out;
}

void check_options(const Options& o) {
  if (o.domain != "source" && o.domain != "target")
    throw_usage("synth domain must be source or target, got '" + o.domain + "'");
  if (o.size < 32) throw_usage("synth size must be at least 32");
  if (o.min_objects < 1 || o.max_objects < o.min_objects)
    throw_usage("synth needs 1 <= min_objects <= max_objects");
  if (o.shift < 0) throw_usage("synth shift must be >= 0");
}

// ---- layout -------------------------------------------------------------------------------

// Proposes an object; with `partner`, a same-class object placed so that the two touch or overlap.
Object propose(Rng& rng, int size, const Object* partner, double shrink) {
  Object o;
  o.category = partner ? partner->category : rng.integer(1, kNumObjectClasses);
  o.radius = rng.uniform(0.12, 0.30) * size * shrink;
  o.rotation = rng.uniform(0, 2 * kPi);
  o.aspect = rng.uniform(0.85, 1.15);
  if (partner) {
    double d = (partner->radius + o.radius) * rng.uniform(0.55, 0.85), t = rng.uniform(0, 2 * kPi);
    o.centre = partner->centre + cv::Point2d(d * std::cos(t), d * std::sin(t));
  } else {
    o.centre = cv::Point2d(rng.uniform(0.12, 0.88) * size, rng.uniform(0.12, 0.88) * size);
  }
  return o;
}

// Accepts a new object only if it is mostly inside the image and leaves each earlier object at
// least half visible (so that every instance stays recognisable).
bool acceptable(const cv::Mat& full, const cv::Mat& ids, const std::vector<int>& full_area, const Object& o) {
  int area = cv::countNonZero(full), min_px = std::max(40, ids.rows * ids.rows / 200);
  double nominal = kPi * o.radius * o.radius * 0.6;
  if (area < min_px || area < 0.6 * nominal) return false;
  for (size_t j = 0; j < full_area.size(); ++j) {
    cv::Mat still = (ids == int(j + 1)) & (full == 0);
    int visible = cv::countNonZero(still);
    if (visible < std::max(min_px, full_area[j] / 2)) return false;
  }
  return true;
}

struct Layout {
  std::vector<Object> objects;
  std::vector<cv::Mat> full_masks;
  cv::Mat ids;  // CV_8U: 0 background, k = objects[k-1] on top here
};

Layout make_layout(Rng& rng, const Options& opt, const cv::Vec3f& background) {
  Layout lay;
  int size = opt.size, n = rng.integer(opt.min_objects, opt.max_objects);
  lay.ids = cv::Mat::zeros(size, size, CV_8U);
  std::vector<int> full_area;
  for (int k = 0; k < n; ++k) {
    // Deliberate same-class neighbours: the hard case for instance separation.
    int partner = (k > 0 && rng.chance(0.4)) ? rng.integer(0, k - 1) : -1;
    for (int attempt = 0; attempt < 40; ++attempt) {
      const Object* p = partner >= 0 && attempt < 25 ? &lay.objects[size_t(partner)] : nullptr;
      Object o = propose(rng, size, p, std::pow(0.98, attempt));
      cv::Mat full = shape_mask(o, size);
      if (!acceptable(full, lay.ids, full_area, o)) continue;
      o.look = random_look(rng, o.category, size / 128.0, background);
      lay.ids.setTo(int(lay.objects.size() + 1), full);
      lay.objects.push_back(o);
      lay.full_masks.push_back(full);
      full_area.push_back(cv::countNonZero(full));
      break;
    }
  }
  return lay;
}

std::string padded(uint64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%06llu", static_cast<unsigned long long>(index));
  return buf;
}

}  // namespace

ClassInfo classes() {
  ClassInfo info;
  for (const auto& c : kClasses) {
    info.names.emplace_back(c.name);
    info.colors.push_back(c.color);
  }
  return info;
}

Scene render_scene(const Options& options, uint64_t index) {
  check_options(options);
  Rng rng(mix_seed({options.seed, index, kLayoutStream}));
  cv::Vec3f background;
  cv::Mat canvas = render_background(rng, options.size, background);
  Layout lay = make_layout(rng, options, background);
  if (options.domain == "target") {  // own stream: the layout stays the same in both domains
    Rng distractors(mix_seed({options.seed, index, kDistractorStream}));
    draw_textured_distractors(canvas, distractors, options.shift, background);
  }
  Scene scene;
  scene.semantic = cv::Mat::zeros(options.size, options.size, CV_8U);
  if (options.domain == "target") restyle_textures(lay.objects, options.shift);
  for (size_t k = 0; k < lay.objects.size(); ++k) {
    paint_object(canvas, lay.full_masks[k], lay.objects[k]);
    Instance inst;
    inst.category = lay.objects[k].category;
    inst.mask = (lay.ids == int(k + 1)) / 255;  // visible part only
    scene.semantic.setTo(inst.category, inst.mask);
    scene.instances.push_back(std::move(inst));
  }
  if (options.domain == "target") {
    Rng look(mix_seed({options.seed, index, kTargetStream}));
    apply_target(canvas, look, options.degrade < 0 ? options.shift : options.degrade);
  }
  scene.image = to_rgb8(canvas);
  return scene;
}

Crop render_crop(const Options& options, uint64_t index) {
  check_options(options);
  Rng rng(mix_seed({options.seed, index, kCropStream}));
  int size = options.size;
  cv::Vec3f background;
  cv::Mat canvas = render_background(rng, size, background);
  Object o;
  o.category = rng.integer(1, kNumObjectClasses);
  o.radius = rng.uniform(0.25, 0.4) * size;
  o.rotation = rng.uniform(0, 2 * kPi);
  o.aspect = rng.uniform(0.85, 1.15);
  o.centre = cv::Point2d(size / 2.0 + rng.uniform(-2, 2), size / 2.0 + rng.uniform(-2, 2));
  o.look = random_look(rng, o.category, size / 128.0, background);
  paint_object(canvas, shape_mask(o, size), o);
  if (options.domain == "target") {
    Rng look(mix_seed({options.seed, index, kCropTargetStream}));
    apply_target(canvas, look, options.degrade < 0 ? options.shift : options.degrade);
  }
  return Crop{to_rgb8(canvas), o.category};
}

namespace {

std::string scene_id(const Options& options, uint64_t index) { return options.domain + "_" + padded(index); }

// Renders one split: images, masks, split list and the COCO instances file.
void write_split(const fs::path& out, const Options& options, const std::string& split, uint64_t first,
                 int count) {
  const ClassInfo info = classes();
  coco::Dataset ds;
  for (int c = 1; c < info.num_classes(); ++c) ds.categories.push_back({c, info.names[size_t(c)]});
  std::ostringstream list;
  for (int i = 0; i < count; ++i) {
    uint64_t index = first + uint64_t(i);
    Scene scene = render_scene(options, index);
    std::string id = scene_id(options, index);
    write_image_rgb(out / "images" / (id + ".png"), scene.image);
    write_label_png(out / "masks" / (id + ".png"), scene.semantic, info.colors);
    list << id << "\n";
    coco::Image image{int64_t(i + 1), id + ".png", options.size, options.size};
    ds.images.push_back(image);
    for (const Instance& inst : scene.instances) {
      coco::Annotation ann;
      ann.id = int64_t(ds.annotations.size() + 1);
      ann.image_id = image.id;
      ann.category_id = inst.category;
      ann.mask = rle::encode(inst.mask);
      ann.area = cv::countNonZero(inst.mask);
      ds.annotations_by_image[image.id].push_back(ds.annotations.size());
      ds.annotations.push_back(std::move(ann));
    }
  }
  write_file_atomic(out / "splits" / (split + ".txt"), list.str());
  coco::write(out / ("instances_" + split + ".json"), ds);
}

void write_crops(const fs::path& out, const Options& options, int count) {
  std::ostringstream labels;
  for (int k = 0; k < count; ++k) {
    Crop crop = render_crop(options, uint64_t(k));
    std::string name = std::to_string(k) + ".png";
    write_image_rgb(out / "crops" / "images" / name, crop.image);
    labels << "images/" << name << " " << crop.label << "\n";
  }
  write_file_atomic(out / "crops" / "labels.txt", labels.str());
}

}  // namespace

void write_dataset(const fs::path& out, const Options& options, int num_train, int num_val, int num_crops) {
  check_options(options);
  if (num_train < 0 || num_val < 0 || num_crops < 0) throw_usage("synth dataset sizes must be >= 0");
  for (const char* dir : {"images", "masks", "splits", "crops/images"}) {
    std::error_code ec;
    fs::create_directories(out / dir, ec);
    if (ec) throw_io(out / dir, "cannot create folder: " + ec.message());
  }
  write_split(out, options, "train", 0, num_train);
  write_split(out, options, "val", uint64_t(num_train), num_val);
  save_classes_yaml(out / "classes.yaml", classes());
  write_crops(out, options, num_crops);
}

SynthDataset::SynthDataset(Options options, size_t count, uint64_t index_offset)
    : options_(std::move(options)), count_(count), index_offset_(index_offset), classes_(synth::classes()) {
  check_options(options_);
}

SegSample SynthDataset::get(size_t index) const {
  if (index >= count_)
    throw std::out_of_range("SynthDataset index " + std::to_string(index) + " >= " + std::to_string(count_));
  uint64_t absolute = index_offset_ + index;
  Scene scene = render_scene(options_, absolute);
  return SegSample{scene.image, scene.semantic, scene_id(options_, absolute), {}};
}

std::string SynthDataset::sample_id(size_t index) const { return scene_id(options_, index_offset_ + index); }

}  // namespace lesseg::synth
