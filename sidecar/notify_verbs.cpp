// notify_verbs.cpp - `eximguard test-notify` (notify_verbs.h).

#include "notify_verbs.h"

#include "config.h"
#include "notify.h"
#include "text_escape.h"
#include "verbs.h"

namespace eg::sidecar {

int TestNotifyVerb(const std::string& config_path, std::ostream& out, std::ostream& err) {
  ConfigResult loaded = LoadConfig(config_path);
  for (const std::string& e : loaded.errors) err << e << "\n";
  if (!loaded.ok()) return kExitFailure;
  const Config& config = loaded.config;
  const std::vector<Channel> channels = ConfiguredChannels(config);
  if (channels.empty()) {
    err << "no channel configured: set notify.email, notify.webhook_url, telegram.token with "
           "telegram.notify_chat_id, or slack.bot_token with slack.notify_channel in "
        << config.path << "\n";
    return kExitFailure;
  }
  Notice n;
  n.kind = NoticeKind::kTest;
  n.host = HostName();
  n.title = "test notice";
  n.lines = {"This is a test from `eximguard test-notify`: notices of incidents will come here."};
  SendOptions options;
  options.attempts = 2;
  int failed = 0;
  for (Channel c : channels) {
    const SendResult r = SendNotice(c, config, n, options);
    if (r.ok) {
      out << ChannelName(c) << ": ok\n";
    } else {
      err << ChannelName(c) << ": " << OneLine(r.error, 2000) << "\n";
      ++failed;
    }
  }
  return failed == 0 ? kExitOk : kExitFailure;
}

}  // namespace eg::sidecar
