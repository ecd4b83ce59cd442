// bot_commands.h - the command language of the admin bots (Telegram, Slack): parse one message,
// run the verb it names, and give back the reply in the chat's markup.
//
// SUMMARY
//   BotContext ctx{.config_path = path, .caller_id = "123456789", .is_admin = true,
//                  .channel = "telegram", .bot_name = "MyGuardBot", .markup = Markup::kHtml};
//   BotReply r = RunBotCommand(ctx, "/suspend@MyGuardBot bad@example.com spam run");
//   if (r.handled) send(r.text);
//
//   Commands (a leading "/" is optional; "/cmd@OtherBot" is not for us and is ignored; a leading
//   Slack mention "<@U123>" is skipped):
//     read-only:  status, top [N], list, incidents [SINCE], why KEY, whitelist [list], config, help
//     changes:    suspend KEY [REASON], unsuspend KEY, hold KEY, release KEY,
//                 whitelist add KEY [NOTE], whitelist remove KEY, set KEY VALUE
//   Anything else gets the help text.
//
// CONTRACT
//   - Callers: the Telegram bot (telegram_bot.h) and the Slack bot, on their own threads.
//   - Read-only commands run the CLI verbs (verbs.h) with their output captured; changes run the
//     verbs (verbs.h, bot_verbs.h) with who = "<channel>:<caller_id>", so the verbs audit them.
//     A change asked for by a caller who is not an admin is refused ("only admins can ...; your
//     id is N") and nothing runs. A caller with may_read false gets only help and refusals.
//   - The reply is ready to send in ctx.markup: the verbs' output in a <pre> (HTML) or ```
//     (mrkdwn) block, every piece of user text escaped (keys like "<b>x</b>&@example.com" come
//     back as text), its visible length within ctx.max_chars.
//   - Never throws (a verb's exception becomes an "internal error" reply). Reentrant: each call
//     loads the config and opens the state store itself, as the CLI does.
//   - SECURITY: `config` shows the config with secrets masked (ConfigShowVerb).

#ifndef EXIMGUARD_SIDECAR_BOT_COMMANDS_H_
#define EXIMGUARD_SIDECAR_BOT_COMMANDS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "notify.h"

namespace eg::sidecar {

struct BotContext {
  std::string config_path;
  std::string caller_id;  // Telegram user id ("123456789"), Slack user id ("U012AB3CD")
  bool is_admin = false;  // may change state
  bool may_read = true;   // may run the read-only commands
  std::string channel;    // "telegram" or "slack": the audit's who is channel:caller_id
  std::string bot_name;   // the bot's @name (without '@'); "" accepts any "/cmd@name"
  Markup markup = Markup::kHtml;
  size_t max_chars = kMaxMessageChars;
};

struct BotReply {
  bool handled = false;  // false: not for this bot (another bot's command, empty text)
  std::string text;      // in ctx.markup
  std::string command;   // the command run ("help" for unknown ones)
  bool refused = false;  // not allowed for this caller
  int exit_code = 0;     // the verb's; 0 when none ran
};

struct BotCommand {
  std::string name;               // lowercased, without "/" and "@bot"
  std::vector<std::string> args;  // the words after it
};

// False when `text` is not for this bot (empty, or "/cmd@other").
bool ParseBotCommand(const std::string& text, const std::string& bot_name, BotCommand* out);

BotReply RunBotCommand(const BotContext& ctx, const std::string& text);

// The help text, in `markup`.
std::string BotHelp(Markup markup);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_BOT_COMMANDS_H_
