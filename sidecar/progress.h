// progress.h - a one-line progress bar for `eximguard replay` / `rerun` of big log files, drawn
// on stderr only when stderr is a terminal.
//
// SUMMARY
//   ProgressBar bar;                          // stderr; does nothing unless it is a terminal
//   bar.Start(file_size, "mainlog.1");        // 0: size unknown (a .gz, a pipe)
//   for each line: ...; bar.Update(bytes_read, lines_read);   // cheap: call it per line
//   bar.Finish();                             // clears the line; print a summary after it
//
//   With a known total:   mainlog.1   42% [#########...........]  1234567 lines  52.3k lines/s  ETA
//   0:42 With total 0:         mainlog.2.gz  123.4 MiB  1234567 lines  52.3k lines/s
//
// CONTRACT
//   - Callers: the `replay` and `rerun` verbs; tests. The bar is cosmetic: it never fails and
//     never throws (but std::bad_alloc); write errors are ignored.
//   - Enabled when isatty(options.fd) at construction, or when options.force is set. Disabled,
//     every call returns at once and nothing is written (not even a clock read).
//   - Where it draws: options.out when given (tests), else the fd with write(2) (unbuffered, so
//     it cannot interleave mid-line with a buffered std::cerr; EINTR retried). Each draw is
//     "\r" + the line + "\x1b[K" (erase to the end of the line); Finish() writes "\r\x1b[K"
//     (only if something was drawn), leaving the cursor at the start of an empty line.
//   - Rate: Update() only stores the numbers, and looks at the clock every options.check_every
//     calls; it redraws when options.min_interval (100 ms: at most 10 redraws a second) has
//     passed since the last draw. Start() draws at once. So a stream of lines slower than
//     check_every per 100 ms redraws less often (at worst once per check_every lines).
//   - Width: options.width, else the fd's TIOCGWINSZ columns (asked at each draw, so a resized
//     terminal is followed), else 80. The line is at most width-1 columns (no autowrap in the
//     last column). The label gets at most a third of the width (at least 12), shortened to
//     "..." and its end (a path's file name). The bar takes what the other fields leave,
//     between 10 and 50 cells, shortening the label further (down to 16) to get its 10; when
//     there is still no room, it is dropped, then the rate, then the label is shortened to what
//     is left, then the line is cut. Plain ASCII only, so bytes
//     are columns (a label with UTF-8 may be cut inside a character: it is a cosmetic line).
//   - Numbers: percent = done/total (at most 100, also when the file grew past its size at
//     Start()); lines/s and ETA are averages since Start(): ETA = elapsed * (total - done) /
//     done, "--:--" until something is done. Done bytes above total show 100% and ETA 0:00.
//   - Start() may be called again after Finish() for the next file.
//
// THREAD SAFETY
//   None: one ProgressBar per thread (the verb's reading loop). The destructor calls Finish().
//
// BUGS
//   - Other output written to the same terminal while the bar is shown lands after the bar's
//     text on its line; call Finish() before printing, Start() again after.

#ifndef EXIMGUARD_SIDECAR_PROGRESS_H_
#define EXIMGUARD_SIDECAR_PROGRESS_H_

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace eg::sidecar {

struct ProgressOptions {
  int fd = STDERR_FILENO;       // the terminal: enables the bar (isatty) and gives the width
  std::ostream* out = nullptr;  // when set, draw here instead of writing to fd
  bool force = false;           // draw even when fd is not a terminal
  int width = 0;                // columns; 0: TIOCGWINSZ of fd, else 80
  std::function<std::chrono::steady_clock::time_point()> now;  // default steady_clock::now
  uint32_t check_every = 64;  // Update() calls between two looks at the clock (>= 1)
  std::chrono::milliseconds min_interval{100};  // between two redraws
};

class ProgressBar {
 public:
  explicit ProgressBar(ProgressOptions options = {});
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Begins a bar for `total_bytes` (0: unknown) and draws it.
  void Start(uint64_t total_bytes, std::string_view label);
  // Progress so far: bytes consumed and lines seen. Cheap; see CONTRACT for when it redraws.
  void Update(uint64_t done_bytes, uint64_t lines) {
    done_ = done_bytes;
    lines_ = lines;
    if (!active_ || ++calls_ < check_every_) return;
    calls_ = 0;
    MaybeDraw();
  }
  // Clears the line. Idempotent; Update() does nothing after it until the next Start().
  void Finish();

  bool enabled() const { return enabled_; }
  uint64_t redraws() const { return redraws_; }

  // The line for these numbers, fitted to `width` columns (at most width-1 characters), without
  // "\r" or escapes. Exposed for tests.
  static std::string Render(std::string_view label, uint64_t total, uint64_t done, uint64_t lines,
                            double elapsed_seconds, int width);

 private:
  std::chrono::steady_clock::time_point Now() const;
  void MaybeDraw();
  void Draw(std::chrono::steady_clock::time_point now);
  int Width() const;
  void Emit(std::string_view text);

  ProgressOptions opt_;
  bool enabled_ = false;
  bool active_ = false;  // between Start() and Finish()
  bool drawn_ = false;   // something is on the line
  uint32_t check_every_ = 1;
  uint32_t calls_ = 0;
  uint64_t total_ = 0;
  uint64_t done_ = 0;
  uint64_t lines_ = 0;
  uint64_t redraws_ = 0;
  std::string label_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_PROGRESS_H_
