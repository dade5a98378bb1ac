// A stacked area chart as a standalone SVG file: memory over time by role, the one
// picture every memory tool owes its users. Hand-written because no Debian C++ library
// draws charts without pulling in a GUI toolkit; SVG is plain text that every browser
// opens.
//
//   StackedSeries s{.title = "resnet50 b64", .x_label = "instruction", .y_label = "bytes"};
//   s.names = {"weights", "activations"};
//   s.values = {{w0, a0}, {w1, a1}, ...};          // one row per x, one column per series
//   write_file_atomic("mem.svg", as_bytes(stacked_area_svg(s)));
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dlmem {

struct StackedSeries {
  std::string title;
  std::string x_label;
  std::string y_label;                       // values are bytes: the axis shows KiB/MiB/GiB
  std::vector<std::string> names;            // one per series (stack layer)
  std::vector<std::vector<uint64_t>> values;  // values[x][series]
  std::vector<std::pair<std::string, uint64_t>> lines;  // horizontal markers (budget, ...)
};

std::string stacked_area_svg(const StackedSeries&, int width = 960, int height = 480);

}  // namespace dlmem
