// A one-line progress report for long loops (loading data, training epochs).
//
//   ProgressBar bar("epoch 3", batches);
//   for (int64_t i = 0; i < batches; ++i) {
//     ...
//     bar.update(i + 1, "loss 0.412");
//   }
//   bar.finish();
//
// On a terminal it redraws one line in place with '\r', at most ~10 times a second
// (the final update, done == total, always draws):
//
//   epoch 3 [###############...............]  50%  469/938  4.10 s  ETA 4.10 s  loss 0.412
//
// Anywhere else (a log file, a pipe, a string stream) it prints a full line each time
// the work crosses another 10%, so logs stay short and readable. The stream counts as a
// terminal only when it is std::cerr and stderr is a TTY (ProgressBarOptions::tty
// overrides this). A total <= 0 means "unknown": no bar, percentage or ETA, just the
// count and the elapsed time.
#pragma once

#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>

namespace dlmem {

struct ProgressBarOptions {
  std::optional<bool> tty;             // unset: detect (see above)
  double min_redraw_interval_s = 0.1;  // terminal only
  int bar_width = 30;                  // characters between the brackets
};

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::ostream& os = std::cerr,
              ProgressBarOptions options = {});
  ~ProgressBar();  // finish()es if the owner did not
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Records that `done` of `total` items are complete; `suffix` is free text (a loss,
  // a throughput) shown at the end of the line. Draws when the rules above say so.
  void update(int64_t done, std::string suffix = "");

  // Draws the last state if it was not drawn and ends the line. Idempotent; does
  // nothing when update() was never called.
  void finish();

  bool is_tty() const { return tty_; }

 private:
  using Clock = std::chrono::steady_clock;
  std::string line() const;
  void draw();

  std::string label_;
  int64_t total_;
  std::ostream& os_;
  ProgressBarOptions options_;
  bool tty_;
  Clock::time_point start_;
  Clock::time_point last_draw_{};
  bool drawn_any_ = false;
  bool updated_ = false;
  bool finished_ = false;
  bool state_drawn_ = false;  // the current done_/suffix_ are on screen
  int64_t done_ = 0;
  std::string suffix_;
  int last_decile_ = 0;        // non-terminal: the last 10% step printed
  size_t last_line_width_ = 0; // terminal: to blank out a longer previous line
};

}  // namespace dlmem
