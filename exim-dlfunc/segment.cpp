// segment.cpp - see segment.h (why a new table is built under a random name and swapped in).

#include "segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <thread>

namespace eg {

namespace {

constexpr int kOpenFlags = O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
constexpr int kAttempts = 8;  // rounds of look-and-swap before giving up (only a racing peer)

std::string PathOf(const std::string& name) {
  return std::string(kShmDirectory) + name;
}

std::string ErrnoText(int e) {
  return std::strerror(e);
}

// Empty if the object is ours to trust: a regular file owned by root or by us, no access for
// others.
std::string Untrusted(const struct stat& st) {
  if (S_ISLNK(st.st_mode)) return "it is a symbolic link";
  if (S_ISDIR(st.st_mode)) return "it is a directory";
  if (!S_ISREG(st.st_mode)) return "it is not a regular file";
  if (st.st_uid != 0 && st.st_uid != geteuid()) {
    return "it is owned by uid " + std::to_string(st.st_uid) + ", not root";
  }
  if ((st.st_mode & 0007) != 0) return "others may access it";
  return "";
}

std::string UntrustedFd(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return "cannot stat it";
  return Untrusted(st);
}

// Maps fd whole (its current size) into seg and binds the table. False with *why set.
bool MapFd(Segment& seg, int fd, std::string* why) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size <= 0) {
    *why = "it is empty";
    return false;
  }
  void* base =
      mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    *why = "cannot map it: " + ErrnoText(errno);
    return false;
  }
  seg.base = base;
  seg.size = static_cast<uint64_t>(st.st_size);
  if (const char* e = Bind(seg.base, seg.size, &seg.table)) {
    *why = e;
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
  if (fchown(fd, static_cast<uid_t>(-1), gid) != 0 || fchmod(fd, spec.mode & 0770) != 0) {
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

// A new, formatted, locked table under a random name nobody else can have made. *tmp_path is
// its path; nullptr with *error set on failure (nothing is left behind).
std::unique_ptr<Segment> Build(const SegmentSpec& spec, std::string* tmp_path, std::string* error) {
  uint64_t rnd[3];
  if (getrandom(rnd, sizeof rnd, 0) != static_cast<ssize_t>(sizeof rnd)) {
    *error = "cannot read random bytes for the hash seed";
    return nullptr;
  }
  char hex[17];
  snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(rnd[2]));
  *tmp_path = std::string(kShmDirectory) + "/.eximguard-new-" + hex;
  auto seg = std::make_unique<Segment>();
  seg->fd = open(tmp_path->c_str(), kOpenFlags | O_CREAT | O_EXCL, 0600);
  if (seg->fd < 0) {
    *error = "cannot create shared memory " + *tmp_path + ": " + ErrnoText(errno);
    return nullptr;
  }
  const uint64_t bytes = SegmentBytes(spec.capacity, spec.policy_capacity);
  bool ok = Enforce(seg->fd, spec, error);
  if (ok && (flock(seg->fd, LOCK_EX | LOCK_NB) != 0 ||
             ftruncate(seg->fd, static_cast<off_t>(bytes)) != 0)) {
    *error = "cannot size shared memory " + *tmp_path + ": " + ErrnoText(errno);
    ok = false;
  }
  if (ok) {
    // ftruncate gives zero pages, which is what an empty table is: only the header is written.
    void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, seg->fd, 0);
    if (base == MAP_FAILED) {
      *error = "cannot map shared memory " + *tmp_path + ": " + ErrnoText(errno);
      ok = false;
    } else {
      seg->base = base;
      seg->size = bytes;
    }
  }
  if (ok) {
    if (const char* e = Format(seg->base, seg->size, spec.capacity, spec.policy_capacity, rnd,
                               static_cast<uint64_t>(std::time(nullptr)))) {
      *error = std::string("config: ") + e;
      ok = false;
    } else if (const char* b = Bind(seg->base, seg->size, &seg->table)) {
      *error = b;
      ok = false;
    }
  }
  if (!ok) {
    unlink(tmp_path->c_str());
    return nullptr;
  }
  return seg;
}

// Removes what was swapped out of the public name (now at `path`). Returns a description.
std::string Discard(const std::string& path, const struct stat& st) {
  const int r = S_ISDIR(st.st_mode) ? rmdir(path.c_str()) : unlink(path.c_str());
  if (r == 0) return "removed";
  return "moved to " + path + " (cannot remove it: " + ErrnoText(errno) + ")";
}

// Removes what a sidecar killed while building left behind: our own regular files under the
// temporary prefix that are older than ten minutes (a table is built in well under a second).
void RemoveStaleBuilds() {
  DIR* dir = opendir(kShmDirectory);
  if (dir == nullptr) return;
  const time_t cutoff = std::time(nullptr) - 600;
  while (const struct dirent* e = readdir(dir)) {
    if (std::strncmp(e->d_name, ".eximguard-new-", 15) != 0) continue;
    const std::string path = std::string(kShmDirectory) + "/" + e->d_name;
    struct stat st {};
    if (lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
        st.st_mtime < cutoff) {
      unlink(path.c_str());
    }
  }
  closedir(dir);
}

bool SameObject(const std::string& path, int fd) {
  struct stat a {
  }, b{};
  return lstat(path.c_str(), &a) == 0 && fstat(fd, &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

}  // namespace

Segment::~Segment() {
  if (base != nullptr) munmap(base, size);
  if (fd >= 0) close(fd);
}

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
  const int fd = open(PathOf(name).c_str(), kOpenFlags);
  if (fd < 0) {
    const int e = errno;
    if (e == ELOOP || e == EISDIR) {  // a symlink or a directory holds the name
      *error = "shared memory " + name + " is not trusted: it is " +
               (e == ELOOP ? "a symbolic link" : "a directory");
    } else {
      *error = "cannot open shared memory " + name + ": " + ErrnoText(e);
    }
    return nullptr;
  }
  auto seg = std::make_unique<Segment>();
  seg->fd = fd;  // closed with seg on every path; the mapping outlives it
  const std::string distrust = UntrustedFd(fd);
  if (!distrust.empty()) {
    *error = "shared memory " + name + " is not trusted: " + distrust;
    return nullptr;
  }
  std::string why;
  if (!MapFd(*seg, fd, &why)) {
    *error = "shared memory " + name + ": " + why;
    return nullptr;
  }
  close(seg->fd);
  seg->fd = -1;
  return seg;
}

void UnlockSegment(Segment& seg) {
  // Explicitly: the mapping keeps the open file description, and with it the lock, alive.
  if (seg.fd >= 0) {
    flock(seg.fd, LOCK_UN);
    close(seg.fd);
    seg.fd = -1;
  }
}

bool RemoveSegment(const std::string& name) {
  if (!ValidSegmentName(name)) return false;
  std::string ignored;
  if (auto old = OpenSegment(name, &ignored)) {
    old->table.header->retired.store(1, std::memory_order_release);
  }
  return unlink(PathOf(name).c_str()) == 0;
}

std::unique_ptr<Segment> CreateSegment(const SegmentSpec& spec, SegmentOutcome* outcome,
                                       std::string* error) {
  if (!ValidSegmentName(spec.name)) {
    *error = "invalid shared memory name '" + spec.name + "' (config key shm_name)";
    return nullptr;
  }
  const std::string path = PathOf(spec.name);
  RemoveStaleBuilds();
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    // 1. What holds the name now? Never created here, never followed.
    std::unique_ptr<Segment> old;
    std::string foreign;  // why what holds the name is not ours ("" if ours or nothing)
    struct stat st {};
    const bool exists = lstat(path.c_str(), &st) == 0;
    if (!exists && errno != ENOENT) {
      *error = "cannot look at shared memory " + path + ": " + ErrnoText(errno);
      return nullptr;
    }
    if (exists) foreign = Untrusted(st);
    if (exists && foreign.empty()) {
      const int fd = open(path.c_str(), kOpenFlags);
      if (fd < 0) continue;  // it went away or changed meanwhile: look again
      old = std::make_unique<Segment>();
      old->fd = fd;
      foreign = UntrustedFd(fd);
      if (foreign.empty()) {
        // Trust first, then lock: an object somebody else made is never locked (they could
        // hold the lock forever).
        if (!Lock(fd, spec.name, error)) return nullptr;
        if (!SameObject(path, fd)) continue;  // another eximguard replaced it while we waited
        std::string why;
        if (MapFd(*old, fd, &why) && old->table.header->capacity == spec.capacity &&
            old->table.header->policy_capacity == spec.policy_capacity &&
            old->table.header->retired.load(std::memory_order_acquire) == 0) {
          if (!Enforce(fd, spec, error)) return nullptr;
          *outcome = SegmentOutcome::kReused;
          return old;
        }
        // Ours but incompatible (size, layout, garbage): replaced below, retired after.
      } else {
        fstat(fd, &st);
        old.reset();
      }
    }

    // 2. A fresh table under a random name, then one atomic move onto the public name.
    std::string tmp;
    auto fresh = Build(spec, &tmp, error);
    if (!fresh) return nullptr;
    if (!exists) {
      if (renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0) {
        *outcome = SegmentOutcome::kCreated;
        return fresh;
      }
      const int e = errno;
      unlink(tmp.c_str());
      if (e == EEXIST) continue;  // somebody took the name meanwhile: look at it
      *error = "cannot create shared memory " + path + ": " + ErrnoText(e);
      return nullptr;
    }
    if (renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_EXCHANGE) != 0) {
      const int e = errno;
      unlink(tmp.c_str());
      if (e == ENOENT) continue;  // it went away meanwhile
      *error = "cannot replace shared memory " + path +
               (foreign.empty() ? "" : " (" + foreign + ")") + ": " + ErrnoText(e);
      return nullptr;
    }
    // The old object now sits at `tmp`; the name holds the fresh table. Tell the processes
    // attached to it, whatever its layout version: magic and `retired` keep their offsets.
    if (old && old->base != nullptr && old->size >= kHeaderBytes) {
      auto* h = static_cast<Header*>(old->base);
      if (std::atomic_ref<uint64_t>(h->magic).load(std::memory_order_acquire) == kMagic) {
        h->retired.store(1, std::memory_order_release);
      }
    }
    struct stat gone {};
    if (lstat(tmp.c_str(), &gone) != 0) gone = st;
    const std::string what = Discard(tmp, gone);
    if (!foreign.empty()) {
      fresh->notice = "SQUATTED: " + path + " was held by an object eximguard did not make (" +
                      foreign + ", owner uid " + std::to_string(gone.st_uid) + "); " + what +
                      " and a new table put in its place. Look for a local user or job that " +
                      "creates it.";
    }
    *outcome = SegmentOutcome::kReplaced;
    return fresh;
  }
  *error = "shared memory " + path + " kept changing under eximguard; giving up";
  return nullptr;
}

}  // namespace eg
