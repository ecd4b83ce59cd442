// whm_client.cpp - WhmClient: building WHM API 1 / UAPI requests, the retry loop, reading
// cPanel's answers, the UAPI -> /cpanel bridge fallback and the domain-owner cache.
//
// CONTRACT: see whm_client.h.

#include "whm_client.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>
#include <vector>

#include "http_client.h"
#include "text_escape.h"

namespace eg::sidecar {
namespace {

using Json = nlohmann::json;
using Params = std::vector<std::pair<std::string, std::string>>;

constexpr size_t kMaxReason = 300;
constexpr char kNoToken[] = "whm.token is not set";

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

bool Contains(const std::string& text, std::string_view what) {
  return text.find(what) != std::string::npos;
}

// A JSON scalar as text ("" for null, objects and arrays).
std::string Text(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number_integer()) return std::to_string(j.get<long long>());
  if (j.is_boolean()) return j.get<bool>() ? "1" : "0";
  return "";
}

// metadata.result / status: 1, "1" or true is success; absent gives -1.
int Flag(const Json& object, const char* key) {
  if (!object.is_object() || !object.contains(key)) return -1;
  std::string t = Text(object.at(key));
  if (t == "1") return 1;
  if (t == "0") return 0;
  return -1;
}

std::string Field(const Json& object, const char* key) {
  if (!object.is_object() || !object.contains(key)) return "";
  return Text(object.at(key));
}

// UAPI `errors`: null, a string or an array of strings.
std::string JoinErrors(const Json& errors) {
  if (errors.is_string()) return errors.get<std::string>();
  std::string out;
  if (!errors.is_array()) return out;
  for (const Json& e : errors) {
    std::string t = e.is_string() ? e.get<std::string>()
                                  : e.dump(-1, ' ', false, Json::error_handler_t::replace);
    if (t.empty()) continue;
    if (!out.empty()) out += "; ";
    out += t;
  }
  return out;
}

// What one endpoint said after the retries.
struct Outcome {
  bool have_json = false;  // a 2xx answer that parsed as a JSON object
  Json json;
  long status = 0;  // the last HTTP status (0: none)
  std::string failure;
  bool transient = false;
  int attempts = 0;
};

// How WHM (or UAPI) judged the request, read from an answer.
struct Verdict {
  enum Kind { kOk, kRefused, kUnexpected } kind = kUnexpected;
  std::string reason;
};

Verdict FromMetadata(const Json& j) {
  const Json& meta = j.is_object() && j.contains("metadata") ? j.at("metadata") : Json();
  int result = Flag(meta, "result");
  if (result == 1) return {Verdict::kOk, Field(meta, "reason")};
  if (result == 0) {
    std::string reason = Field(meta, "reason");
    return {Verdict::kRefused, reason.empty() ? "WHM refused without a reason" : reason};
  }
  return {Verdict::kUnexpected, "unexpected answer from WHM (no metadata.result)"};
}

// A UAPI result object {"status":1|0,"errors":[...]}.
Verdict FromUapi(const Json& uapi) {
  int status = Flag(uapi, "status");
  if (status == 1) return {Verdict::kOk, ""};
  if (status == 0) {
    std::string errors = uapi.contains("errors") ? JoinErrors(uapi.at("errors")) : "";
    return {Verdict::kRefused, errors.empty() ? "cPanel refused without a reason" : errors};
  }
  return {Verdict::kUnexpected, "unexpected answer from cPanel (no UAPI status)"};
}

// uapi_cpanel: the WHM envelope's metadata, then data.uapi.
Verdict FromUapiCpanel(const Json& j) {
  Verdict envelope = FromMetadata(j);
  const Json* uapi = nullptr;
  if (j.contains("data") && j.at("data").is_object() && j.at("data").contains("uapi")) {
    uapi = &j.at("data").at("uapi");
  }
  if (envelope.kind == Verdict::kRefused) return envelope;
  if (uapi != nullptr && uapi->is_object()) return FromUapi(*uapi);
  if (envelope.kind == Verdict::kOk) {
    return {Verdict::kUnexpected, "unexpected answer from WHM (no data.uapi)"};
  }
  return envelope;
}

// The /json-api/cpanel bridge: UAPI's shape, else API 2's, else WHM's metadata.
Verdict FromBridge(const Json& j) {
  if (j.contains("result") && j.at("result").is_object() && j.at("result").contains("status")) {
    return FromUapi(j.at("result"));
  }
  if (j.contains("cpanelresult") && j.at("cpanelresult").is_object()) {
    const Json& r = j.at("cpanelresult");
    std::string error = Field(r, "error");
    if (!error.empty()) return {Verdict::kRefused, error};
    const Json& event = r.contains("event") ? r.at("event") : Json();
    if (Flag(event, "result") == 1) return {Verdict::kOk, ""};
    if (Flag(event, "result") == 0) return {Verdict::kRefused, "cPanel refused without a reason"};
  }
  return FromMetadata(j);
}

// True when `text` says the endpoint/function itself does not exist (see the header).
bool SaysMissing(const std::string& text, const std::vector<std::string>& cut) {
  std::string t = Lower(text);
  for (const std::string& c : cut) {
    std::string lc = Lower(c);
    if (lc.empty()) continue;
    size_t pos;
    while ((pos = t.find(lc)) != std::string::npos) t.erase(pos, lc.size());
  }
  if (Contains(t, "unknown app") || Contains(t, "unknown function") ||
      Contains(t, "unknown module")) {
    return true;
  }
  bool names_code = Contains(t, "function") || Contains(t, "module") || Contains(t, "app ") ||
                    Contains(t, "app\"") || Contains(t, "app\u201c");
  if (!names_code) return false;
  for (const char* missing :
       {"does not exist", "doesn't exist", "doesn\u2019t exist", "not found", "no such",
        "could not find", "cannot find", "can't find", "failed to load"}) {
    if (Contains(t, missing)) return true;
  }
  return false;
}

// A refusal that says the asked-for state already holds.
bool SaysAlready(const std::string& reason, bool undo) {
  std::string t = Lower(reason);
  if (Contains(t, "already")) return true;
  return undo &&
         (Contains(t, "not suspended") || Contains(t, "is not held") || Contains(t, "not on hold"));
}

std::string Cap(std::string text) {
  if (text.size() <= kMaxReason) return text;
  size_t cut = kMaxReason;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  return text + "...";
}

class Caller {
 public:
  Caller(const WhmSettings& settings, const WhmClientOptions& options)
      : settings_(settings), options_(options) {}

  // GET /json-api/<function>?[api.version=1&]params, with the retries.
  Outcome Call(const std::string& function, const Params& params, bool api_version) const {
    std::string base = settings_.url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    std::string url = base + "/json-api/" + function;
    char sep = '?';
    if (api_version) {
      url += "?api.version=1";
      sep = '&';
    }
    for (const auto& [name, value] : params) {
      url += sep;
      url += UrlEncode(name) + "=" + UrlEncode(value);
      sep = '&';
    }
    HttpRequest req;
    req.url = url;
    req.headers = {"Authorization: whm " + settings_.user + ":" + settings_.token,
                   "Accept: application/json"};
    uint32_t timeout_ms = std::max<uint32_t>(1, settings_.timeout_seconds) * 1000;
    req.timeout_ms = timeout_ms;
    req.connect_timeout_ms = std::min<uint32_t>(timeout_ms, 5000);
    req.ca_file = settings_.ca_file;
    req.proxy = settings_.proxy;
    req.verify_tls = settings_.verify_tls;
    req.max_body = 4u << 20;

    Outcome out;
    std::chrono::milliseconds delay = std::min(options_.backoff, options_.max_backoff);
    for (uint32_t attempt = 0; attempt <= settings_.retries; ++attempt) {
      if (attempt > 0) {
        std::this_thread::sleep_for(delay);
        delay = std::min(delay * 2, options_.max_backoff);
      }
      ++out.attempts;
      HttpResponse r = HttpSend(req);
      out.status = r.status;
      if (!r.error.empty()) {
        out.transient = true;
        out.failure = "WHM did not answer: " + r.error;
        continue;
      }
      if (r.status >= 500 || r.status == 429) {
        out.transient = true;
        out.failure = "WHM answered HTTP " + std::to_string(r.status);
        continue;
      }
      if (r.status >= 200 && r.status < 300) {
        Json j = Json::parse(r.body, nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
          out.transient = true;
          out.failure =
              "WHM answered something that is not JSON (HTTP " + std::to_string(r.status) + ")";
          continue;
        }
        out.have_json = true;
        out.transient = false;
        out.failure.clear();
        out.json = std::move(j);
        return out;
      }
      out.transient = false;
      if (r.status == 401 || r.status == 403) {
        out.failure = "WHM refused the credentials (HTTP " + std::to_string(r.status) + ")";
      } else {
        out.failure = "WHM answered HTTP " + std::to_string(r.status);
      }
      Json j = Json::parse(r.body, nullptr, false);
      if (!j.is_discarded()) {
        Verdict v = FromMetadata(j);
        if (v.kind == Verdict::kRefused) out.failure += ": " + v.reason;
      }
      return out;
    }
    return out;
  }

  // The token never leaves in a reason; reasons are capped.
  WhmResult Finish(WhmResult r) const {
    r.reason = Cap(ScrubSecrets(std::move(r.reason), {settings_.token}));
    return r;
  }

 private:
  const WhmSettings& settings_;
  const WhmClientOptions& options_;
};

WhmResult Failed(std::string reason, bool transient, int attempts) {
  WhmResult r;
  r.reason = std::move(reason);
  r.transient = transient;
  r.attempts = attempts;
  return r;
}

// A verdict as a result (refusals that say "already" count as ok).
WhmResult FromVerdict(const Verdict& v, bool undo, int attempts) {
  WhmResult r;
  r.attempts = attempts;
  r.reason = v.reason;
  if (v.kind == Verdict::kOk) {
    r.ok = true;
  } else if (v.kind == Verdict::kRefused && SaysAlready(v.reason, undo)) {
    r.ok = true;
    r.already = true;
  }
  return r;
}

}  // namespace

std::string_view MailboxFunction(MailboxAction action) {
  switch (action) {
    case MailboxAction::kSuspendOutgoing:
      return "suspend_outgoing";
    case MailboxAction::kUnsuspendOutgoing:
      return "unsuspend_outgoing";
    case MailboxAction::kHoldOutgoing:
      return "hold_outgoing";
    case MailboxAction::kReleaseOutgoing:
      return "release_outgoing";
    case MailboxAction::kSuspendLogin:
      return "suspend_login";
    case MailboxAction::kUnsuspendLogin:
      return "unsuspend_login";
  }
  return "";
}

std::string_view AccountFunction(AccountAction action) {
  switch (action) {
    case AccountAction::kSuspendOutgoing:
      return "suspend_outgoing_email";
    case AccountAction::kUnsuspendOutgoing:
      return "unsuspend_outgoing_email";
    case AccountAction::kHoldOutgoing:
      return "hold_outgoing_email";
    case AccountAction::kReleaseOutgoing:
      return "release_outgoing_email";
    case AccountAction::kSuspend:
      return "suspendacct";
    case AccountAction::kUnsuspend:
      return "unsuspendacct";
  }
  return "";
}

WhmClient::WhmClient(const WhmSettings& settings, WhmClientOptions options)
    : settings_(settings), options_(options) {}

void WhmClient::ClearOwnerCache() {
  std::lock_guard<std::mutex> lock(mu_);
  owners_.clear();
}

WhmResult WhmClient::DomainOwner(const std::string& domain, std::string* user) {
  Caller caller(settings_, options_);
  if (settings_.token.empty()) return Failed(kNoToken, false, 0);
  std::string key = Lower(domain);
  while (!key.empty() && key.back() == '.') key.pop_back();
  if (key.empty()) return Failed("no domain given", false, 0);
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = owners_.find(key);
    if (it != owners_.end()) {
      if (it->second.expires > now) {
        *user = it->second.user;
        WhmResult r;
        r.ok = true;
        r.reason = "cached";
        return r;
      }
      owners_.erase(it);
    }
  }
  auto remember = [&](const std::string& owner, int attempts) {
    std::lock_guard<std::mutex> lock(mu_);
    if (owners_.size() >= kWhmOwnerCacheMax) {
      auto t = std::chrono::steady_clock::now();
      std::erase_if(owners_, [t](const auto& kv) { return kv.second.expires <= t; });
      if (owners_.size() >= kWhmOwnerCacheMax) owners_.clear();
    }
    owners_[key] = CachedOwner{owner, std::chrono::steady_clock::now() + options_.owner_ttl};
    *user = owner;
    WhmResult r;
    r.ok = true;
    r.attempts = attempts;
    return r;
  };

  Outcome first = caller.Call("getdomainowner", {{"domain", key}}, true);
  int attempts = first.attempts;
  if (!first.have_json && first.transient) {
    return caller.Finish(Failed(first.failure, true, attempts));
  }
  std::string first_note = first.failure;
  if (first.have_json) {
    Verdict v = FromMetadata(first.json);
    if (v.kind == Verdict::kOk && first.json.contains("data")) {
      std::string owner = Field(first.json.at("data"), "user");
      if (!owner.empty()) return remember(owner, attempts);
    }
    first_note = v.kind == Verdict::kOk ? "getdomainowner names nobody" : v.reason;
  }

  Outcome second = caller.Call("domainuserdata", {{"domain", key}}, true);
  attempts += second.attempts;
  if (!second.have_json) {
    return caller.Finish(Failed(second.failure, second.transient, attempts));
  }
  Verdict v = FromMetadata(second.json);
  if (v.kind == Verdict::kOk && second.json.contains("data") &&
      second.json.at("data").is_object() && second.json.at("data").contains("userdata")) {
    std::string owner = Field(second.json.at("data").at("userdata"), "user");
    if (!owner.empty()) return remember(owner, attempts);
  }
  std::string note = v.kind == Verdict::kOk ? "domainuserdata names nobody" : v.reason;
  return caller.Finish(Failed(
      "no cPanel account owns " + key + " (" + first_note + "; " + note + ")", false, attempts));
}

WhmResult WhmClient::Mailbox(MailboxAction action, const std::string& cpanel_user,
                             const std::string& email) {
  Caller caller(settings_, options_);
  if (settings_.token.empty()) return Failed(kNoToken, false, 0);
  if (cpanel_user.empty() || email.empty())
    return Failed("no cPanel user or mailbox given", false, 0);
  std::string function(MailboxFunction(action));
  bool undo = action == MailboxAction::kUnsuspendOutgoing ||
              action == MailboxAction::kReleaseOutgoing || action == MailboxAction::kUnsuspendLogin;
  std::vector<std::string> cut = {email, cpanel_user};

  Outcome first = caller.Call("uapi_cpanel",
                              {{"cpanel.user", cpanel_user},
                               {"cpanel.module", "Email"},
                               {"cpanel.function", function},
                               {"email", email}},
                              true);
  int attempts = first.attempts;
  std::string missing_note;
  if (!first.have_json) {
    if (first.transient || first.status != 404) {
      return caller.Finish(Failed(first.failure, first.transient, attempts));
    }
    missing_note = first.failure;
  } else {
    Verdict v = FromUapiCpanel(first.json);
    if (v.kind != Verdict::kRefused || !SaysMissing(v.reason, cut)) {
      return caller.Finish(FromVerdict(v, undo, attempts));
    }
    missing_note = v.reason;
  }

  Outcome second = caller.Call("cpanel",
                               {{"cpanel_jsonapi_user", cpanel_user},
                                {"cpanel_jsonapi_apiversion", "3"},
                                {"cpanel_jsonapi_module", "Email"},
                                {"cpanel_jsonapi_func", function},
                                {"email", email}},
                               false);
  attempts += second.attempts;
  WhmResult r;
  if (!second.have_json) {
    r = Failed(second.failure, second.transient, attempts);
  } else {
    r = FromVerdict(FromBridge(second.json), undo, attempts);
  }
  r.legacy = true;
  if (!r.ok && !r.transient) {
    r.reason = "uapi_cpanel: " + missing_note + "; cpanel bridge: " + r.reason;
  }
  return caller.Finish(std::move(r));
}

WhmResult WhmClient::Account(AccountAction action, const std::string& user,
                             const std::string& reason) {
  Caller caller(settings_, options_);
  if (settings_.token.empty()) return Failed(kNoToken, false, 0);
  if (user.empty()) return Failed("no cPanel user given", false, 0);
  Params params = {{"user", user}};
  if (action == AccountAction::kSuspend && !reason.empty()) params.emplace_back("reason", reason);
  bool undo = action == AccountAction::kUnsuspendOutgoing ||
              action == AccountAction::kReleaseOutgoing || action == AccountAction::kUnsuspend;
  Outcome out = caller.Call(std::string(AccountFunction(action)), params, true);
  if (!out.have_json) return caller.Finish(Failed(out.failure, out.transient, out.attempts));
  return caller.Finish(FromVerdict(FromMetadata(out.json), undo, out.attempts));
}

}  // namespace eg::sidecar
