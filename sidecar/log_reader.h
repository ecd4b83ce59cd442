// log_reader.h - reads a whole log file, plain or gzip-compressed, line by line, fast: for
// `replay` (any log files) and `rerun` (a day of rotated logs, .gz included).
//
// SUMMARY
//   std::string err;
//   auto r = LogReader::Open("/var/log/exim/mainlog.2.gz", &err);
//   std::string_view line;
//   while (r->Next(&line)) { ... }        // line valid until the next Next()
//   if (!r->error().empty()) ...;         // a read error or a corrupt .gz ended it early
//
//   LogSource src;  SniffLogSource(path, &src, &err) tells an Exim mainlog from a Dovecot log
//   (or a syslog file holding both) by parsing its first lines.
//
// CONTRACT
//   - Callers: the replay/rerun verbs; bench/. Owns one gzFile (zlib reads plain files through
//     the same calls, so a .gz is recognized by its content, not its name) and a buffer.
//   - Lines are the bytes between '\n's, without the '\n'; a last line without one is returned
//     too. A line longer than kMaxLineBytes is returned cut to that length (`cut_lines()` counts
//     them) - the parser copes with any cut line.
//   - bytes_read() is the position in the FILE (compressed bytes for a .gz), for progress bars;
//     size() the file's size.
//   - Never throws but std::bad_alloc. Not thread-safe; one reader per thread.

#ifndef EXIMGUARD_SIDECAR_LOG_READER_H_
#define EXIMGUARD_SIDECAR_LOG_READER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine.h"

namespace eg::sidecar {

inline constexpr size_t kMaxLineBytes = size_t{4} << 20;

class LogReader {
 public:
  static std::unique_ptr<LogReader> Open(const std::string& path, std::string* error);
  ~LogReader();
  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;

  bool Next(std::string_view* line);
  const std::string& path() const { return path_; }
  const std::string& error() const { return error_; }
  uint64_t bytes_read() const;
  uint64_t size() const { return size_; }
  uint64_t cut_lines() const { return cut_lines_; }

 private:
  LogReader(std::string path, void* gz, uint64_t size);
  bool Fill();

  std::string path_;
  void* gz_;  // gzFile
  uint64_t size_;
  std::vector<char> buf_;
  size_t begin_ = 0, end_ = 0;  // unread bytes are buf_[begin_, end_)
  bool eof_ = false;
  bool skipping_ = false;  // inside the rest of a cut line
  uint64_t cut_lines_ = 0;
  std::string error_;
};

// What kind of log a file is, judged by its first (up to 200) non-empty lines: Exim lines only
// -> kExim, Dovecot lines only -> kDovecot, both -> kMixed. False with *error when neither kind
// is recognized in them (or the file cannot be read). An empty file is kExim.
bool SniffLogSource(const std::string& path, LogSource* out, std::string* error);

const char* LogSourceName(LogSource source);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_LOG_READER_H_
