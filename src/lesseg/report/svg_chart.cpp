#include "lesseg/report/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "lesseg/report/html.h"

namespace lesseg {

namespace {

std::string fixed(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f", v);
  return buffer;
}

}  // namespace

std::string series_color(size_t i) {
  static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                  "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
  return kColors[i % (sizeof(kColors) / sizeof(kColors[0]))];
}

std::vector<double> nice_ticks(double lo, double hi, int count) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(count - 1, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / magnitude;
  const double step = (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * magnitude;
  std::vector<double> ticks;
  const double first = std::ceil(lo / step - 1e-9);
  for (int i = 0;; ++i) {
    const double t = (first + i) * step;  // multiplied, not accumulated: no drift
    if (t > hi + step * 1e-9) break;
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  }
  return ticks;
}

std::string svg_line_chart(const std::vector<ChartSeries>& series, const ChartOptions& o) {
  // The legend goes on the title line, right-aligned, when it fits there; otherwise in rows under
  // the title. Either way outside the plot, so it never hides a line.
  struct LegendItem {
    size_t series;
    double x, y;
  };
  const double left = 64, right = 16, bottom = 44;
  const double plot_w = o.width - left - right;
  auto legend_width = [&](const ChartSeries& s) { return 30 + 6.5 * double(s.name.size()); };
  auto has_points = [](const ChartSeries& s) {
    return std::any_of(s.points.begin(), s.points.end(),
                       [](auto p) { return std::isfinite(p.first) && std::isfinite(p.second); });
  };
  std::vector<LegendItem> legend;
  double total = 0;
  for (const auto& s : series) total += has_points(s) ? legend_width(s) : 0;
  const double title_w = 8.0 * double(o.title.size()) + 16;
  double top = 30;
  if (total <= plot_w - title_w) {
    double x = left + plot_w - total;
    for (size_t i = 0; i < series.size(); ++i)
      if (has_points(series[i])) legend.push_back({i, x, 18}), x += legend_width(series[i]);
  } else {
    double x = left, y = 36;
    for (size_t i = 0; i < series.size(); ++i) {
      if (!has_points(series[i])) continue;
      if (x + legend_width(series[i]) > left + plot_w && x > left) x = left, y += 16;
      legend.push_back({i, x, y});
      x += legend_width(series[i]);
    }
    top = y + 12;
  }
  // Legend rows make the chart taller; the plot keeps its size.
  const double plot_h = o.height - 30 - bottom;
  const int height = o.height + int(top - 30);
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (const auto& s : series)
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x);
      y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
    }
  const bool empty = !std::isfinite(x_lo);
  if (empty) x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
  if (o.y_from_zero) y_lo = std::min(y_lo, 0.0), y_hi = std::max(y_hi, 0.0);
  if (x_hi <= x_lo) x_lo -= 1, x_hi += 1;
  if (y_hi <= y_lo) {
    const double pad = y_lo == 0 ? 1 : std::abs(y_lo) * 0.1;
    y_lo -= pad, y_hi += pad;
  }
  // Extend the y range to whole ticks so the lines never touch the frame unannounced.
  auto y_ticks = nice_ticks(y_lo, y_hi);
  if (y_ticks.size() >= 2) {
    const double step = y_ticks[1] - y_ticks[0];
    if (y_ticks.front() > y_lo + 1e-12) y_ticks.insert(y_ticks.begin(), y_ticks.front() - step);
    if (y_ticks.back() < y_hi - 1e-12) y_ticks.push_back(y_ticks.back() + step);
    y_lo = y_ticks.front(), y_hi = y_ticks.back();
  }
  auto px = [&](double x) { return left + (x - x_lo) / (x_hi - x_lo) * plot_w; };
  auto py = [&](double y) { return top + (1 - (y - y_lo) / (y_hi - y_lo)) * plot_h; };

  std::ostringstream svg;
  svg << "<svg class=\"chart\" id=\"" << html_escape(o.id) << "\" viewBox=\"0 0 " << o.width << ' ' << height
      << "\" width=\"" << o.width << "\" height=\"" << height << "\" role=\"img\" aria-label=\""
      << html_escape(o.title) << "\">\n";
  svg << "<text class=\"chart-title\" x=\"" << left << "\" y=\"18\">" << html_escape(o.title) << "</text>\n";
  svg << "<g class=\"axis y\">\n";
  for (double t : y_ticks) {
    svg << "<line class=\"grid\" x1=\"" << left << "\" x2=\"" << left + plot_w << "\" y1=\"" << fixed(py(t))
        << "\" y2=\"" << fixed(py(t)) << "\"/><text x=\"" << left - 6 << "\" y=\"" << fixed(py(t) + 4)
        << "\" text-anchor=\"end\">" << format_number(t, 4) << "</text>\n";
  }
  svg << "</g>\n<g class=\"axis x\">\n";
  for (double t : nice_ticks(x_lo, x_hi, 6)) {
    if (o.integer_x && t != std::round(t)) continue;
    svg << "<line class=\"tick\" x1=\"" << fixed(px(t)) << "\" x2=\"" << fixed(px(t)) << "\" y1=\"" << top + plot_h
        << "\" y2=\"" << top + plot_h + 5 << "\"/><text x=\"" << fixed(px(t)) << "\" y=\"" << top + plot_h + 18
        << "\" text-anchor=\"middle\">" << format_number(t, 6) << "</text>\n";
  }
  svg << "</g>\n";
  svg << "<rect class=\"frame\" x=\"" << left << "\" y=\"" << top << "\" width=\"" << plot_w << "\" height=\"" << plot_h
      << "\"/>\n";
  svg << "<text class=\"axis-label\" x=\"" << left + plot_w / 2 << "\" y=\"" << height - 6
      << "\" text-anchor=\"middle\">" << html_escape(o.x_label) << "</text>\n";
  if (!o.y_label.empty())
    svg << "<text class=\"axis-label\" transform=\"translate(14 " << top + plot_h / 2
        << ") rotate(-90)\" text-anchor=\"middle\">" << html_escape(o.y_label) << "</text>\n";
  if (empty)
    svg << "<text class=\"no-data\" x=\"" << left + plot_w / 2 << "\" y=\"" << top + plot_h / 2
        << "\" text-anchor=\"middle\">no data</text>\n";

  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    std::ostringstream d;
    size_t finite = 0;
    bool pen_down = false;
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) {
        pen_down = false;
        continue;
      }
      d << (pen_down ? " L" : (finite ? " M" : "M")) << fixed(px(x)) << ' ' << fixed(py(y));
      pen_down = true;
      ++finite;
    }
    if (finite == 0) continue;
    const std::string color = s.color.empty() ? series_color(i) : s.color;
    svg << "<path class=\"series\" data-series=\"" << html_escape(s.name) << "\" d=\"" << d.str() << "\" stroke=\""
        << color << "\"" << (s.dashed ? " stroke-dasharray=\"5 3\"" : "") << "/>\n";
    if (finite <= 40) {
      svg << "<g class=\"markers\" fill=\"" << color << "\">";
      for (auto [x, y] : s.points)
        if (std::isfinite(x) && std::isfinite(y))
          svg << "<circle cx=\"" << fixed(px(x)) << "\" cy=\"" << fixed(py(y)) << "\" r=\"2.5\"><title>"
              << html_escape(s.name) << " @ " << format_number(x, 8) << ": " << format_number(y, 5)
              << "</title></circle>";
      svg << "</g>\n";
    }
  }
  for (const LegendItem& item : legend) {
    const ChartSeries& s = series[item.series];
    svg << "<g class=\"legend\"><line x1=\"" << item.x << "\" x2=\"" << item.x + 18 << "\" y1=\"" << item.y - 4
        << "\" y2=\"" << item.y - 4 << "\" stroke=\"" << (s.color.empty() ? series_color(item.series) : s.color) << "\""
        << (s.dashed ? " stroke-dasharray=\"5 3\"" : "") << "/><text x=\"" << item.x + 22 << "\" y=\"" << item.y
        << "\">" << html_escape(s.name) << "</text></g>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace lesseg
