// notify_send.cpp - sending a notice: sendmail, Telegram's sendMessage, Slack's
// chat.postMessage, a webhook; answers checked, transient failures retried (notify.h).

#include "notify.h"

#include <algorithm>
#include <ctime>
#include <functional>
#include <thread>

#include "action_command.h"
#include "http_client.h"
#include "text_escape.h"

namespace eg::sidecar {
namespace {

using Json = nlohmann::ordered_json;

std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string StringField(const Json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t IntField(const Json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_unsigned()) return static_cast<int64_t>(it->get<uint64_t>());
  return 0;
}

struct Attempt {
  bool ok = false;
  bool transient = false;
  std::string error;
  std::chrono::milliseconds retry_after{0};  // the server asked to wait this long
};

SendResult WithRetries(const SendOptions& options, const std::function<Attempt()>& once) {
  SendResult result;
  std::chrono::milliseconds delay = options.retry_delay;
  const int attempts = std::max(1, options.attempts);
  for (int i = 1; i <= attempts; ++i) {
    Attempt a = once();
    result.attempts = i;
    if (a.ok) {
      result.ok = true;
      result.error.clear();
      return result;
    }
    result.error = a.error;
    if (!a.transient || i == attempts) break;
    if (a.retry_after > options.max_retry_after) {
      result.error += " (asked to retry after " + std::to_string(a.retry_after.count() / 1000) +
                      " s; not waiting that long)";
      break;
    }
    std::this_thread::sleep_for(std::max(delay, a.retry_after));
    delay *= 2;
  }
  if (result.attempts > 1) {
    result.error += " (" + std::to_string(result.attempts) + " attempts)";
  }
  return result;
}

std::string TrimSlash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// The answer's reason, shortened and on one line.
std::string Reason(std::string_view text) {
  return OneLine(text, 300);
}

bool Transient(long status) {
  return status == 429 || status >= 500;
}

// One POST of JSON; `check` judges an answer that came.
Attempt PostJson(const std::string& url, std::vector<std::string> headers, const std::string& body,
                 const std::string& ca_file, const std::string& proxy, const SendOptions& options,
                 const std::function<Attempt(const HttpResponse&)>& check) {
  HttpRequest req;
  req.method = "POST";
  req.url = url;
  req.headers = std::move(headers);
  req.headers.push_back("Content-Type: application/json; charset=utf-8");
  req.body = body;
  req.timeout_ms = options.timeout_ms;
  req.connect_timeout_ms = std::min<uint32_t>(options.timeout_ms, 5000);
  req.ca_file = ca_file;
  req.proxy = proxy;
  req.max_body = 1u << 20;
  const HttpResponse r = HttpSend(req);
  if (!r.error.empty()) {
    Attempt a;
    a.transient = true;
    a.error = "no answer: " + r.error;
    return a;
  }
  return check(r);
}

Json ChatId(const std::string& chat_id) {
  const std::string_view digits =
      std::string_view(chat_id).substr(!chat_id.empty() && chat_id[0] == '-' ? 1 : 0);
  if (!digits.empty() && digits.size() <= 18 &&
      std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Json(std::stoll(chat_id));
  }
  return Json(chat_id);
}

SendResult SendEmail(const NotifySettings& settings, const Notice& notice,
                     const SendOptions& options) {
  std::vector<std::string> argv = {settings.sendmail, "-i", "--"};
  argv.insert(argv.end(), settings.email.begin(), settings.email.end());
  const std::string message = RenderEmail(notice, settings, static_cast<int64_t>(time(nullptr)));
  return WithRetries(options, [&] {
    Attempt a;
    const ActionResult r =
        RunActionCommand(argv, message, std::chrono::milliseconds(options.timeout_ms));
    if (!r.started) {
      a.error = "sendmail not run: " + r.error;
    } else if (r.timed_out) {
      a.transient = true;
      a.error = "sendmail killed after " + std::to_string(options.timeout_ms) + " ms";
    } else if (r.exit_status != 0) {
      a.transient = r.exit_status == 75;  // EX_TEMPFAIL
      a.error = r.term_signal != 0 ? "sendmail killed by signal " + std::to_string(r.term_signal)
                                   : "sendmail exited with status " + std::to_string(r.exit_status);
      const std::string out = Reason(r.output);
      if (!out.empty()) a.error += ": " + out;
    } else {
      a.ok = true;
    }
    return a;
  });
}

SendResult SendWebhook(const NotifySettings& settings, const Notice& notice,
                       const SendOptions& options) {
  const std::string body = Dump(NoticeToJson(notice));
  return WithRetries(options, [&] {
    return PostJson(settings.webhook_url, {}, body, settings.webhook_ca_file, settings.proxy,
                    options, [](const HttpResponse& r) {
                      Attempt a;
                      a.ok = r.status >= 200 && r.status < 300;
                      if (!a.ok) {
                        a.transient = Transient(r.status);
                        a.error = "HTTP " + std::to_string(r.status);
                        const std::string body = Reason(r.body);
                        if (!body.empty()) a.error += ": " + body;
                      }
                      return a;
                    });
  });
}

}  // namespace

// ---- sending -----------------------------------------------------------------------------------

const char* ChannelName(Channel channel) {
  switch (channel) {
    case Channel::kEmail:
      return "email";
    case Channel::kTelegram:
      return "telegram";
    case Channel::kSlack:
      return "slack";
    case Channel::kWebhook:
      return "webhook";
  }
  return "?";
}

bool ChannelConfigured(const Config& config, Channel channel) {
  switch (channel) {
    case Channel::kEmail:
      return !config.notify.email.empty();
    case Channel::kTelegram:
      return !config.telegram.token.empty() && !config.telegram.notify_chat_id.empty();
    case Channel::kSlack:
      return !config.slack.bot_token.empty() && !config.slack.notify_channel.empty();
    case Channel::kWebhook:
      return !config.notify.webhook_url.empty();
  }
  return false;
}

std::vector<Channel> ConfiguredChannels(const Config& config) {
  std::vector<Channel> out;
  for (Channel c : kChannels) {
    if (ChannelConfigured(config, c)) out.push_back(c);
  }
  return out;
}

SendResult TelegramSendMessage(const TelegramSettings& settings, const std::string& chat_id,
                               const std::string& html_text, int64_t reply_to,
                               const SendOptions& options) {
  Json body;
  body["chat_id"] = ChatId(chat_id);
  body["text"] = html_text;
  body["parse_mode"] = "HTML";
  body["link_preview_options"] = {{"is_disabled", true}};
  if (reply_to != 0) {
    body["reply_parameters"] = {{"message_id", reply_to}, {"allow_sending_without_reply", true}};
  }
  const std::string text = Dump(body);
  const std::string url = TrimSlash(settings.api_url) + "/bot" + settings.token + "/sendMessage";
  SendResult r = WithRetries(options, [&] {
    return PostJson(url, {}, text, settings.ca_file, settings.proxy, options,
                    [](const HttpResponse& resp) {
                      Attempt a;
                      const Json j = Json::parse(resp.body, nullptr, false);
                      if (resp.status == 200 && j.is_object() && j.value("ok", false) == true) {
                        a.ok = true;
                        return a;
                      }
                      a.transient = Transient(resp.status);
                      a.error = "HTTP " + std::to_string(resp.status);
                      if (j.is_object()) {
                        const std::string d = StringField(j, "description");
                        if (!d.empty()) a.error += ": " + Reason(d);
                        auto p = j.find("parameters");
                        if (p != j.end() && p->is_object()) {
                          const int64_t after = IntField(*p, "retry_after");
                          if (after > 0) a.retry_after = std::chrono::seconds(after);
                        }
                      } else {
                        a.error += " (not a Bot API answer)";
                      }
                      return a;
                    });
  });
  r.error = ScrubSecrets(r.error, {settings.token});  // an API could echo it back
  return r;
}

SendResult SlackPostMessage(const SlackSettings& settings, const std::string& channel,
                            const std::string& mrkdwn_text, const SendOptions& options) {
  Json body;
  body["channel"] = channel;
  body["text"] = mrkdwn_text;
  body["unfurl_links"] = false;
  body["unfurl_media"] = false;
  const std::string text = Dump(body);
  const std::string url = TrimSlash(settings.api_url) + "/chat.postMessage";
  SendResult r = WithRetries(options, [&] {
    return PostJson(url, {"Authorization: Bearer " + settings.bot_token}, text, settings.ca_file,
                    settings.proxy, options, [](const HttpResponse& resp) {
                      Attempt a;
                      const Json j = Json::parse(resp.body, nullptr, false);
                      if (resp.status == 200 && j.is_object() && j.value("ok", false) == true) {
                        a.ok = true;
                        return a;
                      }
                      const std::string why = j.is_object() ? StringField(j, "error") : "";
                      a.transient = Transient(resp.status) || why == "ratelimited" ||
                                    why == "internal_error" || why == "fatal_error" ||
                                    why == "service_unavailable" || why == "request_timeout";
                      if (resp.status == 200 && !why.empty()) {
                        a.error = "Slack error: " + Reason(why);
                      } else {
                        a.error = "HTTP " + std::to_string(resp.status);
                        if (!why.empty()) a.error += ": " + Reason(why);
                      }
                      return a;
                    });
  });
  r.error = ScrubSecrets(r.error, {settings.bot_token, settings.app_token});
  return r;
}

SendResult SendNotice(Channel channel, const Config& config, const Notice& notice,
                      const SendOptions& options) {
  switch (channel) {
    case Channel::kEmail:
      return SendEmail(config.notify, notice, options);
    case Channel::kTelegram:
      return TelegramSendMessage(config.telegram, config.telegram.notify_chat_id,
                                 RenderTelegram(notice), 0, options);
    case Channel::kSlack:
      return SlackPostMessage(config.slack, config.slack.notify_channel, RenderSlack(notice),
                              options);
    case Channel::kWebhook:
      return SendWebhook(config.notify, notice, options);
  }
  return {};
}

}  // namespace eg::sidecar
