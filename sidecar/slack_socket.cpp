// slack_socket.cpp - the Slack Socket Mode bot: apps.connections.open over HttpSend, the
// WebSocket with Boost.Beast (over OpenSSL for wss://), envelopes, acks, replies, backoff.
//
// CONTRACT: see slack_socket.h. Each connection gets its own io_context, run only by the bot
// thread, one operation at a time (Await); Stop() calls io_context::stop() (thread-safe), so a
// wait on the network ends at once. Operations left pending are destroyed, never run, with the
// io_context. This is the only file of eximguard_core that includes Beast (slow to compile).

#include "slack_socket.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <type_traits>
#include <utility>

#include "http_client.h"
#include "notify.h"

namespace eg::sidecar {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;
using Json = nlohmann::json;

std::string_view Trim(std::string_view s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string StringField(const Json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

// Slack's error codes are words like invalid_auth; anything else in them is dropped, so an
// error can never carry more than a code.
std::string SafeCode(std::string_view code) {
  std::string out;
  for (char c : code) {
    if (out.size() >= 64) break;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.') out += c;
  }
  return out.empty() ? "unknown_error" : out;
}

std::string Unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s.substr(i, 4) == "&lt;") {
      out += '<';
      i += 4;
    } else if (s.substr(i, 4) == "&gt;") {
      out += '>';
      i += 4;
    } else if (s.substr(i, 5) == "&amp;") {
      out += '&';
      i += 5;
    } else {
      out += s[i++];
    }
  }
  return out;
}

struct WsUrl {
  bool tls = true;
  std::string host;  // without brackets
  std::string port;
  std::string target;  // path and query
  bool host_is_ip = false;
};

bool ParseWsUrl(std::string_view url, WsUrl* out) {
  if (StartsWith(url, "wss://")) {
    out->tls = true;
    url.remove_prefix(6);
  } else if (StartsWith(url, "ws://")) {
    out->tls = false;
    url.remove_prefix(5);
  } else {
    return false;
  }
  size_t end = url.find_first_of("/?#");
  std::string_view authority = url.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? std::string_view{} : url.substr(end);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return false;
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      port = after.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return false;
  if (!port.empty() &&
      (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos)) {
    return false;
  }
  size_t hash = rest.find('#');
  if (hash != std::string_view::npos) rest = rest.substr(0, hash);
  out->host = std::string(host);
  out->port = port.empty() ? (out->tls ? "443" : "80") : std::string(port);
  out->target =
      rest.empty() ? "/" : (rest.front() == '?' ? "/" + std::string(rest) : std::string(rest));
  boost::system::error_code ec;
  asio::ip::make_address(out->host, ec);
  out->host_is_ip = !ec;
  return true;
}

enum class End { kStopped, kReconnectNow, kError };

struct SessionEnd {
  End end = End::kError;
  bool got_hello = false;
  std::string error;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Parsing and text.

SlackSocketMessage ParseSlackSocketMessage(std::string_view text) {
  SlackSocketMessage m;
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return m;
  std::string type = StringField(j, "type");
  m.envelope_id = StringField(j, "envelope_id");
  if (type.empty()) return m;
  if (type == "hello") {
    m.kind = SlackSocketMessage::Kind::kHello;
    return m;
  }
  if (type == "disconnect") {
    m.kind = SlackSocketMessage::Kind::kDisconnect;
    m.reason = StringField(j, "reason");
    return m;
  }
  m.kind = SlackSocketMessage::Kind::kOther;
  auto payload_it = j.find("payload");
  if (payload_it == j.end() || !payload_it->is_object()) return m;
  const Json& payload = *payload_it;
  if (type == "slash_commands") {
    m.command.command = StringField(payload, "command");
    m.command.user_id = StringField(payload, "user_id");
    m.command.channel_id = StringField(payload, "channel_id");
    m.command.text = SlackCommandText(StringField(payload, "text"), false);
    if (!m.command.user_id.empty() && !m.command.channel_id.empty()) {
      m.kind = SlackSocketMessage::Kind::kCommand;
    }
  } else if (type == "events_api") {
    m.event_id = StringField(payload, "event_id");
    auto event_it = payload.find("event");
    if (event_it == payload.end() || !event_it->is_object()) return m;
    const Json& event = *event_it;
    // Messages from bots (our own replies included) are never commands.
    if (StringField(event, "type") != "app_mention" || event.contains("bot_id")) return m;
    m.command.user_id = StringField(event, "user");
    m.command.channel_id = StringField(event, "channel");
    m.command.text = SlackCommandText(StringField(event, "text"), true);
    if (!m.command.user_id.empty() && !m.command.channel_id.empty()) {
      m.kind = SlackSocketMessage::Kind::kCommand;
    }
  }
  return m;
}

std::string SlackCommandText(std::string_view text, bool strip_mention) {
  std::string_view s = Trim(text);
  if (strip_mention && StartsWith(s, "<@")) {
    size_t close = s.find('>');
    if (close != std::string_view::npos) s = Trim(s.substr(close + 1));
  }
  // Links: <url|label> -> label, <mailto:a> -> a, <url> -> url. Mentions (<@U1>), channels
  // (<#C1|x>) and specials (<!here>) stay as they are.
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '<') {
      size_t close = s.find('>', i + 1);
      if (close != std::string_view::npos) {
        std::string_view inner = s.substr(i + 1, close - i - 1);
        if (!inner.empty() && inner.front() != '@' && inner.front() != '#' &&
            inner.front() != '!') {
          size_t bar = inner.find('|');
          std::string_view shown = bar == std::string_view::npos ? inner : inner.substr(bar + 1);
          if (bar == std::string_view::npos && StartsWith(shown, "mailto:")) {
            shown.remove_prefix(7);
          }
          out.append(shown);
          i = close + 1;
          continue;
        }
      }
    }
    out += s[i++];
  }
  return Unescape(out);
}

// ---------------------------------------------------------------------------------------------
// The bot.

struct SlackBot::Impl {
  SlackSettings settings;
  SlackCommandHandler handler;
  SlackBotOptions options;

  std::thread thread;
  std::atomic<bool> stopping{false};
  bool started = false;

  mutable std::mutex mu;  // guards everything below
  std::condition_variable wake;
  asio::io_context* ioc = nullptr;  // the current connection's, while there is one
  SlackBotStats stats;

  // Bot thread only.
  std::deque<std::string> recent_order;
  std::set<std::string> recent;

  void Log(const std::string& line) {
    if (options.log) options.log("slack: " + line);
  }

  void Error(const std::string& what) {
    {
      std::lock_guard lock(mu);
      ++stats.errors;
      stats.last_error = what;
    }
    Log(what);
  }

  template <class F>
  void Count(F&& f) {
    std::lock_guard lock(mu);
    f(stats);
  }

  void Run();
  bool OpenConnection(std::string* url);
  SessionEnd Connect(const std::string& url);
  template <class Ws>
  SessionEnd Session(asio::io_context& ioc, Ws& ws, const WsUrl& url);
  void HandleEnvelope(const SlackSocketMessage& m);
  void PostReply(const std::string& channel, const std::string& reply);
  bool Remember(const std::string& key);
  bool Sleep(std::chrono::milliseconds d);

  // Runs `ioc` until the operation `start` began completes (its handler is given to `start`).
  // False when the bot is stopping: the operation is then left pending, to be destroyed with
  // the io_context.
  template <class Start>
  bool Await(asio::io_context& ioc, beast::error_code* ec, Start&& start) {
    bool done = false;
    start([&done, ec](beast::error_code e, auto&&...) {
      *ec = e;
      done = true;
    });
    ioc.restart();
    if (stopping) return false;  // after restart(): a concurrent stop() is never lost
    while (!done) {
      if (ioc.run_one() == 0) return false;
    }
    return true;
  }
};

bool SlackBot::Impl::Sleep(std::chrono::milliseconds d) {
  std::unique_lock lock(mu);
  return !wake.wait_for(lock, d, [this] { return stopping.load(); });
}

bool SlackBot::Impl::Remember(const std::string& key) {
  if (recent.count(key) != 0) return false;
  recent.insert(key);
  recent_order.push_back(key);
  while (recent_order.size() > kSlackRecentEnvelopes) {
    recent.erase(recent_order.front());
    recent_order.pop_front();
  }
  return true;
}

bool SlackBot::Impl::OpenConnection(std::string* url) {
  Count([](SlackBotStats& s) { ++s.open_calls; });
  HttpRequest req;
  req.method = "POST";
  req.url = settings.api_url + "/apps.connections.open";
  req.headers = {"Authorization: Bearer " + settings.app_token,
                 "Content-Type: application/x-www-form-urlencoded"};
  req.timeout_ms = options.http_timeout_ms;
  req.connect_timeout_ms = std::min<uint32_t>(options.http_timeout_ms, 5000);
  req.ca_file = settings.ca_file;
  req.proxy = settings.proxy;
  req.max_body = 1 << 20;
  HttpResponse r = HttpSend(req);
  if (!r.error.empty()) {
    Error("apps.connections.open: " + r.error);
    return false;
  }
  Json j = Json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    Error("apps.connections.open: HTTP " + std::to_string(r.status) + ", not a JSON object");
    return false;
  }
  if (!j.value("ok", false)) {
    Error("apps.connections.open: " + SafeCode(StringField(j, "error")) + " (HTTP " +
          std::to_string(r.status) + ")");
    return false;
  }
  *url = StringField(j, "url");
  WsUrl parsed;
  if (!ParseWsUrl(*url, &parsed)) {
    Error("apps.connections.open: the answer has no usable ws:// or wss:// url");
    return false;
  }
  return true;
}

void SlackBot::Impl::Run() {
  std::chrono::milliseconds backoff = options.min_backoff;
  while (!stopping) {
    std::string url;
    SessionEnd end;
    if (OpenConnection(&url)) {
      end = Connect(url);
      if (end.end == End::kError && !end.error.empty()) Error(end.error);
    }
    Count([](SlackBotStats& s) { s.connected = false; });
    if (stopping || end.end == End::kStopped) break;
    if (end.got_hello) backoff = options.min_backoff;
    if (end.end == End::kReconnectNow) continue;
    if (!Sleep(backoff)) break;
    backoff = std::min(backoff * 2, options.max_backoff);
  }
}

SessionEnd SlackBot::Impl::Connect(const std::string& url_text) {
  WsUrl url;
  ParseWsUrl(url_text, &url);  // checked by OpenConnection
  asio::io_context ioc;
  {
    std::lock_guard lock(mu);
    this->ioc = &ioc;
  }
  struct Unregister {
    Impl* impl;
    ~Unregister() {
      std::lock_guard lock(impl->mu);
      impl->ioc = nullptr;
    }
  } unregister{this};
  if (!url.tls) {
    websocket::stream<beast::tcp_stream> ws(ioc);
    return Session(ioc, ws, url);
  }
  ssl::context ctx(ssl::context::tls_client);
  boost::system::error_code ec;
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  ctx.set_verify_mode(ssl::verify_peer, ec);
  if (!ec) {
    if (settings.ca_file.empty()) {
      ctx.set_default_verify_paths(ec);
    } else {
      ctx.load_verify_file(settings.ca_file, ec);
    }
  }
  if (ec) return {End::kError, false, "socket: TLS setup (ca_file): " + ec.message()};
  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(ioc, ctx);
  return Session(ioc, ws, url);
}

template <class Ws>
SessionEnd SlackBot::Impl::Session(asio::io_context& ioc, Ws& ws, const WsUrl& url) {
  constexpr bool kTls = !std::is_same_v<typename Ws::next_layer_type, beast::tcp_stream>;
  SessionEnd out;
  beast::error_code ec;
  auto fail = [&](const std::string& step) {
    out.end = End::kError;
    out.error = "socket: " + step + ": " + ec.message();
    return out;
  };
  auto stopped = [&] {
    out.end = End::kStopped;
    return out;
  };

  tcp::resolver resolver(ioc);
  tcp::resolver::results_type endpoints;
  if (!Await(ioc, &ec, [&](auto done) {
        resolver.async_resolve(
            url.host, url.port,
            [&endpoints, done](beast::error_code e, tcp::resolver::results_type r) mutable {
              endpoints = std::move(r);
              done(e);
            });
      })) {
    return stopped();
  }
  if (ec) return fail("resolve " + url.host);

  auto& tcp_layer = beast::get_lowest_layer(ws);
  tcp_layer.expires_after(options.connect_timeout);
  if (!Await(ioc, &ec, [&](auto done) { tcp_layer.async_connect(endpoints, done); })) {
    return stopped();
  }
  if (ec) return fail("connect to " + url.host);

  if constexpr (kTls) {
    SSL* ssl = ws.next_layer().native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    bool set = url.host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str()) == 1
                              : X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0) == 1;
    // SNI carries names only (RFC 6066), never an address.
    if (set && !url.host_is_ip) set = SSL_set_tlsext_host_name(ssl, url.host.c_str()) == 1;
    if (!set) {
      out.error = "socket: TLS setup: cannot set the host name to verify";
      return out;
    }
    if (!Await(ioc, &ec, [&](auto done) {
          ws.next_layer().async_handshake(ssl::stream_base::client, done);
        })) {
      return stopped();
    }
    if (ec) {
      out = fail("TLS handshake with " + url.host);
      long verify = SSL_get_verify_result(ssl);
      if (verify != X509_V_OK) {
        out.error += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
      }
      return out;
    }
  }

  tcp_layer.expires_never();
  websocket::stream_base::timeout timeouts;
  timeouts.handshake_timeout = options.connect_timeout;
  timeouts.idle_timeout = options.idle_timeout;
  timeouts.keep_alive_pings = true;
  ws.set_option(timeouts);
  ws.set_option(websocket::stream_base::decorator(
      [](websocket::request_type& req) { req.set(beast::http::field::user_agent, "eximguard"); }));
  ws.read_message_max(kSlackMaxMessage);
  std::string host_header =
      url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  if (url.port != (kTls ? "443" : "80")) host_header += ":" + url.port;
  if (!Await(ioc, &ec, [&](auto done) { ws.async_handshake(host_header, url.target, done); })) {
    return stopped();
  }
  if (ec) return fail("WebSocket handshake");

  beast::flat_buffer buffer;
  for (;;) {
    if (!Await(ioc, &ec, [&](auto done) { ws.async_read(buffer, done); })) return stopped();
    if (ec == beast::error::timeout) {
      out.end = End::kError;
      out.error = "socket: no answer to pings, connection dropped";
      return out;
    }
    if (ec) return fail("connection lost");
    std::string text = beast::buffers_to_string(buffer.data());
    buffer.consume(buffer.size());
    SlackSocketMessage m = ParseSlackSocketMessage(text);

    if (!m.envelope_id.empty()) {
      std::string ack =
          Json{{"envelope_id", m.envelope_id}}.dump(-1, ' ', false, Json::error_handler_t::replace);
      if (!Await(ioc, &ec, [&](auto done) { ws.async_write(asio::buffer(ack), done); })) {
        return stopped();
      }
      if (ec) return fail("acknowledge");
      Count([](SlackBotStats& s) { ++s.envelopes; });
      HandleEnvelope(m);
      if (stopping) return stopped();
      continue;
    }
    switch (m.kind) {
      case SlackSocketMessage::Kind::kHello:
        if (!out.got_hello) {
          out.got_hello = true;
          Count([](SlackBotStats& s) {
            ++s.connections;
            s.connected = true;
          });
          Log("connected (Socket Mode)");
        }
        break;
      case SlackSocketMessage::Kind::kDisconnect: {
        Count([](SlackBotStats& s) {
          ++s.disconnects;
          s.connected = false;
        });
        std::string reason = SafeCode(m.reason);
        // Close politely, but never wait long for it.
        Await(ioc, &ec, [&](auto done) { ws.async_close(websocket::close_code::normal, done); });
        if (stopping) return stopped();
        if (m.reason == "link_disabled") {
          out.end = End::kError;
          out.error = "socket: Slack disconnected: link_disabled (Socket Mode is off for the app)";
          return out;
        }
        Log("Slack asked to reconnect (" + reason + ")");
        out.end = End::kReconnectNow;
        return out;
      }
      default:
        break;  // unknown messages are ignored
    }
  }
}

void SlackBot::Impl::HandleEnvelope(const SlackSocketMessage& m) {
  bool fresh = Remember("e:" + m.envelope_id);
  if (!m.event_id.empty()) fresh = Remember("v:" + m.event_id) && fresh;
  if (!fresh) {
    Count([](SlackBotStats& s) { ++s.duplicates; });
    return;
  }
  if (m.kind != SlackSocketMessage::Kind::kCommand || !handler) return;
  SlackCommand command = m.command;
  command.is_admin = std::find(settings.admin_ids.begin(), settings.admin_ids.end(),
                               command.user_id) != settings.admin_ids.end();
  Count([](SlackBotStats& s) { ++s.commands; });
  std::string reply;
  try {
    reply = handler(command);
  } catch (const std::exception& e) {
    Error(std::string("command handler failed: ") + e.what());
    reply = "internal error";
  } catch (...) {
    Error("command handler failed");
    reply = "internal error";
  }
  if (!reply.empty()) PostReply(command.channel_id, reply);
}

void SlackBot::Impl::PostReply(const std::string& channel, const std::string& reply) {
  std::string text = reply;
  if (text.size() > kSlackMaxReply) {
    size_t cut = kSlackMaxReply;
    // Never cut inside a UTF-8 sequence or an entity (&amp;).
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    size_t amp = text.rfind('&', cut);
    if (amp != std::string::npos && text.find(';', amp) >= cut) cut = amp;
    text.resize(cut);
    text += "\n… (truncated)";
  }
  SendOptions send;
  send.timeout_ms = options.http_timeout_ms;
  send.attempts = 2;
  send.retry_delay = std::chrono::milliseconds(500);
  SendResult r = SlackPostMessage(settings, channel, text, send);
  if (!r.ok) {
    Error("chat.postMessage: " + r.error);
    return;
  }
  Count([](SlackBotStats& s) { ++s.replies; });
}

SlackBot::SlackBot(SlackSettings settings, SlackCommandHandler handler, SlackBotOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->settings = std::move(settings);
  impl_->handler = std::move(handler);
  impl_->options = std::move(options);
  if (impl_->options.min_backoff.count() < 1)
    impl_->options.min_backoff = std::chrono::milliseconds(1);
  if (impl_->options.max_backoff < impl_->options.min_backoff) {
    impl_->options.max_backoff = impl_->options.min_backoff;
  }
}

SlackBot::~SlackBot() {
  Stop();
}

void SlackBot::Start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->started || impl_->stopping) return;
  impl_->started = true;
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

void SlackBot::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    if (impl_->ioc != nullptr) impl_->ioc->stop();
  }
  impl_->wake.notify_all();
  if (impl_->thread.joinable() && impl_->thread.get_id() != std::this_thread::get_id()) {
    impl_->thread.join();
  }
}

SlackBotStats SlackBot::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stats;
}

}  // namespace eg::sidecar
