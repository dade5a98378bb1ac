#include "util/svg_plot.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <sstream>

#include "util/format.h"

namespace dlmem {

namespace {
constexpr std::array<const char*, 10> kColors = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                                 "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else o += c;
  }
  return o;
}
}  // namespace

std::string stacked_area_svg(const StackedSeries& s, int width, int height) {
  const int left = 90, right = 170, top = 40, bottom = 50;
  const double pw = width - left - right, ph = height - top - bottom;
  const size_t n = s.values.size(), k = s.names.size();
  uint64_t ymax = 1;
  for (const auto& row : s.values) {
    uint64_t t = 0;
    for (uint64_t v : row) t += v;
    ymax = std::max(ymax, t);
  }
  for (const auto& l : s.lines) ymax = std::max(ymax, l.second);
  ymax = ymax + ymax / 20;
  auto X = [&](size_t i) { return left + (n > 1 ? pw * static_cast<double>(i) / static_cast<double>(n - 1) : 0.0); };
  auto Y = [&](uint64_t v) { return top + ph * (1.0 - static_cast<double>(v) / static_cast<double>(ymax)); };

  std::ostringstream o;
  o.setf(std::ios::fixed);
  o.precision(1);
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height
    << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
  o << "<text x='" << left << "' y='22' font-size='15'>" << esc(s.title) << "</text>\n";
  // Layers, bottom to top: each polygon runs along its top edge and back along the
  // previous layer's top edge.
  std::vector<uint64_t> base(n, 0);
  for (size_t j = 0; j < k; ++j) {
    std::vector<uint64_t> topv(n);
    for (size_t i = 0; i < n; ++i) topv[i] = base[i] + (j < s.values[i].size() ? s.values[i][j] : 0);
    o << "<polygon fill='" << kColors[j % kColors.size()] << "' fill-opacity='0.85' points='";
    for (size_t i = 0; i < n; ++i) o << X(i) << ',' << Y(topv[i]) << ' ';
    for (size_t i = n; i-- > 0;) o << X(i) << ',' << Y(base[i]) << ' ';
    o << "'/>\n";
    base = std::move(topv);
    const int ly = top + 18 * static_cast<int>(j);
    o << "<rect x='" << width - right + 15 << "' y='" << ly << "' width='12' height='12' fill='"
      << kColors[j % kColors.size()] << "'/><text x='" << width - right + 32 << "' y='" << ly + 11 << "'>"
      << esc(s.names[j]) << "</text>\n";
  }
  for (const auto& [label, v] : s.lines)
    o << "<line x1='" << left << "' x2='" << left + pw << "' y1='" << Y(v) << "' y2='" << Y(v)
      << "' stroke='black' stroke-dasharray='6,4'/><text x='" << left + 4 << "' y='" << Y(v) - 4 << "'>"
      << esc(label) << " " << human_bytes(v) << "</text>\n";
  // Axes with five ticks each.
  o << "<line x1='" << left << "' y1='" << top + ph << "' x2='" << left + pw << "' y2='" << top + ph
    << "' stroke='black'/><line x1='" << left << "' y1='" << top << "' x2='" << left << "' y2='" << top + ph
    << "' stroke='black'/>\n";
  for (int t = 0; t <= 4; ++t) {
    const uint64_t v = ymax / 4 * static_cast<uint64_t>(t);
    o << "<text x='" << left - 6 << "' y='" << Y(v) + 4 << "' text-anchor='end'>" << human_bytes(v) << "</text>\n";
    const size_t xi = n ? (n - 1) * static_cast<size_t>(t) / 4 : 0;
    o << "<text x='" << X(xi) << "' y='" << top + ph + 16 << "' text-anchor='middle'>" << xi << "</text>\n";
  }
  o << "<text x='" << left + pw / 2 << "' y='" << height - 12 << "' text-anchor='middle'>" << esc(s.x_label)
    << "</text>\n<text x='18' y='" << top + ph / 2 << "' transform='rotate(-90 18 " << top + ph / 2
    << ")' text-anchor='middle'>" << esc(s.y_label) << "</text>\n</svg>\n";
  return o.str();
}

}  // namespace dlmem
