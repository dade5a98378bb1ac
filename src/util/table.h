// A plain-text table for reports: a header row, a dashed underline, and columns
// padded to their widest cell and separated by two spaces.
//
//   Table t({{"tensor", Align::Left}, {"bytes", Align::Right}});
//   t.add_row({"conv1.weight", human_bytes(1728)});
//   t.add_row({"fc.bias", human_bytes(40)});
//   std::cout << t.str();
//
//   tensor           bytes
//   ------------  --------
//   conv1.weight  1.69 KiB
//   fc.bias           40 B
//
// Align::Auto (the default) right-aligns a column when every non-empty cell in it
// starts like a number ("12", "-3.5", ".5", "1.50 KiB", "40%"), and left-aligns it
// otherwise. Headers follow their column's alignment. Widths count UTF-8 code points,
// so "µs" is two wide. Lines carry no trailing spaces and each ends with '\n'.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace dlmem {

enum class Align { Auto, Left, Right };

// Implicit from text so that Table({"name", {"bytes", Align::Right}}) reads naturally.
struct Column {
  Column(std::string header, Align align = Align::Auto)  // NOLINT(google-explicit-constructor)
      : header(std::move(header)), align(align) {}
  Column(const char* header, Align align = Align::Auto)  // NOLINT(google-explicit-constructor)
      : header(header), align(align) {}
  std::string header;
  Align align;
};

class Table {
 public:
  explicit Table(std::vector<Column> columns);

  // One cell per column; a different count is a bug in the caller (DLMEM_CHECK).
  void add_row(std::vector<std::string> cells);

  size_t num_rows() const { return rows_.size(); }
  size_t num_columns() const { return columns_.size(); }

  // The whole table, header and underline included.
  std::string str() const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace dlmem
