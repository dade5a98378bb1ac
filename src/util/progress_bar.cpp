#include "util/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include "util/format.h"

namespace dlmem {

ProgressBar::ProgressBar(std::string label, int64_t total, std::ostream& os,
                         ProgressBarOptions options)
    : label_(std::move(label)),
      total_(total),
      os_(os),
      options_(options),
      tty_(options.tty ? *options.tty : (&os == &std::cerr && ::isatty(STDERR_FILENO) == 1)),
      start_(Clock::now()) {
  options_.bar_width = std::max(options_.bar_width, 1);
}

ProgressBar::~ProgressBar() {
  try {
    finish();
  } catch (...) {
    // A stream that throws on write must not take the program down from a destructor.
  }
}

std::string ProgressBar::line() const {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  std::string s = label_;
  if (total_ > 0) {
    const int64_t done = std::clamp<int64_t>(done_, 0, total_);
    const double frac = static_cast<double>(done) / static_cast<double>(total_);
    const int width = options_.bar_width;
    const int filled = std::clamp(static_cast<int>(frac * width), 0, width);
    s += " [" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3d%%", static_cast<int>(std::floor(frac * 100)));
    s += " ";
    s += pct;
    s += "  " + std::to_string(done_) + "/" + std::to_string(total_);
    s += "  " + human_duration(elapsed);
    if (done > 0 && done < total_)
      s += "  ETA " + human_duration(elapsed * static_cast<double>(total_ - done) /
                                     static_cast<double>(done));
  } else {
    s += "  " + std::to_string(done_) + " done  " + human_duration(elapsed);
  }
  if (!suffix_.empty()) s += "  " + suffix_;
  return s;
}

void ProgressBar::draw() {
  std::string s = line();
  if (tty_) {
    const size_t width = s.size();
    if (width < last_line_width_) s += std::string(last_line_width_ - width, ' ');
    last_line_width_ = width;
    os_ << '\r' << s << std::flush;
  } else {
    os_ << s << '\n' << std::flush;
  }
  last_draw_ = Clock::now();
  drawn_any_ = true;
  state_drawn_ = true;
}

void ProgressBar::update(int64_t done, std::string suffix) {
  if (finished_) return;
  updated_ = true;
  done_ = done;
  suffix_ = std::move(suffix);
  state_drawn_ = false;
  const bool final = total_ > 0 && done_ >= total_;
  if (tty_) {
    const double since = std::chrono::duration<double>(Clock::now() - last_draw_).count();
    if (final || !drawn_any_ || since >= options_.min_redraw_interval_s) draw();
    return;
  }
  if (total_ <= 0) return;  // unknown total: finish() prints the one line
  const int decile = static_cast<int>(std::clamp<int64_t>(
      static_cast<int64_t>(std::floor(10.0 * static_cast<double>(std::max<int64_t>(done_, 0)) /
                                      static_cast<double>(total_))),
      0, 10));
  if (decile > last_decile_) {
    last_decile_ = decile;
    draw();
  }
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  if (!updated_) return;
  if (!state_drawn_) draw();
  if (tty_) os_ << '\n' << std::flush;
}

}  // namespace dlmem
