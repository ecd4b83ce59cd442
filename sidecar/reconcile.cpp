// reconcile.cpp - see reconcile.h for the contract and why the credit is conservative.

#include "reconcile.h"

#include <algorithm>
#include <vector>

namespace eg::sidecar {
namespace {

constexpr int64_t kBucketSeconds = kHourBucketSeconds;

// The hour bucket of a log time; false for times no window can ever hold.
bool EpochOf(int64_t unix_time, uint32_t* epoch) {
  if (unix_time < 0 || unix_time / kBucketSeconds > int64_t{UINT32_MAX}) return false;
  *epoch = static_cast<uint32_t>(unix_time / kBucketSeconds);
  return true;
}

// The first bucket that starts at or after `t`.
int64_t FirstBucketFrom(int64_t t) {
  if (t <= 0) return 0;
  return (t + kBucketSeconds - 1) / kBucketSeconds;
}

}  // namespace

// Reconcile() reads the ledger's entries directly.
struct ReconcileAccess {
  static const std::list<ArrivalLedger::Entry>& Entries(const ArrivalLedger& l) { return l.lru_; }
};

ArrivalLedger::ArrivalLedger(int64_t start_time, LedgerLimits limits)
    : start_(start_time), limits_(limits) {
  if (limits_.max_keys == 0) limits_.max_keys = 1;
}

// Class byte + the key as the table hashes it (key_hash.cpp): cut like the guard cuts it, then
// sender keys lowercased (ASCII), script directories without trailing '/'.
std::string ArrivalLedger::Id(KeyClass klass, std::string_view key) {
  key = key.substr(0, std::min(key.size(), kLedgerKeyBytes));
  if (klass == KeyClass::kCwd) {
    while (key.size() > 1 && key.back() == '/') key.remove_suffix(1);
  }
  std::string id;
  id.reserve(key.size() + 1);
  id.push_back(static_cast<char>(klass));
  id.append(key);
  if (klass == KeyClass::kSender) {
    for (size_t i = 1; i < id.size(); ++i) {
      if (id[i] >= 'A' && id[i] <= 'Z') id[i] = static_cast<char>(id[i] - 'A' + 'a');
    }
  }
  return id;
}

uint64_t ArrivalLedger::Entry::Sum(uint32_t first_epoch, uint32_t last_epoch) const {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < kLedgerBuckets; ++i) {
    if (count[i] != 0 && epoch[i] >= first_epoch && epoch[i] <= last_epoch) sum += count[i];
  }
  return sum;
}

const ArrivalLedger::Entry* ArrivalLedger::Find(KeyClass klass, std::string_view key) const {
  const std::string id = Id(klass, key);
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : &*it->second;
}

void ArrivalLedger::EvictOne() {
  const Entry& victim = lru_.back();
  // Its arrivals are forgotten: from now on the ledger cannot vouch for a key it does not hold
  // before the end of the newest bucket it forgot.
  for (uint32_t i = 0; i < kLedgerBuckets; ++i) {
    if (victim.count[i] != 0) {
      horizon_ = std::max(horizon_, (int64_t{victim.epoch[i]} + 1) * kBucketSeconds);
    }
  }
  bytes_ -= victim.id.size() + kEntryOverheadBytes;
  index_.erase(std::string_view(victim.id));
  lru_.pop_back();
  ++evictions_;
}

void ArrivalLedger::Add(KeyClass klass, std::string_view key, int64_t log_time,
                        uint32_t recipients) {
  uint32_t epoch = 0;
  if (key.empty() || recipients == 0 || !EpochOf(log_time, &epoch)) return;
  std::string id = Id(klass, key);
  auto it = index_.find(id);
  Entry* e;
  if (it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    e = &lru_.front();
  } else {
    const size_t cost = id.size() + kEntryOverheadBytes;
    while (!lru_.empty() &&
           (lru_.size() >= limits_.max_keys || bytes_ + cost > limits_.max_bytes)) {
      EvictOne();
    }
    // Computed after evicting: the key may be one the ledger has just forgotten.
    const int64_t complete_from = UnheldCompleteFrom();
    lru_.emplace_front();
    e = &lru_.front();
    e->klass = klass;
    e->id = std::move(id);
    e->complete_from = complete_from;
    index_.emplace(std::string_view(e->id), lru_.begin());
    bytes_ += cost;
  }
  const uint32_t i = epoch % kLedgerBuckets;
  if (e->count[i] == 0 || e->epoch[i] == epoch) {
    e->epoch[i] = epoch;
    e->count[i] =
        static_cast<uint32_t>(std::min<uint64_t>(uint64_t{e->count[i]} + recipients, UINT32_MAX));
  } else if (e->epoch[i] < epoch) {  // the slot's bucket is 80 minutes older: forget it
    e->complete_from = std::max(e->complete_from, (int64_t{e->epoch[i]} + 1) * kBucketSeconds);
    e->epoch[i] = epoch;
    e->count[i] = recipients;
  } else {  // a line 80 minutes older than one already added: it cannot be kept
    e->complete_from = std::max(e->complete_from, (int64_t{epoch} + 1) * kBucketSeconds);
  }
}

void ArrivalLedger::CaughtUp(int64_t log_time) {
  caught_up_ = std::max(caught_up_, log_time);
}

uint64_t ArrivalLedger::Arrivals(KeyClass klass, std::string_view key, uint32_t first_epoch,
                                 uint32_t last_epoch) const {
  const Entry* e = Find(klass, key);
  return e == nullptr ? 0 : e->Sum(first_epoch, last_epoch);
}

int64_t ArrivalLedger::CompleteFrom(KeyClass klass, std::string_view key) const {
  const Entry* e = Find(klass, key);
  return e == nullptr ? -1 : e->complete_from;
}

ReconcileStats Reconcile(const Table& t, const ArrivalLedger& ledger, uint32_t now_unix,
                         uint32_t lag_seconds) {
  ReconcileStats st;
  // The log is complete up to here; a bucket is compared once it ended lag seconds before.
  const int64_t complete_until = std::min<int64_t>(now_unix, ledger.caught_up());
  if (complete_until < int64_t{lag_seconds} + kBucketSeconds) return st;
  const int64_t now_epoch = now_unix / kBucketSeconds;
  const int64_t hi =
      std::min<int64_t>((complete_until - lag_seconds) / kBucketSeconds - 1, now_epoch - 1);
  const int64_t window_lo = now_epoch - kBuckets;  // older buckets no window counts any more
  if (hi < window_lo) return st;
  // The log side of a range ending at hi: arrivals up to lag seconds after it, in whole buckets.
  const int64_t tail_last =
      std::min<int64_t>(((hi + 1) * kBucketSeconds + lag_seconds - 1) / kBucketSeconds, now_epoch);

  // The ledger's keys by their hash in this table.
  const auto& entries = ReconcileAccess::Entries(ledger);
  std::unordered_map<uint64_t, const ArrivalLedger::Entry*> by_hash;
  by_hash.reserve(entries.size());
  for (const auto& e : entries) {
    by_hash.emplace(KeyHash(t, e.klass, e.id.data() + 1, e.id.size() - 1), &e);
  }

  const uint32_t max_age = (kBuckets + 1) * kHourBucketSeconds;
  for (const SlotView& view : Snapshot(t, now_unix, max_age)) {
    HourBuckets hb;
    if (!ReadHourBuckets(t, view.key_hash, now_unix, &hb)) continue;  // evicted meanwhile
    auto table_count = [&](int64_t epoch) { return hb.count[epoch - hb.first_epoch]; };
    const auto found = by_hash.find(view.key_hash);
    const ArrivalLedger::Entry* entry = found == by_hash.end() ? nullptr : found->second;
    if (entry == nullptr && !ledger.sees_every_counted_key()) continue;
    const int64_t complete_from =
        entry != nullptr ? entry->complete_from : ledger.UnheldCompleteFrom();
    const int64_t lo = std::max(window_lo, FirstBucketFrom(complete_from));
    if (lo > hi) {
      bool counted = false;
      for (int64_t e = window_lo; e <= hi; ++e) counted |= table_count(e) != 0;
      st.keys_incomplete += counted;
      continue;
    }
    const size_t n = static_cast<size_t>(hi - lo + 1);  // at most kBuckets
    uint64_t table_sum = 0;
    for (int64_t e = lo; e <= hi; ++e) table_sum += table_count(e);
    if (table_sum == 0) continue;
    ++st.keys_checked;

    // slack[k]: how much may be taken from the suffix [lo + k, hi] and leave it at least
    // min(table, log): the most of it that can have arrived.
    std::vector<uint64_t> slack(n);
    uint64_t suffix = 0;
    for (size_t k = n; k-- > 0;) {
      const int64_t epoch = lo + static_cast<int64_t>(k);
      suffix += table_count(epoch);
      const uint64_t logged = entry == nullptr ? 0
                                               : entry->Sum(static_cast<uint32_t>(epoch),
                                                            static_cast<uint32_t>(tail_last));
      slack[k] = suffix > logged ? suffix - logged : 0;
    }
    // A bucket may give what every suffix containing it can spare: the running minimum of the
    // slacks of the suffixes that start at or before it, less what newer buckets already gave.
    for (size_t k = 1; k < n; ++k) slack[k] = std::min(slack[k], slack[k - 1]);
    uint64_t given = 0;
    bool corrected = false;
    for (size_t k = n; k-- > 0;) {
      const int64_t epoch = lo + static_cast<int64_t>(k);
      const uint64_t want = std::min<uint64_t>(table_count(epoch), slack[k] - given);
      if (want == 0) continue;
      const uint32_t got = CreditHour(t, view.key_hash, static_cast<uint32_t>(epoch),
                                      static_cast<uint32_t>(want), now_unix);
      given += want;  // as planned, even if less stuck: older buckets give no more for it
      st.recipients_credited += got;
      st.recipients_lost += want - got;
      corrected |= got != 0;
    }
    st.keys_corrected += corrected;
  }
  return st;
}

}  // namespace eg::sidecar
