// verbs_info.cpp - `eximguard info DOMAIN|EMAIL`: who owns the domain in cPanel (WHM
// getdomainowner) and everything eximguard knows about the address, or about every address of
// the domain: active blocks and suspensions, incidents of the last 7 days, whitelisting, limits
// set with `eximguard set`, and the live counters of the shared table. See verbs.h.
//
// CONTRACT
//   Read-only: nothing is stored, published or signalled. One WHM request at most (no retries:
//   an admin is waiting); without whm.token the owner is not asked and the output says so. The
//   owner's account (its uid, when this host knows the user) is included: uid blocks, limits
//   and counters, and its incidents (keyed by user name). A WHM failure is shown, not fatal.

#include <algorithm>
#include <cctype>
#include <ctime>

#include "limit_value.h"
#include "policy_from_state.h"
#include "text_escape.h"
#include "time_text.h"
#include "users.h"
#include "verbs.h"
#include "verbs_support.h"
#include "whm_client.h"

namespace eg::sidecar {
namespace {

constexpr int64_t kInfoDays = 7;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// What is asked about: one address, or a whole domain; and the domain's owner once known.
struct Subject {
  std::string email;   // "" when a domain was asked about
  std::string domain;  // lowercased
  std::string owner;   // cPanel user; "" unknown
  std::string uid;     // the owner's uid on this host; "" unknown

  bool Sender(const std::string& key) const {
    const std::string k = Lower(key);
    if (!email.empty()) return k == email;
    return k.size() > domain.size() && k.ends_with("@" + domain);
  }
  // A table key (class + text) that concerns the subject.
  bool Table(KeyClass klass, const std::string& key) const {
    if (klass == KeyClass::kSender) return Sender(key);
    return klass == KeyClass::kUid && !uid.empty() && key == uid;
  }
  // An incident's key (uid-class incidents are keyed by user name).
  bool Incident(const StoredIncident& i) const {
    if (i.key_class == "sender") return Sender(i.key);
    return i.key_class == "uid" && !owner.empty() && i.key == owner;
  }
};

bool ParseSubject(const std::string& what, Subject* s, std::ostream& err) {
  const std::string w = Lower(what);
  const size_t at = w.rfind('@');
  s->domain = at == std::string::npos ? w : w.substr(at + 1);
  if (at != std::string::npos) s->email = w;
  const bool bad_domain = s->domain.empty() ||
                          s->domain.find_first_of("/:@ \t") != std::string::npos ||
                          std::any_of(s->domain.begin(), s->domain.end(),
                                      [](unsigned char c) { return c < 0x20 || c == 0x7f; }) ||
                          (at == 0);
  if (bad_domain) {
    err << "info: expected a domain (example.com) or an email address (user@example.com), got \""
        << Printable(what) << "\"\n";
    return false;
  }
  return true;
}

void ShowOwner(const Config& c, Subject* s, std::ostream& out) {
  if (c.whm.token.empty()) {
    out << "  owner: not asked: whm.token is not set in " << c.path
        << " (eximguard needs cPanel's WHM API to know it)\n";
    return;
  }
  WhmSettings settings = c.whm;
  settings.retries = 0;  // an admin is waiting
  WhmClient whm(settings);
  std::string user;
  const WhmResult r = whm.DomainOwner(s->domain, &user);
  if (!r.ok || user.empty()) {
    out << "  owner: unknown (WHM: " << (r.reason.empty() ? "no owner named" : Printable(r.reason))
        << ")\n";
    return;
  }
  s->owner = user;
  s->uid = UidOfUser(user);
  out << "  owner: cPanel user " << Printable(user)
      << (s->uid.empty() ? " (no such user on this host)" : " (uid " + s->uid + ")") << "\n";
}

std::string TableKeyText(KeyClass klass, const std::string& key) {
  return std::string(KeyClassName(klass)) + " " + (klass == KeyClass::kUid ? "uid:" : "") +
         Printable(key);
}

void ShowBlocks(const std::vector<StoredBlock>& blocks, const Subject& s, std::ostream& out) {
  bool any = false;
  for (const StoredBlock& b : blocks) {
    if (!s.Table(b.key_class, b.key)) continue;
    if (!any) out << "  blocked / suspended:\n";
    any = true;
    out << "    " << TableKeyText(b.key_class, b.key) << ": " << b.kind << " since "
        << LocalTimeText(b.since) << " by " << Printable(b.by)
        << (b.reason.empty() ? "" : ": " + Printable(b.reason)) << "\n";
  }
  if (!any) out << "  blocked / suspended: no\n";
}

void ShowIncidents(const std::vector<StoredIncident>& incidents, const Subject& s,
                   std::ostream& out) {
  bool any = false;
  for (const StoredIncident& i : incidents) {
    if (!s.Incident(i)) continue;
    if (!any) out << "  incidents in the last " << kInfoDays << " days:\n";
    any = true;
    out << "    #" << i.id << " " << LocalTimeText(i.time) << " " << i.rule << " " << i.key_class
        << " " << Printable(i.key) << ": " << i.count << "; action " << Printable(i.action) << "\n";
  }
  if (!any) out << "  incidents in the last " << kInfoDays << " days: none\n";
}

void ShowWhitelist(const Config& c, const std::vector<WhitelistEntry>& wl, const Subject& s,
                   std::ostream& out) {
  bool any = false;
  for (const PolicyKey& k : c.whitelist) {
    if (!s.Table(k.klass, k.text)) continue;
    any = true;
    out << "  whitelisted: " << Printable(k.written) << " (in " << Printable(c.path) << ")\n";
  }
  for (const WhitelistEntry& w : wl) {
    PolicyKey k;
    std::string why;
    if (!ParsePolicyKey(w.key, &k, &why) || !s.Table(k.klass, k.text)) continue;
    any = true;
    out << "  whitelisted: " << Printable(w.key) << " (by " << Printable(w.added_by) << " at "
        << LocalTimeText(w.time) << (w.note.empty() ? "" : ": " + Printable(w.note)) << ")\n";
  }
  if (!any) out << "  whitelisted: no\n";
}

void ShowLimits(const Config& c, const std::vector<StoredLimit>& limits, const Subject& s,
                std::ostream& out) {
  const Config effective = WithStoredLimits(c, limits);
  if (!s.email.empty()) {
    PolicyKey key;
    key.klass = KeyClass::kSender;
    key.text = s.email;
    out << "  limit: " << LimitText(LimitFor(effective, key)) << "\n";
  }
  for (const StoredLimit& l : limits) {
    if (l.key.empty() || !s.Table(l.key_class, l.key)) continue;
    out << "  set with `eximguard set`: " << StoredLimitText(l)
        << "; in force: " << LimitText(LimitFor(effective, StoredLimitKey(l))) << "\n";
  }
}

void ShowCounters(const Config& c, const Subject& s, std::ostream& out) {
  std::vector<SlotView> slots;
  std::string error;
  if (!LiveSlots(
          c, [&](const PolicyKey& k) { return s.Table(k.klass, k.text); }, &slots, &error)) {
    out << "  now: shared table: " << Printable(error) << "\n";
    return;
  }
  if (slots.empty()) out << "  now: not counted in the last two hours\n";
  for (const SlotView& v : slots) {
    out << "  now: " << TableKeyText(v.klass, v.key) << ": " << CountersText(v) << "\n";
  }
}

}  // namespace

int InfoVerb(const std::string& config_path, const std::string& what, std::ostream& out,
             std::ostream& err) {
  Subject s;
  if (!ParseSubject(what, &s, err)) return kExitUsage;
  VerbState st;
  if (!LoadVerbState(config_path, &st, err)) return kExitFailure;
  const Config& c = st.config;
  std::vector<StoredBlock> blocks;
  std::vector<StoredIncident> incidents;
  std::vector<WhitelistEntry> wl;
  std::vector<StoredLimit> limits;
  std::string error;
  const int64_t since = static_cast<int64_t>(std::time(nullptr)) - kInfoDays * 86400;
  if (!st.store->ActiveBlocks(&blocks, &error) ||
      !st.store->ListIncidents(since, 0, &incidents, &error) ||
      !st.store->ListWhitelist(&wl, &error) || !st.store->ListLimits(&limits, &error)) {
    err << Printable(error) << "\n";
    return kExitFailure;
  }
  out << Printable(s.email.empty() ? "domain " + s.domain : "address " + s.email) << "\n";
  ShowOwner(c, &s, out);
  ShowBlocks(blocks, s, out);
  ShowIncidents(incidents, s, out);
  ShowWhitelist(c, wl, s, out);
  ShowLimits(c, limits, s, out);
  ShowCounters(c, s, out);
  return kExitOk;
}

}  // namespace eg::sidecar
