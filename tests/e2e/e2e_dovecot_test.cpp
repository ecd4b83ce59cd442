// e2e_dovecot_test.cpp - the Dovecot auth policy server against a real Dovecot (Debian's
// dovecot-imapd) and real IMAP logins (curl imap://).
//
// Each test starts its own Dovecot: `dovecot -F -c FILE` with base_dir, state_dir and the log
// under a temp dir, IMAP on a loopback port the test picks, a passwd-file passdb with one test
// user, ssl = no, and the shipped exim-config/dovecot/95-eximguard-policy.conf (its port and key
// filled in) included. Nothing system-wide is touched; the Dovecot is killed and its directory
// removed afterwards. The policy server is either the object in process (to see the AuthAttempt
// events) or `eximguard start` (the daemon's wiring: status.json and its log). Logins come from
// 127.0.0.2 and 127.0.0.3 (curl --interface), with dovecot_policy.exempt_loopback off, so the
// policy judges them as it would outside addresses. Dovecot's own slowing of failed logins
// (auth_failure_delay, and the auth penalty's anvil listener) is switched off: it would only
// make the test slower, and the refusals seen are then eximguard's alone.
// Needs root (Dovecot's master), dovecot-imapd and curl.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "dovecot_policy_server.h"
#include "subprocess.h"

namespace eg::e2e {
namespace {

using namespace std::chrono_literals;
using sidecar::AttemptSource;
using sidecar::AuthAttempt;
using sidecar::DovecotPolicyServer;
using sidecar::DovecotPolicyServerOptions;

constexpr const char* kUser = "alice@example.test";
constexpr const char* kPassword = "right-horse-battery";
constexpr const char* kKey = "e2e-policy-key-0123456789abcdef";

// A port nothing listens on right now (bound to 0 and released; the test uses it at once).
uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

bool Accepts(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds limit = 15s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

class DovecotPolicyE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the Dovecot end-to-end tests need root";
    if (access(EG_DOVECOT_BIN, X_OK) != 0) GTEST_SKIP() << "no " EG_DOVECOT_BIN;
    std::string tmpl = (std::filesystem::temp_directory_path() / "eg-dovecot-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);  // Dovecot's unprivileged processes reach their sockets in it
    imap_port_ = FreePort();
  }
  void TearDown() override {
    dovecot_.Kill(SIGTERM);
    if (dovecot_.running()) dovecot_.Wait(10s);
    daemon_.Kill(SIGTERM);
    if (daemon_.running()) daemon_.Wait(10s);
    if (!dir_.empty()) {
      if (HasFailure()) std::cerr << "dovecot log:\n" << ReadFile(File("dovecot.log"));
      std::error_code ignored;
      if (std::getenv("EG_E2E_KEEP") == nullptr) std::filesystem::remove_all(dir_, ignored);
    }
  }
  std::string File(const std::string& name) const { return dir_ + "/" + name; }

  // Starts Dovecot with the shipped policy snippet pointing at `policy_port`.
  void StartDovecot(uint16_t policy_port) {
    std::filesystem::create_directories(File("home"));
    chmod(File("home").c_str(), 01777);
    WriteFile(File("passwd"), std::string(kUser) + ":{PLAIN}" + kPassword + "::::::\n", 0644);
    std::string snippet = ReadFile(EG_DOVECOT_SNIPPET);
    ASSERT_NE(snippet, "") << EG_DOVECOT_SNIPPET;
    snippet = Replace(snippet, "http://127.0.0.1:8744/",
                      "http://127.0.0.1:" + std::to_string(policy_port) + "/");
    snippet = Replace(snippet, "CHANGE-ME-to-dovecot_policy.api_secret", kKey);
    snippet = Replace(snippet, "CHANGE-ME-any-random-string", "e2e-nonce");
    ASSERT_EQ(snippet.find("CHANGE-ME"), std::string::npos);
    WriteFile(File("95-eximguard-policy.conf"), snippet, 0600);
    const std::string conf =
        "base_dir = " + File("run") + "\n" +     //
        "state_dir = " + File("state") + "\n" +  //
        "instance_name = eg-e2e-" + std::to_string(getpid()) + "-" + std::to_string(imap_port_) +
        "\n" +                                        //
        "log_path = " + File("dovecot.log") + "\n" +  //
        "log_timestamp = \"%H:%M:%S.%{usecs} \"\n"
        "protocols = imap\n"
        "listen = 127.0.0.1\n"
        "ssl = no\n"
        "disable_plaintext_auth = no\n"
        "auth_mechanisms = plain login\n"
        "auth_failure_delay = 0\n"
        "mail_location = maildir:~/Maildir\n"
        "passdb {\n  driver = passwd-file\n  args = scheme=PLAIN " +
        File("passwd") + "\n}\n" +
        "userdb {\n  driver = static\n  args = uid=nobody gid=nogroup home=" + File("home") +
        "/%u\n}\n" +
        "service imap-login {\n  inet_listener imap {\n    address = 127.0.0.1\n    port = " +
        std::to_string(imap_port_) + "\n  }\n  inet_listener imaps {\n    port = 0\n  }\n}\n" +
        // Dovecot's own auth penalty (anvil; up to 15 s before each attempt of an IP that failed):
        // a listener with mode 0 is not made, so the lookup fails and there is no delay.
        "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n" +
        "!include " + File("95-eximguard-policy.conf") + "\n";
    WriteFile(File("dovecot.conf"), conf, 0644);
    SpawnOptions o;
    o.argv = {EG_DOVECOT_BIN, "-F", "-c", File("dovecot.conf")};
    o.stdout_path = File("dovecot.out");
    o.stderr_path = File("dovecot.err");
    dovecot_ = Spawn(o);
    ASSERT_TRUE(WaitFor([&] { return Accepts(imap_port_); }))
        << ReadFile(File("dovecot.err")) << ReadFile(File("dovecot.log"));
  }

  // One IMAP login (and a LIST) with curl from `from`; true when it succeeded.
  bool Login(const std::string& from, const std::string& password) {
    SpawnOptions o;
    o.argv = {EG_CURL_BIN,
              "-s",
              "--max-time",
              "20",
              "--interface",
              from,
              "imap://127.0.0.1:" + std::to_string(imap_port_) + "/",
              "-u",
              std::string(kUser) + ":" + password};
    o.stdout_path = File("curl.out");
    o.stderr_path = File("curl.err");
    const ExitStatus st = e2e::Run(o, 30s);
    return st.Ok();
  }

  // One authentication the way Exim's dovecot authenticator (cPanel's SMTP AUTH) makes it: the
  // auth-client protocol on Dovecot's auth socket, service=smtp, the SMTP client's IP as rip.
  // doveadm auth test speaks that protocol. True when it succeeded.
  bool SmtpAuth(const std::string& rip, const std::string& password) {
    SpawnOptions o;
    o.argv = {EG_DOVEADM_BIN,
              "-c",
              File("dovecot.conf"),
              "auth",
              "test",
              "-a",
              File("run/auth-client"),
              "-x",
              "service=smtp",
              "-x",
              "rip=" + rip,
              kUser,
              password};
    o.stdout_path = File("doveadm.out");
    o.stderr_path = File("doveadm.err");
    return e2e::Run(o, 30s).Ok();
  }

  std::string DovecotLog() { return ReadFile(File("dovecot.log")); }

  std::string dir_;
  uint16_t imap_port_ = 0;
  Child dovecot_;
  Child daemon_;
};

struct Recorder {
  std::mutex mu;
  std::vector<AuthAttempt> attempts;
  std::vector<AuthAttempt> Get() {
    std::lock_guard lock(mu);
    return attempts;
  }
};

TEST_F(DovecotPolicyE2e, GuessingIpIsRefusedEvenWithTheRightPasswordAndReportsArrive) {
  Recorder rec;
  DovecotPolicyServerOptions o;
  o.api_header_name = "X-API-Key";
  o.api_header_value = kKey;
  o.policy.failures = 3;
  o.policy.exempt_loopback = false;
  o.on_attempt = [&rec](const AuthAttempt& a) {
    std::lock_guard lock(rec.mu);
    rec.attempts.push_back(a);
  };
  DovecotPolicyServer server(std::move(o));
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;
  StartDovecot(server.port());

  // A good login passes, and its report says so.
  ASSERT_TRUE(Login("127.0.0.2", kPassword)) << ReadFile(File("curl.err"));
  ASSERT_TRUE(WaitFor([&] { return !rec.Get().empty(); }));
  AuthAttempt first = rec.Get().front();
  EXPECT_EQ(first.login, kUser);
  EXPECT_EQ(first.remote_ip, "127.0.0.2");
  EXPECT_EQ(first.protocol, "imap");
  EXPECT_TRUE(first.success);
  EXPECT_FALSE(first.refused_by_us);
  EXPECT_EQ(first.source, AttemptSource::kReport);
  EXPECT_FALSE(first.session.empty());

  // Three wrong passwords from 127.0.0.3 ...
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(Login("127.0.0.3", "wrong-" + std::to_string(i)));
  ASSERT_TRUE(WaitFor([&] { return rec.Get().size() >= 4; }));
  for (size_t i = 1; i < 4; ++i) {
    const AuthAttempt a = rec.Get()[i];
    EXPECT_EQ(a.login, kUser);
    EXPECT_EQ(a.remote_ip, "127.0.0.3");
    EXPECT_FALSE(a.success);
    EXPECT_FALSE(a.refused_by_us);
  }
  // ... and the next attempt from it is refused with the RIGHT password.
  EXPECT_FALSE(Login("127.0.0.3", kPassword));
  ASSERT_TRUE(WaitFor([&] {
    for (const AuthAttempt& a : rec.Get())
      if (a.source == AttemptSource::kRefusedAllow) return true;
    return false;
  }));
  // Dovecot reports the refused attempt too, marked policy_reject (consumers de-duplicate by
  // session).
  ASSERT_TRUE(WaitFor([&] {
    const std::vector<AuthAttempt> all = rec.Get();
    std::string refused_session;
    for (const AuthAttempt& a : all)
      if (a.source == AttemptSource::kRefusedAllow) refused_session = a.session;
    for (const AuthAttempt& a : all)
      if (a.source == AttemptSource::kReport && a.refused_by_us && !a.success &&
          a.session == refused_session)
        return true;
    return false;
  }));
  ASSERT_TRUE(WaitFor([&] {
    return DovecotLog().find("Authentication failure due to policy server refusal") !=
           std::string::npos;
  })) << DovecotLog();
  EXPECT_NE(DovecotLog().find("rip=127.0.0.3"), std::string::npos);
  // The other IP still logs in.
  EXPECT_TRUE(Login("127.0.0.2", kPassword)) << ReadFile(File("curl.err"));

  const auto st = server.Stats();
  EXPECT_EQ(st.unauthorized, 0u);
  EXPECT_EQ(st.bad_requests, 0u);
  EXPECT_EQ(st.policy.failures, 3u);
  EXPECT_GE(st.policy.refused, 1u);
  EXPECT_GE(st.policy.successes, 2u);
}

TEST_F(DovecotPolicyE2e, SmtpAuthThroughDovecotsAuthSocketIsJudgedToo) {
  Recorder rec;
  DovecotPolicyServerOptions o;
  o.api_header_value = kKey;
  o.policy.failures = 2;  // loopback stays exempt here: the rip Exim passes is the client's
  o.on_attempt = [&rec](const AuthAttempt& a) {
    std::lock_guard lock(rec.mu);
    rec.attempts.push_back(a);
  };
  DovecotPolicyServer server(std::move(o));
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;
  StartDovecot(server.port());
  ASSERT_TRUE(SmtpAuth("198.51.100.25", kPassword))
      << ReadFile(File("doveadm.out")) << ReadFile(File("doveadm.err"));
  EXPECT_FALSE(SmtpAuth("198.51.100.25", "wrong-1"));
  EXPECT_FALSE(SmtpAuth("198.51.100.25", "wrong-2"));
  EXPECT_FALSE(SmtpAuth("198.51.100.25", kPassword));  // refused: the IP guessed twice
  EXPECT_TRUE(SmtpAuth("198.51.100.26", kPassword));
  ASSERT_TRUE(WaitFor([&] { return rec.Get().size() >= 5; }));
  const std::vector<AuthAttempt> got = rec.Get();
  EXPECT_EQ(got[0].protocol, "smtp");
  EXPECT_EQ(got[0].remote_ip, "198.51.100.25");
  EXPECT_TRUE(got[0].success);
  bool refused = false;
  for (const AuthAttempt& a : got) refused |= a.source == AttemptSource::kRefusedAllow;
  EXPECT_TRUE(refused);
  EXPECT_NE(DovecotLog().find("policy server refusal"), std::string::npos);
}

TEST_F(DovecotPolicyE2e, WithThePolicyServerDownLoginsStillWork) {
  StartDovecot(FreePort());  // nothing listens there
  EXPECT_TRUE(Login("127.0.0.2", kPassword)) << ReadFile(File("curl.err")) << DovecotLog();
  EXPECT_FALSE(Login("127.0.0.2", "wrong"));
  EXPECT_TRUE(Login("127.0.0.2", kPassword));
}

TEST_F(DovecotPolicyE2e, WrongKeyIsRefusedByUsAndDovecotFailsOpen) {
  DovecotPolicyServerOptions o;
  o.api_header_value = "another-key-that-dovecot-lacks";
  o.policy.failures = 1;
  o.policy.exempt_loopback = false;
  DovecotPolicyServer server(std::move(o));
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;
  StartDovecot(server.port());
  EXPECT_FALSE(Login("127.0.0.3", "wrong"));
  EXPECT_TRUE(Login("127.0.0.3", kPassword));  // nothing was counted: 401s
  ASSERT_TRUE(WaitFor([&] { return server.Stats().unauthorized >= 3; }));
  EXPECT_EQ(server.Stats().policy.failures, 0u);
  EXPECT_EQ(server.Stats().requests, 0u);
}

TEST_F(DovecotPolicyE2e, EximguardStartServesDovecotAndCountsInStatus) {
  const uint16_t policy_port = FreePort();
  std::filesystem::create_directories(File("state-eg"));
  WriteFile(File("mainlog"), "", 0644);
  const std::string shm = "/eg-e2e-dovecot-" + std::to_string(getpid());
  const nlohmann::json config = {{"shm_name", shm},
                                 {"state_dir", File("state-eg")},
                                 {"exim_log", File("mainlog")},
                                 {"local_domains_file", ""},
                                 {"detectors", {{"auth_failures", 2}}},
                                 {"dovecot_policy",
                                  {{"enabled", true},
                                   {"listen", "127.0.0.1:" + std::to_string(policy_port)},
                                   {"api_secret", kKey},
                                   {"failures", 2},
                                   {"exempt_loopback", false}}}};
  WriteFile(File("eximguard.json"), config.dump(2), 0600);
  SpawnOptions o;
  o.argv = {EG_SIDECAR_BIN, "start", "--config", File("eximguard.json")};
  o.stdout_path = File("daemon.out");
  o.stderr_path = File("daemon.err");
  daemon_ = Spawn(o);
  ASSERT_TRUE(WaitFor([&] { return Accepts(policy_port); })) << ReadFile(File("daemon.err"));
  StartDovecot(policy_port);

  EXPECT_TRUE(Login("127.0.0.2", kPassword));
  EXPECT_FALSE(Login("127.0.0.3", "wrong-1"));
  EXPECT_FALSE(Login("127.0.0.3", "wrong-2"));
  EXPECT_FALSE(Login("127.0.0.3", kPassword));  // refused
  auto status = [&] {
    return nlohmann::json::parse(ReadFile(File("state-eg/status.json")), nullptr, false);
  };
  ASSERT_TRUE(WaitFor([&] {
    const nlohmann::json s = status();
    return s.is_object() && s["dovecot_policy"].is_object() &&
           s["dovecot_policy"]["refused"] == 1 && s["dovecot_policy"]["failed"] >= 2;
  })) << status().dump(2);
  const nlohmann::json d = status()["dovecot_policy"];
  EXPECT_EQ(d["succeeded"], 1);
  EXPECT_EQ(d["unauthorized"], 0);
  const std::string log = ReadFile(File("daemon.err"));
  EXPECT_NE(log.find("dovecot policy: refused imap login of alice@example.test from 127.0.0.3 "
                     "(ip_blocked)"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find(kKey), std::string::npos);  // the key is never logged

  // Dovecot's own reports are trusted evidence: the failures make auth_failures incidents of
  // the account and of the IP, with source "dovecot_policy" (no log line was read: mainlog is
  // empty).
  auto incidents = [&] {
    SpawnOptions q;
    q.argv = {EG_SIDECAR_BIN, "incidents",           "--json", "--since", "all",
              "--config",     File("eximguard.json")};
    q.stdout_path = File("incidents.out");
    q.stderr_path = File("incidents.err");
    Spawn(q).Wait(20s);
    return nlohmann::json::parse(ReadFile(File("incidents.out")), nullptr, false);
  };
  auto has = [&](const nlohmann::json& list, const std::string& key) {
    if (!list.is_array()) return false;
    for (const nlohmann::json& i : list) {
      if (i["rule"] == "auth_failures" && i["key"] == key && i["evidence"]["trusted"] == true &&
          i["evidence"]["source"] == "dovecot_policy") {
        return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(WaitFor([&] {
    const nlohmann::json list = incidents();
    return has(list, "alice@example.test") && has(list, "127.0.0.3");
  })) << incidents().dump(2);

  // SIGTERM stops the daemon and its server: Dovecot fails open.
  daemon_.Kill(SIGTERM);
  EXPECT_TRUE(daemon_.Wait(20s).Ok());
  EXPECT_FALSE(Accepts(policy_port));
  EXPECT_TRUE(Login("127.0.0.3", kPassword));
  shm_unlink(shm.c_str());
}

}  // namespace
}  // namespace eg::e2e
