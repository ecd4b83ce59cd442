// segment.cpp - see segment.h.

#include "segment.h"

#include <grp.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/interprocess/shared_memory_object.hpp>
#include <chrono>
#include <ctime>
#include <thread>

namespace eg {
namespace bip = boost::interprocess;

namespace {

int Fd(const bip::shared_memory_object& shm) {
  return shm.get_mapping_handle().handle;
}

// Empty if the object is ours to trust: owned by root or by us, no access for others.
std::string Untrusted(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return "cannot stat it";
  if (st.st_uid != 0 && st.st_uid != geteuid()) {
    return "it is owned by uid " + std::to_string(st.st_uid) + ", not root";
  }
  if ((st.st_mode & 0007) != 0) return "others may access it";
  return "";
}

bool Map(Segment& seg, const std::string& name, std::string* error) {
  seg.region = bip::mapped_region(seg.shm, bip::read_write);
  if (const char* why = Bind(seg.region.get_address(), seg.region.get_size(), &seg.table)) {
    *error = "shared memory " + name + ": " + why;
    return false;
  }
  return true;
}

bool Enforce(int fd, const SegmentSpec& spec, std::string* error) {
  gid_t gid = static_cast<gid_t>(-1);
  if (!spec.group.empty()) {
    const struct group* g = getgrnam(spec.group.c_str());
    if (g == nullptr) {
      *error = "group '" + spec.group + "' does not exist (config key exim_group)";
      return false;
    }
    gid = g->gr_gid;
  }
  if (fchown(fd, static_cast<uid_t>(-1), gid) != 0 || fchmod(fd, spec.mode) != 0) {
    *error = "cannot set owner group/mode of shared memory " + spec.name;
    return false;
  }
  return true;
}

bool Lock(int fd, const std::string& name, std::string* error) {
  for (int i = 0; i < 100; ++i) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  *error = "shared memory " + name + " is locked by another eximguard for over 10 s";
  return false;
}

std::unique_ptr<Segment> CreateOrReplace(const SegmentSpec& spec, SegmentOutcome* outcome,
                                         std::string* error, bool may_replace) {
  try {
    auto seg = std::make_unique<Segment>();
    seg->shm = bip::shared_memory_object(bip::open_or_create, spec.name.c_str(), bip::read_write,
                                         bip::permissions(spec.mode & 0770));
    const int fd = Fd(seg->shm);
    // Trust first: an object somebody else made is never locked (they could hold the lock).
    const std::string distrust = Untrusted(fd);
    if (distrust.empty() && !Lock(fd, spec.name, error)) return nullptr;
    bip::offset_t size = 0;
    seg->shm.get_size(size);
    if (distrust.empty() && size > 0) {
      std::string why;
      if (Map(*seg, spec.name, &why) && seg->table.header->capacity == spec.capacity &&
          seg->table.header->policy_capacity == spec.policy_capacity) {
        if (!Enforce(fd, spec, error)) return nullptr;
        *outcome = SegmentOutcome::kReused;
        return seg;
      }
    } else if (distrust.empty()) {
      // An empty object (we just created it): size and format it in place. ftruncate gives
      // zero pages, which is what an empty table is, so only the header is written.
      if (!Enforce(fd, spec, error)) return nullptr;
      seg->shm.truncate(
          static_cast<bip::offset_t>(SegmentBytes(spec.capacity, spec.policy_capacity)));
      seg->region = bip::mapped_region(seg->shm, bip::read_write);
      uint64_t seed[2];
      if (getrandom(seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) {
        *error = "cannot read random bytes for the hash seed";
        return nullptr;
      }
      if (const char* e =
              Format(seg->region.get_address(), seg->region.get_size(), spec.capacity,
                     spec.policy_capacity, seed, static_cast<uint64_t>(std::time(nullptr)))) {
        *error = std::string("config: ") + e;
        return nullptr;
      }
      if (const char* e = Bind(seg->region.get_address(), seg->region.get_size(), &seg->table)) {
        *error = e;
        return nullptr;
      }
      *outcome = may_replace ? SegmentOutcome::kCreated : SegmentOutcome::kReplaced;
      return seg;
    }
    // An untrusted, incompatible or foreign object holds the name: retire it, start over.
    if (!may_replace) {
      *error = "shared memory " + spec.name + " exists and cannot be replaced" +
               (distrust.empty() ? "" : " (" + distrust + ")");
      return nullptr;
    }
    if (distrust.empty()) seg->table.header->retired.store(1, std::memory_order_release);
    seg.reset();
    bip::shared_memory_object::remove(spec.name.c_str());
    return CreateOrReplace(spec, outcome, error, false);
  } catch (const bip::interprocess_exception& e) {
    *error = "cannot create shared memory " + spec.name + ": " + e.what();
    return nullptr;
  }
}

}  // namespace

bool ValidSegmentName(const std::string& name) {
  if (name.size() < 2 || name.size() > 201 || name[0] != '/') return false;
  for (size_t i = 1; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return name != "/." && name != "/..";
}

std::unique_ptr<Segment> OpenSegment(const std::string& name, std::string* error) {
  if (!ValidSegmentName(name)) {
    *error = "invalid shared memory name '" + name + "'";
    return nullptr;
  }
  try {
    auto seg = std::make_unique<Segment>();
    bip::shared_memory_object shm(bip::open_only, name.c_str(), bip::read_write);
    const std::string distrust = Untrusted(Fd(shm));
    if (!distrust.empty()) {
      *error = "shared memory " + name + " is not trusted: " + distrust;
      return nullptr;
    }
    seg->shm.swap(shm);
    if (!Map(*seg, name, error)) return nullptr;
    seg->shm = bip::shared_memory_object();  // the mapping stays; the descriptor is not needed
    return seg;
  } catch (const bip::interprocess_exception& e) {
    *error = "cannot open shared memory " + name + ": " + e.what();
    return nullptr;
  }
}

void UnlockSegment(Segment& seg) {
  // Explicitly: the mapping keeps the open file description, and with it the lock, alive.
  if (seg.shm.get_mapping_handle().handle >= 0) flock(Fd(seg.shm), LOCK_UN);
  seg.shm = bip::shared_memory_object();
}

bool RemoveSegment(const std::string& name) {
  std::string ignored;
  if (auto old = OpenSegment(name, &ignored)) {
    old->table.header->retired.store(1, std::memory_order_release);
  }
  return bip::shared_memory_object::remove(name.c_str());
}

std::unique_ptr<Segment> CreateSegment(const SegmentSpec& spec, SegmentOutcome* outcome,
                                       std::string* error) {
  if (!ValidSegmentName(spec.name)) {
    *error = "invalid shared memory name '" + spec.name + "' (config key shm_name)";
    return nullptr;
  }
  return CreateOrReplace(spec, outcome, error, true);
}

}  // namespace eg
