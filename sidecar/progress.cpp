// progress.cpp - the progress bar: rate limiting, the text of the line, drawing.
//
// CONTRACT: see progress.h.

#include "progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <utility>
#include <vector>

namespace eg::sidecar {
namespace {

constexpr int kDefaultWidth = 80;
constexpr int kMinBar = 10;
constexpr int kMaxBar = 50;
constexpr size_t kMinLabel = 16;  // the bar may shorten the label down to this
constexpr std::string_view kGap = "  ";
constexpr std::string_view kClear = "\x1b[K";

std::string Printf(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

// 950, 52.3k, 1.2M
std::string Compact(double v) {
  if (v < 1000) return Printf("%.0f", v);
  if (v < 1e6) return Printf("%.1fk", v / 1e3);
  if (v < 1e9) return Printf("%.1fM", v / 1e6);
  return Printf("%.1fG", v / 1e9);
}

// 512 B, 12.0 KiB, 123.4 MiB, 2.1 GiB
std::string Bytes(uint64_t b) {
  if (b < 1024) return std::to_string(b) + " B";
  double v = static_cast<double>(b) / 1024;
  const char* unit = "KiB";
  for (const char* next : {"MiB", "GiB", "TiB"}) {
    if (v < 1024) break;
    v /= 1024;
    unit = next;
  }
  return Printf("%.1f ", v) + unit;
}

// 0:42, 12:05, 1:02:03; over 99 h: >99h
std::string Duration(double seconds) {
  if (!(seconds >= 0)) seconds = 0;
  if (seconds >= 100.0 * 3600) return ">99h";
  uint64_t s = static_cast<uint64_t>(seconds + 0.5);
  char buf[32];
  if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 ":%02" PRIu64, s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 3600, s / 60 % 60,
                  s % 60);
  }
  return buf;
}

std::string ShortenLabel(std::string_view label, size_t max) {
  if (label.size() <= max) return std::string(label);
  if (max <= 3) return std::string(label.substr(0, max));
  return "..." + std::string(label.substr(label.size() - (max - 3)));
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += kGap;
    out += p;
  }
  return out;
}

}  // namespace

ProgressBar::ProgressBar(ProgressOptions options) : opt_(std::move(options)) {
  enabled_ = opt_.force || (opt_.fd >= 0 && isatty(opt_.fd) == 1);
  check_every_ = std::max<uint32_t>(opt_.check_every, 1);
}

ProgressBar::~ProgressBar() {
  Finish();
}

std::chrono::steady_clock::time_point ProgressBar::Now() const {
  return opt_.now ? opt_.now() : std::chrono::steady_clock::now();
}

void ProgressBar::Start(uint64_t total_bytes, std::string_view label) {
  if (!enabled_) return;
  total_ = total_bytes;
  done_ = 0;
  lines_ = 0;
  calls_ = 0;
  label_.assign(label);
  active_ = true;
  start_ = Now();
  Draw(start_);
}

void ProgressBar::MaybeDraw() {
  std::chrono::steady_clock::time_point now = Now();
  if (now - last_draw_ >= opt_.min_interval) Draw(now);
}

void ProgressBar::Draw(std::chrono::steady_clock::time_point now) {
  last_draw_ = now;
  double elapsed = std::chrono::duration<double>(now - start_).count();
  std::string text = "\r";
  text += Render(label_, total_, done_, lines_, elapsed, Width());
  text += kClear;
  Emit(text);
  drawn_ = true;
  ++redraws_;
}

void ProgressBar::Finish() {
  if (!active_) return;
  active_ = false;
  if (drawn_) Emit(std::string("\r") + std::string(kClear));
  drawn_ = false;
}

int ProgressBar::Width() const {
  if (opt_.width > 0) return opt_.width;
  struct winsize ws {};
  if (opt_.fd >= 0 && ioctl(opt_.fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return kDefaultWidth;
}

void ProgressBar::Emit(std::string_view text) {
  if (opt_.out != nullptr) {
    opt_.out->write(text.data(), static_cast<std::streamsize>(text.size()));
    opt_.out->flush();
    return;
  }
  while (!text.empty()) {
    ssize_t n = ::write(opt_.fd, text.data(), text.size());
    if (n > 0) {
      text.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return;  // cosmetic output: give up on EAGAIN / EIO / a closed terminal
    }
  }
}

std::string ProgressBar::Render(std::string_view label, uint64_t total, uint64_t done,
                                uint64_t lines, double elapsed_seconds, int width) {
  const size_t avail = static_cast<size_t>(std::max(width, 2) - 1);
  const double elapsed = elapsed_seconds > 0 ? elapsed_seconds : 0;
  const std::string line_count = std::to_string(lines) + " lines";
  const std::string rate =
      Compact(elapsed > 0 ? static_cast<double>(lines) / elapsed : 0) + " lines/s";

  std::string head;  // what comes right after the label: percent (and the bar) or bytes
  std::string eta;
  double fraction = 0;
  if (total > 0) {
    fraction = done >= total ? 1.0 : static_cast<double>(done) / static_cast<double>(total);
    char pct[8];
    std::snprintf(pct, sizeof pct, "%3d%%", static_cast<int>(fraction * 100));
    head = pct;
    if (done >= total) {
      eta = "ETA 0:00";
    } else if (done == 0 || elapsed <= 0) {
      eta = "ETA --:--";
    } else {
      eta = "ETA " +
            Duration(elapsed * static_cast<double>(total - done) / static_cast<double>(done));
    }
  } else {
    head = Bytes(done);
  }

  // The label gets at most a third of the line (at least 12), the rest is for the numbers.
  std::string name = ShortenLabel(label, std::max<size_t>(avail / 3, 12));
  std::vector<std::string> tail = {line_count, rate, eta};

  auto build = [&](int bar_cells) {
    std::string h = head;
    if (bar_cells > 0) {
      size_t filled = static_cast<size_t>(fraction * bar_cells);
      h += " [" + std::string(filled, '#') +
           std::string(static_cast<size_t>(bar_cells) - filled, '.') + "]";
    }
    std::vector<std::string> parts{name, h};
    parts.insert(parts.end(), tail.begin(), tail.end());
    return Join(parts);
  };

  std::string text = build(0);
  if (total > 0) {
    // The bar comes before a label longer than kMinLabel.
    const size_t bar_overhead = 3;  // " [" and "]"
    const std::string whole_name = name;
    const size_t need = text.size() + bar_overhead + kMinBar;
    if (need > avail && name.size() > kMinLabel) {
      name = ShortenLabel(label, std::max(kMinLabel, name.size() - (need - avail)));
      text = build(0);
    }
    if (text.size() + bar_overhead + kMinBar <= avail) {
      int cells = static_cast<int>(std::min<size_t>(avail - text.size() - bar_overhead, kMaxBar));
      return build(cells);
    }
    name = whole_name;
    text = build(0);
  }
  if (text.size() <= avail) return text;
  tail.erase(tail.begin() + 1);  // drop the rate
  text = build(0);
  if (text.size() <= avail) return text;
  // Shorten the label to what is left (keeping at least "..." and a few characters).
  size_t without_label = text.size() - name.size();
  if (without_label + 6 <= avail) {
    name = ShortenLabel(label, avail - without_label);
    return build(0);
  }
  text.resize(avail);
  return text;
}

}  // namespace eg::sidecar
