#pragma once
// Line charts as inline SVG (no scripts, no external resources): axes with rounded ticks, one
// path per series, point markers for short series, a legend.
#include <string>
#include <utility>
#include <vector>

namespace lesseg {

struct ChartSeries {
  std::string name;                              // legend text and the path's data-series attribute
  std::vector<std::pair<double, double>> points; // (x, y); non-finite y values break the line
  bool dashed = false;
  std::string color{};  // "#rrggbb" or "rgb(r,g,b)"; empty: series_color(index)
};

struct ChartOptions {
  std::string id;       // the <svg> element's id
  std::string title;
  std::string x_label = "iteration";
  std::string y_label;
  int width = 560, height = 300;
  bool y_from_zero = false;  // include 0 in the y range
  bool integer_x = true;     // x ticks only at whole numbers (iterations)
};

// <svg class="chart" id="..."> with <path class="series" data-series="name"> per non-empty series;
// a chart without any finite point says "no data".
std::string svg_line_chart(const std::vector<ChartSeries>& series, const ChartOptions& options);

// Rounded tick values covering [lo, hi] (about `count` of them: steps of 1, 2 or 5 x 10^k).
std::vector<double> nice_ticks(double lo, double hi, int count = 5);

// The colour of series i (a qualitative palette), as "#rrggbb".
std::string series_color(size_t i);

}  // namespace lesseg
