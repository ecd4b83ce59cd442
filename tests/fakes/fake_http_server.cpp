// fake_http_server.cpp - FakeHttpServer: Boost.Beast over blocking Asio sockets, a thread per
// connection.
//
// CONTRACT: see fake_http_server.h. How it stops: the accept thread polls the listening socket
// and an eventfd the destructor writes (and, belt and braces, wakes every 50 ms to look at
// `stop`); connection threads blocked in a read are woken by
// shutdown(2) on their socket (the set of live sockets is kept under the mutex, and a socket
// leaves the set before it is closed, so a recycled fd is never shut down); a response's
// delay_ms is a condition-variable wait that `stop` ends early. The destructor then joins every
// thread and removes the certificate directory.

#include "fake_http_server.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "test_certs.h"

namespace eg::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Query-string decoding: %XX and '+' for a space.
std::string Decode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
               HexValue(text[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

FakeRequest ToFake(const http::request<http::string_body>& req) {
  FakeRequest r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  size_t q = r.target.find('?');
  r.path = r.target.substr(0, q);
  if (q != std::string::npos) {
    std::string_view query = std::string_view(r.target).substr(q + 1);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      if (!pair.empty()) {
        size_t eq = pair.find('=');
        std::string name = Decode(pair.substr(0, eq));
        std::string value = eq == std::string_view::npos ? "" : Decode(pair.substr(eq + 1));
        r.query[name] = value;
      }
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  for (const auto& field : req) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = std::string(field.value());
  }
  r.body = req.body();
  return r;
}

}  // namespace

struct FakeHttpServer::Impl {
  FakeHttpServerOptions options;
  std::string dir;
  TestCerts certs;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::unique_ptr<asio::ssl::context> ssl;
  uint16_t port = 0;
  std::atomic<bool> stop{false};
  int wake_fd = -1;  // eventfd: written by the destructor to end the accept thread's poll

  mutable std::mutex mu;
  std::condition_variable cv;
  std::function<FakeResponse(const FakeRequest&)> handler;
  std::vector<FakeRequest> requests;
  std::set<int> live_fds;
  std::vector<std::thread> connections;
  std::thread accept_thread;

  void AcceptLoop();
  void Serve(tcp::socket sock);
  template <typename Stream>
  void ServeStream(Stream& stream);
};

void FakeHttpServer::Impl::AcceptLoop() {
  while (!stop.load()) {
    pollfd p[2] = {{acceptor.native_handle(), POLLIN, 0}, {wake_fd, POLLIN, 0}};
    int n = ::poll(p, 2, 50);
    if (stop.load()) break;
    if (n <= 0 || (p[0].revents & POLLIN) == 0) continue;
    tcp::socket sock(ioc);
    boost::system::error_code ec;
    acceptor.accept(sock, ec);
    if (ec) continue;
    sock.set_option(tcp::no_delay(true), ec);  // header and body are two writes: no Nagle wait
    std::lock_guard<std::mutex> lock(mu);
    live_fds.insert(sock.native_handle());
    connections.emplace_back([this, s = std::move(sock)]() mutable { Serve(std::move(s)); });
  }
}

void FakeHttpServer::Impl::Serve(tcp::socket sock) {
  int fd = sock.native_handle();
  if (ssl) {
    asio::ssl::stream<tcp::socket&> stream(sock, *ssl);
    boost::system::error_code ec;
    stream.handshake(asio::ssl::stream_base::server, ec);
    if (!ec) ServeStream(stream);
  } else {
    ServeStream(sock);
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    live_fds.erase(fd);
  }
  boost::system::error_code ignored;
  sock.close(ignored);
}

template <typename Stream>
void FakeHttpServer::Impl::ServeStream(Stream& stream) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    boost::system::error_code ec;
    http::read(stream, buffer, parser, ec);
    if (ec) return;
    const http::request<http::string_body>& req = parser.get();
    FakeRequest fake = ToFake(req);
    std::function<FakeResponse(const FakeRequest&)> h;
    {
      std::lock_guard<std::mutex> lock(mu);
      requests.push_back(fake);
      h = handler;
    }
    FakeResponse answer = h ? h(fake) : FakeResponse{404, "{}"};
    if (answer.delay_ms > 0) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, std::chrono::milliseconds(answer.delay_ms), [this] { return stop.load(); });
      if (stop.load()) return;
    }
    if (answer.close_without_answer) return;
    http::response<http::string_body> res;
    res.result(static_cast<unsigned>(answer.status));
    res.version(req.version());
    res.set(http::field::content_type, answer.content_type);
    res.keep_alive(req.keep_alive());
    res.body() = answer.body;
    res.prepare_payload();
    http::write(stream, res, ec);
    if (ec || !res.keep_alive()) return;
  }
}

FakeHttpServer::FakeHttpServer(FakeHttpServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  if (options.tls) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "eg-fake-http-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    impl_->dir = tmpl;
    std::string error;
    if (!MakeTestCerts(impl_->dir, &impl_->certs, &error)) {
      std::filesystem::remove_all(impl_->dir);
      throw std::runtime_error("MakeTestCerts: " + error);
    }
    impl_->ssl = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    impl_->ssl->use_certificate_chain_file(impl_->certs.cert_file);
    impl_->ssl->use_private_key_file(impl_->certs.key_file, asio::ssl::context::pem);
  }
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  impl_->accept_thread = std::thread([impl = impl_.get()] { impl->AcceptLoop(); });
}

FakeHttpServer::~FakeHttpServer() {
  impl_->stop.store(true);
  impl_->cv.notify_all();
  if (impl_->wake_fd >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(impl_->wake_fd, &one, sizeof one);
  }
  if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
  std::vector<std::thread> connections;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (int fd : impl_->live_fds) ::shutdown(fd, SHUT_RDWR);
    connections.swap(impl_->connections);
  }
  impl_->cv.notify_all();
  for (std::thread& t : connections) t.join();
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
  if (!impl_->dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(impl_->dir, ec);
  }
}

void FakeHttpServer::Handle(std::function<FakeResponse(const FakeRequest&)> handler) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->handler = std::move(handler);
}

uint16_t FakeHttpServer::port() const {
  return impl_->port;
}

std::string FakeHttpServer::url() const {
  return std::string(impl_->options.tls ? "https" : "http") +
         "://127.0.0.1:" + std::to_string(impl_->port);
}

std::string FakeHttpServer::ca_file() const {
  return impl_->certs.ca_file;
}

std::string FakeHttpServer::untrusted_ca_file() const {
  return impl_->certs.untrusted_ca_file;
}

std::vector<FakeRequest> FakeHttpServer::requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->requests;
}

void FakeHttpServer::ClearRequests() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->requests.clear();
}

}  // namespace eg::testing
