// segment.h - creating, opening and removing the shared-memory segment (/dev/shm + mmap).
//
// SUMMARY
//   The sidecar calls CreateSegment(): it opens the POSIX shared-memory object /dev/shm/<name>
//   if it holds a compatible table (same layout version and sizes: counters survive a sidecar
//   restart), else builds a new one and puts it in place (an old table of ours is marked retired:
//   attached processes see Header::retired and re-attach). Either way it enforces the owner group
//   and mode (0660 by default), so the Exim user can attach and nobody else can. eximguard.so and
//   `top` call OpenSegment().
//
// SECURITY (squatting, issue 10 item 6)
//   /dev/shm is world-writable and empty after a reboot, and the name is public, so a local user
//   can take the name first (a file they own, a symlink, a directory, a FIFO). The sidecar must
//   still always get its table, and the guard must never use such an object:
//   - OpenSegment() (the guard, `top`) opens with O_NOFOLLOW and trusts only a regular file owned
//     by root (or the calling user) that others cannot access; anything else is refused (the
//     guard fails open).
//   - CreateSegment() never opens a name with O_CREAT. A new table is built under a fresh random
//     name (/dev/shm/.eximguard-new-<hex>, O_CREAT|O_EXCL|O_NOFOLLOW, so nothing can be there),
//     sized, formatted and locked there, and then moved onto the public name in one atomic step:
//     renameat2(RENAME_NOREPLACE) if the name is free, renameat2(RENAME_EXCHANGE) if anything
//     else holds it (a foreign object, a symlink, a directory, or our own incompatible table).
//     There is no moment at which the name is free for a squatter to race for. The object that
//     was swapped out is then removed (unlink, or rmdir of an empty directory; a non-empty
//     directory is left under the random name rather than walked as root), and Segment::notice
//     says loudly what was found and removed. Temporary files of ours older than ten minutes (a
//     sidecar killed while building) are removed first. Root may rename another user's entry in the sticky
//     /dev/shm (CAP_FOWNER), so only a non-root sidecar can fail here.
//   A process of the Exim group can still write the table or shrink it (the guard would then die
//   of SIGBUS): the Exim user is trusted with mail anyway, and POSIX shared memory cannot be
//   sealed.
//
// ONE WRITER
//   The Segment returned by CreateSegment() holds an exclusive flock(2) on the object until it
//   is destroyed or UnlockSegment() is called; a second CreateSegment() waits up to 10 seconds for
//   it, then fails. So two `eximguard run` never format or publish at the same time.
//
// FAILURE
//   Every function reports failure through *error (a sentence naming the segment and the cause)
//   and never throws. A Segment keeps its mapping until destroyed; destroying it never removes
//   the shared-memory object.
//
// SAFETY
//   Not thread-safe per Segment object; the mapped Table is process-safe (see table.h).

#ifndef EXIMGUARD_SEGMENT_H_
#define EXIMGUARD_SEGMENT_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "table.h"

namespace eg {

struct SegmentSpec {
  std::string name = "/eximguard";
  uint32_t capacity = 65536;         // counter slots (keys), a power of two
  uint32_t policy_capacity = 16384;  // policy entries, a power of two
  std::string group;                 // owner group; empty: leave the creator's group
  mode_t mode = 0660;
};

// Where the POSIX shared-memory names live (glibc's shm_open uses this directory).
constexpr const char* kShmDirectory = "/dev/shm";

struct Segment {
  int fd = -1;  // open (and flock'ed) only for CreateSegment, until UnlockSegment
  void* base = nullptr;
  uint64_t size = 0;  // bytes mapped at base
  Table table;
  std::string notice;  // CreateSegment: what held the name and was removed ("" if nothing)

  Segment() = default;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();  // unmaps and closes (releasing the lock); the object stays
};

enum class SegmentOutcome : uint8_t {
  kCreated,   // there was none: a new table, counters from zero
  kReused,    // a compatible table was there: counters kept
  kReplaced,  // an incompatible table was retired, or a foreign object removed, and a new one
              // made: counters from zero (Segment::notice names a foreign object)
};

// The sidecar's open-or-create; *outcome says which of the three happened.
std::unique_ptr<Segment> CreateSegment(const SegmentSpec& spec, SegmentOutcome* outcome,
                                       std::string* error);

// Gives up the writer's lock of a Segment from CreateSegment (the mapping stays usable).
void UnlockSegment(Segment& seg);

// Attaches to an existing segment, read-write.
std::unique_ptr<Segment> OpenSegment(const std::string& name, std::string* error);

// Marks the segment retired and removes its name. False if there was none.
bool RemoveSegment(const std::string& name);

// A segment name is "/" followed by 1..200 of [A-Za-z0-9._-].
bool ValidSegmentName(const std::string& name);

}  // namespace eg

#endif  // EXIMGUARD_SEGMENT_H_
