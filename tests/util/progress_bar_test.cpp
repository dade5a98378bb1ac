#include "util/progress_bar.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

namespace dlmem {
namespace {

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

void expect_nothing_odd(const std::string& s) {
  for (const char* bad : {"nan", "inf", "-%", "--", "ETA --"})
    EXPECT_EQ(s.find(bad), std::string::npos) << "'" << bad << "' in: " << s;
}

TEST(ProgressBar, StringStreamIsNotATerminal) {
  std::ostringstream os;
  ProgressBar bar("load", 100, os);
  EXPECT_FALSE(bar.is_tty());
}

TEST(ProgressBar, LogModePrintsEveryTenPercent) {
  std::ostringstream os;
  {
    ProgressBar bar("epoch 1", 200, os);
    for (int i = 1; i <= 200; ++i) bar.update(i, "loss 0.5");
    bar.finish();
    bar.finish();  // idempotent
  }
  const std::string out = os.str();
  EXPECT_EQ(out.find('\r'), std::string::npos);
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 10u) << out;
  for (int k = 1; k <= 10; ++k) {
    const std::string& l = lines[static_cast<size_t>(k - 1)];
    EXPECT_EQ(l.rfind("epoch 1 [", 0), 0u) << l;
    EXPECT_NE(l.find(std::to_string(10 * k) + "%"), std::string::npos) << l;
    EXPECT_NE(l.find(std::to_string(20 * k) + "/200"), std::string::npos) << l;
    EXPECT_NE(l.find("loss 0.5"), std::string::npos) << l;
    EXPECT_EQ(l.find("ETA") != std::string::npos, k < 10) << l;
  }
  EXPECT_NE(lines[4].find("[###############...............]"), std::string::npos) << lines[4];
  EXPECT_NE(lines[9].find("[##############################]"), std::string::npos) << lines[9];
  expect_nothing_odd(out);
}

TEST(ProgressBar, LogModeFinishPrintsAnUnfinishedState) {
  std::ostringstream os;
  ProgressBar bar("copy", 100, os);
  bar.update(5);
  EXPECT_EQ(os.str(), "");  // below 10%: nothing yet
  bar.finish();
  const auto lines = lines_of(os.str());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("5%"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("5/100"), std::string::npos) << lines[0];
}

TEST(ProgressBar, ZeroTotalPrintsNothingOdd) {
  {
    std::ostringstream os;
    { ProgressBar bar("empty", 0, os); }  // never updated: silent
    EXPECT_EQ(os.str(), "");
  }
  {
    std::ostringstream os;
    ProgressBar bar("stream", 0, os);
    bar.update(0);
    bar.update(7, "x");
    EXPECT_EQ(os.str(), "");
    bar.finish();
    const auto lines = lines_of(os.str());
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].rfind("stream  7 done  ", 0), 0u) << lines[0];
    EXPECT_EQ(lines[0].find('%'), std::string::npos);
    EXPECT_EQ(lines[0].find('['), std::string::npos);
    expect_nothing_odd(os.str());
  }
  {
    std::ostringstream os;
    ProgressBar bar("tty", 0, os, {.tty = true, .min_redraw_interval_s = 0});
    bar.update(0);
    bar.update(3);
    bar.finish();
    EXPECT_EQ(os.str().find('%'), std::string::npos) << os.str();
    expect_nothing_odd(os.str());
  }
}

TEST(ProgressBar, TerminalModeRedrawsInPlace) {
  std::ostringstream os;
  {
    ProgressBar bar("train", 4, os, {.tty = true, .min_redraw_interval_s = 0, .bar_width = 8});
    EXPECT_TRUE(bar.is_tty());
    bar.update(1, "a much longer suffix than the next one");
    bar.update(2, "short");
    bar.update(4);
  }  // the destructor ends the line
  const std::string out = os.str();
  EXPECT_EQ(std::count(out.begin(), out.end(), '\r'), 3);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
  EXPECT_EQ(out.back(), '\n');
  EXPECT_NE(out.find("\rtrain [##......]  25%  1/4"), std::string::npos) << out;
  EXPECT_NE(out.find("\rtrain [####....]  50%  2/4"), std::string::npos) << out;
  EXPECT_NE(out.find("\rtrain [########] 100%  4/4"), std::string::npos) << out;
  // The second draw is shorter than the first and blanks the rest of it.
  const size_t second = out.find("\rtrain [####");
  const size_t third = out.find("\rtrain [########]");
  const size_t first_len = second - 1;  // the first draw starts at 0 with '\r'
  EXPECT_EQ(third - second - 1, first_len) << out;
}

TEST(ProgressBar, TerminalModeThrottlesButAlwaysDrawsTheEnd) {
  std::ostringstream os;
  ProgressBar bar("fast", 1000, os, {.tty = true, .min_redraw_interval_s = 3600});
  for (int i = 1; i <= 1000; ++i) bar.update(i);
  bar.finish();
  const std::string out = os.str();
  EXPECT_EQ(std::count(out.begin(), out.end(), '\r'), 2) << out;  // the first and the last
  EXPECT_NE(out.find("1000/1000"), std::string::npos);
}

TEST(ProgressBar, TerminalFinishDrawsAThrottledState) {
  std::ostringstream os;
  ProgressBar bar("slow", 1000, os, {.tty = true, .min_redraw_interval_s = 3600});
  bar.update(1);
  bar.update(500, "half");
  EXPECT_EQ(os.str().find("500/1000"), std::string::npos);
  bar.finish();
  EXPECT_NE(os.str().find("500/1000"), std::string::npos);
  EXPECT_NE(os.str().find("half"), std::string::npos);
  EXPECT_EQ(os.str().back(), '\n');
}

TEST(ProgressBar, OutOfRangeCountsAreClamped) {
  std::ostringstream os;
  ProgressBar bar("odd", 10, os, {.tty = true, .min_redraw_interval_s = 0, .bar_width = 4});
  bar.update(-3);
  bar.update(15);
  bar.finish();
  const std::string out = os.str();
  EXPECT_NE(out.find("[....]   0%"), std::string::npos) << out;
  EXPECT_NE(out.find("[####] 100%"), std::string::npos) << out;
  expect_nothing_odd(out);
}

}  // namespace
}  // namespace dlmem
