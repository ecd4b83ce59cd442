// notify.h - telling the admins: what a notice is, how it looks on each channel (Telegram HTML,
// Slack mrkdwn, a plain-text email, a webhook's JSON), sending it, and the Notifier the daemon
// posts to (a worker thread that sends, retries, and folds floods into digests).
//
// SUMMARY
//   Notice n = NoticeFromIncident(incident_json);          // IncidentToJson() + "id" + "action"
//   Notifier notifier(config, {.log = log_line});          // one per daemon
//   notifier.Post(std::move(n));                           // returns at once
//   ...
//   SendResult r = SendNotice(Channel::kTelegram, config, n, {});   // synchronous (test-notify)
//
//   Channels (ConfiguredChannels): email when notify.email has recipients (notify.sendmail, the
//   message on its stdin); Telegram when telegram.token and telegram.notify_chat_id are set
//   (POST {api_url}/bot{token}/sendMessage); Slack when slack.bot_token and slack.notify_channel
//   are set (POST {api_url}/chat.postMessage, Authorization: Bearer); a webhook when
//   notify.webhook_url is set (POST, the notice as JSON).
//
// CONTRACT
//   - Callers: the daemon (a Notifier; Post from the following thread), `eximguard test-notify`
//     (notify_verbs.h), the Telegram bot (TelegramSendMessage for its replies), tests.
//   - Escaping: every piece of user text (keys, subjects, script paths, log lines, the verbs'
//     output) is escaped for the channel's markup: & < > for Telegram HTML and Slack mrkdwn; an
//     email's header values lose CR/LF and other control characters (no header injection), a
//     non-ASCII Subject is RFC 2047 encoded, body lines lose control characters and are cut at
//     900 bytes. A message's visible text stays under kMaxMessageChars (Telegram's 4096 limit
//     counts characters after entity parsing; our count is in bytes of unescaped text, which is
//     never less). JSON is dumped with invalid UTF-8 replaced, never thrown on.
//   - Sending: the API's answer is checked (Telegram "ok", Slack "ok", a webhook's 2xx, sendmail's
//     exit status). Transient failures (no answer, timeout, HTTP 5xx, 429, Slack "ratelimited",
//     sendmail exit 75) are retried (SendOptions); then the failure is returned in SendResult and
//     counted in the Notifier's stats, never thrown.
//   - SECURITY: tokens are in URLs (Telegram) and headers (Slack); no error or log line made here
//     contains them (http_client.h keeps them out of its errors; anything an API answers is
//     scrubbed of the token too). Email is sent without a shell; recipients are passed as
//     arguments after "--" (validated addresses, config.cpp), never read from headers (-t).
//   - Notifier: owns one worker thread and a bounded queue (max_queue; a notice beyond it is
//     dropped, counted and logged). Digest: when more than notify.digest_after notices arrive
//     within notify.digest_seconds, the next ones are held and sent as ONE digest message per
//     digest_seconds (notices per rule, every key), until a period brings no more than
//     digest_after of them: then notices go out one by one again. Test notices bypass this.
//     Stop() (and the destructor) sends what is still queued or held as one last message (a
//     digest when more than one) without retries, then joins: it waits for at most the
//     send in progress plus that last one (each bounded by SendOptions::timeout_ms).
//   - Thread safety: Notifier's public methods may be called from any thread. The free
//     functions are reentrant.
//   - Files: notify.cpp (notices, rendering), notify_send.cpp (senders), notifier.cpp
//     (DigestGate, Notifier).

#ifndef EXIMGUARD_SIDECAR_NOTIFY_H_
#define EXIMGUARD_SIDECAR_NOTIFY_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "config.h"

namespace eg::sidecar {

struct HandledIncident;

// Longest visible text of one chat message (Telegram's limit is 4096 characters).
inline constexpr size_t kMaxMessageChars = 4000;

enum class NoticeKind : uint8_t { kIncident, kAction, kDigest, kTest };
const char* NoticeKindName(NoticeKind kind);  // "incident", "action", "digest", "test"

struct Notice {
  NoticeKind kind = NoticeKind::kIncident;
  std::string host;   // the server's name (gethostname); filled by the makers below
  std::string title;  // one line
  std::string key;    // the key concerned; "" for digests and tests
  std::string key_class;
  std::string rule;
  int64_t id = 0;    // the incident's id in the store; 0: none
  int64_t time = 0;  // unix; 0: unknown
  uint64_t count = 0;
  uint64_t threshold = 0;
  std::string action;  // what eximguard did ("block", "notify_only", "none (...)", ...)
  std::vector<std::string> ips;
  std::vector<std::string> scripts;
  std::vector<std::string> subjects;
  std::string undo;                // a command the admin may run, e.g. "eximguard unsuspend KEY"
  std::vector<std::string> lines;  // free text: log lines (incident), one line per notice (digest)
  // Digests: notices per rule (first seen first) and every key they named, once each.
  std::vector<std::pair<std::string, uint64_t>> rule_counts;
  std::vector<std::string> keys;
};

// The name of this host, for notices (gethostname; "localhost" when it fails).
std::string HostName();

// A notice from an incident as JSON: IncidentToJson() (engine.h) plus "id" and "action". Missing
// or mistyped fields are left empty. The undo command is set when the action was a block:
// "eximguard unsuspend KEY" (uid incidents name the user; the block is on uid:N), the key
// shell-quoted when it needs to be.
Notice NoticeFromIncident(const nlohmann::ordered_json& incident, const std::string& host = "");
Notice NoticeFromHandled(const HandledIncident& handled, const std::string& host = "");

// One digest of `notices` (seconds: the period it covers, for its title).
Notice MakeDigest(const std::vector<Notice>& notices, uint32_t seconds,
                  const std::string& host = "");

// ---- rendering -------------------------------------------------------------------------------

enum class Markup : uint8_t { kPlain, kHtml, kMrkdwn };

std::string EscapeHtml(std::string_view text);    // & < > as entities (all Telegram needs)
std::string EscapeMrkdwn(std::string_view text);  // & < > as Slack wants them
std::string Escape(Markup markup, std::string_view text);

// Control characters (but tab) become spaces; line breaks too unless keep_newlines.
std::string NoControls(std::string_view text, bool keep_newlines);

// At most max_bytes of text, cut at a UTF-8 character boundary.
std::string CutUtf8(std::string_view text, size_t max_bytes);

// `text` in a preformatted block of `markup` (<pre> or ```), escaped, its visible part cut to
// max_chars (at a line end when one is near) with a "(cut: N more bytes)" line.
std::string PreBlock(Markup markup, std::string_view text, size_t max_chars = kMaxMessageChars);

std::string RenderTelegram(const Notice& notice);           // Telegram parse_mode HTML
std::string RenderSlack(const Notice& notice);              // Slack mrkdwn
std::string RenderText(const Notice& notice);               // plain text (the email's body)
nlohmann::ordered_json NoticeToJson(const Notice& notice);  // the webhook's body

// The whole email (headers + body) as sendmail reads it.
std::string RenderEmail(const Notice& notice, const NotifySettings& settings, int64_t now_unix);

// ---- sending ---------------------------------------------------------------------------------

enum class Channel : uint8_t { kEmail, kTelegram, kSlack, kWebhook };
inline constexpr size_t kChannelCount = 4;
inline constexpr Channel kChannels[kChannelCount] = {Channel::kEmail, Channel::kTelegram,
                                                     Channel::kSlack, Channel::kWebhook};
const char* ChannelName(Channel channel);  // "email", "telegram", "slack", "webhook"

bool ChannelConfigured(const Config& config, Channel channel);
std::vector<Channel> ConfiguredChannels(const Config& config);

struct SendOptions {
  uint32_t timeout_ms = 10000;                      // one attempt (HTTP request, sendmail run)
  int attempts = 3;                                 // 1 + retries of transient failures
  std::chrono::milliseconds retry_delay{1000};      // before the 2nd attempt; doubled after
  std::chrono::milliseconds max_retry_after{5000};  // longest server-asked wait honoured (429)
};

struct SendResult {
  bool ok = false;
  std::string error;  // why not; never a token
  int attempts = 0;
};

SendResult SendNotice(Channel channel, const Config& config, const Notice& notice,
                      const SendOptions& options);

// POST {api_url}/bot{token}/sendMessage {chat_id, text, parse_mode "HTML", no link previews;
// replying to reply_to (a message id of that chat) when non-zero}. Checks "ok".
SendResult TelegramSendMessage(const TelegramSettings& settings, const std::string& chat_id,
                               const std::string& html_text, int64_t reply_to,
                               const SendOptions& options);

// POST {api_url}/chat.postMessage {channel, text (mrkdwn), no unfurling}. Checks "ok"; an
// "error" field is the reason.
SendResult SlackPostMessage(const SlackSettings& settings, const std::string& channel,
                            const std::string& mrkdwn_text, const SendOptions& options);

// ---- the Notifier ----------------------------------------------------------------------------

// Folds floods of notices into digests; pure (the caller gives the time), used by the Notifier.
class DigestGate {
 public:
  DigestGate(uint32_t digest_after, uint32_t digest_seconds);
  void SetLimits(uint32_t digest_after, uint32_t digest_seconds);

  // A notice arriving at now_ms: returns it when it is to go out now, nothing when it is held
  // for the next digest.
  std::optional<Notice> Admit(Notice notice, int64_t now_ms);
  // The digest due at now_ms, if one is (held notices; ends the flood when the period was quiet).
  std::optional<Notice> Tick(int64_t now_ms, const std::string& host);
  // When Tick() should next be called; nothing while no flood is on.
  std::optional<int64_t> NextDeadline() const;
  bool flooding() const { return flooding_; }
  size_t held() const { return held_.size(); }
  std::vector<Notice> TakeHeld();

 private:
  uint32_t after_;
  int64_t period_ms_;
  std::deque<int64_t> arrivals_;  // within the last period
  bool flooding_ = false;
  int64_t deadline_ = 0;
  std::vector<Notice> held_;
};

struct ChannelStats {
  uint64_t sent = 0;
  uint64_t failed = 0;
  std::string last_error;
};

struct NotifierStats {
  ChannelStats channels[kChannelCount];  // indexed by Channel
  uint64_t posted = 0;                   // accepted by Post
  uint64_t dropped = 0;                  // refused by Post (queue full, stopped)
  uint64_t digests = 0;                  // digest messages made
  uint64_t digested = 0;                 // notices that went into them
  const ChannelStats& of(Channel c) const { return channels[static_cast<size_t>(c)]; }
};

struct NotifierOptions {
  // A monotonic clock in milliseconds (tests inject one); default steady_clock.
  std::function<int64_t()> now_ms;
  // The longest the worker sleeps before looking at the clock again (a fake clock moves
  // without waking it).
  std::chrono::milliseconds wake{250};
  size_t max_queue = 1000;
  SendOptions send;
  std::function<void(const std::string&)> log;  // one line each; may be empty
  std::string host;                             // "" = HostName()
};

class Notifier {
 public:
  explicit Notifier(const Config& config, NotifierOptions options = {});
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Queues the notice; false when it was dropped (queue full, stopped).
  bool Post(Notice notice);
  // Channels and digest limits from a reloaded config (SIGHUP), for the next sends.
  void Reconfigure(const Config& config);
  void Stop();
  NotifierStats stats() const;
  // Nothing queued, held for a digest, or being sent.
  bool Idle() const;

 private:
  void Run();
  void SendToAll(const Notice& notice, const SendOptions& options);

  NotifierOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Config config_;  // guarded by mu_
  uint64_t config_generation_ = 0;
  std::deque<Notice> queue_;
  bool stop_ = false;
  bool busy_ = false;
  size_t held_ = 0;
  NotifierStats stats_;
  std::thread worker_;
};

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_NOTIFY_H_
