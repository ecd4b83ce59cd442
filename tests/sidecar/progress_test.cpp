// progress_test.cpp - tests of the progress bar (sidecar/progress.h) with a forced output stream
// and an injected clock: redraw rate limiting, how often the clock is read, the percent / rate /
// ETA text, an unknown total, fitting the width, Finish() clearing the line, and the bar being
// off when its fd is not a terminal (and on, with the terminal's width, on a pseudo-terminal).

#include "progress.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace eg::sidecar {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using TimePoint = std::chrono::steady_clock::time_point;

struct FakeClock {
  TimePoint t{seconds(1000)};
  int reads = 0;
  std::function<TimePoint()> Fn() {
    return [this] {
      ++reads;
      return t;
    };
  }
};

ProgressOptions Forced(std::ostringstream* out, FakeClock* clock, int width = 100) {
  ProgressOptions o;
  o.out = out;
  o.force = true;
  o.width = width;
  o.now = clock->Fn();
  o.check_every = 1;
  return o;
}

// The drawn lines: the pieces between '\r's, each without the trailing erase escape.
std::vector<std::string> Frames(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  while ((at = s.find('\r', at)) != std::string::npos) {
    size_t next = s.find('\r', at + 1);
    std::string frame = s.substr(at + 1, next == std::string::npos ? next : next - at - 1);
    if (frame.size() >= 3 && frame.compare(frame.size() - 3, 3, "\x1b[K") == 0) {
      frame.resize(frame.size() - 3);
    }
    out.push_back(frame);
    at = at + 1;
  }
  return out;
}

std::string LastFrame(const std::string& s) {
  std::vector<std::string> f = Frames(s);
  return f.empty() ? "" : f.back();
}

TEST(Progress, RedrawsAtMostTenTimesASecond) {
  std::ostringstream out;
  FakeClock clock;
  ProgressBar bar(Forced(&out, &clock));
  ASSERT_TRUE(bar.enabled());
  bar.Start(1000, "f");
  EXPECT_EQ(bar.redraws(), 1u);  // Start() draws at once
  for (int i = 0; i < 1000; ++i) bar.Update(static_cast<uint64_t>(i), static_cast<uint64_t>(i));
  EXPECT_EQ(bar.redraws(), 1u);  // no time passed
  clock.t += milliseconds(99);
  bar.Update(1, 1);
  EXPECT_EQ(bar.redraws(), 1u);
  clock.t += milliseconds(1);
  bar.Update(2, 2);
  EXPECT_EQ(bar.redraws(), 2u);
  bar.Update(3, 3);
  EXPECT_EQ(bar.redraws(), 2u);
  // Ten simulated seconds of per-line updates, 1 ms apart: 100 more redraws.
  for (int i = 0; i < 10000; ++i) {
    clock.t += milliseconds(1);
    bar.Update(4, 4);
  }
  EXPECT_EQ(bar.redraws(), 102u);
  EXPECT_EQ(Frames(out.str()).size(), 102u);
}

TEST(Progress, ReadsTheClockOnlyEveryNCalls) {
  std::ostringstream out;
  FakeClock clock;
  ProgressOptions o = Forced(&out, &clock);
  o.check_every = 16;
  ProgressBar bar(o);
  bar.Start(1000, "f");
  EXPECT_EQ(clock.reads, 1);
  for (int i = 0; i < 160; ++i) bar.Update(1, 1);
  EXPECT_EQ(clock.reads, 11);
  clock.t += seconds(1);
  for (int i = 0; i < 15; ++i) bar.Update(2, 2);
  EXPECT_EQ(bar.redraws(), 1u);  // not looked yet
  bar.Update(2, 2);
  EXPECT_EQ(bar.redraws(), 2u);
}

TEST(Progress, PercentRateAndEta) {
  std::ostringstream out;
  FakeClock clock;
  ProgressBar bar(Forced(&out, &clock, 120));
  bar.Start(1000, "mainlog.1");
  std::string first = LastFrame(out.str());
  EXPECT_NE(first.find("mainlog.1"), std::string::npos) << first;
  EXPECT_NE(first.find("  0%"), std::string::npos) << first;
  EXPECT_NE(first.find("ETA --:--"), std::string::npos) << first;

  clock.t += seconds(10);
  bar.Update(250, 5000);
  std::string f = LastFrame(out.str());
  EXPECT_NE(f.find(" 25% ["), std::string::npos) << f;
  EXPECT_NE(f.find("5000 lines"), std::string::npos) << f;
  EXPECT_NE(f.find("500 lines/s"), std::string::npos) << f;
  EXPECT_NE(f.find("ETA 0:30"), std::string::npos) << f;  // 10 s for 250, 750 to go
  // The bar is a quarter full.
  size_t open = f.find('['), close = f.find(']');
  ASSERT_NE(close, std::string::npos);
  std::string cells = f.substr(open + 1, close - open - 1);
  EXPECT_EQ(std::count(cells.begin(), cells.end(), '#'), static_cast<long>(cells.size() / 4)) << f;

  clock.t += seconds(3590);
  bar.Update(999, 123456);
  f = LastFrame(out.str());
  EXPECT_NE(f.find(" 99%"), std::string::npos) << f;
  EXPECT_NE(f.find("34 lines/s"), std::string::npos) << f;  // 123456 lines in 3600 s
  EXPECT_NE(ProgressBar::Render("x", 1000, 1500, 10, 5, 100).find("100%"), std::string::npos);
  EXPECT_NE(ProgressBar::Render("x", 1000, 1500, 10, 5, 100).find("ETA 0:00"), std::string::npos);
  EXPECT_NE(ProgressBar::Render("x", 100, 1, 10, 2 * 3600, 100).find("ETA >99h"),
            std::string::npos);
  EXPECT_NE(ProgressBar::Render("x", 100, 50, 52300, 1, 100).find("52.3k lines/s"),
            std::string::npos);
  EXPECT_NE(ProgressBar::Render("x", 100, 25, 10, 3723, 100).find("ETA 3:06:09"),
            std::string::npos);
}

TEST(Progress, UnknownTotalShowsBytesWithoutPercent) {
  std::ostringstream out;
  FakeClock clock;
  ProgressBar bar(Forced(&out, &clock));
  bar.Start(0, "mainlog.2.gz");
  clock.t += seconds(2);
  bar.Update(uint64_t{3} << 20, 10);
  std::string f = LastFrame(out.str());
  EXPECT_NE(f.find("mainlog.2.gz"), std::string::npos) << f;
  EXPECT_NE(f.find("3.0 MiB"), std::string::npos) << f;
  EXPECT_NE(f.find("10 lines"), std::string::npos) << f;
  EXPECT_NE(f.find("5 lines/s"), std::string::npos) << f;
  EXPECT_EQ(f.find('%'), std::string::npos) << f;
  EXPECT_EQ(f.find('['), std::string::npos) << f;
  EXPECT_EQ(f.find("ETA"), std::string::npos) << f;
  EXPECT_NE(ProgressBar::Render("x", 0, 100, 1, 1, 80).find("100 B"), std::string::npos);
}

TEST(Progress, FitsTheWidth) {
  const std::string long_label = "/var/log/exim4/some/very/deep/directory/tree/mainlog.20240101";
  size_t last_bar = 0;
  for (int width : {1, 5, 20, 30, 40, 60, 80, 100, 132, 200, 400}) {
    SCOPED_TRACE(width);
    for (uint64_t total : {uint64_t{0}, uint64_t{1} << 40}) {
      std::string f = ProgressBar::Render(long_label, total, total / 3, 123456789, 3.5, width);
      EXPECT_LE(f.size(), static_cast<size_t>(std::max(width, 2) - 1)) << f;
      if (width >= 60) {
        // The label is whole, or "..." and its end (the file name part).
        size_t end = f.find("20240101  ");
        ASSERT_NE(end, std::string::npos) << f;
        EXPECT_TRUE(f.rfind(long_label, 0) == 0 || f.rfind("...", 0) == 0) << f;
      }
      if (total > 0 && width >= 80) {
        size_t open = f.find('['), close = f.find(']');
        ASSERT_NE(close, std::string::npos) << f;
        size_t cells = close - open - 1;
        EXPECT_GE(cells, 10u);
        EXPECT_LE(cells, 50u);
        EXPECT_GE(cells, last_bar);  // wider terminal, bar at least as wide
        last_bar = cells;
        EXPECT_NE(f.find("ETA"), std::string::npos) << f;
        EXPECT_NE(f.find("lines/s"), std::string::npos) << f;
      }
    }
  }
  // A short label fits whole; on 80 columns everything is there.
  std::string f = ProgressBar::Render("mainlog", 1000, 500, 100, 1, 80);
  EXPECT_LE(f.size(), 79u);
  EXPECT_EQ(f.rfind("mainlog", 0), 0u) << f;
  EXPECT_NE(f.find('['), std::string::npos) << f;
  // Drawn frames follow options.width too.
  std::ostringstream out;
  FakeClock clock;
  ProgressBar bar(Forced(&out, &clock, 30));
  bar.Start(1000, long_label);
  clock.t += seconds(1);
  bar.Update(10, 1000000);
  for (const std::string& frame : Frames(out.str())) EXPECT_LE(frame.size(), 29u) << frame;
}

TEST(Progress, FinishClearsTheLine) {
  std::ostringstream out;
  FakeClock clock;
  ProgressBar bar(Forced(&out, &clock));
  bar.Start(1000, "f");
  clock.t += seconds(1);
  bar.Update(500, 10);
  bar.Finish();
  const std::string s = out.str();
  ASSERT_GE(s.size(), 4u);
  EXPECT_EQ(s.substr(s.size() - 4), "\r\x1b[K");
  EXPECT_EQ(LastFrame(s), "");
  // Finish again, or updates after it, write nothing.
  bar.Finish();
  clock.t += seconds(1);
  bar.Update(600, 11);
  EXPECT_EQ(out.str(), s);
  // A new Start() works again; the destructor finishes it.
  {
    std::ostringstream out2;
    FakeClock clock2;
    {
      ProgressBar bar2(Forced(&out2, &clock2));
      bar2.Start(10, "g");
    }
    EXPECT_EQ(out2.str().substr(out2.str().size() - 4), "\r\x1b[K");
  }
  bar.Start(10, "again");
  EXPECT_NE(LastFrame(out.str()).find("again"), std::string::npos);
}

TEST(Progress, DisabledWhenNotATerminal) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  {
    std::ostringstream out;
    FakeClock clock;
    ProgressOptions o;
    o.fd = fds[1];  // a pipe: not a terminal
    o.out = &out;
    o.now = clock.Fn();
    ProgressBar bar(o);
    EXPECT_FALSE(bar.enabled());
    bar.Start(100, "f");
    clock.t += seconds(1);
    bar.Update(50, 5);
    bar.Finish();
    EXPECT_EQ(out.str(), "");
    EXPECT_EQ(clock.reads, 0);
    EXPECT_EQ(bar.redraws(), 0u);
  }
  {
    ProgressOptions o;
    o.fd = fds[1];
    ProgressBar bar(o);
    EXPECT_FALSE(bar.enabled());
    bar.Start(100, "f");
    bar.Finish();
  }
  char buf[64];
  EXPECT_EQ(read(fds[0], buf, sizeof buf), -1);  // nothing was written to the fd
  EXPECT_EQ(errno, EAGAIN);
  {
    // Forced onto the fd itself.
    ProgressOptions o;
    o.fd = fds[1];
    o.force = true;
    ProgressBar bar(o);
    bar.Start(100, "forced");
    bar.Finish();
  }
  char big[4096];
  ssize_t n = read(fds[0], big, sizeof big);
  ASSERT_GT(n, 0);
  std::string got(big, static_cast<size_t>(n));
  EXPECT_NE(got.find("forced"), std::string::npos) << got;
  EXPECT_EQ(got.substr(got.size() - 4), "\r\x1b[K");
  close(fds[0]);
  close(fds[1]);
}

TEST(Progress, EnabledOnATerminalWithItsWidth) {
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
    if (master >= 0) close(master);
    GTEST_SKIP() << "no pseudo-terminals here";
  }
  int slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    close(master);
    GTEST_SKIP() << "cannot open the pty's slave";
  }
  struct winsize ws {};
  ws.ws_col = 40;
  ws.ws_row = 10;
  ASSERT_EQ(ioctl(slave, TIOCSWINSZ, &ws), 0);
  {
    ProgressOptions o;
    o.fd = slave;
    ProgressBar bar(o);
    EXPECT_TRUE(bar.enabled());
    bar.Start(1000, "/var/log/exim4/a/rather/long/path/mainlog");
  }
  char buf[512];
  ssize_t n = read(master, buf, sizeof buf);
  ASSERT_GT(n, 0);
  std::string got(buf, static_cast<size_t>(n));
  std::vector<std::string> frames = Frames(got);
  ASSERT_FALSE(frames.empty()) << got;
  EXPECT_NE(frames.front(), "");
  EXPECT_LE(frames.front().size(), 39u) << frames.front();
  close(slave);
  close(master);
}

}  // namespace
}  // namespace eg::sidecar
