#include "util/table.h"

#include <gtest/gtest.h>

#include "util/error.h"
#include "util/format.h"

namespace dlmem {
namespace {

TEST(Table, ExplicitAlignment) {
  Table t({{"tensor", Align::Left}, {"bytes", Align::Right}});
  t.add_row({"conv1.weight", human_bytes(1728)});
  t.add_row({"fc.bias", human_bytes(40)});
  EXPECT_EQ(t.str(),
            "tensor           bytes\n"
            "------------  --------\n"
            "conv1.weight  1.69 KiB\n"
            "fc.bias           40 B\n");
}

TEST(Table, AutoAlignmentRightAlignsNumbers) {
  Table t({"op", "count", "share", "note"});
  t.add_row({"conv", "12", "40%", "3x3"});
  t.add_row({"matmul", "3", "-5.5", "fused"});
  t.add_row({"relu", "", ".5", ""});  // empty cells do not decide the alignment
  EXPECT_EQ(t.num_rows(), 3u);
  EXPECT_EQ(t.num_columns(), 4u);
  EXPECT_EQ(t.str(),
            "op      count  share  note\n"
            "------  -----  -----  -----\n"
            "conv       12    40%  3x3\n"
            "matmul      3   -5.5  fused\n"
            "relu              .5\n");
}

TEST(Table, HeaderOnlyAndUnicodeWidth) {
  Table empty({"name", {"bytes", Align::Right}});
  EXPECT_EQ(empty.str(),
            "name  bytes\n"
            "----  -----\n");

  Table t({"time", "what"});
  t.add_row({"12 µs", "µ counts as one column"});
  t.add_row({"3 ms", "x"});
  EXPECT_EQ(t.str(),
            " time  what\n"
            "-----  ----------------------\n"
            "12 µs  µ counts as one column\n"
            " 3 ms  x\n");
}

TEST(Table, WrongCellCountIsABug) {
  Table t({"a", "b"});
  EXPECT_THROW(t.add_row({"only one"}), InternalError);
}

}  // namespace
}  // namespace dlmem
