// telegram_bot.cpp - the Telegram admin bot (telegram_bot.h).

#include "telegram_bot.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <utility>

#include "bot_commands.h"
#include "http_client.h"
#include "notify.h"
#include "text_escape.h"

namespace eg::sidecar {
namespace {

using Json = nlohmann::json;

int64_t NowUnix() {
  return static_cast<int64_t>(std::time(nullptr));
}

int64_t IntAt(const Json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_number_integer()) return 0;
  return it->get<int64_t>();
}

std::string OffsetPath(const std::string& state_dir) {
  return state_dir + "/" + kTelegramOffsetName;
}

}  // namespace

bool LoadTelegramOffset(const std::string& state_dir, int64_t* offset, std::string* error) {
  *offset = 0;
  const std::string path = OffsetPath(state_dir);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return true;
    if (error) *error = path + ": " + std::strerror(errno);
    return false;
  }
  char buf[64] = {};
  ssize_t n;
  do {
    n = read(fd, buf, sizeof buf - 1);
  } while (n < 0 && errno == EINTR);
  const int saved = errno;
  close(fd);
  if (n < 0) {
    if (error) *error = path + ": " + std::strerror(saved);
    return false;
  }
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(buf, &end, 10);
  while (end != nullptr && (*end == '\n' || *end == ' ')) ++end;
  if (end == buf || errno != 0 || *end != '\0' || v < 0) {
    if (error) *error = path + ": not an offset";
    return false;
  }
  *offset = v;
  return true;
}

bool SaveTelegramOffset(const std::string& state_dir, int64_t offset, std::string* error) {
  const std::string path = OffsetPath(state_dir);
  const std::string tmp = path + ".tmp";
  auto fail = [&](const std::string& what) {
    if (error) *error = what + ": " + std::strerror(errno);
    return false;
  };
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return fail(tmp);
  const std::string text = std::to_string(offset) + "\n";
  bool ok = fchmod(fd, 0600) == 0;
  size_t done = 0;
  while (ok && done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    done += static_cast<size_t>(n);
  }
  ok = ok && fsync(fd) == 0;
  if (!ok) {
    const int saved = errno;
    close(fd);
    unlink(tmp.c_str());
    errno = saved;
    return fail(tmp);
  }
  if (close(fd) != 0) return fail(tmp);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    unlink(tmp.c_str());
    errno = saved;
    return fail(path);
  }
  return true;
}

TelegramBot::TelegramBot(std::string config_path, const Config& config, TelegramBotOptions options)
    : config_path_(std::move(config_path)),
      settings_(config.telegram),
      state_dir_(config.state_dir),
      options_(std::move(options)),
      admin_ids_(config.telegram.admin_ids),
      notify_chat_id_(config.telegram.notify_chat_id) {}

TelegramBot::~TelegramBot() {
  Stop();
}

void TelegramBot::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Run(); });
}

void TelegramBot::RequestStop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cancel_.store(true);  // ends a long poll in flight
  cv_.notify_all();
}

void TelegramBot::Stop() {
  RequestStop();
  if (thread_.joinable()) thread_.join();
}

void TelegramBot::SetAdmins(const std::vector<int64_t>& admin_ids,
                            const std::string& notify_chat_id) {
  std::lock_guard<std::mutex> lock(mu_);
  admin_ids_ = admin_ids;
  notify_chat_id_ = notify_chat_id;
}

TelegramBotStats TelegramBot::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

bool TelegramBot::WaitFor(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, d, [this] { return stop_; });
  return !stop_;
}

void TelegramBot::Log(const std::string& line) {
  if (options_.log) options_.log(ScrubSecrets(line, {settings_.token}));
}

bool TelegramBot::Call(const std::string& method, const std::string& body, uint32_t timeout_ms,
                       std::string* result_json, long* status, std::string* error) {
  std::string api = settings_.api_url;
  while (!api.empty() && api.back() == '/') api.pop_back();
  HttpRequest req;
  req.method = "POST";
  req.url = api + "/bot" + settings_.token + "/" + method;
  req.headers = {"Content-Type: application/json"};
  req.body = body;
  req.timeout_ms = timeout_ms;
  req.ca_file = settings_.ca_file;
  req.proxy = settings_.proxy;
  req.cancel = &cancel_;
  const HttpResponse r = HttpSend(req);
  *status = r.status;
  if (!r.error.empty()) {
    *error = "no answer: " + r.error;
    return false;
  }
  const Json j = Json::parse(r.body, nullptr, false);
  if (r.status == 200 && j.is_object() && j.value("ok", false) == true && j.contains("result")) {
    *result_json = j["result"].dump(-1, ' ', false, Json::error_handler_t::replace);
    return true;
  }
  *error = "HTTP " + std::to_string(r.status);
  if (j.is_object() && j.contains("description") && j["description"].is_string()) {
    *error += ": " + CutUtf8(j["description"].get<std::string>(), 300);
  } else if (r.status == 200) {
    *error += " (not a Bot API answer)";
  }
  *error = ScrubSecrets(*error, {settings_.token});
  return false;
}

void TelegramBot::HandleUpdate(const std::string& update_json) {
  const Json update = Json::parse(update_json, nullptr, false);
  if (!update.is_object()) return;
  auto m = update.find("message");
  if (m == update.end() || !m->is_object()) return;
  const Json& msg = *m;
  auto t = msg.find("text");
  auto from = msg.find("from");
  auto chat = msg.find("chat");
  if (t == msg.end() || !t->is_string() || from == msg.end() || !from->is_object() ||
      chat == msg.end() || !chat->is_object()) {
    return;
  }
  if (from->value("is_bot", false)) return;
  const std::string text = t->get<std::string>();
  const int64_t from_id = IntAt(*from, "id");
  const int64_t chat_id = IntAt(*chat, "id");
  const int64_t message_id = IntAt(msg, "message_id");
  const int64_t date = IntAt(msg, "date");

  BotContext ctx;
  ctx.config_path = config_path_;
  ctx.caller_id = std::to_string(from_id);
  ctx.channel = "telegram";
  ctx.markup = Markup::kHtml;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ctx.bot_name = stats_.bot_name;
    ctx.is_admin = std::find(admin_ids_.begin(), admin_ids_.end(), from_id) != admin_ids_.end();
    ctx.may_read =
        ctx.is_admin || (!notify_chat_id_.empty() && notify_chat_id_ == std::to_string(chat_id));
  }

  BotReply reply;
  const int64_t age = date > 0 ? NowUnix() - date : 0;
  if (age > options_.max_message_age_seconds) {
    BotCommand cmd;
    if (!ParseBotCommand(text, ctx.bot_name, &cmd)) return;
    reply.handled = true;
    reply.command = cmd.name;
    reply.text = EscapeHtml("not run: this message was sent " + std::to_string(age / 60) +
                            " minutes ago, while eximguard was not reading; send it again");
  } else {
    reply = RunBotCommand(ctx, text);
  }
  if (!reply.handled) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.commands;
  }
  Log("telegram: " + ctx.caller_id + (ctx.is_admin ? " (admin)" : "") + " in chat " +
      std::to_string(chat_id) + ": " + reply.command +
      (reply.refused ? " refused" : " exit " + std::to_string(reply.exit_code)));
  SendOptions send;
  send.attempts = 2;
  const SendResult r =
      TelegramSendMessage(settings_, std::to_string(chat_id), reply.text, message_id, send);
  if (!r.ok) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.replies_failed;
    }
    Log("telegram: reply to " + ctx.caller_id + " not sent: " + r.error);
  }
}

void TelegramBot::Run() {
  int64_t offset = 0;
  std::string error;
  if (!LoadTelegramOffset(state_dir_, &offset, &error)) {
    Log("telegram: " + error + "; starting from what Telegram still holds");
  }
  std::chrono::milliseconds backoff = options_.backoff_min;
  auto back_off = [&] {
    const bool go_on = WaitFor(backoff);
    backoff = std::min(backoff * 2, options_.backoff_max);
    return go_on;
  };
  auto count_error = [&](long status) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.errors;
    if (status == 409) ++stats_.conflicts;
  };

  // Who we are: "/cmd@OtherBot" is for another bot in the same group.
  std::string last_error;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    std::string result;
    long status = 0;
    if (Call("getMe", "{}", 15000, &result, &status, &error)) {
      const Json me = Json::parse(result, nullptr, false);
      std::lock_guard<std::mutex> lock(mu_);
      stats_.bot_name = me.is_object() ? me.value("username", "") : "";
      break;
    }
    count_error(status);
    if (error != last_error) Log("telegram: getMe failed: " + error + "; retrying");
    last_error = error;
    if (!back_off()) return;
  }
  Log("telegram: bot @" + stats().bot_name + " polling (offset " + std::to_string(offset) + ")");

  backoff = options_.backoff_min;
  bool failing = false;
  const uint32_t poll = std::max<uint32_t>(1, settings_.poll_seconds);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    Json body;
    body["offset"] = offset;
    body["timeout"] = poll;
    body["allowed_updates"] = {"message"};
    const auto started = std::chrono::steady_clock::now();
    std::string result;
    long status = 0;
    if (!Call("getUpdates", body.dump(-1, ' ', false, Json::error_handler_t::replace),
              (poll + 5) * 1000, &result, &status, &error)) {
      count_error(status);
      if (!failing || status == 409) {
        if (status == 409) {
          if (!failing || last_error.rfind("HTTP 409", 0) != 0) {
            Log("telegram: getUpdates refused: " + error +
                " - another program is polling with this bot's token (or a webhook is set); "
                "retrying with backoff");
          }
        } else {
          Log("telegram: getUpdates failed: " + error + "; retrying with backoff");
        }
      }
      failing = true;
      last_error = error;
      if (!back_off()) return;
      continue;
    }
    if (failing) Log("telegram: polling again");
    failing = false;
    last_error.clear();
    backoff = options_.backoff_min;

    Json updates = Json::parse(result, nullptr, false);
    if (!updates.is_array()) updates = Json::array();
    std::sort(updates.begin(), updates.end(), [](const Json& a, const Json& b) {
      return IntAt(a, "update_id") < IntAt(b, "update_id");
    });
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.polls;
      stats_.updates += updates.size();
    }
    for (const Json& u : updates) {
      if (!u.is_object()) continue;
      const int64_t id = IntAt(u, "update_id");
      if (id < offset) continue;  // already handled (a server repeating itself)
      offset = id + 1;
      if (!SaveTelegramOffset(state_dir_, offset, &error)) {
        Log("telegram: offset not saved (" + error + "): a restart may repeat this command");
      }
      HandleUpdate(u.dump(-1, ' ', false, Json::error_handler_t::replace));
    }
    const auto took = std::chrono::steady_clock::now() - started;
    if (updates.empty() && took < options_.min_poll_interval) {
      if (!WaitFor(std::chrono::duration_cast<std::chrono::milliseconds>(
              options_.min_poll_interval - took))) {
        return;
      }
    }
  }
}

}  // namespace eg::sidecar
