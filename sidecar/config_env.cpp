// config_env.cpp - see config_env.h. Names and meanings were learnt from eximmon's README,
// config.go and bot code (github.com/u007/eximmon and its fork sadewadee/mailtracker).

#include "config_env.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace eg::sidecar {

const EximmonSetting kEximmonSettings[13] = {
    {"WHM_API_HOST", "whm.url", EnvKind::kWhmHost,
     "WHM host name or address; eximguard calls https://HOST:2087"},
    {"API_TOKEN", "whm.token", EnvKind::kText, "WHM API token (root)"},
    {"MAX_PER_MIN", "limits.sender.per_minute", EnvKind::kCount,
     "recipients per sending account per minute"},
    {"MAX_PER_HOUR", "limits.sender.per_hour", EnvKind::kCount,
     "recipients per sending account per hour"},
    {"NOTIFY_EMAIL", "notify.email", EnvKind::kStringList,
     "address(es) notices are mailed to, comma-separated"},
    {"EXIM_LOG", "exim_log", EnvKind::kText, "Exim's main log"},
    {"TELEGRAM_BOT_TOKEN", "telegram.token", EnvKind::kText, "Telegram bot token"},
    {"TELEGRAM_ADMIN_IDS", "telegram.admin_ids", EnvKind::kIntList,
     "Telegram user ids allowed to give commands, comma-separated"},
    {"TELEGRAM_NOTIFY_CHAT_ID", "telegram.notify_chat_id", EnvKind::kText,
     "Telegram chat that gets notices"},
    {"SLACK_BOT_TOKEN", "slack.bot_token", EnvKind::kText, "Slack bot token (xoxb-...)"},
    {"SLACK_APP_TOKEN", "slack.app_token", EnvKind::kText,
     "Slack app-level token (xapp-..., Socket Mode; not an eximmon setting)"},
    {"SLACK_ADMIN_IDS", "slack.admin_ids", EnvKind::kStringList,
     "Slack user ids allowed to give commands, comma-separated"},
    {"SLACK_NOTIFY_CHANNEL", "slack.notify_channel", EnvKind::kText,
     "Slack channel that gets notices"},
};

const EximmonIgnored kEximmonIgnored[1] = {
    {"PREFER_MODERN_UAPI",
     "eximguard always calls WHM API 1 on port 2087 with the root token, UAPI through WHM for "
     "mailboxes; there is no choice to make"},
};

namespace {

bool SameName(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// The comma-separated entries of `text`, trimmed, empty ones dropped.
std::vector<std::string_view> SplitList(std::string_view text) {
  std::vector<std::string_view> out;
  while (true) {
    const size_t comma = text.find(',');
    const std::string_view entry = Trim(text.substr(0, comma));
    if (!entry.empty()) out.push_back(entry);
    if (comma == std::string_view::npos) return out;
    text.remove_prefix(comma + 1);
  }
}

// `text` as an integer if it is one (an optional '-' only when `negative`), else its string.
nlohmann::json Integer(std::string_view text, bool negative) {
  const std::string_view t = Trim(text);
  const bool minus = !t.empty() && t[0] == '-';
  const std::string_view digits = minus ? t.substr(1) : t;
  const bool plain = !digits.empty() && (negative || !minus) &&
                     std::all_of(digits.begin(), digits.end(), [](char c) {
                       return std::isdigit(static_cast<unsigned char>(c));
                     });
  if (plain) {
    if (minus) {
      int64_t n = 0;
      const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
      if (ec == std::errc() && end == t.data() + t.size()) return n;
    } else {
      uint64_t n = 0;
      const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
      if (ec == std::errc() && end == t.data() + t.size()) return n;
    }
  }
  return std::string(text);
}

// The JSON object at `key_path`'s parent, created as needed; nullptr if something that is not
// an object is in the way.
template <class J>
J* Parent(J& document, std::string_view key_path, std::string* leaf) {
  J* node = &document;
  while (true) {
    const size_t dot = key_path.find('.');
    if (!node->is_object()) return nullptr;
    if (dot == std::string_view::npos) {
      *leaf = std::string(key_path);
      return node;
    }
    const std::string segment(key_path.substr(0, dot));
    if (!node->contains(segment)) (*node)[segment] = J::object();
    node = &(*node)[segment];
    key_path.remove_prefix(dot + 1);
  }
}

template <class J>
void Apply(J& document, const EnvLookup& getenv, std::vector<std::string>* applied) {
  if (!document.is_object() || !getenv) return;
  for (const EximmonSetting& s : kEximmonSettings) {
    const char* value = getenv(s.name);
    if (value == nullptr || *value == '\0') continue;
    std::string leaf;
    J* parent = Parent(document, s.key_path, &leaf);
    if (parent == nullptr) continue;
    (*parent)[leaf] = J(ConvertEnvValue(s.kind, value));
    if (applied != nullptr) applied->push_back(s.name);
  }
}

}  // namespace

const EximmonSetting* FindEximmonSetting(std::string_view name) {
  for (const EximmonSetting& s : kEximmonSettings) {
    if (SameName(name, s.name)) return &s;
  }
  return nullptr;
}

const EximmonIgnored* FindEximmonIgnored(std::string_view name) {
  for (const EximmonIgnored& i : kEximmonIgnored) {
    if (SameName(name, i.name)) return &i;
  }
  return nullptr;
}

std::string WhmUrlFromHost(std::string_view host) {
  const std::string_view h = Trim(host);
  if (h.find("://") != std::string_view::npos) return std::string(h);
  const size_t colons = static_cast<size_t>(std::count(h.begin(), h.end(), ':'));
  if (!h.empty() && h.front() == '[') {  // [v6] or [v6]:port
    return "https://" + std::string(h) + (h.back() == ']' ? ":2087" : "");
  }
  if (colons > 1) return "https://[" + std::string(h) + "]:2087";  // a bare IPv6 address
  if (colons == 1) return "https://" + std::string(h);             // host:port, kept
  return "https://" + std::string(h) + ":2087";
}

nlohmann::json ConvertEnvValue(EnvKind kind, std::string_view text) {
  switch (kind) {
    case EnvKind::kText:
      return std::string(text);
    case EnvKind::kCount:
      return Integer(text, false);
    case EnvKind::kWhmHost:
      return WhmUrlFromHost(text);
    case EnvKind::kIntList: {
      nlohmann::json list = nlohmann::json::array();
      for (std::string_view entry : SplitList(text)) list.push_back(Integer(entry, true));
      return list;
    }
    case EnvKind::kStringList: {
      nlohmann::json list = nlohmann::json::array();
      for (std::string_view entry : SplitList(text)) list.push_back(std::string(entry));
      return list;
    }
  }
  return std::string(text);
}

void ApplyEnvOverrides(nlohmann::json& document, const EnvLookup& getenv,
                       std::vector<std::string>* applied) {
  Apply(document, getenv, applied);
}

void ApplyEnvOverrides(nlohmann::ordered_json& document, const EnvLookup& getenv,
                       std::vector<std::string>* applied) {
  Apply(document, getenv, applied);
}

void NoteKeySource(std::string_view key_path, const std::string& source,
                   std::vector<std::string>* errors) {
  const std::string needle = ": " + std::string(key_path);
  for (std::string& e : *errors) {
    const size_t at = e.find(needle);
    const size_t after = at + needle.size();
    if (at == std::string::npos || after >= e.size() || (e[after] != ':' && e[after] != '['))
      continue;
    e += " (from " + source + ")";
  }
}

void NoteEnvSources(const std::vector<std::string>& applied, std::vector<std::string>* errors) {
  for (const std::string& name : applied) {
    if (const EximmonSetting* s = FindEximmonSetting(name))
      NoteKeySource(s->key_path, "environment variable " + name, errors);
  }
}

}  // namespace eg::sidecar
