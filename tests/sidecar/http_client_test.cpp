// http_client_test.cpp - HttpSend against the fake HTTPS server: trust through ca_file, an
// untrusted CA refused, verify_tls=false, timeouts, refused connections, the body cap, and the
// URL path and headers (secrets) kept out of every error.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fake_http_server.h"
#include "http_client.h"

namespace eg::sidecar {
namespace {

using eg::testing::FakeHttpServer;
using eg::testing::FakeRequest;
using eg::testing::FakeResponse;

constexpr char kSecretPath[] = "bot123456:SECRETPATHTOKEN";
constexpr char kSecretHeader[] = "SECRETHEADERTOKEN";

void ExpectNoSecret(const HttpResponse& r) {
  EXPECT_EQ(r.error.find("SECRETPATHTOKEN"), std::string::npos) << r.error;
  EXPECT_EQ(r.error.find(kSecretHeader), std::string::npos) << r.error;
  EXPECT_EQ(r.error.find("q=hidden"), std::string::npos) << r.error;
}

HttpRequest SecretRequest(const std::string& base) {
  HttpRequest req;
  req.url = base + "/" + kSecretPath + "/sendMessage?q=hidden";
  req.headers = {std::string("Authorization: whm root:") + kSecretHeader};
  return req;
}

TEST(HttpClient, GetOverHttpsTrustedThroughCaFile) {
  FakeHttpServer server({.tls = true});
  server.Handle([](const FakeRequest& r) {
    return FakeResponse{200, R"({"path":")" + r.path + "\"}"};
  });
  HttpRequest req;
  req.url =
      server.url() + "/json-api/getdomainowner?api.version=1&domain=" + UrlEncode("ex ample.com");
  req.headers = {"Authorization: whm root:TOKEN"};
  req.ca_file = server.ca_file();
  HttpResponse r = HttpSend(req);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"path":"/json-api/getdomainowner"})");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].query.at("api.version"), "1");
  EXPECT_EQ(reqs[0].query.at("domain"), "ex ample.com");
  EXPECT_EQ(reqs[0].headers.at("authorization"), "whm root:TOKEN");
}

TEST(HttpClient, PostOverHttpsWithBodyAndStatus) {
  FakeHttpServer server({.tls = true});
  server.Handle([](const FakeRequest& r) { return FakeResponse{201, "got " + r.body}; });
  HttpRequest req;
  req.method = "POST";
  req.url = server.url() + "/hook";
  req.headers = {"Content-Type: application/json"};
  req.body = std::string(5000, 'x');  // above curl's 1 KiB "Expect: 100-continue" threshold
  req.ca_file = server.ca_file();
  HttpResponse r = HttpSend(req);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, "got " + req.body);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].headers.at("content-type"), "application/json");
  EXPECT_EQ(reqs[0].headers.count("expect"), 0u);
}

TEST(HttpClient, ErrorStatusIsAnAnswerNotAnError) {
  FakeHttpServer server;  // plain http
  server.Handle([](const FakeRequest&) { return FakeResponse{503, "busy"}; });
  HttpRequest req;
  req.url = server.url() + "/x";
  HttpResponse r = HttpSend(req);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "busy");
}

TEST(HttpClient, RedirectIsNotFollowed) {
  FakeHttpServer server;
  server.Handle([](const FakeRequest& r) {
    if (r.path == "/next") return FakeResponse{200, "followed"};
    return FakeResponse{302, "moved"};
  });
  HttpRequest req;
  req.url = server.url() + "/start";
  HttpResponse r = HttpSend(req);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(HttpClient, UntrustedCaIsRefusedWithAnSslError) {
  FakeHttpServer server({.tls = true});
  HttpRequest req = SecretRequest(server.url());
  req.ca_file = server.untrusted_ca_file();
  HttpResponse r = HttpSend(req);
  EXPECT_NE(r.error, "");
  EXPECT_NE(r.error.find("SSL"), std::string::npos) << r.error;
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_TRUE(server.requests().empty());
  ExpectNoSecret(r);
}

TEST(HttpClient, SystemStoreDoesNotTrustTheTestCa) {
  FakeHttpServer server({.tls = true});
  HttpRequest req = SecretRequest(server.url());
  HttpResponse r = HttpSend(req);
  EXPECT_NE(r.error, "");
  EXPECT_TRUE(server.requests().empty());
  ExpectNoSecret(r);
}

TEST(HttpClient, VerifyTlsFalseAcceptsAnyCertificate) {
  FakeHttpServer server({.tls = true});
  server.Handle([](const FakeRequest&) { return FakeResponse{200, "ok"}; });
  HttpRequest req;
  req.url = server.url() + "/x";
  req.verify_tls = false;
  HttpResponse r = HttpSend(req);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.body, "ok");
}

TEST(HttpClient, TimeoutIsReported) {
  FakeHttpServer server({.tls = true});
  server.Handle([](const FakeRequest&) {
    FakeResponse slow{200, "late"};
    slow.delay_ms = 5000;
    return slow;
  });
  HttpRequest req = SecretRequest(server.url());
  req.ca_file = server.ca_file();
  req.timeout_ms = 300;
  auto start = std::chrono::steady_clock::now();
  HttpResponse r = HttpSend(req);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_NE(r.error, "");
  EXPECT_EQ(r.status, 0);
  EXPECT_LT(took, std::chrono::seconds(3));
  ExpectNoSecret(r);
}

// HttpRequest::cancel abandons a request in flight (a long poll when the bot stops).
TEST(HttpClient, CancelAbandonsARequestInFlight) {
  FakeHttpServer server({.tls = true});
  server.Handle([](const FakeRequest&) {
    FakeResponse slow{200, "late"};
    slow.delay_ms = 3000;
    return slow;
  });
  std::atomic<bool> cancel{false};
  HttpRequest req = SecretRequest(server.url());
  req.ca_file = server.ca_file();
  req.timeout_ms = 20000;
  req.cancel = &cancel;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel = true;
  });
  HttpResponse r = HttpSend(req);
  stopper.join();
  EXPECT_NE(r.error, "");  // without the abort the answer would come, status 200
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 0);
  ExpectNoSecret(r);
}

TEST(HttpClient, ConnectionRefused) {
  std::string url;
  {
    FakeHttpServer gone;
    url = gone.url();
  }
  HttpRequest req = SecretRequest(url);
  HttpResponse r = HttpSend(req);
  EXPECT_NE(r.error, "");
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 0);
  ExpectNoSecret(r);
}

TEST(HttpClient, ClosedWithoutAnswerIsAnError) {
  FakeHttpServer server;
  server.Handle([](const FakeRequest&) {
    FakeResponse drop;
    drop.close_without_answer = true;
    return drop;
  });
  HttpRequest req = SecretRequest(server.url());
  HttpResponse r = HttpSend(req);
  EXPECT_NE(r.error, "");
  EXPECT_EQ(r.status, 0);
  ExpectNoSecret(r);
}

TEST(HttpClient, BodyCap) {
  FakeHttpServer server;
  server.Handle([](const FakeRequest&) { return FakeResponse{200, std::string(10000, 'a')}; });
  HttpRequest req;
  req.url = server.url() + "/big";
  req.max_body = 1000;
  HttpResponse r = HttpSend(req);
  EXPECT_NE(r.error, "");
  EXPECT_NE(r.error.find("1000"), std::string::npos) << r.error;
  EXPECT_EQ(r.body, "");
  req.max_body = 10000;
  r = HttpSend(req);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.body.size(), 10000u);
}

TEST(HttpClient, OnlyHttpAndHttpsAndGetPost) {
  HttpRequest req;
  req.url = "file:///etc/passwd";
  HttpResponse r = HttpSend(req);
  EXPECT_NE(r.error, "");
  EXPECT_EQ(r.body, "");
  req.url = "http://127.0.0.1:1/x";
  req.method = "DELETE";
  r = HttpSend(req);
  EXPECT_NE(r.error, "");
}

TEST(HttpClient, UnresolvableHostErrorHasNoSecret) {
  HttpRequest req = SecretRequest("https://no-such-host.invalid");
  req.timeout_ms = 3000;
  HttpResponse r = HttpSend(req);
  EXPECT_NE(r.error, "");
  ExpectNoSecret(r);
}

// A loopback listener that never answers: it only tells whether anyone connected.
class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        listen(fd_, 16) != 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "no loopback listener";
      return;
    }
    url_ = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  }
  ~Listener() {
    if (fd_ >= 0) close(fd_);
  }
  const std::string& url() const { return url_; }
  bool Touched() {
    const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return false;
    close(c);
    return true;
  }

 private:
  int fd_ = -1;
  std::string url_;
};

// Sets the proxy variables libcurl reads for the test's length, and restores them.
class ProxyEnvironment {
 public:
  explicit ProxyEnvironment(const std::string& proxy) {
    for (const char* name : kNames) {
      const char* old = std::getenv(name);
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      setenv(name, proxy.c_str(), 1);
    }
    for (const char* name : {"no_proxy", "NO_PROXY"}) {
      const char* old = std::getenv(name);
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      unsetenv(name);
    }
  }
  ~ProxyEnvironment() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
  }

 private:
  static constexpr const char* kNames[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                           "ALL_PROXY"};
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST(HttpClient, EnvironmentProxyIsIgnored) {
  Listener proxy;
  ProxyEnvironment env(proxy.url());
  for (const bool tls : {false, true}) {
    FakeHttpServer server({.tls = tls});
    server.Handle([](const FakeRequest&) { return FakeResponse{200, "direct"}; });
    HttpRequest req = SecretRequest(server.url());
    req.ca_file = tls ? server.ca_file() : "";
    req.timeout_ms = 3000;
    const HttpResponse r = HttpSend(req);
    EXPECT_EQ(r.error, "") << tls;
    EXPECT_EQ(r.body, "direct") << tls;
    EXPECT_EQ(server.requests().size(), 1u) << tls;
    EXPECT_FALSE(proxy.Touched()) << "the token went to the environment's proxy, tls " << tls;
  }
}

TEST(HttpClient, ConfiguredProxyIsUsed) {
  Listener proxy;
  FakeHttpServer server;
  server.Handle([](const FakeRequest&) { return FakeResponse{200, "direct"}; });
  HttpRequest req;
  req.url = server.url() + "/x";
  req.proxy = proxy.url();
  req.timeout_ms = 500;  // the listener never answers
  const HttpResponse r = HttpSend(req);
  EXPECT_NE(r.error, "");
  EXPECT_TRUE(proxy.Touched());
  EXPECT_TRUE(server.requests().empty());
}

TEST(HttpClient, UrlEncode) {
  EXPECT_EQ(UrlEncode("a-b_c.d~E9"), "a-b_c.d~E9");
  EXPECT_EQ(UrlEncode("bob@example.com"), "bob%40example.com");
  EXPECT_EQ(UrlEncode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
  EXPECT_EQ(UrlEncode(""), "");
}

}  // namespace
}  // namespace eg::sidecar
