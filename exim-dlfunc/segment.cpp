// segment.cpp - see segment.h.

#include "segment.h"

#include <grp.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/interprocess/shared_memory_object.hpp>
#include <ctime>

namespace eg {
namespace bip = boost::interprocess;

namespace {

std::unique_ptr<Segment> Map(bip::shared_memory_object& shm, const std::string& name,
                             std::string* error) {
  auto seg = std::make_unique<Segment>();
  seg->region = bip::mapped_region(shm, bip::read_write);
  if (const char* why = Bind(seg->region.get_address(), seg->region.get_size(), &seg->table)) {
    *error = "shared memory " + name + ": " + why;
    return nullptr;
  }
  return seg;
}

bool Enforce(bip::shared_memory_object& shm, const SegmentSpec& spec, std::string* error) {
  const int fd = shm.get_mapping_handle().handle;
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
    bip::shared_memory_object shm(bip::open_only, name.c_str(), bip::read_write);
    return Map(shm, name, error);
  } catch (const bip::interprocess_exception& e) {
    *error = "cannot open shared memory " + name + ": " + e.what();
    return nullptr;
  }
}

bool RemoveSegment(const std::string& name) {
  std::string ignored;
  if (auto old = OpenSegment(name, &ignored)) {
    old->table.header->retired.store(1, std::memory_order_release);
  }
  return bip::shared_memory_object::remove(name.c_str());
}

namespace {

std::unique_ptr<Segment> CreateOrReplace(const SegmentSpec& spec, SegmentOutcome* outcome,
                                         std::string* error, bool may_replace) {
  try {
    {
      std::string why;
      bip::shared_memory_object shm(bip::open_or_create, spec.name.c_str(), bip::read_write,
                                    bip::permissions(spec.mode));
      bip::offset_t size = 0;
      shm.get_size(size);
      if (size > 0) {
        auto seg = Map(shm, spec.name, &why);
        if (seg && seg->table.header->capacity == spec.capacity &&
            seg->table.header->policy_capacity == spec.policy_capacity) {
          if (!Enforce(shm, spec, error)) return nullptr;
          *outcome = SegmentOutcome::kReused;
          return seg;
        }
      } else {
        // We created an empty object just now: size and format it below, in place.
        const uint64_t bytes = SegmentBytes(spec.capacity, spec.policy_capacity);
        if (!Enforce(shm, spec, error)) return nullptr;
        shm.truncate(static_cast<bip::offset_t>(bytes));
        auto seg = std::make_unique<Segment>();
        seg->region = bip::mapped_region(shm, bip::read_write);
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
    }
    // An incompatible (or foreign) object holds the name: retire it and start over.
    if (!may_replace) {
      *error = "shared memory " + spec.name + " exists and cannot be replaced";
      return nullptr;
    }
    RemoveSegment(spec.name);
    return CreateOrReplace(spec, outcome, error, false);
  } catch (const bip::interprocess_exception& e) {
    *error = "cannot create shared memory " + spec.name + ": " + e.what();
    return nullptr;
  }
}

}  // namespace

std::unique_ptr<Segment> CreateSegment(const SegmentSpec& spec, SegmentOutcome* outcome,
                                       std::string* error) {
  if (!ValidSegmentName(spec.name)) {
    *error = "invalid shared memory name '" + spec.name + "' (config key shm_name)";
    return nullptr;
  }
  return CreateOrReplace(spec, outcome, error, true);
}

}  // namespace eg
