// detectors.cpp - the abuse detectors (see detectors.h for the rules, the contract, the memory
// bound and thread safety). Layout: a bucketed sliding window, an LRU map with idle eviction,
// the per-key state, then Detectors::Impl with one handler per event kind.

#include "detectors.h"

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace eg::sidecar {
namespace {

enum Rule : int {
  kRateMinute,
  kRateHour,
  kManyIps,
  kManyLogins,
  kAuthFailures,
  kBounceStorm,
  kRepeatedSubject,
  kRuleCount
};

constexpr const char* kRuleNames[kRuleCount] = {"rate_per_minute", "rate_per_hour", "many_ips",
                                                "many_logins",     "auth_failures", "bounce_storm",
                                                "repeated_subject"};
constexpr const char* kClassNames[kKeyClasses] = {"sender", "cwd", "uid"};

constexpr int64_t kMinuteSpan = 60;
constexpr int64_t kHourSpan = 3600;
constexpr int64_t kNever = std::numeric_limits<int64_t>::min() / 2;
constexpr size_t kMaxIps = 8;
constexpr size_t kMaxSamples = 5;
constexpr size_t kSubjectBytes = 200;

// kWindowBuckets buckets of `width` seconds (the caller passes the same width every time, so it
// is not stored); the sum covers the current bucket and the 12 before it.
class Window {
 public:
  void Add(int64_t t, uint32_t n, int64_t width) {
    if (t < 0 || n == 0) return;
    const int64_t b = t / width;
    Advance(b);
    if (b <= head_ - kWindowBuckets) return;  // older than the window
    buckets_[static_cast<size_t>(b % kWindowBuckets)] += n;
    total_ += n;
  }
  uint64_t Sum(int64_t t, int64_t width) {
    if (t >= 0) Advance(t / width);
    return total_;
  }

 private:
  void Advance(int64_t b) {
    if (head_ < 0) {
      head_ = b;
      return;
    }
    if (b <= head_) return;
    if (b - head_ >= kWindowBuckets) {
      buckets_.fill(0);
      total_ = 0;
    } else {
      for (int64_t i = head_ + 1; i <= b; ++i) {
        uint32_t& slot = buckets_[static_cast<size_t>(i % kWindowBuckets)];
        total_ -= slot;
        slot = 0;
      }
    }
    head_ = b;
  }

  std::array<uint32_t, kWindowBuckets> buckets_{};
  int64_t head_ = -1;
  uint64_t total_ = 0;
};

// A fast non-cryptographic hash of a key: 8 bytes at a time, then MurmurHash3's finalizer.
// `seed` differs per map instance (its address), so crafted keys that collide in one process
// do not collide in the next; no result depends on the hash, only the speed.
inline uint64_t HashKey(std::string_view s, uint64_t seed) {
  constexpr uint64_t kMul = 0x9fb21c651e98df25ULL;
  uint64_t h = seed ^ (s.size() * 0xff51afd7ed558ccdULL);
  const char* p = s.data();
  size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  if (n != 0) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// A string that keeps up to kInline bytes inside itself (message ids, most account names) and
// longer ones in a heap buffer that it keeps for reuse. Saves a pointer chase per key compare
// and an allocation per recycled entry.
class ShortString {
 public:
  static constexpr size_t kInline = 32;
  ShortString() = default;
  ShortString(const ShortString&) = delete;
  ShortString& operator=(const ShortString&) = delete;

  void assign(std::string_view v) {
    if (v.size() > kInline && v.size() > cap_) {
      heap_ = std::make_unique<char[]>(v.size());
      cap_ = v.size();
    }
    len_ = v.size();
    if (len_ != 0) std::memcpy(data(), v.data(), len_);
  }
  void clear() { len_ = 0; }
  std::string_view view() const { return {data(), len_}; }

 private:
  char* data() { return len_ <= kInline ? inline_ : heap_.get(); }
  const char* data() const { return len_ <= kInline ? inline_ : heap_.get(); }

  size_t len_ = 0;
  char inline_[kInline];
  std::unique_ptr<char[]> heap_;
  size_t cap_ = 0;
};

// What a recycled slot may keep of its strings' buffers (see KeyState::Reset()).
constexpr size_t kKeptLineCapacity = 256;
constexpr size_t kKeptSampleCapacity = 96;

inline void ResetValue(ShortString& v) {
  v.clear();
}

// Every value type V of an LruMap has Reset(): back to a new entry's state, keeping the
// capacity of its strings (entries are recycled in place, so a warm map allocates nothing).
template <class V>
void ResetValue(V& v) {
  v.Reset();
}

// A map from string keys to V, at most `cap` entries; the least recently used entry is evicted
// when full, and entries idle for more than `idle` seconds of log time are evicted as new keys
// come. Lookups take a string_view (no allocation). Layout, for few cache misses per lookup:
//   - an open-addressing index (linear probing, load <= 1/2, backward-shift deletion) maps the
//     key's hash to a slot number;
//   - the hot metadata (hash, last use, the intrusive LRU list's 32-bit links) of every slot is
//     a compact array (24 B a slot), so keeping the LRU order touches no key or value;
//   - the slots (key + value) live in one reservation of address space for `cap` slots, made
//     on first use and filled in order; a slot never moves (a returned reference stays valid
//     until that entry is evicted). Only the slots made are touched, so memory is what the
//     entries take, not the reservation; big maps are advised to use transparent huge pages
//     (first-touch page faults are a large part of a replay's time in a VM).
// An evicted slot is recycled with its strings' capacity, so after warm-up Get() allocates only
// when a key or value outgrows the slot it lands in.
template <class V>
class LruMap {
 public:
  LruMap(size_t cap, int64_t idle, uint64_t* evictions)
      : cap_(std::min<size_t>(std::max<size_t>(cap, 1), kNil - 1)),
        idle_(idle),
        evictions_(evictions),
        seed_(static_cast<uint64_t>(reinterpret_cast<uintptr_t>(this)) * 0x9e3779b97f4a7c15ULL) {}
  ~LruMap() {
    for (size_t i = 0; i < slots_; ++i) slot_base_[i].~Slot();
    if (slot_base_ != nullptr) munmap(slot_base_, reserved_);
  }
  LruMap(const LruMap&) = delete;
  LruMap& operator=(const LruMap&) = delete;

  // The entry for `key`, created if absent (then *created is set). Marks it used at `now`.
  V& Get(std::string_view key, int64_t now, bool* created) {
    const uint64_t h = HashKey(key, seed_);
    const uint32_t found = Lookup(key, h);
    if (found != kNil) {
      *created = false;
      Touch(found, now);
      return slot_base_[found].value;
    }
    EvictFor(now);
    const uint32_t idx = NewSlot();
    Slot& slot = slot_base_[idx];
    slot.key.assign(key);
    meta_[idx].hash = h;
    meta_[idx].last = now;
    PushFront(idx);
    Insert(h, idx);
    ++size_;
    *created = true;
    return slot.value;
  }

  V* Find(std::string_view key, int64_t now) {
    const uint32_t found = Lookup(key, HashKey(key, seed_));
    if (found == kNil) return nullptr;
    Touch(found, now);
    return &slot_base_[found].value;
  }

  size_t size() const { return size_; }

 private:
  static constexpr uint32_t kNil = 0xffffffffU;
  static constexpr size_t kHugePage = size_t{2} << 20;

  struct Slot {
    ShortString key;
    V value{};
  };
  struct Meta {
    uint64_t hash = 0;
    int64_t last = 0;
    uint32_t prev = kNil, next = kNil;
  };

  // Index entries: (low 32 bits of the hash) << 32 | (slot + 1); 0 is empty.
  static uint64_t Entry(uint64_t h, uint32_t idx) { return (h << 32) | (uint64_t{idx} + 1); }

  uint32_t Lookup(std::string_view key, uint64_t h) {
    if (index_.empty()) return kNil;
    const uint64_t tag = h & 0xffffffffULL;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const uint64_t e = index_[i];
      if (e == 0) return kNil;
      if ((e >> 32) == tag) {
        const uint32_t idx = static_cast<uint32_t>(e) - 1;
        if (slot_base_[idx].key.view() == key) return idx;
      }
    }
  }

  void Insert(uint64_t h, uint32_t idx) {
    if ((size_ + 1) * 2 > index_.size()) Grow();
    size_t i = h & mask_;
    while (index_[i] != 0) i = (i + 1) & mask_;
    index_[i] = Entry(h, idx);
  }

  void Grow() {
    std::vector<uint64_t> old;
    old.swap(index_);
    index_.assign(std::max<size_t>(16, old.size() * 2), 0);
    mask_ = index_.size() - 1;
    for (const uint64_t e : old) {
      if (e == 0) continue;
      size_t i = (e >> 32) & mask_;
      while (index_[i] != 0) i = (i + 1) & mask_;
      index_[i] = e;
    }
  }

  void Erase(uint32_t idx) {
    const uint64_t h = meta_[idx].hash;
    const uint64_t want = Entry(h, idx);
    size_t i = h & mask_;
    while (index_[i] != want) i = (i + 1) & mask_;
    // Backward shift: move up each later entry of the run that may live at the hole.
    for (size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
      const uint64_t e = index_[j];
      if (e == 0) break;
      const size_t home = (e >> 32) & mask_;
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        index_[i] = e;
        i = j;
      }
    }
    index_[i] = 0;
  }

  // Address space for cap_ slots (MAP_NORESERVE: pages are taken only when touched).
  void Reserve() {
    reserved_ = (cap_ * sizeof(Slot) + kHugePage - 1) / kHugePage * kHugePage;
    void* p = mmap(nullptr, reserved_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    // Only where it pays: a small map would take a whole 2 MB page for a few slots.
    if (reserved_ >= 4 * kHugePage) madvise(p, reserved_, MADV_HUGEPAGE);
    slot_base_ = static_cast<Slot*>(p);
  }

  uint32_t NewSlot() {
    if (free_ != kNil) {
      const uint32_t idx = free_;
      free_ = meta_[idx].next;
      ResetValue(slot_base_[idx].value);
      return idx;
    }
    // Only when the map is not full (EvictFor made room), so slots_ < cap_.
    if (slot_base_ == nullptr) Reserve();
    meta_.emplace_back();
    new (&slot_base_[slots_]) Slot();
    return static_cast<uint32_t>(slots_++);
  }

  void Unlink(uint32_t idx) {
    Meta& m = meta_[idx];
    if (m.prev != kNil)
      meta_[m.prev].next = m.next;
    else
      head_ = m.next;
    if (m.next != kNil)
      meta_[m.next].prev = m.prev;
    else
      tail_ = m.prev;
  }
  void PushFront(uint32_t idx) {
    Meta& m = meta_[idx];
    m.prev = kNil;
    m.next = head_;
    if (head_ != kNil)
      meta_[head_].prev = idx;
    else
      tail_ = idx;
    head_ = idx;
  }
  void Touch(uint32_t idx, int64_t now) {
    Meta& m = meta_[idx];
    m.last = std::max(m.last, now);
    if (idx != head_) {
      Unlink(idx);
      PushFront(idx);
    }
  }
  void EvictFor(int64_t now) {
    // Idle ones first (at most a few per insertion, so the cost stays O(1) amortized), then
    // the least recently used one if still full.
    for (int i = 0; i < 4 && tail_ != kNil && meta_[tail_].last + idle_ < now; ++i) PopBack();
    while (size_ >= cap_) PopBack();
  }
  void PopBack() {
    const uint32_t idx = tail_;
    Erase(idx);
    Unlink(idx);
    meta_[idx].next = free_;
    free_ = idx;
    --size_;
    ++*evictions_;
  }

  size_t cap_;
  int64_t idle_;
  uint64_t* evictions_;
  uint64_t seed_;
  Slot* slot_base_ = nullptr;  // cap_ slots reserved, the first slots_ made
  size_t reserved_ = 0;        // bytes
  std::vector<Meta> meta_;     // meta_[i] is slot i's
  size_t slots_ = 0;           // slots ever made (in use or on the free list)
  size_t size_ = 0;
  uint32_t head_ = kNil, tail_ = kNil, free_ = kNil;
  std::vector<uint64_t> index_;
  size_t mask_ = 0;
};

// Up to kMaxSamples distinct strings, the newest replacing the oldest. Reset() keeps the
// strings (and their capacity) for the next key that recycles this state; they are made only
// when first needed, so a key that never has a script costs one empty vector.
struct Samples {
  std::vector<std::string> items;  // the first `size` are in use
  size_t size = 0, next = 0;

  void Add(std::string_view s) {
    if (s.empty()) return;
    for (size_t i = 0; i < size; ++i)
      if (items[i] == s) return;
    if (size < kMaxSamples) {
      if (size < items.size())
        items[size].assign(s);
      else
        items.emplace_back(s);
      ++size;
    } else {
      items[next % kMaxSamples].assign(s);
      ++next;
    }
  }
  void Reset() {
    size = next = 0;
    for (std::string& s : items) {
      if (s.capacity() > kKeptSampleCapacity) std::string().swap(s);
    }
  }
  std::vector<std::string> ToVector() const {
    return std::vector<std::string>(items.begin(),
                                    items.begin() + static_cast<std::ptrdiff_t>(size));
  }
};

struct KeyState {
  bool whitelisted = false;
  Limit limit;
  int64_t rate_floor = kNever;  // arrivals before this do not count toward the rate rules
  Window rate_minute, rate_hour, logins, auth, outcomes, bounced;
  std::vector<std::pair<std::string, int64_t>> ips;  // distinct, last seen; <= kMaxIps
  // auth_failures: the IPs that failed (distinct, last failure; <= kMaxIps) and, for an IP key,
  // when it last authenticated successfully.
  std::vector<std::pair<std::string, int64_t>> failed_ips;
  int64_t last_success = kNever;
  Samples scripts, subjects;
  std::array<std::string, kMaxSamples> lines;
  size_t lines_added = 0;
  std::array<int64_t, kRuleCount> last_incident;
  KeyState() { last_incident.fill(kNever); }
  void Reset() {
    whitelisted = false;
    limit = Limit{};
    rate_floor = kNever;
    failed_ips.clear();
    last_success = kNever;
    rate_minute = rate_hour = logins = auth = outcomes = bounced = Window{};
    ips.clear();
    scripts.Reset();
    subjects.Reset();
    lines_added = 0;
    // A recycled slot keeps a line buffer only if it is small: keeping every buffer made each
    // slot grow to the longest lines any key passing through it ever had (measured: the
    // daemon's memory crept up all day, bench/README.md "Follow mode").
    for (std::string& l : lines) {
      if (l.capacity() > kKeptLineCapacity) std::string().swap(l);
    }
    last_incident.fill(kNever);
  }
};

struct SubjectState {
  Window hour;      // recipients
  Window messages;  // messages
  void Reset() { hour = messages = Window{}; }
};

bool IsLoopback(std::string_view ip) {
  return ip == "::1" || ip.substr(0, 4) == "127." || ip.substr(0, 11) == "::ffff:127.";
}

// Keeps `ip` in a list of distinct IPs with their last time, at most kMaxIps (the oldest goes).
void Remember(std::vector<std::pair<std::string, int64_t>>* list, std::string_view ip, int64_t t) {
  for (auto& [addr, last] : *list) {
    if (addr == ip) {
      last = std::max(last, t);
      return;
    }
  }
  if (list->size() < kMaxIps) {
    list->emplace_back(std::string(ip), t);
    return;
  }
  auto oldest = std::min_element(list->begin(), list->end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
  oldest->first.assign(ip);
  oldest->second = t;
}

// The second word of a logged command line ("/usr/sbin/exim4 -Mc ID" -> "-Mc"), quotes kept.
std::string_view SecondArg(std::string_view args) {
  const size_t sp = args.find(' ');
  if (sp == std::string_view::npos) return {};
  std::string_view rest = args.substr(sp + 1);
  return rest.substr(0, rest.find(' '));
}

// Exim running itself: a delivery (-Mc, -MC), a queue run (-q...), an error message (-E...),
// the daemon (-bd). Their cwd= lines are never a script's.
bool EximReinvocation(std::string_view args) {
  const std::string_view a = SecondArg(args);
  return a.starts_with("-M") || a.starts_with("-q") || a.starts_with("-E") || a.starts_with("-bd");
}

constexpr size_t kMaxHeld = 256;  // message ids the guard held, remembered until their arrival

void Lower(std::string_view in, std::string* out) {
  out->assign(in);
  for (char& c : *out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
}

}  // namespace

struct Detectors::Impl {
  explicit Impl(DetectorSettings s)
      : settings(std::move(s)),
        accounts(settings.max_keys, settings.idle_seconds, &stats.evictions),
        cwds(settings.max_keys, settings.idle_seconds, &stats.evictions),
        uids(settings.max_keys, settings.idle_seconds, &stats.evictions),
        ips(settings.max_keys, settings.idle_seconds, &stats.evictions),
        subjects(settings.max_keys, settings.idle_seconds, &stats.evictions),
        messages(settings.max_messages, std::numeric_limits<int64_t>::max() / 4, &stats.evictions) {
    for (const PolicyKey& k : settings.whitelist) whitelist.insert(Identity(k));
    for (const RateOverride& o : settings.overrides) overrides[Identity(o.key)] = o.limit;
    for (const std::string& d : settings.local_domains) {
      std::string l;
      Lower(d, &l);
      local_domains.insert(std::move(l));
    }
    for (const RateFloor& f : settings.rate_floors) {
      if (f.key.text.empty()) {
        int64_t& c = class_floor[static_cast<int>(f.key.klass) % kKeyClasses];
        c = std::max(c, f.time);
      } else {
        int64_t& k = key_floor.try_emplace(Identity(f.key), kNever).first->second;
        k = std::max(k, f.time);
      }
    }
  }

  // ---- helpers ----

  // The policy of a new key of class `klass` whose text is `key` (already normalized).
  void InitPolicy(KeyState* s, KeyClass klass, std::string_view key) {
    s->rate_floor = class_floor[static_cast<int>(klass) % kKeyClasses];
    if (whitelist.empty() && overrides.empty() && key_floor.empty()) {  // no key text to build
      s->whitelisted = false;
      s->limit = settings.limits[static_cast<int>(klass)];
      return;
    }
    PolicyKey pk;
    pk.klass = klass;
    pk.text.assign(key);
    const std::string id = Identity(pk);
    s->whitelisted = whitelist.count(id) != 0;
    auto it = overrides.find(id);
    s->limit = it != overrides.end() ? it->second : settings.limits[static_cast<int>(klass)];
    if (auto f = key_floor.find(id); f != key_floor.end()) {
      s->rate_floor = std::max(s->rate_floor, f->second);
    }
  }

  bool IsEximUser(std::string_view user) const {
    return std::find(settings.exim_users.begin(), settings.exim_users.end(), user) !=
           settings.exim_users.end();
  }
  bool IsRelayHost(std::string_view ip) const {
    if (ip.empty()) return false;
    if (settings.relay_hosts.empty()) return IsLoopback(ip);
    return IpInRanges(ip, settings.relay_hosts);
  }
  bool IsSpoolDir(std::string_view dir) const {
    return std::find(settings.spool_dirs.begin(), settings.spool_dirs.end(), dir) !=
           settings.spool_dirs.end();
  }
  bool TakeHeld(std::string_view id) {
    if (id.empty() || held.empty()) return false;
    for (auto it = held.begin(); it != held.end(); ++it) {
      if (*it == id) {
        held.erase(it);
        return true;
      }
    }
    return false;
  }

  KeyState& State(LruMap<KeyState>& map, KeyClass klass, std::string_view key, int64_t t) {
    bool created = false;
    KeyState& s = map.Get(key, t, &created);
    if (created) InitPolicy(&s, klass, key);
    return s;
  }

  void AddLine(KeyState* s, std::string_view raw) {
    while (!raw.empty() && (raw.back() == '\n' || raw.back() == '\r')) raw.remove_suffix(1);
    s->lines[s->lines_added % kMaxSamples].assign(raw.substr(0, settings.sample_line_bytes));
    ++s->lines_added;
  }

  void AddIp(KeyState* s, std::string_view ip, int64_t t) {
    if (!ip.empty()) Remember(&s->ips, ip, t);
  }

  bool Counted(std::string_view rcpt) const {
    if (settings.count_internal) return true;
    const size_t at = rcpt.rfind('@');
    if (at == std::string_view::npos) return false;  // a local part only: local delivery
    std::string_view domain = rcpt.substr(at + 1);
    while (!domain.empty() && domain.back() == '>') domain.remove_suffix(1);
    if (!local_domains.empty()) {
      domain_buf.assign(domain);
      for (char& c : domain_buf)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      if (local_domains.count(domain_buf)) return false;
    }
    if (settings.is_local_domain && settings.is_local_domain(domain)) return false;
    return true;
  }

  // True (and the cooldown started) when `rule` may fire for this key at `t`.
  bool Cooled(int64_t* last, int64_t t) {
    if (*last != kNever && t - *last < settings.cooldown_seconds) return false;  // also t < last
    *last = t;
    return true;
  }

  void Emit(const KeyState& s, std::string_view key, std::string_view klass, Rule rule, int64_t t,
            int64_t span, uint64_t count, uint64_t threshold) {
    Incident i;
    i.key.assign(key);
    i.key_class.assign(klass);
    i.rule = kRuleNames[rule];
    i.window_start = t - span;
    i.window_end = t;
    i.time = t;
    i.count = count;
    i.threshold = threshold;
    if (rule == kAuthFailures) {
      // Only the IPs that failed within the window; one that also logged in successfully within
      // the hour is spared (an attacker's failures must not firewall the real user).
      for (const auto& [ip, last] : s.failed_ips) {
        if (last <= t - span) continue;
        const bool own = std::any_of(s.ips.begin(), s.ips.end(), [&](const auto& good) {
          return good.first == ip && good.second > t - kHourSpan;
        });
        (own || SucceededRecently(ip, t) ? i.spared_ips : i.ips).insert(ip);
      }
    } else {
      for (const auto& ip : s.ips)
        if (rule != kManyIps || ip.second > t - kHourSpan) i.ips.insert(ip.first);
    }
    i.scripts = s.scripts.ToVector();
    for (size_t k = 0; k < s.subjects.size; ++k)
      i.subjects.push_back(UnescapeExim(s.subjects.items[k]));
    const size_t n = std::min(s.lines_added, kMaxSamples);
    for (size_t k = s.lines_added - n; k < s.lines_added; ++k)
      i.lines.push_back(s.lines[k % kMaxSamples]);
    incidents.push_back(std::move(i));
    ++stats.incidents;
  }

  void CheckRates(KeyState& s, std::string_view key, KeyClass klass, int64_t t) {
    if (s.whitelisted) return;
    const char* cname = kClassNames[static_cast<int>(klass)];
    if (s.limit.per_minute != 0) {
      const uint64_t n = s.rate_minute.Sum(t, kMinuteSpan / 12);
      if (n > s.limit.per_minute && Cooled(&s.last_incident[kRateMinute], t))
        Emit(s, key, cname, kRateMinute, t, kMinuteSpan, n, s.limit.per_minute);
    }
    if (s.limit.per_hour != 0) {
      const uint64_t n = s.rate_hour.Sum(t, kHourSpan / 12);
      if (n > s.limit.per_hour && Cooled(&s.last_incident[kRateHour], t))
        Emit(s, key, cname, kRateHour, t, kHourSpan, n, s.limit.per_hour);
    }
  }

  void CountRate(KeyState& s, std::string_view key, KeyClass klass, int64_t t, uint32_t n) {
    if (t < s.rate_floor) return;  // sent before its limit changed: judged by the old limit
    s.rate_minute.Add(t, n, kMinuteSpan / 12);
    s.rate_hour.Add(t, n, kHourSpan / 12);
    CheckRates(s, key, klass, t);
  }

  void CheckIps(KeyState& s, std::string_view key, int64_t t) {
    if (settings.max_ips_per_hour == 0) return;
    uint64_t n = 0;
    for (const auto& ip : s.ips)
      if (ip.second > t - kHourSpan) ++n;
    if (n > settings.max_ips_per_hour && Cooled(&s.last_incident[kManyIps], t))
      Emit(s, key, "sender", kManyIps, t, kHourSpan, n, settings.max_ips_per_hour);
  }

  // A successful authentication from `ip` (an auth arrival, a login): remembered on the IP's
  // state if it has one (it failed before), so auth_failures spares it.
  void Succeeded(std::string_view ip, int64_t t) {
    if (ip.empty()) return;
    if (KeyState* s = ips.Find(ip, t)) s->last_success = std::max(s->last_success, t);
  }
  bool SucceededRecently(std::string_view ip, int64_t t) {
    const KeyState* s = ips.Find(ip, t);
    return s != nullptr && s->last_success > t - kHourSpan;
  }

  void AuthIp(std::string_view ip, KeyState& s, std::string_view key, int64_t t) {
    Succeeded(ip, t);
    if (ip.empty() || (settings.ignore_loopback_ips && IsLoopback(ip))) return;
    AddIp(&s, ip, t);
    CheckIps(s, key, t);
  }

  // ---- event handlers ----

  void OnCwd(const LogEvent& e) {
    if (e.cwd.empty() || e.pid == 0) return;  // without +pid nothing can be paired safely
    std::string_view cwd = e.cwd;
    while (cwd.size() > 1 && cwd.back() == '/') cwd.remove_suffix(1);
    if (IsSpoolDir(cwd) || EximReinvocation(e.args)) return;  // Exim itself, not a script
    if (pending_cwd.size() >= kMaxPendingCwd) pending_cwd.erase(pending_cwd.begin());
    pending_cwd.push_back(PendingCwd{e.pid, e.time, std::string(cwd)});
  }

  // The script directory of a local arrival, or false.
  bool TakeCwd(const LogEvent& e, std::string* out) {
    // Drop stale entries.
    while (!pending_cwd.empty() && pending_cwd.front().time + kCwdPairSeconds < e.time)
      pending_cwd.erase(pending_cwd.begin());
    if (e.pid == 0) return false;
    for (size_t i = pending_cwd.size(); i-- > 0;) {
      const PendingCwd& p = pending_cwd[i];
      if (p.pid == e.pid) {  // the process that wrote the cwd= line wrote this arrival
        *out = std::move(pending_cwd[i].cwd);
        pending_cwd.erase(pending_cwd.begin() + static_cast<std::ptrdiff_t>(i));
        return true;
      }
    }
    return false;
  }

  void OnArrival(const LogEvent& e, std::string_view raw) {
    const int64_t t = e.time;
    // Exactly what the guard counts (see DetectorSettings). P=local is a not-SMTP submission
    // (acl_not_smtp); local SMTP (-bs: P=local-esmtp) is counted only when authenticated, like
    // any SMTP without a relay host.
    const bool local = e.protocol == "local";
    const bool authenticated = !e.auth_id.empty() || !e.auth.empty();
    const bool exim_own = local && IsEximUser(e.user);
    const bool relay = !local && !authenticated && IsRelayHost(e.host_ip);
    bool has_cwd = false;
    if (local && !exim_own) has_cwd = TakeCwd(e, &cwd_buf);
    if (TakeHeld(e.message_id)) return;  // held by the guard: accepted and frozen, not sent
    if (!authenticated && !relay && !(local && !exim_own)) return;
    uint32_t n = 0;
    if (e.recipients.empty()) {
      n = 1;
    } else {
      for (std::string_view r : e.recipients)
        if (Counted(r)) ++n;
    }
    std::string_view subject = e.subject.substr(0, kSubjectBytes);

    Lower(e.auth_id.empty() ? e.sender : e.auth_id, &account_buf);
    if (!account_buf.empty()) {
      KeyState& s = State(accounts, KeyClass::kSender, account_buf, t);
      AddLine(&s, raw);
      s.subjects.Add(subject);
      if (has_cwd) s.scripts.Add(cwd_buf);
      if (!e.message_id.empty()) {
        bool created = false;
        messages.Get(e.message_id, t, &created).assign(account_buf);
      }
      if (!e.auth_id.empty()) AuthIp(e.host_ip, s, account_buf, t);
      CountRate(s, account_buf, KeyClass::kSender, t, n);

      if (!subject.empty() && settings.repeated_subject_recipients != 0) {
        subject_key.assign(account_buf);
        subject_key += '\n';
        subject_key.append(subject);
        bool created = false;
        SubjectState& ss = subjects.Get(subject_key, t, &created);
        ss.hour.Add(t, n, kHourSpan / 12);
        ss.messages.Add(t, 1, kHourSpan / 12);
        const uint64_t c = ss.hour.Sum(t, kHourSpan / 12);
        const uint64_t m = ss.messages.Sum(t, kHourSpan / 12);
        if (!s.whitelisted && c >= settings.repeated_subject_recipients &&
            m >= settings.repeated_subject_min_messages &&
            Cooled(&s.last_incident[kRepeatedSubject], t)) {
          Emit(s, account_buf, "sender", kRepeatedSubject, t, kHourSpan, c,
               settings.repeated_subject_recipients);
          incidents.back().subjects.assign(1, UnescapeExim(subject));
        }
      }
    }
    if (has_cwd) {
      KeyState& s = State(cwds, KeyClass::kCwd, cwd_buf, t);
      AddLine(&s, raw);
      s.subjects.Add(subject);
      s.scripts.Add(cwd_buf);
      CountRate(s, cwd_buf, KeyClass::kCwd, t, n);
    }
    const bool by_user = local && !e.user.empty();
    if (by_user) {
      KeyState& s = State(uids, KeyClass::kUid, e.user, t);
      AddLine(&s, raw);
      s.subjects.Add(subject);
      if (has_cwd) s.scripts.Add(cwd_buf);
      CountRate(s, e.user, KeyClass::kUid, t, n);
    }
    if (settings.on_arrival && (!account_buf.empty() || has_cwd || by_user)) {
      CountedArrival a;
      a.time = t;
      a.message_id = e.message_id;
      a.account = account_buf;
      if (has_cwd) a.cwd = cwd_buf;
      a.user = e.user;
      a.local = local;
      a.authenticated = !e.auth.empty() || !e.auth_id.empty();
      a.recipients_all = e.recipients.empty() ? 1 : static_cast<uint32_t>(e.recipients.size());
      a.recipients_counted = n;
      a.has_recipient_list = !e.recipients.empty();
      settings.on_arrival(a);
    }
  }

  void OnOutcome(const LogEvent& e, std::string_view raw, bool bounced) {
    if (settings.bounce_min_recipients == 0 || e.message_id.empty()) return;
    if (!Counted(e.CountedRecipient())) return;
    const int64_t t = e.time;
    const ShortString* found = messages.Find(e.message_id, t);
    if (found == nullptr) return;
    // Stays valid: nothing below touches `messages`.
    const std::string_view account = found->view();
    KeyState* s = accounts.Find(account, t);
    if (s == nullptr) return;
    s->outcomes.Add(t, 1, kHourSpan / 12);
    if (!bounced) {
      s->outcomes.Sum(t, kHourSpan / 12);
      return;
    }
    AddLine(s, raw);
    s->bounced.Add(t, 1, kHourSpan / 12);
    const uint64_t total = s->outcomes.Sum(t, kHourSpan / 12);
    const uint64_t b = s->bounced.Sum(t, kHourSpan / 12);
    if (!s->whitelisted && total >= settings.bounce_min_recipients &&
        b * 100 > total * settings.bounce_percent && Cooled(&s->last_incident[kBounceStorm], t))
      Emit(*s, account, "sender", kBounceStorm, t, kHourSpan, b, settings.bounce_min_recipients);
  }

  void OnAuthFailure(const LogEvent& e, std::string_view raw, uint32_t n) {
    if (settings.auth_failures == 0) return;
    const int64_t t = e.time;
    const int64_t width = std::max<int64_t>(1, settings.auth_failure_seconds / 12);
    const int64_t span = settings.auth_failure_seconds;
    if (!e.auth_id.empty()) {
      Lower(e.auth_id, &account_buf);
      KeyState& s = State(accounts, KeyClass::kSender, account_buf, t);
      AddLine(&s, raw);
      if (!e.host_ip.empty()) Remember(&s.failed_ips, e.host_ip, t);
      s.auth.Add(t, n, width);
      const uint64_t c = s.auth.Sum(t, width);
      if (c >= settings.auth_failures && Cooled(&s.last_incident[kAuthFailures], t))
        Emit(s, account_buf, "sender", kAuthFailures, t, span, c, settings.auth_failures);
    }
    if (!e.host_ip.empty()) {
      bool created = false;
      KeyState& s = ips.Get(e.host_ip, t, &created);
      AddLine(&s, raw);
      Remember(&s.failed_ips, e.host_ip, t);
      s.auth.Add(t, n, width);
      const uint64_t c = s.auth.Sum(t, width);
      if (c >= settings.auth_failures && Cooled(&s.last_incident[kAuthFailures], t))
        Emit(s, e.host_ip, "ip", kAuthFailures, t, span, c, settings.auth_failures);
    }
  }

  void OnLogin(const LogEvent& e, std::string_view raw) {
    if (e.auth_id.empty()) return;
    const int64_t t = e.time;
    Lower(e.auth_id, &account_buf);
    KeyState& s = State(accounts, KeyClass::kSender, account_buf, t);
    AddLine(&s, raw);
    AuthIp(e.host_ip, s, account_buf, t);
    if (settings.max_logins_per_hour == 0) return;
    s.logins.Add(t, 1, kHourSpan / 12);
    const uint64_t c = s.logins.Sum(t, kHourSpan / 12);
    if (c > settings.max_logins_per_hour && Cooled(&s.last_incident[kManyLogins], t))
      Emit(s, account_buf, "sender", kManyLogins, t, kHourSpan, c, settings.max_logins_per_hour);
  }

  void Feed(const LogEvent& e, std::string_view raw) {
    if (e.time <= 0 || e.fragment) return;
    ++stats.events;
    switch (e.kind) {
      case LineKind::kCwdArgs:
        OnCwd(e);
        break;
      case LineKind::kArrival:
        OnArrival(e, raw);
        break;
      case LineKind::kDelivery:
        if (e.flag != "*>") OnOutcome(e, raw, false);
        break;
      case LineKind::kBounce:
        OnOutcome(e, raw, true);
        break;
      case LineKind::kAuthFailed:
        OnAuthFailure(e, raw, 1);
        break;
      case LineKind::kDovecotAuthFailed:
        OnAuthFailure(e, raw, std::max<uint32_t>(1, e.attempts));
        break;
      case LineKind::kDovecotLogin:
        OnLogin(e, raw);
        break;
      case LineKind::kGuardHeld:
        if (!e.message_id.empty()) {
          if (held.size() >= kMaxHeld) held.erase(held.begin());
          held.emplace_back(e.message_id);
        }
        break;
      default:
        break;
    }
  }

  struct PendingCwd {
    uint32_t pid;
    int64_t time;
    std::string cwd;
  };

  DetectorSettings settings;
  DetectorStats stats;
  std::unordered_set<std::string> whitelist;
  std::unordered_map<std::string, Limit> overrides;
  std::unordered_set<std::string> local_domains;
  LruMap<KeyState> accounts, cwds, uids, ips;
  LruMap<SubjectState> subjects;
  LruMap<ShortString> messages;  // message id -> account
  std::vector<PendingCwd> pending_cwd;
  std::vector<std::string> held;  // message ids of "eximguard: held" lines, oldest first
  int64_t class_floor[kKeyClasses] = {kNever, kNever, kNever};
  std::unordered_map<std::string, int64_t> key_floor;  // Identity -> RateFloor time
  std::vector<Incident> incidents;
  // Reused buffers (no allocation per event once warm).
  std::string account_buf, cwd_buf, subject_key;
  mutable std::string domain_buf;
};

Detectors::Detectors(DetectorSettings settings)
    : impl_(std::make_unique<Impl>(std::move(settings))) {}
Detectors::~Detectors() = default;

void Detectors::Feed(const LogEvent& event, std::string_view raw_line) {
  impl_->Feed(event, raw_line);
}

std::vector<Incident> Detectors::TakeIncidents() {
  std::vector<Incident> out;
  out.swap(impl_->incidents);
  return out;
}

DetectorStats Detectors::Stats() const {
  DetectorStats s = impl_->stats;
  s.accounts = impl_->accounts.size();
  s.cwds = impl_->cwds.size();
  s.uids = impl_->uids.size();
  s.ips = impl_->ips.size();
  s.subjects = impl_->subjects.size();
  s.messages = impl_->messages.size();
  return s;
}

const DetectorSettings& Detectors::settings() const {
  return impl_->settings;
}

bool Detectors::Enrich(std::string_view klass, std::string_view key, Incident* into) {
  Impl& d = *impl_;
  const int64_t t = into->time;
  KeyState* s = nullptr;
  if (klass == "sender") {
    Lower(key, &d.account_buf);
    s = d.accounts.Find(d.account_buf, t);
  } else if (klass == "cwd") {
    s = d.cwds.Find(key, t);
  } else if (klass == "uid") {
    s = d.uids.Find(key, t);
  } else if (klass == "ip") {
    s = d.ips.Find(key, t);
  }
  if (s == nullptr) return false;
  for (const auto& ip : s->ips) into->ips.insert(ip.first);
  for (const std::string& script : s->scripts.ToVector()) {
    if (std::find(into->scripts.begin(), into->scripts.end(), script) == into->scripts.end())
      into->scripts.push_back(script);
  }
  for (size_t k = 0; k < s->subjects.size; ++k)
    into->subjects.push_back(UnescapeExim(s->subjects.items[k]));
  const size_t n = std::min(s->lines_added, kMaxSamples);
  for (size_t k = s->lines_added - n; k < s->lines_added; ++k)
    into->lines.push_back(s->lines[k % kMaxSamples]);
  return true;
}

const char* EvidenceSourceName(EvidenceSource s) {
  switch (s) {
    case EvidenceSource::kLog:
      return "log";
    case EvidenceSource::kTable:
      return "table";
    case EvidenceSource::kPolicy:
      return "dovecot_policy";
  }
  return "log";
}

}  // namespace eg::sidecar
