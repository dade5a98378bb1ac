#include <gtest/gtest.h>

#include "util/svg_plot.h"

namespace dlmem {
namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(SvgPlot, OneLayerPerSeriesLegendAndMarkers) {
  StackedSeries s;
  s.title = "a <title> & more";
  s.names = {"weights", "activations"};
  s.values = {{10, 0}, {10, 50}, {10, 20}};
  s.lines = {{"budget", 80}};
  const std::string svg = stacked_area_svg(s);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(count(svg, "<polygon"), 2u);
  EXPECT_NE(svg.find("activations"), std::string::npos);
  EXPECT_NE(svg.find("a &lt;title&gt; &amp; more"), std::string::npos);  // escaped
  EXPECT_NE(svg.find("budget 80 B"), std::string::npos);
}

TEST(SvgPlot, EmptySeriesStillValid) {
  StackedSeries s;
  const std::string svg = stacked_area_svg(s);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

}  // namespace
}  // namespace dlmem
