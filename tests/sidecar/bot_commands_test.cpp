// bot_commands_test.cpp - the admin bots' command language (bot_commands.h): parsing, /cmd@Bot,
// admins vs others, the verbs run for real on a test config and state, escaping of hostile keys.

#include "bot_commands.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "sidecar_test_util.h"
#include "state_store.h"

namespace eg::sidecar {
namespace {

const char* kHostile = "<b>x</b>&@example.com";

TEST(BotParse, SlashIsOptionalAndBotNamesAreChecked) {
  BotCommand c;
  ASSERT_TRUE(ParseBotCommand("/status", "GuardBot", &c));
  EXPECT_EQ(c.name, "status");
  EXPECT_TRUE(c.args.empty());
  ASSERT_TRUE(ParseBotCommand("  status  ", "GuardBot", &c));
  EXPECT_EQ(c.name, "status");
  ASSERT_TRUE(ParseBotCommand("/WHY@guardbot  a@b.example ", "GuardBot", &c));
  EXPECT_EQ(c.name, "why");
  EXPECT_EQ(c.args, std::vector<std::string>{"a@b.example"});
  ASSERT_TRUE(ParseBotCommand("/suspend@GuardBot a@b spam from\tthe web", "GuardBot", &c));
  EXPECT_EQ(c.args, (std::vector<std::string>{"a@b", "spam", "from", "the", "web"}));
  EXPECT_FALSE(ParseBotCommand("/status@OtherBot", "GuardBot", &c));
  EXPECT_FALSE(ParseBotCommand("", "GuardBot", &c));
  EXPECT_FALSE(ParseBotCommand("   \n", "GuardBot", &c));
  EXPECT_FALSE(ParseBotCommand("/", "GuardBot", &c));
  // A bot whose name is not known yet accepts any addressee.
  EXPECT_TRUE(ParseBotCommand("/status@Whoever", "", &c));
  // A Slack mention before the command is skipped.
  ASSERT_TRUE(ParseBotCommand("<@U0BOT> top 5", "", &c));
  EXPECT_EQ(c.name, "top");
  EXPECT_EQ(c.args, std::vector<std::string>{"5"});
}

class BotCommands : public testing::CliFixture {
 protected:
  void SetUp() override { WriteConfig({{"telegram", {{"token", "123:SECRETTOKEN"}}}}); }

  BotContext Ctx(bool admin, const std::string& id = "77") {
    BotContext ctx;
    ctx.config_path = config_path_;
    ctx.caller_id = id;
    ctx.is_admin = admin;
    ctx.channel = "telegram";
    ctx.bot_name = "GuardBot";
    ctx.markup = Markup::kHtml;
    return ctx;
  }

  std::vector<StoredBlock> Blocks() {
    std::string error;
    auto store = StateStore::Open(dir_.File("state"), &error);
    EXPECT_TRUE(store) << error;
    std::vector<StoredBlock> blocks;
    EXPECT_TRUE(store->ActiveBlocks(&blocks, &error)) << error;
    return blocks;
  }

  std::vector<AuditEntry> Audit() {
    std::string error;
    auto store = StateStore::Open(dir_.File("state"), &error);
    std::vector<AuditEntry> audit;
    EXPECT_TRUE(store->ListAudit(0, 0, &audit, &error)) << error;
    return audit;
  }
};

TEST_F(BotCommands, UnknownCommandsGetTheHelpAndTheCallersId) {
  const BotReply r = RunBotCommand(Ctx(false), "hello there");
  EXPECT_TRUE(r.handled);
  EXPECT_EQ(r.command, "help");
  EXPECT_NE(r.text.find("suspend KEY [REASON]"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("your id is 77 (not an admin)"), std::string::npos) << r.text;
  EXPECT_EQ(RunBotCommand(Ctx(false), "/start").command, "help");
  EXPECT_FALSE(RunBotCommand(Ctx(true), "/status@OtherBot").handled);
  EXPECT_TRUE(RunBotCommand(Ctx(true), "/status@GuardBot").handled);
}

TEST_F(BotCommands, NonAdminsCannotChangeAnything) {
  for (const char* text : {"/suspend a@b.example", "unsuspend a@b.example", "hold a@b.example",
                           "release a@b.example", "whitelist add a@b.example",
                           "whitelist remove a@b.example", "set a@b.example 10", "config"}) {
    const BotReply r = RunBotCommand(Ctx(false, "4242"), text);
    EXPECT_TRUE(r.handled) << text;
    EXPECT_TRUE(r.refused) << text;
    EXPECT_NE(r.text.find("only admins can "), std::string::npos) << r.text;
    EXPECT_NE(r.text.find("(telegram.admin_ids); your id is 4242"), std::string::npos) << r.text;
  }
  EXPECT_TRUE(Blocks().empty());
  EXPECT_TRUE(Audit().empty());
  // Reading is allowed (may_read), listing the whitelist too.
  const BotReply list = RunBotCommand(Ctx(false), "whitelist");
  EXPECT_FALSE(list.refused);
  EXPECT_EQ(list.text, "<pre>the whitelist is empty</pre>");
  // Unless the caller may not read either.
  BotContext stranger = Ctx(false);
  stranger.may_read = false;
  const BotReply status = RunBotCommand(stranger, "status");
  EXPECT_TRUE(status.refused);
  EXPECT_NE(status.text.find("only admins can use this bot"), std::string::npos) << status.text;
  EXPECT_FALSE(RunBotCommand(stranger, "help").refused);
}

TEST_F(BotCommands, AdminsSuspendAndUnsuspendAuditedUnderTheirTelegramId) {
  BotReply r = RunBotCommand(Ctx(true, "1001"), "/suspend@GuardBot Bad@Example.com spam run");
  EXPECT_EQ(r.exit_code, 0) << r.text;
  EXPECT_EQ(r.text.rfind("<pre>blocked sender bad@example.com\n", 0), 0u) << r.text;
  std::vector<StoredBlock> blocks = Blocks();
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].key, "bad@example.com");
  EXPECT_EQ(blocks[0].by, "telegram:1001");
  EXPECT_EQ(blocks[0].reason, "spam run");

  r = RunBotCommand(Ctx(false), "list");
  EXPECT_NE(r.text.find("bad@example.com"), std::string::npos) << r.text;

  r = RunBotCommand(Ctx(true, "1001"), "unsuspend bad@example.com");
  EXPECT_EQ(r.exit_code, 0) << r.text;
  EXPECT_TRUE(Blocks().empty());

  r = RunBotCommand(Ctx(true, "1001"), "whitelist add news@example.com weekly letter");
  EXPECT_EQ(r.exit_code, 0) << r.text;
  const std::vector<AuditEntry> audit = Audit();
  ASSERT_EQ(audit.size(), 3u);
  for (const AuditEntry& a : audit) EXPECT_EQ(a.who, "telegram:1001") << a.action;
  r = RunBotCommand(Ctx(false), "/whitelist list");
  EXPECT_NE(r.text.find("news@example.com  (added by telegram:1001"), std::string::npos) << r.text;
}

TEST_F(BotCommands, HostileKeysAreEscapedInEveryReply) {
  BotReply r = RunBotCommand(Ctx(true), std::string("suspend ") + kHostile);
  EXPECT_EQ(r.exit_code, 0) << r.text;
  EXPECT_EQ(r.text.find("<b>x</b>"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("&lt;b&gt;x&lt;/b&gt;&amp;@example.com"), std::string::npos) << r.text;
  for (const char* cmd : {"list", "why"}) {
    r = RunBotCommand(Ctx(true), std::string(cmd) + " " + kHostile);
    EXPECT_EQ(r.text.find("<b>x</b>"), std::string::npos) << r.text;
    EXPECT_NE(r.text.find("&lt;b&gt;x&lt;/b&gt;&amp;@example.com"), std::string::npos) << r.text;
  }
  // The same for Slack.
  BotContext slack = Ctx(true, "U0ADMIN");
  slack.channel = "slack";
  slack.markup = Markup::kMrkdwn;
  r = RunBotCommand(slack, "list");
  EXPECT_EQ(r.text.rfind("```\n", 0), 0u) << r.text;
  EXPECT_EQ(r.text.find('<'), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("&lt;b&gt;x&lt;/b&gt;&amp;@example.com"), std::string::npos) << r.text;
  // A refusal names the caller's id escaped too.
  BotContext odd = Ctx(false, "<i>");
  r = RunBotCommand(odd, "suspend a@b");
  EXPECT_NE(r.text.find("your id is &lt;i&gt;"), std::string::npos) << r.text;
  // And Slack changes are audited as slack:ID.
  r = RunBotCommand(slack, "unsuspend " + std::string(kHostile));
  EXPECT_EQ(r.exit_code, 0) << r.text;
  EXPECT_EQ(Audit().back().who, "slack:U0ADMIN");
}

TEST_F(BotCommands, UsageErrorsFailuresAndLongOutput) {
  BotReply r = RunBotCommand(Ctx(true), "why");
  EXPECT_EQ(r.text, "usage: why KEY");
  r = RunBotCommand(Ctx(true), "set a@b");
  EXPECT_EQ(r.text, "usage: set KEY VALUE");
  r = RunBotCommand(Ctx(true), "top many");
  EXPECT_NE(r.text.find("usage: top [N]"), std::string::npos);
  r = RunBotCommand(Ctx(true), "whitelist frobnicate x");
  EXPECT_NE(r.text.find("usage: whitelist"), std::string::npos);
  // A verb that fails says so, with its errors.
  r = RunBotCommand(Ctx(true), "hold a@b.example");  // no whm.token in this config
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.text.rfind("<b>hold failed (exit 1)</b>\n<pre>", 0), 0u) << r.text;
  r = RunBotCommand(Ctx(true), "suspend uid:x");
  EXPECT_EQ(r.exit_code, 2);
  // Secrets stay masked.
  r = RunBotCommand(Ctx(true), "config");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.text.find("SECRETTOKEN"), std::string::npos);
  EXPECT_NE(r.text.find("********"), std::string::npos);
  // Output is cut to the message size.
  BotContext small = Ctx(true);
  small.max_chars = 300;
  r = RunBotCommand(small, "config");
  EXPECT_LE(r.text.size(), 300u + 11);  // <pre></pre> around at most 300 characters
  EXPECT_NE(r.text.find("(cut: "), std::string::npos) << r.text;
}

}  // namespace
}  // namespace eg::sidecar
