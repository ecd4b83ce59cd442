// exim_query.cpp - see exim_query.h.

#include "exim_query.h"

#include <dirent.h>

#include <algorithm>
#include <cctype>
#include <fstream>

#include "action_command.h"
#include "engine.h"

namespace eg::sidecar {
namespace {

constexpr size_t kEximOutputCap = size_t{4} << 20;  // `-bP config` of a cPanel server: ~200 KiB
constexpr int kMaxListDepth = 8;

std::string_view Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// An Exim list's items: an optional "<X" prefix picks the separator (default ':'); a doubled
// separator stands for one literal separator character; items are trimmed, empty ones dropped.
std::vector<std::string> SplitEximList(std::string_view list) {
  list = Trim(list);
  char sep = ':';
  if (list.size() >= 2 && list[0] == '<' && !std::isspace(static_cast<unsigned char>(list[1]))) {
    sep = list[1];
    list.remove_prefix(2);
  }
  std::vector<std::string> items;
  std::string item;
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i] == sep) {
      if (i + 1 < list.size() && list[i + 1] == sep) {
        item += sep;
        ++i;
        continue;
      }
      if (!Trim(item).empty()) items.emplace_back(Trim(item));
      item.clear();
    } else {
      item += list[i];
    }
  }
  if (!Trim(item).empty()) items.emplace_back(Trim(item));
  return items;
}

void AddDomain(std::string_view domain, EximDomainList* out) {
  std::string d = Lower(domain);
  if (d.empty()) return;
  if (std::find(out->domains.begin(), out->domains.end(), d) == out->domains.end()) {
    out->domains.push_back(std::move(d));
  }
}

// The keys of an lsearch file: the text before the first ':' or white space of each line that
// is not blank, not a comment and not a continuation (leading white space); "quoted" keys too.
bool AddLsearchKeys(const std::string& path, EximDomainList* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || std::isspace(static_cast<unsigned char>(line[0]))) {
      continue;
    }
    std::string_view key = line;
    if (key[0] == '"') {
      const size_t close = key.find('"', 1);
      key = key.substr(1, close == std::string_view::npos ? key.npos : close - 1);
    } else {
      key = key.substr(0, key.find_first_of(": \t\r"));
    }
    AddDomain(key, out);
  }
  return true;
}

bool AddDsearchEntries(const std::string& path, EximDomainList* out) {
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return false;
  std::vector<std::string> names;
  while (const struct dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());  // readdir's order is the file system's
  for (const std::string& n : names) AddDomain(n, out);
  return true;
}

void Expand(std::string_view value, const EximLists& lists, int depth, EximDomainList* out) {
  for (const std::string& item : SplitEximList(value)) {
    if (item == "@") {
      if (lists.primary_hostname.empty()) {
        out->notes.push_back("@: Exim's primary_hostname is unknown");
      } else {
        AddDomain(lists.primary_hostname, out);
      }
      continue;
    }
    if (item[0] == '+') {
      const std::string name = item.substr(1);
      std::string nested;
      if (depth >= kMaxListDepth) {
        out->notes.push_back(item + ": lists nested more than 8 deep");
      } else if (!lists.named_list || !lists.named_list(name, &nested)) {
        out->notes.push_back(item + ": Exim has no domain list of that name");
      } else {
        Expand(nested, lists, depth + 1, out);
      }
      continue;
    }
    if (item[0] == '!') {
      out->notes.push_back(item + ": a negated item; it is not subtracted");
      continue;
    }
    if (item[0] == '^') {
      out->notes.push_back(item + ": a regular expression cannot be listed");
      continue;
    }
    if (item[0] == '@') {
      out->notes.push_back(item + ": matched by Exim at run time (addresses, MX), not listed");
      continue;
    }
    if (item.find('*') != std::string::npos && item.find(';') == std::string::npos) {
      out->notes.push_back(item + ": a wildcard cannot be listed");
      continue;
    }
    if (const size_t semi = item.find(';'); semi != std::string::npos) {
      std::string type = item.substr(0, semi);
      const std::string arg(Trim(std::string_view(item).substr(semi + 1)));
      if (type.starts_with("partial")) type.erase(0, type.find('-') + 1);  // partial-, partial2-
      while (!type.empty() && (type.back() == '*' || type.back() == '@')) type.pop_back();
      if (const size_t comma = type.find(','); comma != std::string::npos) type.erase(comma);
      bool read = false;
      if (type == "lsearch") {
        read = AddLsearchKeys(arg, out);
      } else if (type == "dsearch") {
        read = AddDsearchEntries(arg, out);
      } else {
        out->notes.push_back(item + ": a " + type + " lookup cannot be listed");
        continue;
      }
      if (!read) out->notes.push_back(item + ": cannot read " + arg);
      continue;
    }
    AddDomain(item, out);
  }
}

}  // namespace

EximAnswer RunExim(const std::vector<std::string>& exim_command,
                   const std::vector<std::string>& args) {
  EximAnswer a;
  if (exim_command.empty()) {
    a.error = "no Exim command (actions.exim_command is empty)";
    return a;
  }
  std::vector<std::string> argv = exim_command;
  argv.insert(argv.end(), args.begin(), args.end());
  const ActionResult r = RunActionCommand(argv, "", kEximTimeout, kEximOutputCap);
  a.output = r.output;
  std::string shown = exim_command[0];
  for (const std::string& arg : args) shown += " " + arg;
  if (!r.started) {
    a.error = "cannot run " + exim_command[0] + ": " + r.error;
  } else if (r.timed_out) {
    a.error = shown + ": no answer within " + std::to_string(kEximTimeout.count()) + " s";
  } else if (r.exit_status != 0) {
    a.error = shown + ": exit status " + std::to_string(r.exit_status) + ": " +
              std::string(Trim(r.output));
  } else {
    a.ok = true;
  }
  return a;
}

std::string EximOptionValue(std::string_view output, std::string_view name) {
  size_t at = 0;
  while (at < output.size()) {
    size_t end = output.find('\n', at);
    if (end == std::string_view::npos) end = output.size();
    std::string_view line = Trim(output.substr(at, end - at));
    at = end + 1;
    for (const std::string_view kind :
         {"domainlist ", "hostlist ", "addresslist ", "localpartlist "}) {
      if (line.starts_with(kind)) line.remove_prefix(kind.size());
    }
    if (!line.starts_with(name)) continue;
    std::string_view rest = Trim(line.substr(name.size()));
    if (!rest.starts_with("=")) continue;
    return std::string(Trim(rest.substr(1)));
  }
  return "";
}

void ExpandEximDomainList(std::string_view value, const EximLists& lists, EximDomainList* out) {
  Expand(value, lists, 0, out);
}

bool ReadEximLocalDomains(const std::vector<std::string>& exim_command, EximDomainList* out,
                          std::string* error) {
  *out = EximDomainList{};
  const EximAnswer list = RunExim(exim_command, {"-bP", "+local_domains"});
  if (!list.ok) {
    *error = list.error;
    return false;
  }
  if (list.output.find("domainlist local_domains") == std::string::npos) {
    *error = "Exim has no domainlist local_domains: " + std::string(Trim(list.output));
    return false;
  }
  EximLists lists;
  const EximAnswer host = RunExim(exim_command, {"-bP", "primary_hostname"});
  if (host.ok) lists.primary_hostname = EximOptionValue(host.output, "primary_hostname");
  lists.named_list = [&exim_command](const std::string& name, std::string* value) {
    const EximAnswer a = RunExim(exim_command, {"-bP", "+" + name});
    if (!a.ok || a.output.find("domainlist " + name) == std::string::npos) return false;
    *value = EximOptionValue(a.output, name);
    return true;
  };
  Expand(EximOptionValue(list.output, "local_domains"), lists, 0, out);
  return true;
}

bool LoadLocalDomains(const Config& config, std::vector<std::string>* out, std::string* note,
                      std::string* error) {
  note->clear();
  if (!ReadDomainsFile(config.local_domains_file, out, error)) return false;
  if (!config.local_domains_from_exim) return true;
  EximDomainList exim;
  std::string why;
  if (!ReadEximLocalDomains(config.actions.exim_command, &exim, &why)) {
    *note = "local_domains_from_exim: " + why + "; only local_domains_file's domains apply";
    return true;
  }
  for (std::string& d : exim.domains) {
    if (std::find(out->begin(), out->end(), d) == out->end()) out->push_back(std::move(d));
  }
  return true;
}

}  // namespace eg::sidecar
