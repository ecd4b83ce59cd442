// table_watch.cpp - see table_watch.h.

#include "table_watch.h"

#include <algorithm>

#include "users.h"

namespace eg::sidecar {
namespace {

constexpr int kBuckets = 13;
constexpr uint32_t kForgetSeconds = 7200;

// The detectors' name of a table key: uid keys by user name when this host knows the uid.
std::string IncidentKey(KeyClass klass, const std::string& key) {
  if (klass == KeyClass::kSender) {  // compared case-insensitively, named lowercased
    std::string lower = key;
    for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    return lower;
  }
  if (klass != KeyClass::kUid || key.empty() || key.size() > 10 ||
      !std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return key;
  }
  const std::string name = UserOfUid(static_cast<uid_t>(std::stoul(key)));
  return name.empty() ? key : name;
}

// An incident of the table's own evidence (trusted) about the key of slot v, ending at now.
Incident TableIncident(const SlotView& v, const char* rule, uint32_t now, uint32_t window,
                       uint64_t count, uint64_t threshold) {
  Incident i;
  i.key = IncidentKey(v.klass, v.key);
  i.key_class = KeyClassName(v.klass);
  i.rule = rule;
  i.time = now;
  i.window_start = now - window;
  i.window_end = now;
  i.count = count;
  i.threshold = threshold;
  i.source = EvidenceSource::kTable;
  i.trusted = true;
  return i;
}

bool Limited(KeyClass klass) {
  return klass == KeyClass::kSender || klass == KeyClass::kCwd || klass == KeyClass::kUid;
}

}  // namespace

TableWatchSettings TableWatchSettingsFromConfig(const Config& config) {
  TableWatchSettings s;
  s.throttled_refused = config.detectors.throttled_refused;
  s.throttled_seconds = config.detectors.throttled_seconds;
  s.cooldown_seconds = config.detectors.cooldown_seconds;
  s.bounce_min_recipients = config.detectors.bounce_min_recipients;
  s.bounce_percent = config.detectors.bounce_percent;
  s.bounce_min_domains = config.detectors.bounce_min_domains;
  return s;
}

TableWatch::TableWatch(TableWatchSettings settings)
    : settings_(settings), width_(std::max<int64_t>(1, settings.throttled_seconds / 12)) {}

void TableWatch::Reconfigure(TableWatchSettings settings) {
  const bool same_width = settings.throttled_seconds == settings_.throttled_seconds;
  settings_ = settings;
  if (!same_width) {  // the buckets mean other spans now: start the windows over
    width_ = std::max<int64_t>(1, settings.throttled_seconds / 12);
    for (auto& [hash, k] : keys_) {
      std::fill(std::begin(k.buckets), std::end(k.buckets), 0);
      k.head = -1;
    }
  }
}

void TableWatch::Advance(KeyWatch& k, int64_t bucket) {
  if (k.head < 0 || bucket - k.head >= kBuckets) {
    std::fill(std::begin(k.buckets), std::end(k.buckets), 0);
  } else {
    for (int64_t b = k.head + 1; b <= bucket; ++b) k.buckets[b % kBuckets] = 0;
  }
  if (bucket > k.head) k.head = bucket;
}

uint64_t TableWatch::Sum(const KeyWatch& k, int64_t from_bucket) const {
  uint64_t n = 0;
  for (int64_t b = std::max(from_bucket, k.head - kBuckets + 1); b <= k.head; ++b) {
    n += k.buckets[b % kBuckets];
  }
  return n;
}

void TableWatch::Forget(uint32_t now) {
  for (auto it = keys_.begin(); it != keys_.end();) {
    it = now - it->second.last_seen > kForgetSeconds ? keys_.erase(it) : std::next(it);
  }
  if (keys_.size() <= settings_.max_keys) return;
  std::vector<std::pair<uint32_t, uint64_t>> by_age;
  by_age.reserve(keys_.size());
  for (const auto& [hash, k] : keys_) by_age.emplace_back(k.last_seen, hash);
  std::sort(by_age.begin(), by_age.end());
  for (size_t i = 0; i + settings_.max_keys < by_age.size(); ++i) keys_.erase(by_age[i].second);
}

std::vector<Incident> TableWatch::Look(const Table& t, uint32_t now) {
  std::vector<Incident> out;
  last_now_ = now;
  const int64_t bucket = now / width_;
  // Keys seen within the rule's window (and a minute more): only they can be refused now; and
  // within the hour: their messages' outcomes may still come in.
  const uint32_t max_age = std::max<uint32_t>(settings_.throttled_seconds,
                                              settings_.bounce_min_recipients > 0 ? 3600 : 0) +
                           60;
  for (const SlotView& v : Snapshot(t, now, max_age)) {
    if (!Limited(v.klass)) continue;
    auto [it, created] = keys_.try_emplace(v.key_hash);
    KeyWatch& k = it->second;
    uint32_t delta = 0;
    if (created) {
      k.klass = v.klass;
      k.key = v.key;
      delta = first_look_ ? 0 : v.refused;  // a key first seen later: its slot is new
    } else {
      delta = v.refused >= k.last_refused ? v.refused - k.last_refused : v.refused;
    }
    k.last_refused = v.refused;
    k.last_seen = now;
    LookAtOutcomes(t, v, k, created, now, &out);
    Advance(k, bucket);
    k.buckets[bucket % kBuckets] += delta;
    if (settings_.throttled_refused == 0 || delta == 0) continue;
    const uint64_t refused = Sum(k, bucket - kBuckets + 1);
    if (refused < settings_.throttled_refused) continue;
    if (k.last_incident != 0 && now - k.last_incident < settings_.cooldown_seconds) continue;
    uint64_t flags = 0;
    uint32_t per_minute = 0, per_hour = 0;
    LookupRule(t, v.klass, v.key_hash, &flags, &per_minute, &per_hour);
    if (flags & (kFlagBlocked | kFlagWhitelist)) continue;  // a block says it all
    k.last_incident = now;
    Incident i = TableIncident(v, "throttled", now, settings_.throttled_seconds, refused,
                               settings_.throttled_refused);
    auto limit = [](uint32_t l) {
      return l == kUnlimited ? std::string("unlimited") : std::to_string(l);
    };
    i.trust_note = "the guard itself refused " + std::to_string(refused) + " recipients within " +
                   std::to_string(settings_.throttled_seconds / 60) + " minutes (limit " +
                   limit(per_minute) + "/minute, " + limit(per_hour) + "/hour; admitted " +
                   std::to_string(v.minute) + " this minute, " + std::to_string(v.hour) +
                   " this hour)";
    if (v.key.size() >= kLabelChars) i.trust_note += "; the table keeps only the key's first bytes";
    out.push_back(std::move(i));
  }
  // Fail-open answers (the guard let mail through unchecked) and new-key refusals (a source made
  // up keys faster than its budget): any growth since the last look is alerted, at most once
  // per cooldown, with everything counted since the previous alert.
  const StatTotals totals = Totals(t);
  auto grew = [&](uint64_t value, uint64_t& last, uint64_t& pending) {
    // The first look and a replaced table (the counter went down) take the counter as it is.
    if (!first_look_ && value >= last) pending += value - last;
    last = value;
  };
  grew(totals.fail_open, last_fail_open_, pending_fail_open_);
  grew(totals.new_key_refusals, last_new_key_refusals_, pending_new_key_refusals_);
  first_look_ = false;
  if (settings_.failopen_alert > 0 && pending_fail_open_ >= settings_.failopen_alert &&
      (last_alert_ == 0 || now - last_alert_ >= settings_.cooldown_seconds)) {
    last_alert_ = now;
    alerts_.push_back("the guard let " + std::to_string(pending_fail_open_) +
                      (pending_fail_open_ == 1 ? " check" : " checks") +
                      " through unchecked (fail open: the table is full or contended, or a check "
                      "failed; " +
                      std::to_string(totals.fail_open) + " in all): see eximguard status and top");
    pending_fail_open_ = 0;
  }
  if (settings_.failopen_alert > 0 && pending_new_key_refusals_ > 0 &&
      (last_budget_alert_ == 0 || now - last_budget_alert_ >= settings_.cooldown_seconds)) {
    last_budget_alert_ = now;
    alerts_.push_back("the guard refused " + std::to_string(pending_new_key_refusals_) +
                      (pending_new_key_refusals_ == 1 ? " check" : " checks") +
                      " of a client making up new senders faster than its new-key budget while "
                      "the table was full (verdict 'new-keys'): see the Exim log for the client "
                      "and eximguard top");
    pending_new_key_refusals_ = 0;
  }
  Forget(now);
  return out;
}

void TableWatch::LookAtOutcomes(const Table& t, const SlotView& v, KeyWatch& k, bool created,
                                uint32_t now, std::vector<Incident>* out) {
  constexpr int64_t kWidth = 300;  // an hour in 12 buckets, the current one the 13th
  const int64_t bucket = now / kWidth;
  const uint32_t seen[2] = {v.outcomes[static_cast<int>(Outcome::kDelivered)],
                            v.outcomes[static_cast<int>(Outcome::kFailed)]};
  uint32_t delta[2] = {};
  bool reclaimed = false;  // a counter went down: the slot was claimed again, starting over
  for (int o = 0; o < 2; ++o) {
    if (!created && seen[o] < k.last_outcomes[o]) reclaimed = true;
    if (created) {
      delta[o] = first_look_ ? 0 : seen[o];  // a key first seen later: its slot is new
    } else {  // a counter that went down: the slot was claimed again and starts over
      delta[o] = seen[o] >= k.last_outcomes[o] ? seen[o] - k.last_outcomes[o] : seen[o];
    }
    k.last_outcomes[o] = seen[o];
  }
  // The domains bitmap only grows while the slot lives: what it gained within the hour is what
  // it holds now and did not hold in the oldest bucket. A new key starts from nothing (or, at
  // the first look, from what it holds: history is not judged).
  if (created || reclaimed) {
    const uint32_t base = created && first_look_ ? v.failed_domains : 0;
    std::fill(std::begin(k.domains), std::end(k.domains), base);
  }
  if (k.outcome_head < 0 || bucket - k.outcome_head >= kBuckets) {
    for (auto& b : k.outcomes) b[0] = b[1] = 0;
    if (k.outcome_head >= 0)
      std::fill(std::begin(k.domains), std::end(k.domains), k.domains[k.outcome_head % kBuckets]);
  } else {
    for (int64_t b = k.outcome_head + 1; b <= bucket; ++b) {
      k.outcomes[b % kBuckets][0] = 0;
      k.outcomes[b % kBuckets][1] = 0;
      k.domains[b % kBuckets] = k.domains[k.outcome_head % kBuckets];
    }
  }
  if (bucket > k.outcome_head) k.outcome_head = bucket;
  k.outcomes[bucket % kBuckets][0] += delta[0];
  k.outcomes[bucket % kBuckets][1] += delta[1];
  k.domains[bucket % kBuckets] = v.failed_domains;
  if (settings_.bounce_min_recipients == 0 || delta[1] == 0) return;
  uint64_t delivered = 0, failed = 0;
  for (const auto& b : k.outcomes) {
    delivered += b[0];
    failed += b[1];
  }
  const uint64_t total = delivered + failed;
  if (total < settings_.bounce_min_recipients || failed * 100 <= total * settings_.bounce_percent)
    return;
  const uint32_t oldest = k.domains[(bucket + 1) % kBuckets];  // 12 buckets back
  const int domains = __builtin_popcount(v.failed_domains & ~oldest);
  if (domains < static_cast<int>(settings_.bounce_min_domains)) return;
  if (k.last_bounce_incident != 0 && now - k.last_bounce_incident < settings_.cooldown_seconds)
    return;
  uint64_t flags = 0;
  uint32_t per_minute = 0, per_hour = 0;
  LookupRule(t, v.klass, v.key_hash, &flags, &per_minute, &per_hour);
  if (flags & (kFlagBlocked | kFlagWhitelist)) return;  // a bulk sender may bounce; a block says it
  k.last_bounce_incident = now;
  Incident i = TableIncident(v, "bounce_storm", now, 3600, failed, settings_.bounce_min_recipients);
  // Exim's own counts, but of addresses others may choose (sign-ups at made-up domains to a
  // customer's form, a wildcard MX refusing everything): a notice, never a punishment by itself.
  i.trusted = false;
  i.trust_note =
      "not acted on automatically (others can choose the recipients: form sign-ups, an MX "
      "refusing everything); Exim reported through the guard " +
      std::to_string(failed) + " of " + std::to_string(total) +
      " recipients failed within the hour (" + std::to_string(delivered) + " delivered), at " +
      (domains >= 32 ? std::string("32 or more") : "about " + std::to_string(domains)) +
      " recipient domains (the rule: at least " + std::to_string(settings_.bounce_min_recipients) +
      " recipients, more than " + std::to_string(settings_.bounce_percent) + "% failed, at " +
      std::to_string(settings_.bounce_min_domains) + " domains or more)";
  if (v.key.size() >= kLabelChars) i.trust_note += "; the table keeps only the key's first bytes";
  out->push_back(std::move(i));
}

std::vector<std::string> TableWatch::TakeAlerts() {
  std::vector<std::string> out;
  out.swap(alerts_);
  return out;
}

uint64_t TableWatch::RefusedWithin(KeyClass klass, const std::string& key, uint32_t seconds) const {
  for (const auto& [hash, k] : keys_) {
    if (k.klass != klass || k.key != key) continue;
    const int64_t buckets = std::max<int64_t>(1, (seconds + width_ - 1) / width_);
    return Sum(k, k.head - buckets + 1);
  }
  return 0;
}

}  // namespace eg::sidecar
