// dovecot_policy_server.cpp - see dovecot_policy_server.h. Boost.Beast over Boost.Asio, all
// asynchronous on one io_context run by one thread: an accept loop, and per connection a loop of
// read request (with a deadline) -> answer -> write (with a deadline). The decision runs under
// the mutex that also guards the counters (Stats() reads them from other threads).
//
// Lifetime: handlers hold a shared_ptr to their Connection; Stop() posts to the server thread a
// task that closes the acceptor and every open connection (Impl::connections) and stops the
// io_context, then joins the thread, so no handler runs after it. Handlers still queued are
// destroyed with the io_context, which is declared after everything a Connection's destructor
// touches.

#include "dovecot_policy_server.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstring>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>
#include <utility>

namespace eg::sidecar {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using Json = nlohmann::json;

constexpr size_t kHeaderLimit = 8192;
constexpr std::chrono::seconds kWriteTimeout{5};

using Digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

Digest Sha256(std::string_view s) {
  Digest d{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

std::string StringField(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The value of `name` in the target's query string (no percent-decoding: Dovecot sends the
// command as a plain word), or "".
std::string QueryValue(std::string_view target, std::string_view name) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name)
      return std::string(pair.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

class Connection;

}  // namespace

struct DovecotPolicyServerImpl {
  explicit DovecotPolicyServerImpl(DovecotPolicyServerOptions o)
      : opt(std::move(o)), policy(opt.policy), key_digest(Sha256(opt.api_header_value)) {}

  DovecotPolicyServerOptions opt;
  mutable std::mutex mu;  // guards policy and stats
  DovecotPolicy policy;
  DovecotPolicyServerStats stats;
  const Digest key_digest;
  std::set<Connection*> connections;  // open ones; io thread only
  std::atomic<uint16_t> port{0};
  std::atomic<bool> started{false};
  // Last: destroyed first, with the handlers still queued (they touch the members above).
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  asio::steady_timer retry{ioc};  // after a failed accept
  std::thread thread;

  int64_t Now() const { return opt.clock ? opt.clock() : static_cast<int64_t>(std::time(nullptr)); }
  void Log(const std::string& line) const {
    if (opt.log) opt.log(line);
  }
  bool Authorized(const http::request<http::string_body>& req) const {
    const auto it = req.find(opt.api_header_name);
    const std::string_view given = it == req.end()
                                       ? std::string_view()
                                       : std::string_view(it->value().data(), it->value().size());
    const Digest d = Sha256(given);  // compare digests: constant time, whatever the lengths
    return it != req.end() && CRYPTO_memcmp(d.data(), key_digest.data(), d.size()) == 0;
  }
  // The status and body of the answer to one whole request.
  std::pair<http::status, std::string> Answer(const http::request<http::string_body>& req);
  void Accept();
};

namespace {

Json Verdict(int status, const std::string& msg) {
  return Json{{"status", status}, {"msg", msg}};
}

std::string ErrorBody(const char* what) {
  return Json{{"error", what}}.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

std::pair<http::status, std::string> DovecotPolicyServerImpl::Answer(
    const http::request<http::string_body>& req) {
  if (!Authorized(req)) {
    std::lock_guard lock(mu);
    ++stats.unauthorized;
    return {http::status::unauthorized, ErrorBody("unauthorized")};
  }
  if (req.method() != http::verb::post) {
    std::lock_guard lock(mu);
    ++stats.bad_requests;
    return {http::status::method_not_allowed, ErrorBody("POST only")};
  }
  const std::string command =
      QueryValue(std::string_view(req.target().data(), req.target().size()), "command");
  const Json body = Json::parse(req.body(), nullptr, false);
  const auto success = body.is_object() ? body.find("success") : body.end();
  const bool report = command == "report";
  if ((command != "allow" && !report) || !body.is_object() ||
      (report && (success == body.end() || !success->is_boolean()))) {
    std::lock_guard lock(mu);
    ++stats.bad_requests;
    return {http::status::bad_request,
            ErrorBody(command != "allow" && !report ? "expected ?command=allow or report"
                      : !body.is_object()           ? "expected a JSON object"
                                                    : "a report needs a boolean \"success\"")};
  }
  AuthQuery q;
  q.login = StringField(body, "login");
  q.remote_ip = StringField(body, "remote");
  q.protocol = StringField(body, "protocol");
  AuthAttempt a;
  a.time = Now();
  a.login = q.login;
  a.remote_ip = q.remote_ip;
  a.protocol = q.protocol;
  a.session = StringField(body, "session_id");
  bool tell = false;
  PolicyVerdict v;
  {
    std::lock_guard lock(mu);
    ++stats.requests;
    if (report) {
      ++stats.report_requests;
      const auto rejected = body.find("policy_reject");
      a.success = success->get<bool>();
      a.refused_by_us = rejected != body.end() && rejected->is_boolean() && rejected->get<bool>();
      policy.Report(q, a.success, a.refused_by_us, a.time);
      tell = true;
    } else {
      ++stats.allow_requests;
      v = policy.Allow(q, a.time);
      if (v.status < 0) {
        a.source = AttemptSource::kRefusedAllow;
        a.refused_by_us = true;
        a.rule = v.rule;
        tell = true;
      }
    }
  }
  if (tell && opt.on_attempt) opt.on_attempt(a);
  return {http::status::ok,
          Verdict(v.status, v.message).dump(-1, ' ', false, Json::error_handler_t::replace)};
}

namespace {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(DovecotPolicyServerImpl* impl, tcp::socket socket)
      : impl_(impl), stream_(std::move(socket)) {
    impl_->connections.insert(this);
  }
  ~Connection() { impl_->connections.erase(this); }

  void Read() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(impl_->opt.max_body_bytes);
    stream_.expires_after(impl_->opt.read_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  void OnRead(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      {
        std::lock_guard lock(impl_->mu);
        ++impl_->stats.too_large;
      }
      Write(http::status::payload_too_large, ErrorBody("body too large"), false, 11);
      return;
    }
    if (ec) {  // end of stream, timeout, a request HTTP cannot parse: drop the connection
      Close();
      return;
    }
    const http::request<http::string_body>& req = parser_->get();
    auto [status, body] = impl_->Answer(req);
    Write(status, std::move(body), req.keep_alive(), req.version());
  }

  void Write(http::status status, std::string body, bool keep_alive, unsigned version) {
    res_ = {};
    res_.result(status);
    res_.version(version);
    res_.set(http::field::content_type, "application/json");
    res_.keep_alive(keep_alive);
    res_.body() = std::move(body);
    res_.prepare_payload();
    stream_.expires_after(kWriteTimeout);
    http::async_write(stream_, res_,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                        if (ec || !keep_alive) {
                          self->Close();
                        } else {
                          self->Read();
                        }
                      });
  }

  DovecotPolicyServerImpl* impl_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
};

}  // namespace

void DovecotPolicyServerImpl::Accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (connections.size() >= opt.max_connections) {
        {
          std::lock_guard lock(mu);
          ++stats.busy;
        }
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Connection>(this, std::move(socket))->Read();
      }
      Accept();
      return;
    }
    // accept() failed (out of file descriptors, ...): try again a little later, not in a loop.
    Log("dovecot policy server: accept: " + ec.message());
    retry.expires_after(std::chrono::milliseconds(200));
    retry.async_wait([this](beast::error_code e) {
      if (!e) Accept();
    });
  });
}

DovecotPolicyServer::DovecotPolicyServer(DovecotPolicyServerOptions options)
    : impl_(std::make_unique<DovecotPolicyServerImpl>(std::move(options))) {}

DovecotPolicyServer::~DovecotPolicyServer() {
  Stop();
}

bool DovecotPolicyServer::Start(std::string* error) {
  DovecotPolicyServerImpl& s = *impl_;
  if (s.started.exchange(true)) {
    *error = "dovecot policy server: already started";
    return false;
  }
  if (s.opt.api_header_value.empty() || s.opt.api_header_name.empty()) {
    *error = "dovecot policy server: no API header configured";
    return false;
  }
  std::string ip;
  uint16_t port = 0;
  std::string why;
  if (!ParseLoopbackListen(s.opt.listen, &ip, &port, &why)) {
    *error = "dovecot policy server: listen " + s.opt.listen + ": " + why;
    return false;
  }
  beast::error_code ec;
  const tcp::endpoint endpoint(asio::ip::make_address(ip, ec), port);
  if (!ec) s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    *error = "dovecot policy server: listen " + s.opt.listen + ": " + ec.message();
    return false;
  }
  s.port = s.acceptor.local_endpoint().port();
  s.Accept();
  s.thread = std::thread([impl = impl_.get()] { impl->ioc.run(); });
  return true;
}

void DovecotPolicyServer::Stop() {
  DovecotPolicyServerImpl& s = *impl_;
  if (s.thread.joinable()) {
    // On the server thread: stop listening, drop every connection, end run().
    asio::post(s.ioc, [&s] {
      beast::error_code ignored;
      s.acceptor.close(ignored);
      s.retry.cancel();
      const std::vector<Connection*> open(s.connections.begin(), s.connections.end());
      for (Connection* c : open) c->Close();
      s.ioc.stop();
    });
    s.thread.join();
  }
  beast::error_code ignored;
  s.acceptor.close(ignored);
}

uint16_t DovecotPolicyServer::port() const {
  return impl_->port;
}

DovecotPolicyServerStats DovecotPolicyServer::Stats() const {
  std::lock_guard lock(impl_->mu);
  DovecotPolicyServerStats s = impl_->stats;
  s.policy = impl_->policy.Stats();
  return s;
}

DovecotPolicyServerOptions DovecotPolicyServerOptionsFromConfig(const Config& config) {
  const DovecotPolicyConfig& c = config.dovecot_policy;
  DovecotPolicyServerOptions o;
  o.listen = c.listen;
  o.api_header_name = c.api_header;
  o.api_header_value = c.api_secret;
  DovecotPolicySettings& p = o.policy;
  p.failures = DovecotFailures(config);
  p.failure_seconds = DovecotFailureSeconds(config);
  p.block_seconds = c.block_seconds;
  p.account_ips = c.account_ips;
  p.tarpit_seconds = c.tarpit_seconds;
  p.trusted_seconds = c.trusted_seconds;
  p.exempt_loopback = c.exempt_loopback;
  for (const std::string& text : c.allow_ips) {
    IpRange r;
    std::string why;
    if (ParseIpRange(text, &r, &why)) p.allow.push_back(r);  // validated already
  }
  for (const IpAddress& a : OwnAddresses()) {  // loopback is dovecot_policy.exempt_loopback's
    if (!IsLoopbackIp(a)) p.allow.push_back({a, a.v4 ? 32 : 128});
  }
  return o;
}

}  // namespace eg::sidecar
