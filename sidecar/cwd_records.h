// cwd_records.h - keeps Exim's multi-line "cwd=" records of one log stream out of the
// detectors, and tells when a directory name forged log lines.
//
// SUMMARY
//   CwdRecords records;                      // one per log stream (Exim mainlog)
//   for each line:  ParseEximLine(line, &ev);
//                   std::optional<ForgeryAlert> alert;
//                   const bool skip = records.Swallow(ev, line, &alert);
//                   if (alert) ...log, count, notify...;
//                   if (!skip) ...feed ev to the detectors...;
//
// WHY
//   Under log_selector +arguments, exim.c writes "cwd=" + $initial_cwd with "%s", unescaped,
//   then " N args:" and the arguments (string_printing()ed, so they hold no newline). A
//   directory whose name holds "\n" therefore splits that one record into several physical
//   lines, and the lines after the first are whatever the directory's owner wrote: complete
//   fake "<=" lines of other accounts included. Exim writes the record with one write() and
//   its log buffer holds at most 8 KiB (LOG_BUFFER_SIZE; a longer record becomes "**** log
//   string overflowed log buffer ****"), so a genuine record is short and contiguous.
//
// CONTRACT
//   - A cwd= line without a fitting " N args:" tail (LogEvent kCwdArgs with
//     counted_as_unknown; FindArgsTail in log_line.h) opens a record; it and the physical lines
//     after it, up to and including the first whose text ends with a fitting tail, are one
//     record: Swallow() returns true for each of them and none may be read as an event.
//   - The bound: a record holds at most Limits::max_lines lines and max_bytes bytes (newlines
//     counted). A line that would pass either is not swallowed: the record closes without its
//     tail and that line and the rest are read normally. Defaults: 64 KiB and 8192 lines, far
//     above the 8 KiB Exim can write, so a genuine record always ends at its tail.
//   - Every closed record gives exactly one ForgeryAlert (through *alert_out, on the call that
//     closes it: the tail line, or the line past the bound); an open record gives none until it
//     closes. Syslog fragments (LogEvent::fragment) never open a record: Exim's syslog writer
//     splits at newlines itself and marks the pieces.
//   - Not caught: a directory whose FIRST line already ends in a fitting tail ("/x 1 args: y",
//     a newline, fake lines, ...) looks like a complete record there, and the lines after it are
//     read as lines; likewise a fake tail on a middle line closes the record early. Only a
//     look-ahead over the rest of Exim's write could tell. The guard's own
//     count ($initial_cwd inside Exim) is the trusted one, and log lines never punish alone.
//   - Callers: Engine (one per LogSource), tests, the fuzzer. Standard library only (the fuzz
//     build compiles it alone). Not thread-safe: one instance per thread and stream. Never
//     throws but std::bad_alloc (the alert's short string).

#ifndef EXIMGUARD_SIDECAR_CWD_RECORDS_H_
#define EXIMGUARD_SIDECAR_CWD_RECORDS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "log_line.h"

namespace eg::sidecar {

struct ForgeryAlert {
  uint32_t pid = 0;         // the cwd= line's [pid] (0 when the log has none)
  int64_t time = 0;         // the cwd= line's time (Exim's own, unix seconds)
  uint32_t lines = 0;       // physical lines the record swallowed, the cwd= line included
  uint64_t bytes = 0;       // their bytes, a newline each included
  bool bounded = false;     // closed by the bound, not by its tail
  std::string cwd_preview;  // the directory's first bytes, escaped for display (EscapeForDisplay)
};

// At most `max` bytes of `raw` with every byte outside printable ASCII (and '\') shown as
// \n \r \t \\ or \xHH; "..." appended when cut.
std::string EscapeForDisplay(std::string_view raw, size_t max);

class CwdRecords {
 public:
  struct Limits {
    uint32_t max_lines = 8192;
    uint64_t max_bytes = 64 * 1024;
  };
  static constexpr size_t kPreviewBytes = 96;  // of the directory, before escaping

  CwdRecords() = default;
  explicit CwdRecords(Limits limits) : limits_(limits) {}

  // `parsed` is the parse of `raw_line` (a trailing "\n" / "\r\n" is ignored). True: the line
  // belongs to an open multi-line record and must not be used as an event. *alert_out is set
  // when this call closes a record (and left alone otherwise).
  bool Swallow(const LogEvent& parsed, std::string_view raw_line,
               std::optional<ForgeryAlert>* alert_out);

  bool open() const { return open_; }
  uint64_t swallowed_lines() const { return swallowed_; }  // over the object's life

 private:
  void Close(bool bounded, std::optional<ForgeryAlert>* alert_out);

  Limits limits_;
  bool open_ = false;
  ForgeryAlert current_;
  std::string preview_raw_;  // the directory's first bytes, raw, newlines included
  uint64_t swallowed_ = 0;
};

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_CWD_RECORDS_H_
