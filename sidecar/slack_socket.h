// slack_socket.h - the Slack admin bot: Slack's Socket Mode (a WebSocket the bot opens to
// Slack, so no public HTTP endpoint is needed), slash commands and @-mentions in, replies out.
//
// SUMMARY
//   SlackBot bot(config.slack, [&](const SlackCommand& c) { return RunBotCommand(...); },
//                {.log = [&](const std::string& line) { log << line << '\n'; }});
//   bot.Start();          // its own thread
//   ... bot.stats() for `status` ...
//   bot.Stop();           // SIGTERM; also the destructor
//
//   The thread, over and over until Stop():
//     1. POST {api_url}/apps.connections.open, `Authorization: Bearer {app_token}`; Slack answers
//        {"ok":true,"url":"wss://..."}. ok:false gives the reason (invalid_auth, ...).
//     2. Connects to that URL: TLS (always for wss://; ws:// only when the URL says so), the
//        server certificate verified against the system's store or slack.ca_file, SNI and host
//        name (or IP address) checked; then the WebSocket handshake.
//     3. Reads messages: {"type":"hello"} (connected); {"type":"disconnect"} (Slack refreshes the
//        link: reconnect at once with a new apps.connections.open); envelopes
//        {"envelope_id":..,"type":"slash_commands"|"events_api"|..,"payload":{..}}.
//        EVERY envelope is acknowledged at once with {"envelope_id":".."} (Slack retries an
//        envelope not acknowledged within 3 s), before anything else is done with it.
//        The ack carries no payload: the reply comes afterwards as a chat.postMessage, so a
//        command may take longer than Slack's 3 s (WHM calls do).
//     4. A slash command (payload.command/text/user_id/channel_id) or an app_mention event
//        (payload.event.text/user/channel; bot messages ignored) becomes a SlackCommand: the
//        text with a leading "<@BOTID>" removed and Slack's markup undone (SlackCommandText).
//        The handler runs on the bot thread; a non-empty reply is posted to the command's
//        channel with SlackPostMessage (notify.h: POST {api_url}/chat.postMessage,
//        `Authorization: Bearer {bot_token}`, {"channel":..,"text":..}, "ok" checked, one
//        retry of a transient failure). The reply is mrkdwn READY TO SEND: the handler escapes
//        what it quotes (RunBotCommand with Markup::kMrkdwn does; EscapeMrkdwn otherwise); it is
//        cut at kSlackMaxReply bytes. The bot must be a member of the channel (Slack answers
//        not_in_channel otherwise: counted as an error); a slash command's response_url is
//        not used.
//     5. Any error (apps.connections.open refused, TLS refused, connection lost, no answer to
//        pings for idle_timeout) ends the connection; the next attempt waits a backoff that
//        doubles from min_backoff to max_backoff and starts again after a connection that
//        reached "hello". A disconnect message reconnects without waiting (but link_disabled,
//        Socket Mode switched off for the app, waits like an error).
//   Envelopes are processed once: the last kSlackRecentEnvelopes envelope ids (and Events API
//   event ids, which a retry keeps) are remembered; a repeat is acknowledged again, not run.
//
// CONTRACT
//   - Callers: the daemon (`eximguard start`) when slack.app_token and slack.bot_token are set;
//     tests. The SlackBot owns its thread; Start() once; Stop() is idempotent, thread-safe,
//     and returns within about a second unless an HTTP call (at most http_timeout_ms) or the
//     handler is running at that moment: both run to their end first.
//   - The handler is called on the bot thread only, one command at a time. It must not throw
//     (an exception is caught, counted as an error and answered "internal error"). `is_admin`
//     says user_id is in slack.admin_ids: the handler decides what non-admins may do.
//   - stats() is thread-safe (a copy under a mutex).
//   - May fail: every failure is counted, kept in stats().last_error and logged (one line,
//     "slack: ..."); the thread never exits on its own before Stop().
//   - SECURITY: app_token and bot_token are secrets, and so is the WebSocket URL (its ticket
//     lets anyone read the bot's events): none of them is ever logged or put in an error.
//     Errors from Slack are reduced to their code ([a-z0-9_.] only). TLS is never skipped for
//     wss://; there is no verify_tls opt-out. Only admins' commands should change state: the
//     handler gets the admin flag, user ids come from Slack's signed-in user on this
//     authenticated socket.

#ifndef EXIMGUARD_SIDECAR_SLACK_SOCKET_H_
#define EXIMGUARD_SIDECAR_SLACK_SOCKET_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "config.h"

namespace eg::sidecar {

inline constexpr size_t kSlackRecentEnvelopes = 256;
inline constexpr size_t kSlackMaxReply = 39000;              // Slack truncates text past 40,000
inline constexpr size_t kSlackMaxMessage = size_t{4} << 20;  // one WebSocket message

// One command for the handler.
struct SlackCommand {
  std::string user_id;     // "U0123..."
  std::string channel_id;  // "C0123...", "D0123..." (direct message)
  std::string text;        // "status", "why x@example.com": mention and markup removed
  std::string command;     // "/eximguard" for a slash command, "" for a mention
  bool is_admin = false;   // user_id is one of slack.admin_ids
};

// Returns the reply (mrkdwn, escaped by the handler; "" = none).
using SlackCommandHandler = std::function<std::string(const SlackCommand&)>;

struct SlackBotOptions {
  std::chrono::milliseconds min_backoff{1000};
  std::chrono::milliseconds max_backoff{60000};
  // No frame from Slack for half of this: the bot pings; for all of it: the link is dead.
  std::chrono::milliseconds idle_timeout{30000};
  std::chrono::milliseconds connect_timeout{10000};  // TCP + TLS + WebSocket handshakes
  uint32_t http_timeout_ms = 10000;                  // apps.connections.open, chat.postMessage
  std::function<void(const std::string&)> log;       // one line, no newline; null = silent
};

struct SlackBotStats {
  bool connected = false;    // a socket is open and said hello
  uint64_t open_calls = 0;   // apps.connections.open requests
  uint64_t connections = 0;  // sockets that reached "hello"
  uint64_t disconnects = 0;  // "disconnect" messages from Slack
  uint64_t envelopes = 0;    // envelopes received (duplicates included) and acknowledged
  uint64_t duplicates = 0;   // envelopes seen before, not run again
  uint64_t commands = 0;     // commands given to the handler
  uint64_t replies = 0;      // replies Slack accepted
  uint64_t errors = 0;       // failures of any kind
  std::string last_error;    // "" = none yet; never a secret
};

class SlackBot {
 public:
  SlackBot(SlackSettings settings, SlackCommandHandler handler, SlackBotOptions options = {});
  ~SlackBot();  // Stop()
  SlackBot(const SlackBot&) = delete;
  SlackBot& operator=(const SlackBot&) = delete;

  void Start();
  void Stop();
  SlackBotStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What one Socket Mode message is (exposed for tests).
struct SlackSocketMessage {
  enum class Kind {
    kInvalid,  // not JSON, not an object, or no type
    kHello,
    kDisconnect,  // reason: "warning", "refresh_requested", "link_disabled", ...
    kCommand,     // a slash command or an app_mention: `command` is filled (is_admin false)
    kOther,       // any other envelope (still acknowledged) or message
  };
  Kind kind = Kind::kInvalid;
  std::string envelope_id;  // "" when the message is not an envelope
  std::string event_id;     // events_api: payload.event_id ("" otherwise)
  std::string reason;       // disconnect reason
  SlackCommand command;
};

SlackSocketMessage ParseSlackSocketMessage(std::string_view json);

// A message's text as the command language wants it: trimmed; a leading mention ("<@U1>" or
// "<@U1|name>") removed when strip_mention; links shown by their label or address
// ("<mailto:a@b.c|a@b.c>" -> "a@b.c", "<http://b.c|b.c>" -> "b.c"); &lt; &gt; &amp; undone.
std::string SlackCommandText(std::string_view text, bool strip_mention);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_SLACK_SOCKET_H_
