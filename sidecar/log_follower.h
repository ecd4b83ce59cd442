// log_follower.h - follows one log file (Exim's mainlog, Dovecot's log) by path with inotify and
// hands out its complete lines, across rename- and copytruncate-rotation, with a durable
// checkpoint so a restart neither loses nor repeats a line.
//
// SUMMARY
//   Checkpoint cp;
//   std::string err;
//   bool have = LoadCheckpoint(cp_file, &cp, &err) == LoadResult::kOk;   // else log err
//   LogFollower f("/var/log/exim/mainlog");
//   if (!f.Open(have ? &cp : nullptr, &err)) ...;                       // f.open_note() says how
//   for (;;) {
//     for (const FollowedLine& l : f.Poll(std::chrono::milliseconds(500))) {
//       Process(l.text);                       // e.g. ParseLine(l.text, &ev) (log_line.h)
//       SaveCheckpoint(cp_file, l.checkpoint, &err);   // or once per batch: f.checkpoint()
//     }
//   }
//
// CONTRACT
//   - Callers: the sidecar daemon (`start`) and cron mode (`run`), one LogFollower per followed
//     log; tests. The line parser (log_line.h) consumes the lines; this file never parses them.
//   - Owns: one fd on the file being read, one inotify fd (watches on the file and on its
//     directory), a read buffer and at most one partial line (capped at max_line_bytes). It
//     does not own the checkpoint store: the caller saves the checkpoint AFTER it has processed
//     the lines it covers. Saving before processing risks losing lines on a crash; saving
//     after risks repeating the lines processed since the last save (kill -9 between processing
//     and saving). Saving each line's `checkpoint` right after processing it repeats nothing
//     and loses nothing, except a line whose processing was itself interrupted.
//   - Lines: the bytes between two '\n', without the '\n' (a "\r" before it is kept: the parser
//     ignores it). A partial last line is held back until its '\n' arrives, except at the end
//     of a rotated-away file, which is finished with whatever it ends with. A line longer than
//     max_line_bytes is handed out cut to that length with `truncated` set; the rest of it is
//     skipped without being stored.
//   - Rename rotation (logrotate's default, Exim's own): when the path names another file (or
//     none), the old file is read through its still-open fd until a new file exists at the path
//     AND the old file has not grown for `rotate_quiet` (a writer that still has the old file
//     open keeps writing to it for a moment); then the new file is read from offset 0. Lines
//     written to the old file after that are not seen (documented limit: Exim reopens its log
//     on the next write after the rename, so in practice there are none).
//   - Copytruncate: the file's size falls below the read offset, or the line ending at the
//     checkpoint no longer hashes the same (truncated and refilled past the offset before we
//     looked): read again from offset 0. A partial line held back is dropped (its bytes are
//     gone).
//   - Open() with a checkpoint: same identity, size >= offset and the line ending at offset
//     hashes equal -> resume there (kResumed). Same identity but shorter -> offset 0
//     (kTruncated). Same identity, hash differs -> offset 0 (kReplaced). Other identity -> the
//     rotated candidates (path.1, path.0, path-[0-9]* by default) are searched for the
//     checkpoint's identity: found and the hash matches -> its rest first, then the new file
//     from 0 (kResumedRotated); not found -> the new file from 0 (kRotatedNotFound: whatever was
//     written between the checkpoint and the rotation is lost, and the note says so).
//   - Open() without a checkpoint (first start, or a checkpoint file LoadCheckpoint() refused):
//     start `start_backlog_bytes` before the end of the current file, at the next line start
//     (kStartedAtTail), or at 0 when the file is smaller than that (kStartedAtBeginning). Why:
//     the beginning of a small file costs little and misses nothing; a daily mainlog can be
//     gigabytes, and re-reading all of it would re-count a day of mail, so a bounded backlog
//     (default 16 MiB, comfortably more than the hour the detectors look back) is read instead.
//     0 means "at the end", UINT64_MAX "always at the beginning".
//   - A missing file is not an error: Open() succeeds (kWaitingForFile) and the file is read
//     from 0 when it appears. Without inotify (per-user limits reached) the follower falls back
//     to looking every 250 ms and says so in open_message(). Read errors (EIO) make Poll()
//     return what it has; the next Poll() tries again. Nothing throws but std::bad_alloc.
//   - Poll(timeout) returns as soon as at least one line is ready, or after `timeout` with none.
//     It hands out at most max_lines_per_poll lines; if more are ready, the next Poll() returns
//     at once. Whatever the events say, each Poll() also looks (fstat/stat) at least every
//     250 ms, so a lost inotify event delays a line, never loses it.
//   - Thread safety: none inside; one LogFollower per thread (or a caller's lock). The free
//     functions are reentrant.

#ifndef EXIMGUARD_SIDECAR_LOG_FOLLOWER_H_
#define EXIMGUARD_SIDECAR_LOG_FOLLOWER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace eg::sidecar {

// Where a follower is: the file (st_dev, st_ino), the offset just past the last complete line
// handed out, and LineTailHash() of that line (0 when offset is 0).
struct Checkpoint {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t offset = 0;
  uint64_t last_line_hash = 0;
  bool operator==(const Checkpoint&) const = default;
};

// The hash a checkpoint keeps: FNV-1a 64 of the last kHashTailBytes bytes of the line (all of
// it when shorter), without its '\n'. Only the tail, so checking it costs one small pread however
// long the line was.
inline constexpr size_t kHashTailBytes = 256;
uint64_t LineTailHash(std::string_view line_without_newline);

// Text form, one line: "eximguard-checkpoint 1 dev=D ino=I offset=O hash=H\n" (decimal, hash
// in 16 hex digits). ParseCheckpoint() accepts exactly that (trailing newline optional).
std::string FormatCheckpoint(const Checkpoint& cp);
bool ParseCheckpoint(std::string_view text, Checkpoint* out, std::string* error);

// SaveCheckpoint writes `path` atomically: a temporary file beside it, fsync, rename over
// `path`, fsync of the directory. A crash leaves the old or the new checkpoint, never a mix.
bool SaveCheckpoint(const std::string& path, const Checkpoint& cp, std::string* error);

enum class LoadResult : uint8_t {
  kOk,
  kMissing,  // no such file: a first start
  kCorrupt,  // the file is not a checkpoint (error says why); start as without one
  kIoError,  // it could not be read
};
LoadResult LoadCheckpoint(const std::string& path, Checkpoint* out, std::string* error);

struct FollowedLine {
  std::string text;        // without the '\n'; at most max_line_bytes
  bool truncated = false;  // the line was longer and was cut
  Checkpoint checkpoint;   // just past this line: save it once the line is processed
};

// How Open() placed the follower (see CONTRACT).
enum class OpenNote : uint8_t {
  kStartedAtBeginning,
  kStartedAtTail,
  kWaitingForFile,  // the path does not exist yet; it is read from 0 when it appears
  kResumed,
  kResumedRotated,
  kTruncated,
  kReplaced,
  kRotatedNotFound,
};
const char* OpenNoteName(OpenNote note);

struct FollowerOptions {
  // Where a rotated-away file may be, for a checkpoint whose file is no longer at the path.
  // "{}" stands for the followed path; '*', '?' and '[' make an entry a glob(3) pattern.
  std::vector<std::string> rotated_candidates = {"{}.1", "{}.0", "{}-[0-9]*"};
  size_t max_line_bytes = size_t{1} << 20;
  size_t max_lines_per_poll = 10000;
  uint64_t start_backlog_bytes = uint64_t{16} << 20;
  std::chrono::milliseconds rotate_quiet{500};
};

class LogFollower {
 public:
  explicit LogFollower(std::string path, FollowerOptions options = {});
  ~LogFollower();
  LogFollower(const LogFollower&) = delete;
  LogFollower& operator=(const LogFollower&) = delete;

  // Places the follower (see CONTRACT). Call once. Returns false only for an unusable
  // configuration (empty path, max_line_bytes 0), with a message.
  bool Open(const Checkpoint* checkpoint, std::string* error);
  OpenNote open_note() const { return note_; }
  const std::string& open_message() const { return message_; }

  // Complete lines appended since the last call, waiting up to `timeout` for the first.
  std::vector<FollowedLine> Poll(std::chrono::milliseconds timeout);

  // Just past the last line handed out (after a switch to a new file: its identity, offset 0).
  Checkpoint checkpoint() const { return committed_; }

  // Counters for `status` and tests.
  uint64_t rotations() const { return rotations_; }
  uint64_t truncations() const { return truncations_; }

 private:
  void Step(std::vector<FollowedLine>* out);
  bool ReadAvailable(std::vector<FollowedLine>* out, bool* grew);
  void AppendPiece(std::string_view piece);
  void Emit(std::vector<FollowedLine>* out);
  bool OpenCurrent();
  void CloseFile();
  void WatchFile();
  void ResetTo(uint64_t offset, bool align_to_line);
  void WaitForEvents(std::chrono::milliseconds wait);
  bool HashAt(int fd, uint64_t offset, uint64_t* hash) const;

  std::string path_;
  std::string dir_;
  FollowerOptions opt_;
  OpenNote note_ = OpenNote::kWaitingForFile;
  std::string message_;

  int fd_ = -1;
  uint64_t dev_ = 0, ino_ = 0;
  int inotify_ = -1;
  int file_wd_ = -1;
  uint64_t read_offset_ = 0;  // bytes of the file consumed into pending_ / lines
  Checkpoint committed_;      // past the last line handed out

  std::string pending_;        // the current partial line (at most max_line_bytes)
  uint64_t pending_len_ = 0;   // its real length (more when it is being cut)
  std::string pending_tail_;   // its last kHashTailBytes bytes when it is being cut
  bool skip_partial_ = false;  // started mid-line (backlog start): skip to the next '\n'
  std::vector<char> buf_;

  // Rename rotation: the path names another file; fd_ is the old one.
  bool draining_ = false;
  bool new_seen_ = false;
  std::chrono::steady_clock::time_point quiet_since_;  // last growth of the old file / new seen

  uint64_t rotations_ = 0;
  uint64_t truncations_ = 0;
};

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_LOG_FOLLOWER_H_
