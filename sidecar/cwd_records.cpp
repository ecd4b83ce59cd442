// cwd_records.cpp - see cwd_records.h.

#include "cwd_records.h"

namespace eg::sidecar {
namespace {

std::string_view TrimEol(std::string_view line) {
  if (line.ends_with('\n')) line.remove_suffix(1);
  if (line.ends_with('\r')) line.remove_suffix(1);
  return line;
}

}  // namespace

std::string EscapeForDisplay(std::string_view raw, size_t max) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  const std::string_view shown = raw.substr(0, max);
  out.reserve(shown.size() + 8);
  for (const char c : shown) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (u < 0x20 || u >= 0x7f) {
          out += "\\x";
          out += kHex[u >> 4];
          out += kHex[u & 15];
        } else {
          out += c;
        }
    }
  }
  if (raw.size() > max) out += "...";
  return out;
}

bool CwdRecords::Swallow(const LogEvent& parsed, std::string_view raw_line,
                         std::optional<ForgeryAlert>* alert_out) {
  const std::string_view line = TrimEol(raw_line);
  const uint64_t bytes = line.size() + 1;
  if (open_) {
    if (current_.lines < limits_.max_lines && current_.bytes + bytes <= limits_.max_bytes) {
      ++current_.lines;
      current_.bytes += bytes;
      ++swallowed_;
      if (preview_raw_.size() < kPreviewBytes) {
        preview_raw_ += '\n';
        preview_raw_.append(line.substr(0, kPreviewBytes - preview_raw_.size()));
      }
      ArgsTail tail;
      if (FindArgsTail(line, &tail)) Close(false, alert_out);
      return true;
    }
    Close(true, alert_out);  // past the bound: this line is read normally, as any other
  }
  if (parsed.kind != LineKind::kCwdArgs || !parsed.counted_as_unknown || parsed.fragment ||
      limits_.max_lines == 0 || bytes > limits_.max_bytes) {
    return false;
  }
  open_ = true;
  current_ = ForgeryAlert{};
  current_.pid = parsed.pid;
  current_.time = parsed.time;
  current_.lines = 1;
  current_.bytes = bytes;
  preview_raw_.assign(parsed.cwd.substr(0, kPreviewBytes));
  ++swallowed_;
  return true;
}

void CwdRecords::Close(bool bounded, std::optional<ForgeryAlert>* alert_out) {
  open_ = false;
  current_.bounded = bounded;
  current_.cwd_preview = EscapeForDisplay(preview_raw_, kPreviewBytes);
  if (alert_out != nullptr) *alert_out = std::move(current_);
  current_ = ForgeryAlert{};
  preview_raw_.clear();
}

}  // namespace eg::sidecar
