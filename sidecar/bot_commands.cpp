// bot_commands.cpp - the admin bots' command language (bot_commands.h).

#include "bot_commands.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <exception>
#include <functional>
#include <sstream>

#include "bot_verbs.h"
#include "verbs.h"

namespace eg::sidecar {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::vector<std::string> Words(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);
  std::string w;
  while (in >> w) words.push_back(w);
  return words;
}

std::string Join(const std::vector<std::string>& words, size_t from) {
  std::string out;
  for (size_t i = from; i < words.size(); ++i) out += (out.empty() ? "" : " ") + words[i];
  return out;
}

std::string Bold(Markup markup, const std::string& text) {
  switch (markup) {
    case Markup::kHtml:
      return "<b>" + EscapeHtml(text) + "</b>";
    case Markup::kMrkdwn:
      return "*" + EscapeMrkdwn(text) + "*";
    case Markup::kPlain:
      break;
  }
  return text;
}

struct Spec {
  const char* name;
  bool changes;         // admins only (a change, or `config`: it names hosts and paths)
  size_t min_args;      // words after the command
  const char* usage;    // for help and usage errors
  const char* summary;  // for help
};

// whitelist is read-only or a change depending on its first word: see RunBotCommand.
constexpr Spec kSpecs[] = {
    {"status", false, 0, "status", "is the daemon following, its counters"},
    {"top", false, 0, "top [N]", "the busiest keys"},
    {"list", false, 0, "list", "blocked keys"},
    {"incidents", false, 0, "incidents [SINCE]", "recorded incidents (default 24h)"},
    {"why", false, 1, "why KEY", "everything about a key"},
    {"config", true, 0, "config", "the effective config, secrets masked"},
    {"whitelist", false, 0, "whitelist [list | add KEY [NOTE] | remove KEY]", "the whitelist"},
    {"suspend", true, 1, "suspend KEY [REASON]", "block a key in the table at once"},
    {"unsuspend", true, 1, "unsuspend KEY", "lift a block"},
    {"act", true, 1, "act ID", "act on an incident as its rule says (also one not trusted)"},
    {"hold", true, 1, "hold KEY", "hold the key's outgoing mail"},
    {"release", true, 1, "release KEY", "release held outgoing mail"},
    {"set", true, 2, "set KEY VALUE", "a key's limit: 20/min,200/hour or default"},
    {"help", false, 0, "help", "this text"},
};

const Spec* FindSpec(const std::string& name) {
  for (const Spec& s : kSpecs) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

// The verb's output (and errors) as the reply.
BotReply VerbReply(const BotContext& ctx, const std::string& command,
                   const std::function<int(std::ostream&, std::ostream&)>& verb) {
  BotReply r;
  r.handled = true;
  r.command = command;
  std::ostringstream out;
  std::ostringstream err;
  try {
    r.exit_code = verb(out, err);
  } catch (const std::exception& e) {
    r.exit_code = kExitFailure;
    err << "internal error: " << e.what() << "\n";
  }
  std::string text = out.str();
  const std::string problems = err.str();
  if (!problems.empty()) text += (text.empty() || text.back() == '\n' ? "" : "\n") + problems;
  std::string head;
  if (r.exit_code != kExitOk) {
    head = Bold(ctx.markup, command + " failed (exit " + std::to_string(r.exit_code) + ")") + "\n";
  }
  r.text =
      head + PreBlock(ctx.markup, text, ctx.max_chars - std::min(ctx.max_chars / 2, head.size()));
  return r;
}

BotReply TextReply(const BotContext& ctx, const std::string& command, const std::string& plain) {
  BotReply r;
  r.handled = true;
  r.command = command;
  r.text = Escape(ctx.markup, CutUtf8(plain, ctx.max_chars));
  return r;
}

}  // namespace

bool ParseBotCommand(const std::string& text, const std::string& bot_name, BotCommand* out) {
  std::vector<std::string> words = Words(text);
  // A Slack mention of the bot ("<@U0123>") before the command.
  if (!words.empty() && words[0].size() > 3 && words[0].rfind("<@", 0) == 0 &&
      words[0].back() == '>') {
    words.erase(words.begin());
  }
  if (words.empty()) return false;
  std::string name = words[0];
  if (!name.empty() && name[0] == '/') name.erase(0, 1);
  const size_t at = name.find('@');
  if (at != std::string::npos) {
    const std::string addressee = name.substr(at + 1);
    if (!bot_name.empty() && Lower(addressee) != Lower(bot_name)) return false;
    name.resize(at);
  }
  if (name.empty()) return false;
  out->name = Lower(name);
  out->args.assign(words.begin() + 1, words.end());
  return true;
}

std::string BotHelp(Markup markup) {
  std::string text = "eximguard commands (a leading / is optional):\n";
  for (const Spec& s : kSpecs) {
    text += std::string("  ") + s.usage + " - " + s.summary + (s.changes ? " (admins)" : "") + "\n";
  }
  text += "whitelist add/remove are for admins too. KEY: an address, a script directory, uid:N.";
  return Escape(markup, text);
}

BotReply RunBotCommand(const BotContext& ctx, const std::string& text) {
  BotCommand cmd;
  if (!ParseBotCommand(text, ctx.bot_name, &cmd)) return {};
  const Spec* spec = FindSpec(cmd.name);
  if (spec == nullptr || cmd.name == "help" || cmd.name == "start") {
    BotReply r;
    r.handled = true;
    r.command = "help";
    r.text = BotHelp(ctx.markup);
    if (!ctx.caller_id.empty()) {
      r.text += Escape(ctx.markup, "\nyour id is " + ctx.caller_id +
                                       (ctx.is_admin ? " (an admin)" : " (not an admin)"));
    }
    return r;
  }

  const std::string& name = cmd.name;
  const std::vector<std::string>& a = cmd.args;
  const std::string wl_action = name == "whitelist" && !a.empty() ? Lower(a[0]) : "list";
  const bool changes = spec->changes || (name == "whitelist" && wl_action != "list");
  const std::string what = name == "whitelist" ? "whitelist " + wl_action : name;
  const std::string admins = ctx.channel + ".admin_ids";
  if (changes && !ctx.is_admin) {
    BotReply r = TextReply(
        ctx, what, "only admins can " + what + " (" + admins + "); your id is " + ctx.caller_id);
    r.refused = true;
    return r;
  }
  if (!changes && !ctx.may_read) {
    BotReply r = TextReply(
        ctx, what, "only admins can use this bot (" + admins + "); your id is " + ctx.caller_id);
    r.refused = true;
    return r;
  }
  if (a.size() < spec->min_args) return TextReply(ctx, name, std::string("usage: ") + spec->usage);

  const std::string& path = ctx.config_path;
  const std::string who = ctx.channel + ":" + ctx.caller_id;
  if (name == "status") {
    return VerbReply(ctx, name, [&](auto& o, auto& e) { return StatusVerb(path, false, o, e); });
  }
  if (name == "top") {
    size_t rows = 15;
    if (!a.empty()) {
      char* end = nullptr;
      const unsigned long n = std::strtoul(a[0].c_str(), &end, 10);
      if (end == a[0].c_str() || *end != '\0' || n == 0 || n > 1000) {
        return TextReply(ctx, name, "usage: top [N] (N from 1 to 1000)");
      }
      rows = n;
    }
    return VerbReply(ctx, name, [&](auto& o, auto& e) { return TopVerb(path, rows, false, o, e); });
  }
  if (name == "list") {
    return VerbReply(ctx, name, [&](auto& o, auto& e) { return ListVerb(path, false, o, e); });
  }
  if (name == "incidents") {
    const std::string since = a.empty() ? "24h" : Join(a, 0);
    return VerbReply(ctx, name,
                     [&](auto& o, auto& e) { return IncidentsVerb(path, since, false, o, e); });
  }
  if (name == "why") {
    return VerbReply(ctx, name, [&](auto& o, auto& e) { return WhyVerb(path, a[0], o, e); });
  }
  if (name == "config") {
    return VerbReply(ctx, name, [&](auto& o, auto& e) { return ConfigShowVerb(path, o, e); });
  }
  if (name == "whitelist") {
    if (wl_action == "list") {
      return VerbReply(ctx, what, [&](auto& o, auto& e) {
        return WhitelistVerb(path, "list", "", "", who, o, e);
      });
    }
    if ((wl_action != "add" && wl_action != "remove") || a.size() < 2) {
      return TextReply(ctx, what, std::string("usage: ") + spec->usage);
    }
    const std::string note = wl_action == "add" ? Join(a, 2) : "";
    return VerbReply(ctx, what, [&](auto& o, auto& e) {
      return WhitelistVerb(path, wl_action, a[1], note, who, o, e);
    });
  }
  if (name == "suspend") {
    const std::string reason = Join(a, 1);
    return VerbReply(ctx, name,
                     [&](auto& o, auto& e) { return SuspendVerb(path, a[0], reason, who, o, e); });
  }
  if (name == "unsuspend") {
    return VerbReply(ctx, name,
                     [&](auto& o, auto& e) { return UnsuspendVerb(path, a[0], who, o, e); });
  }
  if (name == "act") {
    return VerbReply(ctx, name, [&](auto& o, auto& e) { return ActVerb(path, a[0], who, o, e); });
  }
  if (name == "hold") {
    return VerbReply(ctx, name, [&](auto& o, auto& e) { return HoldVerb(path, a[0], who, o, e); });
  }
  if (name == "release") {
    return VerbReply(ctx, name,
                     [&](auto& o, auto& e) { return ReleaseVerb(path, a[0], who, o, e); });
  }
  // set KEY VALUE
  return VerbReply(
      ctx, name, [&](auto& o, auto& e) { return SetLimitVerb(path, a[0], Join(a, 1), who, o, e); });
}

}  // namespace eg::sidecar
