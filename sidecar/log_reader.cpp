// log_reader.cpp - see log_reader.h.

#include "log_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

namespace eg::sidecar {
namespace {

constexpr size_t kChunk = size_t{1} << 20;

}  // namespace

std::unique_ptr<LogReader> LogReader::Open(const std::string& path, std::string* error) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    *error = path + ": " + std::strerror(errno);
    return nullptr;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *error = path + ": not a regular file";
    close(fd);
    return nullptr;
  }
  gzFile gz = gzdopen(fd, "rb");
  if (gz == nullptr) {
    *error = path + ": cannot open (zlib)";
    close(fd);
    return nullptr;
  }
  gzbuffer(gz, 256 * 1024);
  return std::unique_ptr<LogReader>(new LogReader(path, gz, static_cast<uint64_t>(st.st_size)));
}

LogReader::LogReader(std::string path, void* gz, uint64_t size)
    : path_(std::move(path)), gz_(gz), size_(size) {
  buf_.resize(kChunk * 2);
}

LogReader::~LogReader() {
  gzclose(static_cast<gzFile>(gz_));
}

uint64_t LogReader::bytes_read() const {
  const z_off_t off = gzoffset(static_cast<gzFile>(gz_));
  return off < 0 ? 0 : static_cast<uint64_t>(off);
}

// Moves the unread bytes to the front and reads more. False at the end of the file or on error.
bool LogReader::Fill() {
  if (eof_) return false;
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (buf_.size() - end_ < kChunk) buf_.resize(end_ + kChunk);
  const int n = gzread(static_cast<gzFile>(gz_), buf_.data() + end_,
                       static_cast<unsigned>(buf_.size() - end_));
  if (n < 0) {
    int errnum = 0;
    const char* msg = gzerror(static_cast<gzFile>(gz_), &errnum);
    error_ = path_ + ": " + (errnum == Z_ERRNO ? std::strerror(errno) : msg);
    eof_ = true;
    return false;
  }
  if (n == 0) {
    eof_ = true;
    return false;
  }
  end_ += static_cast<size_t>(n);
  return true;
}

bool LogReader::Next(std::string_view* line) {
  for (;;) {
    const char* start = buf_.data() + begin_;
    const size_t avail = end_ - begin_;
    const void* nl = avail > 0 ? std::memchr(start, '\n', avail) : nullptr;
    if (nl != nullptr) {
      const size_t len = static_cast<size_t>(static_cast<const char*>(nl) - start);
      begin_ += len + 1;
      if (skipping_) {  // the tail of a line already handed out cut
        skipping_ = false;
        continue;
      }
      *line = std::string_view(start, len);
      return true;
    }
    if (!skipping_ && avail >= kMaxLineBytes) {  // too long: hand out the first part
      *line = std::string_view(start, kMaxLineBytes);
      begin_ += avail;
      skipping_ = true;
      ++cut_lines_;
      return true;
    }
    if (skipping_) begin_ = end_;
    if (!Fill()) {
      if (end_ > begin_ && !skipping_) {  // a last line without '\n'
        *line = std::string_view(buf_.data() + begin_, end_ - begin_);
        begin_ = end_;
        return true;
      }
      return false;
    }
  }
}

const char* LogSourceName(LogSource source) {
  switch (source) {
    case LogSource::kExim:
      return "exim mainlog";
    case LogSource::kDovecot:
      return "dovecot log";
    case LogSource::kMixed:
      return "mixed exim+dovecot log";
  }
  return "?";
}

bool SniffLogSource(const std::string& path, LogSource* out, std::string* error) {
  std::unique_ptr<LogReader> r = LogReader::Open(path, error);
  if (!r) return false;
  int exim = 0, dovecot = 0, seen = 0;
  std::string_view line;
  LogEvent ev;
  while (seen < 200 && r->Next(&line)) {
    if (line.empty()) continue;
    ++seen;
    ParseEximLine(line, &ev);
    if (ev.kind != LineKind::kUnknown) {
      ++exim;
      continue;
    }
    ParseDovecotLine(line, &ev);
    if (ev.kind != LineKind::kUnknown) ++dovecot;
  }
  if (!r->error().empty()) {
    *error = r->error();
    return false;
  }
  if (seen == 0) {  // empty: nothing to judge, nothing to misread
    *out = LogSource::kExim;
    return true;
  }
  if (exim == 0 && dovecot == 0) {
    *error = path + ": not an Exim or Dovecot log (none of its first " + std::to_string(seen) +
             " lines is one)";
    return false;
  }
  *out = exim > 0 && dovecot > 0 ? LogSource::kMixed
         : exim > 0              ? LogSource::kExim
                                 : LogSource::kDovecot;
  return true;
}

}  // namespace eg::sidecar
