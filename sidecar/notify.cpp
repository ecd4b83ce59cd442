// notify.cpp - notices and their rendering per channel (notify.h). Sending: notify_send.cpp;
// the Notifier: notifier.cpp.

#include "notify.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>
#include <utility>

#include "engine.h"
#include "text_escape.h"
#include "time_text.h"
#include "users.h"

namespace eg::sidecar {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kMaxField = 600;       // bytes of one field's value
constexpr size_t kMaxListItems = 20;    // items of a list field before "(+N more)"
constexpr size_t kMaxKeysField = 2000;  // a digest's keys
constexpr size_t kMaxLine = 500;        // bytes of one evidence line
constexpr size_t kMaxEmailLine = 900;   // SMTP allows 998

std::string StringField(const Json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t IntField(const Json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_unsigned()) return static_cast<int64_t>(it->get<uint64_t>());
  return 0;
}

std::vector<std::string> StringsField(const Json& j, const char* name) {
  std::vector<std::string> out;
  auto it = j.find(name);
  if (it == j.end() || !it->is_array()) return out;
  for (const Json& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::string JoinList(const std::vector<std::string>& items, const char* sep, size_t max_items) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < max_items; ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  if (items.size() > max_items) {
    out += " (+" + std::to_string(items.size() - max_items) + " more)";
  }
  return out;
}

// ---- layout: what a notice shows, the same on every channel ------------------------------------

struct Part {
  std::string label;
  std::string value;  // raw, already cut
  bool code = false;  // a key, a path, a command: monospace
};

struct Layout {
  std::string title;
  std::vector<Part> parts;
  std::string pre;  // evidence lines, raw, already cut
};

// Cuts `value` to fit both its own cap and what is left of the message.
class Budget {
 public:
  explicit Budget(size_t total) : left_(total) {}
  std::string Take(std::string_view value, size_t cap, size_t overhead = 0) {
    const size_t room = left_ > overhead ? left_ - overhead : 0;
    std::string v = CutUtf8(value, std::min(cap, room));
    if (v.size() < value.size() && v.size() >= 3) {
      v = CutUtf8(v, v.size() - 3) + "...";
    }
    left_ -= std::min(left_, v.size() + overhead);
    return v;
  }
  size_t left() const { return left_; }

 private:
  size_t left_;
};

Layout LayoutOf(const Notice& n) {
  Layout l;
  Budget budget(kMaxMessageChars - 40);  // room for markup words and the "cut" line
  // Every outside string on one line (Printable): a subject with a newline cannot add a line
  // of its own ("Undo: ..."). The undo line is ShellWord's, already free of control characters,
  // and is not escaped again (a doubled backslash would change the command).
  l.title = budget.Take(
      Printable("eximguard on " + (n.host.empty() ? std::string("?") : n.host) + ": " + n.title),
      300);
  auto add = [&](const char* label, const std::string& value, bool code, size_t cap = kMaxField,
                 bool escape = true) {
    if (value.empty() || budget.left() < 40) return;
    Part p{label,
           budget.Take(escape ? Printable(value) : NoControls(value, false), cap,
                       std::string_view(label).size() + 4),
           code};
    l.parts.push_back(std::move(p));
  };
  add("Key", n.key, true);
  if (!n.key_class.empty()) add("Class", n.key_class, false);
  if (n.kind == NoticeKind::kIncident && (n.count > 0 || n.threshold > 0)) {
    add("Count", std::to_string(n.count) + " (threshold " + std::to_string(n.threshold) + ")",
        false);
  }
  if (n.time > 0) {
    add("Time", UtcTimeText(n.time) + (n.id > 0 ? " (incident #" + std::to_string(n.id) + ")" : ""),
        false);
  }
  add("Action", n.action, false);
  add("IPs", JoinList(n.ips, ", ", kMaxListItems), false);
  add("Scripts", JoinList(n.scripts, ", ", kMaxListItems), true);
  add("Subjects", JoinList(n.subjects, " | ", kMaxListItems), false);
  add("Undo", n.undo, true, kMaxField, false);
  if (!n.rule_counts.empty()) {
    std::string rules;
    for (const auto& [rule, count] : n.rule_counts) {
      if (!rules.empty()) rules += ", ";
      rules += rule + " " + std::to_string(count);
    }
    add("Rules", rules, false);
  }
  if (!n.keys.empty()) add("Keys", JoinList(n.keys, ", ", n.keys.size()), false, kMaxKeysField);
  std::string pre;
  for (const std::string& line : n.lines) {
    if (budget.left() < 20) break;
    std::string cut = budget.Take(Printable(line), kMaxLine, 1);
    pre += cut + "\n";
  }
  if (!pre.empty()) pre.pop_back();
  l.pre = std::move(pre);
  return l;
}

std::string SlackCode(std::string_view text) {
  std::string t(text);
  std::replace(t.begin(), t.end(), '`', '\'');  // a backtick would end the code span
  return EscapeMrkdwn(t);
}

// ---- email -------------------------------------------------------------------------------------

std::string Base64(std::string_view in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint32_t{static_cast<unsigned char>(in[i])} << 16) |
                       (uint32_t{static_cast<unsigned char>(in[i + 1])} << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint32_t{static_cast<unsigned char>(in[i])} << 16;
    if (i + 1 < in.size()) v |= uint32_t{static_cast<unsigned char>(in[i + 1])} << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// A header value: one line, no control characters; RFC 2047 encoded words when not ASCII.
std::string HeaderValue(std::string_view text, size_t max_bytes) {
  const std::string v = CutUtf8(NoControls(text, false), max_bytes);
  const bool ascii =
      std::all_of(v.begin(), v.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) return v;
  std::string out;
  size_t pos = 0;
  while (pos < v.size()) {
    const std::string chunk = CutUtf8(std::string_view(v).substr(pos), 45);
    if (chunk.empty()) break;  // cannot happen with valid cuts; be safe
    if (!out.empty()) out += "\n ";
    out += "=?UTF-8?B?" + Base64(chunk) + "?=";
    pos += chunk.size();
  }
  return out;
}

std::string RfcDate(int64_t unix_time) {
  static const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const time_t t = static_cast<time_t>(unix_time);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday % 7],
           tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
           tm.tm_sec);
  return buf;
}

}  // namespace

std::string NoControls(std::string_view text, bool keep_newlines) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n' && keep_newlines) {
      out += '\n';
    } else if (c < 0x20 && c != '\t') {
      out += ' ';
    } else if (c == 0x7f) {
      out += ' ';
    } else {
      out += ch;
    }
  }
  return out;
}

// ---- notices -----------------------------------------------------------------------------------

const char* NoticeKindName(NoticeKind kind) {
  switch (kind) {
    case NoticeKind::kIncident:
      return "incident";
    case NoticeKind::kAction:
      return "action";
    case NoticeKind::kDigest:
      return "digest";
    case NoticeKind::kTest:
      return "test";
  }
  return "?";
}

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return NoControls(buf, false);
}

Notice NoticeFromIncident(const Json& j, const std::string& host) {
  Notice n;
  n.kind = NoticeKind::kIncident;
  n.host = host.empty() ? HostName() : host;
  n.key = StringField(j, "key");
  n.key_class = StringField(j, "class");
  n.rule = StringField(j, "rule");
  n.id = IntField(j, "id");
  n.time = IntField(j, "time");
  n.count = static_cast<uint64_t>(std::max<int64_t>(0, IntField(j, "count")));
  n.threshold = static_cast<uint64_t>(std::max<int64_t>(0, IntField(j, "threshold")));
  n.action = StringField(j, "action");
  n.ips = StringsField(j, "ips");
  n.scripts = StringsField(j, "scripts");
  n.subjects = StringsField(j, "subjects");
  n.lines = StringsField(j, "lines");
  n.title = (n.rule.empty() ? std::string("incident") : n.rule) + ": " + n.key;
  if (n.action == "block" && !n.key.empty()) {
    std::string written = n.key;
    if (n.key_class == "uid") {
      const std::string uid = UidOfUser(n.key);
      written = uid.empty() ? "" : "uid:" + uid;
    }
    if (!written.empty()) n.undo = EximguardCommand("unsuspend", written);
  }
  return n;
}

Notice NoticeFromHandled(const HandledIncident& handled, const std::string& host) {
  Json j = IncidentToJson(handled.incident);
  j["id"] = handled.id;
  j["action"] = handled.action;
  return NoticeFromIncident(j, host);
}

Notice MakeDigest(const std::vector<Notice>& notices, uint32_t seconds, const std::string& host) {
  Notice d;
  d.kind = NoticeKind::kDigest;
  d.host = host.empty() ? HostName() : host;
  d.title = std::to_string(notices.size()) + (notices.size() == 1 ? " notice" : " notices") +
            " in the last " + std::to_string(seconds) + " s (a flood: sent as one digest)";
  std::map<std::string, size_t> rule_index;
  std::set<std::string> seen_keys;
  for (const Notice& n : notices) {
    const std::string rule = n.rule.empty() ? NoticeKindName(n.kind) : n.rule;
    auto [it, inserted] = rule_index.emplace(rule, d.rule_counts.size());
    if (inserted) d.rule_counts.emplace_back(rule, 0);
    ++d.rule_counts[it->second].second;
    if (!n.key.empty() && seen_keys.insert(n.key).second) d.keys.push_back(n.key);
    std::string line = rule + " " + (n.key.empty() ? n.title : n.key);
    if (n.count > 0) line += " " + std::to_string(n.count) + "/" + std::to_string(n.threshold);
    if (!n.action.empty()) line += " -> " + n.action;
    d.lines.push_back(std::move(line));
  }
  return d;
}

// ---- rendering ---------------------------------------------------------------------------------

std::string EscapeHtml(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string EscapeMrkdwn(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Escape(Markup markup, std::string_view text) {
  switch (markup) {
    case Markup::kHtml:
      return EscapeHtml(text);
    case Markup::kMrkdwn:
      return EscapeMrkdwn(text);
    case Markup::kPlain:
      break;
  }
  return std::string(text);
}

std::string CutUtf8(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t n = max_bytes;
  // Back off continuation bytes (10xxxxxx) so the cut does not split a character.
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return std::string(text.substr(0, n));
}

std::string PreBlock(Markup markup, std::string_view text, size_t max_chars) {
  std::string body(text);
  while (!body.empty() && (body.back() == '\n' || body.back() == ' ')) body.pop_back();
  if (body.empty()) body = "(no output)";
  const size_t room = max_chars > 60 ? max_chars - 60 : max_chars / 2;
  if (body.size() > room) {
    std::string cut = CutUtf8(body, room);
    const size_t nl = cut.rfind('\n');
    if (nl != std::string::npos && nl > room * 3 / 4) cut.resize(nl);
    body = cut + "\n(cut: " + std::to_string(text.size() - cut.size()) + " more bytes)";
  }
  switch (markup) {
    case Markup::kHtml:
      return "<pre>" + EscapeHtml(body) + "</pre>";
    case Markup::kMrkdwn:
      return "```\n" + EscapeMrkdwn(body) + "\n```";
    case Markup::kPlain:
      break;
  }
  return body;
}

std::string RenderTelegram(const Notice& notice) {
  const Layout l = LayoutOf(notice);
  std::string out = "<b>" + EscapeHtml(l.title) + "</b>\n";
  for (const Part& p : l.parts) {
    out += "<b>" + EscapeHtml(p.label) + ":</b> ";
    out += p.code ? "<code>" + EscapeHtml(p.value) + "</code>" : EscapeHtml(p.value);
    out += "\n";
  }
  if (!l.pre.empty()) out += "<pre>" + EscapeHtml(l.pre) + "</pre>\n";
  out.pop_back();
  return out;
}

std::string RenderSlack(const Notice& notice) {
  const Layout l = LayoutOf(notice);
  std::string out = "*" + EscapeMrkdwn(l.title) + "*\n";
  for (const Part& p : l.parts) {
    out += "*" + EscapeMrkdwn(p.label) + ":* ";
    out += p.code ? "`" + SlackCode(p.value) + "`" : EscapeMrkdwn(p.value);
    out += "\n";
  }
  if (!l.pre.empty()) out += "```\n" + EscapeMrkdwn(l.pre) + "\n```\n";
  out.pop_back();
  return out;
}

std::string RenderText(const Notice& notice) {
  const Layout l = LayoutOf(notice);
  std::string out = l.title + "\n\n";
  for (const Part& p : l.parts) out += p.label + ": " + p.value + "\n";
  if (!l.pre.empty()) {
    out += "\n";
    size_t start = 0;
    while (start <= l.pre.size()) {
      const size_t end = std::min(l.pre.find('\n', start), l.pre.size());
      out += "  " + l.pre.substr(start, end - start) + "\n";
      start = end + 1;
    }
  }
  return out;
}

Json NoticeToJson(const Notice& n) {
  Json j;
  j["kind"] = NoticeKindName(n.kind);
  j["host"] = n.host;
  j["title"] = n.title;
  if (n.kind == NoticeKind::kDigest) {
    Json rules = Json::object();
    for (const auto& [rule, count] : n.rule_counts) rules[rule] = count;
    j["rules"] = rules;
    j["keys"] = n.keys;
  } else {
    j["key"] = n.key;
    j["class"] = n.key_class;
    j["rule"] = n.rule;
    j["id"] = n.id;
    j["time"] = n.time;
    j["count"] = n.count;
    j["threshold"] = n.threshold;
    j["action"] = n.action;
    j["ips"] = n.ips;
    j["scripts"] = n.scripts;
    j["subjects"] = n.subjects;
    j["undo"] = n.undo;
  }
  j["lines"] = n.lines;
  return j;
}

std::string RenderEmail(const Notice& notice, const NotifySettings& settings, int64_t now_unix) {
  const std::string host = notice.host.empty() ? HostName() : notice.host;
  const std::string from = settings.from.empty() ? "eximguard@" + host : settings.from;
  std::string to;
  for (const std::string& r : settings.email) to += (to.empty() ? "" : ", ") + r;
  std::string m;
  m += "From: eximguard <" + HeaderValue(from, 200) + ">\n";
  m += "To: " + HeaderValue(to, 900) + "\n";
  m += "Subject: " + HeaderValue("[eximguard " + host + "] " + notice.title, 150) + "\n";
  m += "Date: " + RfcDate(now_unix) + "\n";
  m += "MIME-Version: 1.0\n";
  m += "Content-Type: text/plain; charset=utf-8\n";
  m += "Content-Transfer-Encoding: 8bit\n";
  m += "Auto-Submitted: auto-generated\n";
  m += std::string("X-Eximguard-Kind: ") + NoticeKindName(notice.kind) + "\n";
  m += "\n";
  const std::string body = NoControls(RenderText(notice), true);
  size_t start = 0;
  while (start < body.size()) {
    const size_t end = std::min(body.find('\n', start), body.size());
    m += CutUtf8(std::string_view(body).substr(start, end - start), kMaxEmailLine) + "\n";
    start = end + 1;
  }
  m += "-- \neximguard on " + Printable(host) + "\n";
  return m;
}

}  // namespace eg::sidecar
