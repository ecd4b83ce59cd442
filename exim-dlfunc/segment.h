// segment.h - creating, opening and removing the shared-memory segment (Boost.Interprocess).
//
// SUMMARY
//   The sidecar calls CreateSegment(): it opens the named POSIX shared-memory object if it holds
//   a compatible table (same layout version and sizes: counters survive a sidecar restart), else
//   retires the old one (attached processes see Header::retired and re-attach) and creates a new
//   one. Either way it enforces the owner group and mode (0660 by default), so the Exim user can
//   attach and nobody else can. eximguard.so and `top` call OpenSegment().
//
// SECURITY
//   /dev/shm is world-writable, so a local user could create the name first. Both calls trust
//   an object only if root (or the calling user) owns it and others have no access; the sidecar
//   replaces an untrusted object, the guard refuses it (and fails open). A process of the Exim
//   group can still write the table or shrink it (the guard would then die of SIGBUS): the Exim
//   user is trusted with mail anyway, and POSIX shared memory cannot be sealed.
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

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
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

struct Segment {
  boost::interprocess::shared_memory_object shm;  // open (and locked) only for CreateSegment
  boost::interprocess::mapped_region region;
  Table table;
};

enum class SegmentOutcome : uint8_t {
  kCreated,   // there was none: a new table, counters from zero
  kReused,    // a compatible table was there: counters kept
  kReplaced,  // an incompatible table was retired and a new one made: counters from zero
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
