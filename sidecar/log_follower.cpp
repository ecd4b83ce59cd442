// log_follower.cpp - the log follower: checkpoints (text form, atomic file), placing a follower
// from a checkpoint, and reading lines across rotations with inotify.
//
// CONTRACT: see log_follower.h. Everything here is POSIX/Linux (inotify, pread, glob); no
// exceptions are thrown on purpose; every fd is O_CLOEXEC and closed by the destructor.

#include "log_follower.h"

#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <thread>
#include <utility>

namespace eg::sidecar {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr std::chrono::milliseconds kLookEvery{250};
constexpr std::string_view kMagic = "eximguard-checkpoint 1 ";

std::string Errno(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

bool ParseField(std::string_view* text, std::string_view name, uint64_t* value, int base) {
  if (text->substr(0, name.size()) != name) return false;
  text->remove_prefix(name.size());
  const char* end = text->data() + text->size();
  auto [ptr, ec] = std::from_chars(text->data(), end, *value, base);
  if (ec != std::errc() || ptr == text->data()) return false;
  text->remove_prefix(static_cast<size_t>(ptr - text->data()));
  return true;
}

// The candidates for a rotated-away file, in configured order, globs expanded.
std::vector<std::string> ExpandCandidates(const std::string& path,
                                          const std::vector<std::string>& patterns) {
  std::vector<std::string> out;
  for (const std::string& pattern : patterns) {
    std::string p = pattern;
    for (size_t at; (at = p.find("{}")) != std::string::npos;) p.replace(at, 2, path);
    if (p.find_first_of("*?[") == std::string::npos) {
      out.push_back(p);
      continue;
    }
    glob_t g{};
    if (glob(p.c_str(), 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
    }
    globfree(&g);
  }
  return out;
}

}  // namespace

uint64_t LineTailHash(std::string_view line) {
  if (line.size() > kHashTailBytes) line.remove_prefix(line.size() - kHashTailBytes);
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : line) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string FormatCheckpoint(const Checkpoint& cp) {
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "eximguard-checkpoint 1 dev=%" PRIu64 " ino=%" PRIu64 " offset=%" PRIu64
                " hash=%016" PRIx64 "\n",
                cp.dev, cp.ino, cp.offset, cp.last_line_hash);
  return buf;
}

bool ParseCheckpoint(std::string_view text, Checkpoint* out, std::string* error) {
  auto fail = [&](const char* why) {
    if (error) *error = std::string("not a checkpoint: ") + why;
    return false;
  };
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (text.substr(0, kMagic.size()) != kMagic) return fail("missing \"eximguard-checkpoint 1\"");
  text.remove_prefix(kMagic.size());
  Checkpoint cp;
  if (!ParseField(&text, "dev=", &cp.dev, 10)) return fail("bad dev=");
  if (!ParseField(&text, " ino=", &cp.ino, 10)) return fail("bad ino=");
  if (!ParseField(&text, " offset=", &cp.offset, 10)) return fail("bad offset=");
  if (text.size() != 6 + 16) return fail("bad hash=");  // " hash=" and 16 hex digits
  if (!ParseField(&text, " hash=", &cp.last_line_hash, 16)) return fail("bad hash=");
  if (!text.empty()) return fail("trailing bytes");
  if (cp.offset == 0 && cp.last_line_hash != 0) return fail("hash without offset");
  *out = cp;
  return true;
}

bool SaveCheckpoint(const std::string& path, const Checkpoint& cp, std::string* error) {
  const std::string text = FormatCheckpoint(cp);
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (error) *error = Errno("cannot create " + tmp);
    return false;
  }
  size_t done = 0;
  bool ok = true;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (ok && fsync(fd) != 0) ok = false;
  if (!ok && error) *error = Errno("cannot write " + tmp);
  if (close(fd) != 0 && ok) {
    ok = false;
    if (error) *error = Errno("cannot close " + tmp);
  }
  if (ok && rename(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    if (error) *error = Errno("cannot rename to " + path);
  }
  if (!ok) {
    unlink(tmp.c_str());
    return false;
  }
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || fsync(dfd) != 0) {
    if (error) *error = Errno("cannot fsync directory " + dir);
    if (dfd >= 0) close(dfd);
    return false;
  }
  close(dfd);
  return true;
}

LoadResult LoadCheckpoint(const std::string& path, Checkpoint* out, std::string* error) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return LoadResult::kMissing;
    if (error) *error = Errno("cannot open " + path);
    return LoadResult::kIoError;
  }
  char buf[512];
  size_t have = 0;
  for (;;) {
    ssize_t n = read(fd, buf + have, sizeof buf - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (error) *error = Errno("cannot read " + path);
      close(fd);
      return LoadResult::kIoError;
    }
    if (n == 0 || have + static_cast<size_t>(n) == sizeof buf) {
      have += static_cast<size_t>(n);
      break;
    }
    have += static_cast<size_t>(n);
  }
  close(fd);
  std::string why;
  if (have == sizeof buf || !ParseCheckpoint(std::string_view(buf, have), out, &why)) {
    if (error) *error = path + ": " + (have == sizeof buf ? "not a checkpoint: too long" : why);
    return LoadResult::kCorrupt;
  }
  return LoadResult::kOk;
}

const char* OpenNoteName(OpenNote note) {
  switch (note) {
    case OpenNote::kStartedAtBeginning:
      return "started at the beginning";
    case OpenNote::kStartedAtTail:
      return "started near the end";
    case OpenNote::kWaitingForFile:
      return "waiting for the file";
    case OpenNote::kResumed:
      return "resumed";
    case OpenNote::kResumedRotated:
      return "resumed in the rotated file";
    case OpenNote::kTruncated:
      return "file truncated, from the beginning";
    case OpenNote::kReplaced:
      return "file replaced, from the beginning";
    case OpenNote::kRotatedNotFound:
      return "rotated file not found, new file from the beginning";
  }
  return "?";
}

LogFollower::LogFollower(std::string path, FollowerOptions options)
    : path_(std::move(path)), opt_(std::move(options)) {}

LogFollower::~LogFollower() {
  CloseFile();
  if (inotify_ >= 0) close(inotify_);
}

void LogFollower::CloseFile() {
  if (inotify_ >= 0 && file_wd_ >= 0) inotify_rm_watch(inotify_, file_wd_);
  file_wd_ = -1;
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void LogFollower::WatchFile() {
  if (inotify_ < 0 || fd_ < 0) return;
  // Through /proc so the watch is on the inode we hold even if the path moved meanwhile.
  const std::string proc = "/proc/self/fd/" + std::to_string(fd_);
  const uint32_t mask = IN_MODIFY | IN_MOVE_SELF | IN_DELETE_SELF | IN_ATTRIB;
  file_wd_ = inotify_add_watch(inotify_, proc.c_str(), mask);
  if (file_wd_ < 0) file_wd_ = inotify_add_watch(inotify_, path_.c_str(), mask);
}

// Opens the file at the path as the one being read (watch included); no position yet.
bool LogFollower::OpenCurrent() {
  int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return false;
  }
  CloseFile();
  fd_ = fd;
  dev_ = static_cast<uint64_t>(st.st_dev);
  ino_ = static_cast<uint64_t>(st.st_ino);
  WatchFile();
  return true;
}

bool LogFollower::HashAt(int fd, uint64_t offset, uint64_t* hash) const {
  if (offset == 0) {
    *hash = 0;
    return true;
  }
  char buf[kHashTailBytes + 1];
  const size_t want = static_cast<size_t>(std::min<uint64_t>(offset, sizeof buf));
  size_t got = 0;
  while (got < want) {
    ssize_t n = pread(fd, buf + got, want - got, static_cast<off_t>(offset - want + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  std::string_view v(buf, want);
  if (v.back() == '\n') v.remove_suffix(1);
  const size_t nl = v.rfind('\n');
  if (nl != std::string_view::npos) v.remove_prefix(nl + 1);
  *hash = LineTailHash(v);
  return true;
}

void LogFollower::ResetTo(uint64_t offset, bool align_to_line) {
  read_offset_ = offset;
  pending_.clear();
  pending_tail_.clear();
  pending_len_ = 0;
  skip_partial_ = false;
  committed_ = Checkpoint{dev_, ino_, offset, 0};
  if (offset > 0 && fd_ >= 0) {
    HashAt(fd_, offset, &committed_.last_line_hash);
    if (align_to_line) {
      char c = '\n';
      if (pread(fd_, &c, 1, static_cast<off_t>(offset - 1)) == 1 && c != '\n') skip_partial_ = true;
    }
  }
}

void LogFollower::Emit(std::vector<FollowedLine>* out) {
  FollowedLine line;
  line.truncated = pending_len_ > opt_.max_line_bytes;
  committed_ =
      Checkpoint{dev_, ino_, read_offset_, LineTailHash(line.truncated ? pending_tail_ : pending_)};
  line.checkpoint = committed_;
  line.text = std::move(pending_);
  pending_ = std::string();
  pending_tail_.clear();
  pending_len_ = 0;
  out->push_back(std::move(line));
}

// Appends one piece of the current line, keeping at most max_line_bytes of it (and, once it is
// being cut, its last kHashTailBytes bytes for the checkpoint hash).
void LogFollower::AppendPiece(std::string_view piece) {
  const size_t cap = opt_.max_line_bytes;
  const size_t room = cap - std::min(cap, pending_.size());
  const bool was_cut = pending_len_ > cap;
  pending_.append(piece.substr(0, room));
  pending_len_ += piece.size();
  if (pending_len_ <= cap) return;
  if (!was_cut) pending_tail_ = pending_;  // the line so far is pending_ + piece[room:]
  pending_tail_.append(piece.substr(std::min(room, piece.size())));
  if (pending_tail_.size() > kHashTailBytes) {
    pending_tail_.erase(0, pending_tail_.size() - kHashTailBytes);
  }
}

// Reads what the file has beyond read_offset_. Returns true when it reached the end of file
// (false: stopped at max_lines_per_poll or a read error).
bool LogFollower::ReadAvailable(std::vector<FollowedLine>* out, bool* grew) {
  if (fd_ < 0) return true;
  struct stat st;
  if (fstat(fd_, &st) != 0) return false;
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  bool truncated = size < read_offset_;
  if (!truncated && size >= read_offset_ && committed_.offset > 0) {
    uint64_t h = 0;
    // Truncated and refilled up to or past our offset before we looked: the line we stopped
    // after is gone (a refill to exactly our offset shows no growth, only this).
    truncated = HashAt(fd_, committed_.offset, &h) && h != committed_.last_line_hash;
  }
  if (truncated) {
    ++truncations_;
    ResetTo(0, false);
  }
  if (buf_.size() < kReadChunk) buf_.resize(kReadChunk);
  for (;;) {
    if (out->size() >= opt_.max_lines_per_poll) return false;
    ssize_t n = pread(fd_, buf_.data(), buf_.size(), static_cast<off_t>(read_offset_));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    *grew = true;
    std::string_view chunk(buf_.data(), static_cast<size_t>(n));
    while (!chunk.empty() && out->size() < opt_.max_lines_per_poll) {
      const size_t nl = chunk.find('\n');
      const size_t piece = nl == std::string_view::npos ? chunk.size() : nl;
      if (skip_partial_) {
        read_offset_ += piece;
        chunk.remove_prefix(piece);
        if (nl == std::string_view::npos) break;
        read_offset_ += 1;
        chunk.remove_prefix(1);
        skip_partial_ = false;
        committed_.offset = read_offset_;
        HashAt(fd_, read_offset_, &committed_.last_line_hash);
        continue;
      }
      AppendPiece(chunk.substr(0, piece));
      read_offset_ += piece;
      chunk.remove_prefix(piece);
      if (nl == std::string_view::npos) break;
      read_offset_ += 1;
      chunk.remove_prefix(1);
      Emit(out);
    }
  }
}

bool LogFollower::Open(const Checkpoint* cp, std::string* error) {
  if (path_.empty() || opt_.max_line_bytes == 0 || opt_.max_lines_per_poll == 0) {
    if (error) *error = "log follower: empty path, max_line_bytes 0 or max_lines_per_poll 0";
    return false;
  }
  const size_t slash = path_.rfind('/');
  dir_ = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
  inotify_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_ < 0 ||
      inotify_add_watch(inotify_, dir_.c_str(),
                        IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_MOVE_SELF) < 0) {
    message_ = Errno("inotify unavailable, looking every 250 ms");
    if (inotify_ >= 0) close(inotify_);
    inotify_ = -1;
  }

  if (cp == nullptr) {
    if (!OpenCurrent()) {
      note_ = OpenNote::kWaitingForFile;
      return true;
    }
    struct stat st;
    const uint64_t size = fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    const uint64_t start = opt_.start_backlog_bytes >= size ? 0 : size - opt_.start_backlog_bytes;
    note_ = start == 0 ? OpenNote::kStartedAtBeginning : OpenNote::kStartedAtTail;
    ResetTo(start, true);
    return true;
  }

  struct stat ps;
  const bool exists = stat(path_.c_str(), &ps) == 0;
  if (exists && static_cast<uint64_t>(ps.st_dev) == cp->dev &&
      static_cast<uint64_t>(ps.st_ino) == cp->ino && OpenCurrent()) {
    uint64_t h = 0;
    if (static_cast<uint64_t>(ps.st_size) < cp->offset) {
      note_ = OpenNote::kTruncated;
      ResetTo(0, false);
    } else if (!HashAt(fd_, cp->offset, &h) || h != cp->last_line_hash) {
      note_ = OpenNote::kReplaced;
      message_ = "the line at the checkpoint differs: file replaced in place, read from 0";
      ResetTo(0, false);
    } else {
      note_ = OpenNote::kResumed;
      ResetTo(cp->offset, false);
    }
    return true;
  }

  for (const std::string& cand : ExpandCandidates(path_, opt_.rotated_candidates)) {
    struct stat cs;
    if (stat(cand.c_str(), &cs) != 0 || static_cast<uint64_t>(cs.st_dev) != cp->dev ||
        static_cast<uint64_t>(cs.st_ino) != cp->ino) {
      continue;
    }
    int fd = open(cand.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    uint64_t h = 0;
    if (static_cast<uint64_t>(cs.st_size) < cp->offset || !HashAt(fd, cp->offset, &h) ||
        h != cp->last_line_hash) {
      close(fd);
      message_ = cand + " has the checkpoint's identity but not its line; skipped";
      break;
    }
    fd_ = fd;
    dev_ = cp->dev;
    ino_ = cp->ino;
    WatchFile();
    ResetTo(cp->offset, false);
    note_ = OpenNote::kResumedRotated;
    message_ = "finishing " + cand + " from offset " + std::to_string(cp->offset);
    draining_ = true;
    new_seen_ = exists;
    quiet_since_ = std::chrono::steady_clock::now() - opt_.rotate_quiet;
    return true;
  }
  note_ = OpenNote::kRotatedNotFound;
  if (message_.empty()) {
    message_ =
        "the checkpoint's file is gone: lines written after the checkpoint and before "
        "the rotation are lost";
  }
  if (OpenCurrent()) ResetTo(0, false);
  return true;
}

void LogFollower::Step(std::vector<FollowedLine>* out) {
  using Clock = std::chrono::steady_clock;
  if (fd_ < 0) {
    if (!OpenCurrent()) return;
    ResetTo(0, false);
  }
  bool grew = false;
  const bool at_end = ReadAvailable(out, &grew);
  if (!at_end) return;

  struct stat ps;
  const bool exists = stat(path_.c_str(), &ps) == 0;
  const bool same = exists && static_cast<uint64_t>(ps.st_dev) == dev_ &&
                    static_cast<uint64_t>(ps.st_ino) == ino_;
  const auto now = Clock::now();
  if (same) {
    draining_ = false;
    return;
  }
  if (!draining_) {
    draining_ = true;
    new_seen_ = exists;
    quiet_since_ = now;
    return;
  }
  if (exists && !new_seen_) {
    new_seen_ = true;
    quiet_since_ = now;
  }
  if (grew) quiet_since_ = std::max(quiet_since_, now);
  if (!new_seen_ || now - quiet_since_ < opt_.rotate_quiet) return;
  if (!pending_.empty() || pending_len_ > 0) Emit(out);  // the old file's unterminated end
  draining_ = false;
  new_seen_ = false;
  ++rotations_;
  if (OpenCurrent()) {
    ResetTo(0, false);
    ReadAvailable(out, &grew);
  } else {
    CloseFile();
  }
}

void LogFollower::WaitForEvents(std::chrono::milliseconds wait) {
  if (wait > kLookEvery) wait = kLookEvery;
  if (wait.count() <= 0) wait = std::chrono::milliseconds(1);
  if (inotify_ < 0) {
    std::this_thread::sleep_for(wait);
    return;
  }
  pollfd p{inotify_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(wait.count())) <= 0) return;
  alignas(inotify_event) char events[4096];
  while (read(inotify_, events, sizeof events) > 0) {
  }
}

std::vector<FollowedLine> LogFollower::Poll(std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  std::vector<FollowedLine> out;
  for (;;) {
    Step(&out);
    const auto now = Clock::now();
    if (!out.empty() || now >= deadline) return out;
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (draining_ && new_seen_) {
      auto until_switch = std::chrono::duration_cast<std::chrono::milliseconds>(
                              quiet_since_ + opt_.rotate_quiet - now) +
                          std::chrono::milliseconds(1);
      wait = std::min(wait, until_switch);
    }
    WaitForEvents(wait);
  }
}

}  // namespace eg::sidecar
