// telegram_bot.h - the Telegram admin bot that `eximguard start` runs on its own thread: long
// polling getUpdates, one command per message (bot_commands.h), the reply sent to the message's
// chat.
//
// SUMMARY
//   TelegramBot bot(config_path, config, {.log = log_line});
//   bot.Start();            // a thread: getMe (its @name), then getUpdates until Stop()
//   ...
//   bot.Stop();             // SIGTERM: see "Stopping" below
//
// CONTRACT
//   - Callers: the daemon, when telegram.token is set. One bot per token: Telegram refuses a
//     second poller (HTTP 409 Conflict), which is logged once (and again if it comes back after
//     polling worked), then retried with backoff, never fatal. Other failures (no answer, 5xx,
//     401 for a wrong token) are retried with exponential backoff (backoff_min .. backoff_max).
//   - Requests: POST {api_url}/bot{token}/getMe once; POST .../getUpdates {offset, timeout:
//     poll_seconds, allowed_updates:["message"]} with an HTTP timeout of poll_seconds + 5 s;
//     replies with sendMessage (notify.h) to the message's chat, as a reply to it.
//   - Offset: last update_id + 1, kept in <state_dir>/telegram.offset (written to a temporary
//     file, fsync'ed, renamed; mode 0600) BEFORE the update's command runs, so a restart goes on
//     after the last update and no command runs twice (a crash in between loses that one
//     command rather than repeating it). A missing or unreadable file starts at 0 (Telegram then
//     gives what it still holds).
//   - Who may do what: admins are telegram.admin_ids (message.from.id): they may run every
//     command. Others may run the read-only ones only in the notify chat (telegram.notify_chat_id,
//     the admins' group); elsewhere they get the help and their id (to be added as an admin).
//     Messages older than max_message_age are answered "too old, send it again" and not run (a
//     command typed while eximguard was down is not run hours later).
//   - Stopping: Stop() returns when the thread has ended: at once when it is waiting (backoff,
//     between polls), and within about a second during a long poll, which RequestStop()
//     abandons (HttpRequest::cancel, checked by curl's progress callback).
//   - SECURITY: the token is in every URL; it never appears in a log line (http_client.h errors
//     name no URL; API descriptions are scrubbed of it). Commands from non-admins never change
//     state (bot_commands.h).
//   - Thread safety: Start/RequestStop/Stop/SetAdmins/stats from any thread.

#ifndef EXIMGUARD_SIDECAR_TELEGRAM_BOT_H_
#define EXIMGUARD_SIDECAR_TELEGRAM_BOT_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config.h"

namespace eg::sidecar {

inline constexpr const char* kTelegramOffsetName = "telegram.offset";

struct TelegramBotOptions {
  std::function<void(const std::string&)> log;  // one line each; may be empty
  std::chrono::milliseconds backoff_min{1000};
  std::chrono::milliseconds backoff_max{60000};
  // A poll that answers nothing sooner than this waits the rest (a server that does not hold
  // long polls must not make us spin).
  std::chrono::milliseconds min_poll_interval{200};
  int64_t max_message_age_seconds = 600;
};

struct TelegramBotStats {
  uint64_t polls = 0;     // getUpdates answered ok
  uint64_t updates = 0;   // updates received
  uint64_t commands = 0;  // commands run (replies sent or not)
  uint64_t replies_failed = 0;
  uint64_t errors = 0;     // failed getMe/getUpdates
  uint64_t conflicts = 0;  // of which 409 Conflict
  std::string bot_name;    // from getMe
};

// The saved offset (0 when there is none); false with *error when the file is unreadable.
bool LoadTelegramOffset(const std::string& state_dir, int64_t* offset, std::string* error);
bool SaveTelegramOffset(const std::string& state_dir, int64_t offset, std::string* error);

class TelegramBot {
 public:
  TelegramBot(std::string config_path, const Config& config, TelegramBotOptions options = {});
  ~TelegramBot();  // Stop()
  TelegramBot(const TelegramBot&) = delete;
  TelegramBot& operator=(const TelegramBot&) = delete;

  void Start();
  void RequestStop();  // returns at once; the thread ends after the request in flight
  void Stop();         // RequestStop() and join
  // After a reload: new admin ids and notify chat (a new token or api_url needs a new bot).
  void SetAdmins(const std::vector<int64_t>& admin_ids, const std::string& notify_chat_id);
  TelegramBotStats stats() const;

 private:
  void Run();
  bool WaitFor(std::chrono::milliseconds d);  // false when stopping
  void Log(const std::string& line);
  bool Call(const std::string& method, const std::string& body, uint32_t timeout_ms,
            std::string* result_json, long* status, std::string* error);
  void HandleUpdate(const std::string& update_json);

  const std::string config_path_;
  const TelegramSettings settings_;
  const std::string state_dir_;
  TelegramBotOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<bool> cancel_{false};  // set with stop_: aborts the HTTP request in flight
  std::vector<int64_t> admin_ids_;   // guarded by mu_
  std::string notify_chat_id_;       // guarded by mu_
  TelegramBotStats stats_;           // guarded by mu_
  std::thread thread_;
};

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_TELEGRAM_BOT_H_
