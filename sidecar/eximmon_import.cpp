// eximmon_import.cpp - `eximguard import-eximmon` (eximmon_import.h).

#include "eximmon_import.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>

#include "config.h"
#include "config_env.h"
#include "verbs.h"

namespace eg::sidecar {
namespace {

using Json = nlohmann::json;
using Ordered = nlohmann::ordered_json;

constexpr size_t kMaxFileBytes = 1 << 20;

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Sets `key_path` (dotted) in `ours`, creating the objects on the way.
void Set(Ordered* ours, std::string_view key_path, Ordered value) {
  Ordered* node = ours;
  while (true) {
    const size_t dot = key_path.find('.');
    if (dot == std::string_view::npos) {
      (*node)[std::string(key_path)] = std::move(value);
      return;
    }
    node = &(*node)[std::string(key_path.substr(0, dot))];
    key_path.remove_prefix(dot + 1);
  }
}

// eximmon's value for `s` as ours: strings convert as environment variables do; numbers are
// taken as the text they would be in the environment; lists entry by entry; anything else as is.
Json Convert(const EximmonSetting& s, const Json& v) {
  const bool list = s.kind == EnvKind::kIntList || s.kind == EnvKind::kStringList;
  if (v.is_string()) return ConvertEnvValue(s.kind, v.get<std::string>());
  if (v.is_number_integer() && s.kind == EnvKind::kCount) return v;
  if (v.is_number_integer())
    return ConvertEnvValue(s.kind, v.dump(-1, ' ', false, Json::error_handler_t::replace));
  if (v.is_array() && list) {
    Json out = Json::array();
    for (const Json& entry : v) {
      if (entry.is_string() || entry.is_number_integer()) {
        const std::string text = entry.is_string()
                                     ? entry.get<std::string>()
                                     : entry.dump(-1, ' ', false, Json::error_handler_t::replace);
        for (const Json& converted : ConvertEnvValue(s.kind, text)) out.push_back(converted);
      } else {
        out.push_back(entry);
      }
    }
    return out;
  }
  return v;
}

const char* DefaultOf(const EximmonSetting& s) {
  return std::strcmp(s.key_path, "limits.sender.per_minute") == 0 ? "8 per minute" : "100 per hour";
}

// Reads a regular file of at most kMaxFileBytes; "" and `why` on failure.
bool ReadSmallFile(const std::string& path, std::string* text, std::string* why) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    *why = std::string("cannot open: ") + std::strerror(errno);
    return false;
  }
  struct stat st {};
  bool ok = fstat(fd, &st) == 0;
  if (!ok) {
    *why = std::string("cannot stat: ") + std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    *why = "not a regular file";
    ok = false;
  }
  while (ok) {
    char buf[8192];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *why = std::string("cannot read: ") + std::strerror(errno);
      ok = false;
    }
    if (n <= 0) break;
    text->append(buf, static_cast<size_t>(n));
    if (text->size() > kMaxFileBytes) {
      *why = "larger than 1 MiB";
      ok = false;
    }
  }
  close(fd);
  return ok;
}

bool WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Writes `text` to `path` with mode 0600: a new file (O_EXCL), or with `replace` a temporary
// file next to it renamed over it. "" or the reason.
std::string WriteConfigFile(const std::string& path, const std::string& text, bool replace) {
  std::string target = path;
  if (replace) {
    target = path + ".import-XXXXXX";
    const int fd = mkstemp(target.data());
    if (fd < 0) return std::string("cannot create a file next to it: ") + std::strerror(errno);
    close(fd);
  }
  const int flags = O_WRONLY | O_CLOEXEC | O_NOFOLLOW | (replace ? O_TRUNC : O_CREAT | O_EXCL);
  const int fd = open(target.c_str(), flags, 0600);
  if (fd < 0) {
    const std::string why = std::strerror(errno);
    if (replace) unlink(target.c_str());
    return "cannot create: " + why;
  }
  bool ok = fchmod(fd, 0600) == 0 && WriteAll(fd, text) && fsync(fd) == 0;
  std::string why = ok ? "" : std::string("cannot write: ") + std::strerror(errno);
  if (close(fd) != 0 && ok) {
    ok = false;
    why = std::string("cannot write: ") + std::strerror(errno);
  }
  if (ok && replace && rename(target.c_str(), path.c_str()) != 0) {
    ok = false;
    why = std::string("cannot replace it: ") + std::strerror(errno);
  }
  if (!ok) unlink(target.c_str());
  return why;
}

}  // namespace

bool EximmonToConfig(const Json& eximmon, Ordered* ours, std::vector<std::string>* notes,
                     std::string* error) {
  if (!eximmon.is_object()) {
    *error = "expected a JSON object at the top level (eximmon's .eximmon.conf)";
    return false;
  }
  std::map<std::string, std::string> by_name;  // uppercased -> as written
  for (const auto& [key, value] : eximmon.items()) {
    auto [it, inserted] = by_name.emplace(Upper(key), key);
    if (!inserted) {
      *error = "\"" + it->second + "\" and \"" + key + "\" are the same eximmon setting";
      return false;
    }
  }
  *ours = Ordered::object();
  bool whm = false;
  bool slack_bot = false;
  bool slack_app = false;
  for (const EximmonSetting& s : kEximmonSettings) {
    const auto it = by_name.find(s.name);
    if (it == by_name.end()) continue;
    const std::string& key = it->second;
    const Json& v = eximmon.at(key);
    if (v.is_null() || v == "") continue;  // unset in eximmon
    Json value = Convert(s, v);
    if (s.kind == EnvKind::kCount && value == 0) {
      notes->push_back("not carried over: " + key +
                       " (0 is not a limit in eximmon; in eximguard 0 means unlimited, so the "
                       "default, " +
                       DefaultOf(s) + ", stays)");
      continue;
    }
    if ((s.kind == EnvKind::kIntList || s.kind == EnvKind::kStringList) && value.is_array() &&
        value.empty()) {
      continue;  // " , " is unset too
    }
    Set(ours, s.key_path, Ordered(value));
    whm = whm || std::strncmp(s.key_path, "whm.", 4) == 0;
    slack_bot = slack_bot || std::strcmp(s.key_path, "slack.bot_token") == 0;
    slack_app = slack_app || std::strcmp(s.key_path, "slack.app_token") == 0;
  }
  for (const auto& [key, value] : eximmon.items()) {
    if (FindEximmonSetting(key) != nullptr) continue;
    const EximmonIgnored* ignored = FindEximmonIgnored(key);
    notes->push_back("not carried over: " + key + " (" +
                     (ignored ? ignored->why : "not an eximmon setting eximguard knows") + ")");
  }
  if (whm) {
    notes->push_back(
        "note: eximmon did not check WHM's TLS certificate; eximguard does: set whm.ca_file to "
        "the certificate WHM serves on port 2087, or, knowingly, whm.verify_tls to false");
  }
  if (slack_bot && !slack_app) {
    notes->push_back(
        "note: slack.bot_token sends notices; for commands from Slack, eximguard uses Socket "
        "Mode: add slack.app_token (xapp-...)");
  }
  return true;
}

int ImportEximmonVerb(const std::string& file, const std::string& output, bool force,
                      std::ostream& out, std::ostream& err) {
  if (file.empty()) {
    err << "import-eximmon: give eximmon's config file (.eximmon.conf)\n";
    return kExitUsage;
  }
  std::string text;
  std::string why;
  if (!ReadSmallFile(file, &text, &why)) {
    err << "import-eximmon: " << file << ": " << why << "\n";
    return kExitFailure;
  }
  Json eximmon;
  try {
    eximmon = Json::parse(text);
  } catch (const Json::parse_error& e) {
    // e.what() quotes the text near the error, which may be a token: only the offset is shown.
    err << "import-eximmon: " << file << ": not valid JSON (near byte " << e.byte << ")\n";
    return kExitFailure;
  }
  Ordered ours;
  std::vector<std::string> notes;
  std::string error;
  if (!EximmonToConfig(eximmon, &ours, &notes, &error)) {
    err << "import-eximmon: " << file << ": " << error << "\n";
    return kExitFailure;
  }
  for (const std::string& n : notes) err << n << "\n";

  const std::string rendered = ours.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
  ConfigResult checked = ParseConfig(rendered, "(imported from " + file + ")");
  if (!checked.ok()) {
    for (const auto& [key, value] : eximmon.items()) {
      if (const EximmonSetting* s = FindEximmonSetting(key))
        NoteKeySource(s->key_path, "eximmon key " + key, &checked.errors);
    }
    for (const std::string& e : checked.errors) err << e << "\n";
    err << "import-eximmon: nothing written; fix " << file << " and run it again\n";
    return kExitFailure;
  }

  if (output.empty()) {
    out << rendered;
    return out ? kExitOk : kExitFailure;
  }
  struct stat st {};
  const bool exists = lstat(output.c_str(), &st) == 0;
  if (exists && !force) {
    err << "import-eximmon: " << output << " exists; --force replaces it\n";
    return kExitFailure;
  }
  if (exists && !S_ISREG(st.st_mode)) {
    err << "import-eximmon: " << output << ": not a regular file\n";
    return kExitFailure;
  }
  why = WriteConfigFile(output, rendered, exists);
  if (!why.empty()) {
    err << "import-eximmon: " << output << ": " << why << "\n";
    return kExitFailure;
  }
  out << "wrote " << output << " (mode 0600); check it with: eximguard config check --config "
      << output << "\n";
  return kExitOk;
}

}  // namespace eg::sidecar
