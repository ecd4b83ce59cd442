// fake_slack.cpp - the fake Slack: the Web API on a FakeHttpServer, the Socket Mode WebSocket
// server with Boost.Beast (async, one io_context thread; each socket keeps a write queue).
//
// CONTRACT: see fake_slack.h.

#include "fake_slack.h"

#include <stdlib.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <type_traits>

#include "fake_http_server.h"
#include "test_certs.h"

namespace eg::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;
using Json = nlohmann::json;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Answer(const Json& j) {
  return j.dump();
}

struct ConnBase {
  virtual ~ConnBase() = default;
  virtual void Queue(std::string text) = 0;
  virtual void Drop() = 0;
  std::atomic<bool> open{false};
};

// What the socket server's connections and the Web API handler share.
struct Shared {
  FakeSlackOptions options;
  uint16_t ws_port = 0;

  mutable std::mutex mu;
  std::vector<std::weak_ptr<ConnBase>> conns;
  std::vector<std::shared_ptr<ConnBase>> idle;  // sockets that never read (no handler owns them)
  std::set<std::string> tickets;
  int next_ticket = 0;
  int open_calls = 0;
  int open_refused = 0;
  int sockets_accepted = 0;
  int sockets_open = 0;
  std::vector<std::string> acks;
  std::vector<std::string> received;
  std::vector<FakeSlackPost> posts;
  std::vector<std::string> authorizations;

  FakeResponse Serve(const FakeRequest& r, const std::string& app, const std::string& bot);
  std::shared_ptr<ConnBase> Newest();
};

template <class Ws>
struct Conn : ConnBase, std::enable_shared_from_this<Conn<Ws>> {
  static constexpr bool kTls = !std::is_same_v<typename Ws::next_layer_type, beast::tcp_stream>;

  Shared* impl;
  Ws ws;
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  http::response<http::string_body> refusal;
  std::deque<std::string> outbox;
  bool writing = false;
  bool counted = false;

  template <class... Args>
  explicit Conn(Shared* i, Args&&... args) : impl(i), ws(std::forward<Args>(args)...) {}

  void Start() {
    auto self = this->shared_from_this();
    if constexpr (kTls) {
      ws.next_layer().async_handshake(ssl::stream_base::server, [self](beast::error_code ec) {
        if (!ec) self->ReadRequest();
      });
    } else {
      ReadRequest();
    }
  }

  void ReadRequest() {
    auto self = this->shared_from_this();
    http::async_read(ws.next_layer(), buffer, request, [self](beast::error_code ec, size_t) {
      if (!ec) self->Upgrade();
    });
  }

  void Upgrade() {
    auto self = this->shared_from_this();
    std::string target(request.target());
    bool known = false;
    size_t at = target.find("ticket=");
    if (target.rfind("/link/", 0) == 0 && at != std::string::npos) {
      std::string ticket = target.substr(at + 7, target.find('&', at) - (at + 7));
      std::lock_guard lock(impl->mu);
      known = impl->tickets.count(ticket) != 0;
    }
    if (!known || !websocket::is_upgrade(request)) {
      refusal = http::response<http::string_body>(http::status::forbidden, request.version());
      refusal.body() = "no such ticket";
      refusal.prepare_payload();
      http::async_write(ws.next_layer(), refusal, [self](beast::error_code, size_t) {
        beast::error_code ignored;
        beast::get_lowest_layer(self->ws).socket().close(ignored);
      });
      return;
    }
    ws.async_accept(request, [self](beast::error_code ec) {
      if (!ec) self->Opened();
    });
  }

  void Opened() {
    {
      std::lock_guard lock(impl->mu);
      ++impl->sockets_accepted;
      ++impl->sockets_open;
      counted = true;
      open = true;
      impl->conns.push_back(this->shared_from_this());
    }
    if (impl->options.send_hello) {
      Queue(Json{{"type", "hello"},
                 {"num_connections", 1},
                 {"debug_info", {{"host", "fake-slack"}, {"approximate_connection_time", 18060}}},
                 {"connection_info", {{"app_id", "A0FAKE"}}}}
                .dump());
    }
    if (impl->options.read_frames) {
      Read();
    } else {
      std::lock_guard lock(impl->mu);
      impl->idle.push_back(this->shared_from_this());
    }
  }

  void Read() {
    auto self = this->shared_from_this();
    ws.async_read(buffer, [self](beast::error_code ec, size_t) {
      if (ec) {
        self->Closed();
        return;
      }
      std::string text = beast::buffers_to_string(self->buffer.data());
      self->buffer.consume(self->buffer.size());
      Json j = Json::parse(text, nullptr, false);
      std::lock_guard lock(self->impl->mu);
      self->impl->received.push_back(text);
      if (j.is_object() && j.contains("envelope_id") && j["envelope_id"].is_string()) {
        self->impl->acks.push_back(j["envelope_id"].template get<std::string>());
      }
      self->Read();
    });
  }

  void Closed() {
    open = false;
    std::lock_guard lock(impl->mu);
    if (counted) {
      counted = false;
      --impl->sockets_open;
    }
  }

  void Queue(std::string text) override {
    outbox.push_back(std::move(text));
    if (!writing) WriteNext();
  }

  void WriteNext() {
    if (outbox.empty()) {
      writing = false;
      return;
    }
    writing = true;
    auto self = this->shared_from_this();
    ws.async_write(asio::buffer(outbox.front()), [self](beast::error_code ec, size_t) {
      self->outbox.pop_front();
      if (ec) {
        self->writing = false;
        return;
      }
      self->WriteNext();
    });
  }

  void Drop() override {
    open = false;
    beast::error_code ignored;
    beast::get_lowest_layer(ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws).socket().close(ignored);
  }
};

using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;
using PlainWs = websocket::stream<beast::tcp_stream>;

}  // namespace

struct FakeSlack::Impl {
  std::string dir;
  TestCerts certs;
  std::string bundle;
  std::unique_ptr<FakeHttpServer> http;
  Shared shared;

  ssl::context sctx{ssl::context::tls_server};
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::thread thread;

  void Accept();
};

namespace {

FakeResponse Shared::Serve(const FakeRequest& r, const std::string& app, const std::string& bot) {
  std::string auth;
  if (auto it = r.headers.find("authorization"); it != r.headers.end()) auth = it->second;
  std::lock_guard lock(mu);
  authorizations.push_back(auth);
  if (r.path == "/api/apps.connections.open") {
    ++open_calls;
    if (r.method != "POST") return {200, Answer({{"ok", false}, {"error", "insecure_request"}})};
    if (auth != "Bearer " + app) {
      ++open_refused;
      return {200, Answer({{"ok", false}, {"error", "invalid_auth"}})};
    }
    std::string ticket = std::to_string(++next_ticket);
    tickets.insert(ticket);
    std::string url = std::string(options.tls_socket ? "wss" : "ws") +
                      "://127.0.0.1:" + std::to_string(ws_port) + "/link/?ticket=" + ticket +
                      "&app_id=A0FAKE";
    return {200, Answer({{"ok", true}, {"url", url}})};
  }
  if (r.path == "/api/chat.postMessage") {
    if (auth != "Bearer " + bot) return {200, Answer({{"ok", false}, {"error", "invalid_auth"}})};
    Json body = Json::parse(r.body, nullptr, false);
    if (!body.is_object() || !body.contains("channel") || !body["channel"].is_string()) {
      return {200, Answer({{"ok", false}, {"error", "channel_not_found"}})};
    }
    FakeSlackPost post;
    post.channel = body["channel"].get<std::string>();
    if (body.contains("text") && body["text"].is_string())
      post.text = body["text"].get<std::string>();
    posts.push_back(post);
    return {200, Answer({{"ok", true}, {"channel", post.channel}, {"ts", "1700000000.000100"}})};
  }
  return {404, Answer({{"ok", false}, {"error", "unknown_method"}})};
}

std::shared_ptr<ConnBase> Shared::Newest() {
  std::lock_guard lock(mu);
  for (auto it = conns.rbegin(); it != conns.rend(); ++it) {
    if (auto c = it->lock(); c && c->open) return c;
  }
  return nullptr;
}

}  // namespace

void FakeSlack::Impl::Accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec) return;  // the acceptor was closed
    if (shared.options.tls_socket) {
      std::make_shared<Conn<TlsWs>>(&shared, std::move(socket), sctx)->Start();
    } else {
      std::make_shared<Conn<PlainWs>>(&shared, std::move(socket))->Start();
    }
    Accept();
  });
}

FakeSlack::FakeSlack(FakeSlackOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->shared.options = options;
  std::string tmpl = (std::filesystem::temp_directory_path() / "eg-fake-slack-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  impl_->dir = tmpl;
  std::string error;
  if (!MakeTestCerts(impl_->dir, &impl_->certs, &error)) {
    std::filesystem::remove_all(impl_->dir);
    throw std::runtime_error("MakeTestCerts: " + error);
  }
  impl_->http = std::make_unique<FakeHttpServer>(FakeHttpServerOptions{.tls = options.https_api});
  impl_->bundle = impl_->dir + "/bundle.pem";
  {
    std::ofstream out(impl_->bundle, std::ios::binary);
    out << ReadAll(impl_->certs.ca_file) << '\n';
    if (options.https_api) out << ReadAll(impl_->http->ca_file()) << '\n';
  }

  impl_->sctx.use_certificate_chain_file(impl_->certs.cert_file);
  impl_->sctx.use_private_key_file(impl_->certs.key_file, ssl::context::pem);
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  impl_->shared.ws_port = impl_->acceptor.local_endpoint().port();
  impl_->Accept();
  impl_->thread = std::thread([impl = impl_.get()] {
    auto guard = asio::make_work_guard(impl->ioc);
    impl->ioc.run();
  });

  Impl* impl = impl_.get();
  std::string app = app_token(), bot = bot_token();
  impl_->http->Handle(
      [impl, app, bot](const FakeRequest& r) { return impl->shared.Serve(r, app, bot); });
}

FakeSlack::~FakeSlack() {
  impl_->http.reset();  // no more handler calls
  impl_->ioc.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->shared.idle.clear();  // while the io_context still exists
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
  std::error_code ec;
  std::filesystem::remove_all(impl_->dir, ec);
}

std::string FakeSlack::api_url() const {
  return impl_->http->url() + "/api";
}
std::string FakeSlack::ca_file() const {
  return impl_->bundle;
}
std::string FakeSlack::untrusted_ca_file() const {
  return impl_->certs.untrusted_ca_file;
}

bool FakeSlack::Send(const std::string& text) {
  std::shared_ptr<ConnBase> c = impl_->shared.Newest();
  if (!c) return false;
  asio::post(impl_->ioc, [c, text] { c->Queue(text); });
  return true;
}

bool FakeSlack::SendDisconnect(const std::string& reason) {
  return Send(
      Json{{"type", "disconnect"}, {"reason", reason}, {"debug_info", {{"host", "fake-slack"}}}}
          .dump());
}

bool FakeSlack::DropConnection() {
  std::shared_ptr<ConnBase> c = impl_->shared.Newest();
  if (!c) return false;
  asio::post(impl_->ioc, [c] { c->Drop(); });
  return true;
}

int FakeSlack::open_calls() const {
  std::lock_guard lock(impl_->shared.mu);
  return impl_->shared.open_calls;
}
int FakeSlack::open_refused() const {
  std::lock_guard lock(impl_->shared.mu);
  return impl_->shared.open_refused;
}
int FakeSlack::sockets_accepted() const {
  std::lock_guard lock(impl_->shared.mu);
  return impl_->shared.sockets_accepted;
}
int FakeSlack::sockets_open() const {
  std::lock_guard lock(impl_->shared.mu);
  return impl_->shared.sockets_open;
}
std::vector<std::string> FakeSlack::acks() const {
  std::lock_guard lock(impl_->shared.mu);
  return impl_->shared.acks;
}
std::vector<std::string> FakeSlack::received() const {
  std::lock_guard lock(impl_->shared.mu);
  return impl_->shared.received;
}
std::vector<FakeSlackPost> FakeSlack::posts() const {
  std::lock_guard lock(impl_->shared.mu);
  return impl_->shared.posts;
}
std::vector<std::string> FakeSlack::authorizations() const {
  std::lock_guard lock(impl_->shared.mu);
  return impl_->shared.authorizations;
}

std::string FakeSlack::SlashCommand(const std::string& envelope_id, const std::string& user,
                                    const std::string& channel, const std::string& text,
                                    const std::string& command) {
  return Json{{"envelope_id", envelope_id},
              {"type", "slash_commands"},
              {"accepts_response_payload", true},
              {"payload",
               {{"token", "verification-token"},
                {"team_id", "T0FAKE"},
                {"team_domain", "fake"},
                {"channel_id", channel},
                {"channel_name", "ops"},
                {"user_id", user},
                {"user_name", "someone"},
                {"command", command},
                {"text", text},
                {"api_app_id", "A0FAKE"},
                {"response_url", "https://hooks.slack.com/commands/T0FAKE/1/x"},
                {"trigger_id", "1.2.3"}}}}
      .dump();
}

std::string FakeSlack::AppMention(const std::string& envelope_id, const std::string& user,
                                  const std::string& channel, const std::string& text,
                                  const std::string& event_id) {
  return Json{{"envelope_id", envelope_id},
              {"type", "events_api"},
              {"accepts_response_payload", false},
              {"retry_attempt", 0},
              {"retry_reason", ""},
              {"payload",
               {{"token", "verification-token"},
                {"team_id", "T0FAKE"},
                {"api_app_id", "A0FAKE"},
                {"type", "event_callback"},
                {"event_id", event_id},
                {"event_time", 1700000000},
                {"event",
                 {{"type", "app_mention"},
                  {"user", user},
                  {"text", text},
                  {"ts", "1700000000.000100"},
                  {"channel", channel},
                  {"event_ts", "1700000000.000100"}}}}}}
      .dump();
}

}  // namespace eg::testing
