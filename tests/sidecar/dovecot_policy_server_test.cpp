// dovecot_policy_server_test.cpp - the HTTP side of the Dovecot auth policy server
// (sidecar/dovecot_policy_server.h) over real loopback sockets with libcurl (HttpSend): the answer
// format, the API header (401 and nothing counted), malformed requests (400/405 and nothing
// counted), the body limit (413), the connection limit, refusing a non-loopback listen address,
// and Stop() with a connection open. The real Dovecot in front of it: dovecot_e2e_test.cpp.

#include "dovecot_policy_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "http_client.h"

namespace eg::sidecar {
namespace {

using Json = nlohmann::json;

constexpr const char* kSecret = "s3cret-policy-key-0123456789";

struct Recorder {
  std::mutex mu;
  std::vector<AuthAttempt> attempts;
  void operator()(const AuthAttempt& a) {
    std::lock_guard lock(mu);
    attempts.push_back(a);
  }
  std::vector<AuthAttempt> Get() {
    std::lock_guard lock(mu);
    return attempts;
  }
};

class PolicyServer : public ::testing::Test {
 protected:
  void StartServer(DovecotPolicyServerOptions o = {}) {
    o.api_header_value = o.api_header_value.empty() ? kSecret : o.api_header_value;
    o.clock = [this] { return now_.load(); };
    o.on_attempt = [this](const AuthAttempt& a) { recorder_(a); };
    o.log = [this](const std::string& line) {
      std::lock_guard lock(log_mu_);
      log_ += line + "\n";
    };
    server_ = std::make_unique<DovecotPolicyServer>(std::move(o));
    std::string error;
    ASSERT_TRUE(server_->Start(&error)) << error;
    ASSERT_NE(server_->port(), 0);
  }
  HttpResponse Post(const std::string& command, const std::string& body,
                    const std::string& header = std::string("X-API-Key: ") + kSecret) {
    HttpRequest r;
    r.method = "POST";
    r.url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/?command=" + command;
    r.headers = {"Content-Type: application/json"};
    if (!header.empty()) r.headers.push_back(header);
    r.body = body;
    r.timeout_ms = 5000;
    return HttpSend(r);
  }
  static std::string Attempt(const std::string& login, const std::string& ip,
                             const std::string& session = "sess1") {
    return Json{{"login", login},  {"pwhash", "0a1b2c"}, {"remote", ip},
                {"device_id", ""}, {"protocol", "imap"}, {"session_id", session}}
        .dump();
  }
  static std::string Report(const std::string& login, const std::string& ip, bool success,
                            bool policy_reject = false) {
    Json j = Json::parse(Attempt(login, ip));
    j["success"] = success;
    j["policy_reject"] = policy_reject;
    return j.dump();
  }

  std::atomic<int64_t> now_{1'000'000};
  Recorder recorder_;
  std::mutex log_mu_;
  std::string log_;
  std::unique_ptr<DovecotPolicyServer> server_;
};

TEST_F(PolicyServer, AnswersDovecotsFormatAndTurnsReportsIntoAttempts) {
  StartServer();
  HttpResponse r = Post("allow", Attempt("alice@example.com", "203.0.113.5"));
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Json::parse(r.body), (Json{{"status", 0}, {"msg", ""}}));
  EXPECT_TRUE(recorder_.Get().empty());  // an allowed allow is no attempt yet

  for (int i = 0; i < 5; ++i) {
    r = Post("report", Report("alice@example.com", "203.0.113.5", false));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Json::parse(r.body)["status"], 0);
  }
  r = Post("report", Report("alice@example.com", "198.51.100.8", true));
  ASSERT_EQ(r.status, 200);
  std::vector<AuthAttempt> got = recorder_.Get();
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[0].login, "alice@example.com");
  EXPECT_EQ(got[0].remote_ip, "203.0.113.5");
  EXPECT_EQ(got[0].protocol, "imap");
  EXPECT_EQ(got[0].session, "sess1");
  EXPECT_EQ(got[0].time, 1'000'000);
  EXPECT_FALSE(got[0].success);
  EXPECT_FALSE(got[0].refused_by_us);
  EXPECT_EQ(got[0].source, AttemptSource::kReport);
  EXPECT_TRUE(got[5].success);

  // The sixth attempt from the guessing IP is refused before Dovecot checks the password.
  now_ += 10;
  r = Post("allow", Attempt("alice@example.com", "203.0.113.5", "sess7"));
  ASSERT_EQ(r.status, 200);
  const Json answer = Json::parse(r.body);
  EXPECT_LT(answer["status"].get<int>(), 0);
  EXPECT_FALSE(answer["msg"].get<std::string>().empty());
  got = recorder_.Get();
  ASSERT_EQ(got.size(), 7u);
  EXPECT_EQ(got[6].source, AttemptSource::kRefusedAllow);
  EXPECT_TRUE(got[6].refused_by_us);
  EXPECT_FALSE(got[6].success);
  EXPECT_EQ(got[6].rule, PolicyRule::kIpBlocked);
  EXPECT_EQ(got[6].session, "sess7");
  EXPECT_EQ(got[6].time, 1'000'010);
  // Dovecot's report of the refused attempt carries policy_reject.
  r = Post("report", Report("alice@example.com", "203.0.113.5", false, true));
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(recorder_.Get().back().refused_by_us);

  const DovecotPolicyServerStats st = server_->Stats();
  EXPECT_EQ(st.requests, 9u);
  EXPECT_EQ(st.allow_requests, 2u);
  EXPECT_EQ(st.report_requests, 7u);
  EXPECT_EQ(st.policy.failures, 5u);
  EXPECT_EQ(st.policy.refused, 1u);
}

TEST_F(PolicyServer, ATarpitAnswersPositiveSeconds) {
  DovecotPolicyServerOptions o;
  o.policy.account_ips = 2;
  o.policy.tarpit_seconds = 4;
  StartServer(o);
  ASSERT_EQ(Post("report", Report("v@x.example", "203.0.113.1", false)).status, 200);
  ASSERT_EQ(Post("report", Report("v@x.example", "203.0.113.2", false)).status, 200);
  const HttpResponse r = Post("allow", Attempt("v@x.example", "203.0.113.3"));
  EXPECT_EQ(Json::parse(r.body), (Json{{"status", 4}, {"msg", ""}}));
  EXPECT_EQ(server_->Stats().policy.tarpitted, 1u);
}

TEST_F(PolicyServer, AWrongOrMissingApiHeaderIs401AndNothingIsCounted) {
  DovecotPolicyServerOptions o;
  o.api_header_name = "Authorization";
  o.api_header_value = "Basic ZG92ZWNvdDpzM2NyZXQtcG9saWN5";
  StartServer(o);
  const std::vector<std::string> wrong = {
      "",                                                  // missing
      "Authorization: Basic ZG92ZWNvdDpzM2NyZXQtcG9saWN",  // one character short
      "Authorization: Basic ZG92ZWNvdDpzM2NyZXQtcG9saWN5x",
      "Authorization: basic ZG92ZWNvdDpzM2NyZXQtcG9saWN5",
      "X-API-Key: Basic ZG92ZWNvdDpzM2NyZXQtcG9saWN5",  // the right value in another header
  };
  for (const std::string& h : wrong) {
    for (int i = 0; i < 6; ++i) {
      const HttpResponse r = Post("report", Report("a@x.example", "203.0.113.9", false), h);
      ASSERT_EQ(r.error, "");
      EXPECT_EQ(r.status, 401) << h;
      EXPECT_EQ(r.body.find("ZG92"), std::string::npos);
    }
  }
  EXPECT_TRUE(recorder_.Get().empty());
  DovecotPolicyServerStats st = server_->Stats();
  EXPECT_EQ(st.unauthorized, 30u);
  EXPECT_EQ(st.requests, 0u);
  EXPECT_EQ(st.policy.failures, 0u);
  // The right header: the IP was never counted, so it is allowed.
  const HttpResponse r = Post("allow", Attempt("a@x.example", "203.0.113.9"),
                              "Authorization: Basic ZG92ZWNvdDpzM2NyZXQtcG9saWN5");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Json::parse(r.body)["status"], 0);
  std::lock_guard lock(log_mu_);
  EXPECT_EQ(log_.find("ZG92"), std::string::npos);
}

TEST_F(PolicyServer, MalformedRequestsAre400Or405AndNothingIsCounted) {
  StartServer();
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"report", "{\"login\":\"a@x.example\",\"remote\":\"203.0.113.9\",\"success\":fa"},
      {"report", "not json"},
      {"report", "[1,2,3]"},
      {"report", ""},
      {"report", "{\"login\":\"a@x.example\",\"remote\":\"203.0.113.9\"}"},  // no success
      {"report", "{\"login\":\"a@x.example\",\"remote\":\"203.0.113.9\",\"success\":\"false\"}"},
      {"unknown", Report("a@x.example", "203.0.113.9", false)},
      {"", Report("a@x.example", "203.0.113.9", false)},
      {"allow", "{\"login\":"},
  };
  for (const auto& [command, body] : bad) {
    const HttpResponse r = Post(command, body);
    ASSERT_EQ(r.error, "");
    EXPECT_EQ(r.status, 400) << command << " " << body;
    EXPECT_TRUE(Json::parse(r.body, nullptr, false).is_object()) << r.body;
  }
  HttpRequest get;
  get.url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/?command=allow";
  get.headers = {std::string("X-API-Key: ") + kSecret};
  EXPECT_EQ(HttpSend(get).status, 405);
  EXPECT_TRUE(recorder_.Get().empty());
  const DovecotPolicyServerStats st = server_->Stats();
  EXPECT_EQ(st.bad_requests, bad.size() + 1);
  EXPECT_EQ(st.requests, 0u);
  EXPECT_EQ(st.policy.failures, 0u);
  // Odd but well-formed attributes are answered: a number where a string belongs is "".
  const HttpResponse r = Post("allow", "{\"login\":5,\"remote\":[],\"extra\":{\"x\":1}}");
  EXPECT_EQ(r.status, 200);
}

TEST_F(PolicyServer, ABodyOverTheLimitIs413AndNothingIsCounted) {
  DovecotPolicyServerOptions o;
  o.max_body_bytes = 4096;
  StartServer(o);
  Json j = Json::parse(Report("a@x.example", "203.0.113.9", false));
  j["padding"] = std::string(8192, 'x');
  const HttpResponse r = Post("report", j.dump());
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(server_->Stats().too_large, 1u);
  EXPECT_EQ(server_->Stats().policy.failures, 0u);
  EXPECT_TRUE(recorder_.Get().empty());
  // Just under the limit is fine.
  j["padding"] = std::string(3000, 'x');
  EXPECT_EQ(Post("report", j.dump()).status, 200);
}

int ConnectRaw(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// True when the server closed `fd` (read returns 0 or an error) within `ms`.
bool ClosedByPeer(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, ms) <= 0) return false;
  char c;
  return read(fd, &c, 1) <= 0;
}

TEST_F(PolicyServer, ConnectionsOverTheLimitAreClosedAtOnce) {
  DovecotPolicyServerOptions o;
  o.max_connections = 2;
  StartServer(o);
  const int a = ConnectRaw(server_->port());
  const int b = ConnectRaw(server_->port());
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  // The third is closed by the server; the first two stay open (idle, within read_timeout).
  const int c = ConnectRaw(server_->port());
  ASSERT_GE(c, 0);
  EXPECT_TRUE(ClosedByPeer(c, 5000));
  EXPECT_FALSE(ClosedByPeer(a, 100));
  EXPECT_EQ(server_->Stats().busy, 1u);
  close(a);
  close(b);
  close(c);
  // Room again once they are gone.
  bool answered = false;
  for (int i = 0; i < 100 && !answered; ++i) {
    answered = Post("allow", Attempt("a@x.example", "203.0.113.9")).status == 200;
  }
  EXPECT_TRUE(answered);
}

TEST_F(PolicyServer, AnIdleConnectionIsDroppedAfterTheReadTimeout) {
  DovecotPolicyServerOptions o;
  o.read_timeout = std::chrono::milliseconds(200);
  StartServer(o);
  const int fd = ConnectRaw(server_->port());
  ASSERT_GE(fd, 0);
  const std::string partial = "POST /?command=allow HTTP/1.1\r\nHost: x\r\n";  // never finished
  ASSERT_EQ(write(fd, partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
  EXPECT_TRUE(ClosedByPeer(fd, 10000));
  close(fd);
}

TEST_F(PolicyServer, StopReturnsWithAConnectionOpenAndNothingListensAfterIt) {
  StartServer();
  const uint16_t port = server_->port();
  const int fd = ConnectRaw(port);
  ASSERT_GE(fd, 0);
  server_->Stop();
  EXPECT_TRUE(ClosedByPeer(fd, 5000));
  close(fd);
  EXPECT_EQ(ConnectRaw(port), -1);
  server_.reset();  // a second Stop() (the destructor's) is harmless
}

TEST_F(PolicyServer, StartRefusesANonLoopbackAddressAndAMissingKey) {
  DovecotPolicyServerOptions o;
  o.listen = "0.0.0.0:0";
  o.api_header_value = kSecret;
  DovecotPolicyServer s1(o);
  std::string error;
  EXPECT_FALSE(s1.Start(&error));
  EXPECT_NE(error.find("loopback"), std::string::npos) << error;
  EXPECT_EQ(error.find(kSecret), std::string::npos);
  o.listen = "127.0.0.1:0";
  o.api_header_value = "";
  DovecotPolicyServer s2(o);
  EXPECT_FALSE(s2.Start(&error));
  EXPECT_NE(error.find("API header"), std::string::npos) << error;
  // A port in use is an error, not a crash.
  StartServer();
  o.api_header_value = kSecret;
  o.listen = "127.0.0.1:" + std::to_string(server_->port());
  DovecotPolicyServer s3(o);
  EXPECT_FALSE(s3.Start(&error));
  EXPECT_EQ(error.find(kSecret), std::string::npos);
}

TEST(DovecotPolicyServerOptions, ComeFromTheConfigWithTheDetectorsDefaultsAndOwnAddresses) {
  Config c;
  c.detectors.auth_failures = 7;
  c.detectors.auth_failure_seconds = 120;
  c.dovecot_policy.api_secret = kSecret;
  c.dovecot_policy.allow_ips = {"192.0.2.0/24"};
  DovecotPolicyServerOptions o = DovecotPolicyServerOptionsFromConfig(c);
  EXPECT_EQ(o.policy.failures, 7u);
  EXPECT_EQ(o.policy.failure_seconds, 120u);
  EXPECT_EQ(o.api_header_name, "X-API-Key");
  EXPECT_EQ(o.api_header_value, kSecret);
  ASSERT_GE(o.policy.allow.size(), 1u);
  EXPECT_EQ(IpText(o.policy.allow[0].base), "192.0.2.0");
  size_t own = 0;  // this host's addresses but loopback (that is exempt_loopback's to decide)
  for (const IpAddress& a : OwnAddresses()) own += IsLoopbackIp(a) ? 0 : 1;
  EXPECT_EQ(o.policy.allow.size(), 1 + own);
  c.dovecot_policy.failures = 3;
  c.dovecot_policy.failure_seconds = 60;
  o = DovecotPolicyServerOptionsFromConfig(c);
  EXPECT_EQ(o.policy.failures, 3u);
  EXPECT_EQ(o.policy.failure_seconds, 60u);
  for (const IpRange& r : o.policy.allow) EXPECT_FALSE(IsLoopbackIp(r.base));  // exempt_loopback's
}

}  // namespace
}  // namespace eg::sidecar
