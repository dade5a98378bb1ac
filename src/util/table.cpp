#include "util/table.h"

#include <algorithm>

#include "util/error.h"

namespace dlmem {

namespace {

// UTF-8 code points: every byte that is not a continuation byte (10xxxxxx).
size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool looks_numeric(const std::string& s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  if (i < s.size() && s[i] == '.') ++i;
  return i < s.size() && is_digit(s[i]);
}

}  // namespace

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {
  DLMEM_CHECK(!columns_.empty(), "a table needs at least one column");
}

void Table::add_row(std::vector<std::string> cells) {
  DLMEM_CHECK(cells.size() == columns_.size(), "row has ", cells.size(), " cells, table has ",
              columns_.size(), " columns");
  rows_.push_back(std::move(cells));
}

std::string Table::str() const {
  const size_t n = columns_.size();
  std::vector<size_t> width(n);
  std::vector<bool> right(n);
  for (size_t c = 0; c < n; ++c) {
    width[c] = display_width(columns_[c].header);
    bool numeric = false, all_numeric = true;
    for (const auto& row : rows_) {
      width[c] = std::max(width[c], display_width(row[c]));
      if (row[c].empty()) continue;
      if (looks_numeric(row[c]))
        numeric = true;
      else
        all_numeric = false;
    }
    switch (columns_[c].align) {
      case Align::Left: right[c] = false; break;
      case Align::Right: right[c] = true; break;
      case Align::Auto: right[c] = numeric && all_numeric; break;
    }
  }

  std::string out;
  const auto emit = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t c = 0; c < n; ++c) {
      if (c > 0) line += "  ";
      const std::string pad(width[c] - display_width(cells[c]), ' ');
      line += right[c] ? pad + cells[c] : cells[c] + pad;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  };
  std::vector<std::string> header(n), rule(n);
  for (size_t c = 0; c < n; ++c) {
    header[c] = columns_[c].header;
    rule[c] = std::string(width[c], '-');
  }
  emit(header);
  emit(rule);
  for (const auto& row : rows_) emit(row);
  return out;
}

}  // namespace dlmem
