// e2e_forgery_test.cpp - log lines forged by the people they judge, with a real Exim 4.9x and
// the real sidecar (`eximguard replay`):
//   - a customer's directory whose name holds newlines and a complete fake "<=" line of another
//     mailbox: Exim (log_selector = +all, so +arguments) writes it raw into the mainlog as its
//     own physical line; replay must not count it (no incident for the victim) and must still
//     count the customer's real message;
//   - an SMTP AUTH id with spaces, "evil P=local U=root": Exim logs it unquoted inside A=;
//     replay must key the account on the whole id.
//
// Contract: each test has its own EximSandbox (see exim_harness.h) and a replay config of its
// own (limits 8/minute, so 10 recipients make an incident); nothing outlives the test. Needs
// root, like the rest of the suite.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "exim_harness.h"

namespace eg::e2e {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteAll(const std::string& path, const std::string& text, mode_t mode) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
  }
  chmod(path.c_str(), mode);
}

// "YYYY-MM-DD HH:MM:SS" now, local time, as Exim stamps its lines.
std::string NowStamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string List(const std::string& stem, int n, const std::string& sep) {
  std::string s;
  for (int i = 0; i < n; ++i) s += (i == 0 ? "" : sep) + stem + std::to_string(i) + "@far.example";
  return s;
}

class EximForgeryE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the Exim end-to-end tests need root, as CI runs them";
  }

  static void Publish(EximSandbox& sandbox, const GuardPolicy& policy) {
    std::string output;
    ExitStatus status = sandbox.CreateSegment(policy, &output);
    ASSERT_TRUE(status.Ok()) << "eximguard run: " << status.Describe() << "\n" << output;
  }

  // `eximguard replay --json` over `log` with limits of 8 per minute for every class; the
  // incidents' JSON lines (stdout) in *incidents, its summary (stderr) in *summary.
  static ExitStatus Replay(EximSandbox& sandbox, const std::string& log, const std::string& group,
                           std::vector<nlohmann::json>* incidents, std::string* summary) {
    const nlohmann::json limit = {{"per_minute", 8}, {"per_hour", 1000}};
    const nlohmann::json config = {
        {"state_dir", sandbox.dir() + "/replay-state"},
        {"exim_log", log},
        {"exim_group", group},
        {"limits", {{"sender", limit}, {"cwd", limit}, {"uid", limit}}},
    };
    const std::string config_path = sandbox.dir() + "/replay.json";
    WriteAll(config_path, config.dump(2) + "\n", 0600);
    SpawnOptions run;
    run.argv = {kSidecarBin, "replay", "--config", config_path, "--json", log};
    run.stdout_path = sandbox.dir() + "/replay.out";
    run.stderr_path = sandbox.dir() + "/replay.err";
    const ExitStatus status = eg::e2e::Run(run, kEximTimeout);
    incidents->clear();
    std::istringstream out(ReadAll(run.stdout_path));
    for (std::string line; std::getline(out, line);) {
      if (!line.empty()) incidents->push_back(nlohmann::json::parse(line, nullptr, false));
    }
    *summary = ReadAll(run.stderr_path);
    return status;
  }

  static std::vector<std::string> Keys(const std::vector<nlohmann::json>& incidents) {
    std::vector<std::string> keys;
    for (const nlohmann::json& i : incidents) {
      if (i.is_object() && i.contains("key")) keys.push_back(i["key"].get<std::string>());
    }
    return keys;
  }
  static bool AnyKeyHas(const std::vector<nlohmann::json>& incidents, const std::string& part) {
    for (const std::string& k : Keys(incidents)) {
      if (k.find(part) != std::string::npos) return true;
    }
    return false;
  }
};

TEST_F(EximForgeryE2E, ADirectoryNameWithNewlinesForgesNoArrival) {
  TestUser user = EnsureTestUser();
  SandboxOptions options;
  options.exim_user = user.name;  // local submissions as egtest (see exim_harness.h)
  options.exim_group = user.group;
  EximSandbox sandbox(options);
  const std::string script_dir = sandbox.MakeScriptDir(user);
  Publish(sandbox, GuardPolicy{});  // the guard limits nothing: the point is what the log says

  // A full fake arrival of another mailbox with ten recipients, newline before and after.
  const std::string fake = NowStamp() +
                           " 1tFAKE-100001-AB <= victim@victim.example U=victim P=local S=300 "
                           "T=\"x\" for " +
                           List("r", 10, " ");
  const std::string attack_dir = script_dir + "/x\n" + fake + "\n";
  ASSERT_EQ(mkdir(attack_dir.c_str(), 0755), 0) << std::strerror(errno);
  ASSERT_EQ(chown(attack_dir.c_str(), user.credentials.uid, user.credentials.gid), 0);

  // The customer's one real message, to ten recipients, sent from there.
  std::string output;
  const ExitStatus sent = sandbox.SubmitLocal(
      user, attack_dir, "To: " + List("a", 10, ", ") + "\nSubject: forged\n\nbody\n", &output);
  ASSERT_TRUE(sent.Ok()) << sent.Describe() << "\n" << output;

  const std::string log = sandbox.mainlog();
  // Exim wrote the directory raw: the fake line is a physical line of the mainlog of its own,
  // and the record's last line holds the real tail.
  ASSERT_NE(log.find("\n" + fake + "\n"), std::string::npos) << log;
  ASSERT_NE(log.find("/x\n"), std::string::npos) << log;
  ASSERT_NE(log.find("\n 5 args: " + std::string(kEximBin) + " -C "), std::string::npos) << log;

  std::vector<nlohmann::json> incidents;
  std::string summary;
  const std::string log_path = sandbox.dir() + "/log/mainlog";
  ExitStatus status = Replay(sandbox, log_path, user.group, &incidents, &summary);
  ASSERT_TRUE(status.Ok()) << status.Describe() << "\n" << summary;
  EXPECT_FALSE(AnyKeyHas(incidents, "victim")) << ::testing::PrintToString(Keys(incidents));
  EXPECT_TRUE(AnyKeyHas(incidents, "egtest")) << ::testing::PrintToString(Keys(incidents)) << "\n"
                                              << summary << "\n"
                                              << log;

  // The control: the same mainlog without the record's first line (so no record opens) does
  // give the victim an incident: the test above would fail without the record handling.
  const size_t cwd = log.find("cwd=" + script_dir + "/x\n");
  ASSERT_NE(cwd, std::string::npos) << log;
  const size_t line_start = log.rfind('\n', cwd) + 1;
  const std::string cut = log.substr(0, line_start) + log.substr(log.find('\n', cwd) + 1);
  const std::string cut_path = sandbox.dir() + "/mainlog.cut";
  WriteAll(cut_path, cut, 0600);
  status = Replay(sandbox, cut_path, user.group, &incidents, &summary);
  ASSERT_TRUE(status.Ok()) << status.Describe() << "\n" << summary;
  EXPECT_TRUE(AnyKeyHas(incidents, "victim")) << ::testing::PrintToString(Keys(incidents));
}

TEST_F(EximForgeryE2E, AnAuthIdWithSpacesIsKeyedWholeAndCannotReplaceEximsFields) {
  EximSandbox sandbox;
  GuardPolicy policy;
  policy.sender = {1000, 10000};
  Publish(sandbox, policy);
  sandbox.StartDaemon();
  SpawnOptions swaks;
  swaks.argv = {kSwaksBin,
                "--server",
                "127.0.0.1:" + std::to_string(sandbox.port()),
                "--auth",
                "PLAIN",
                "--auth-user",
                "evil P=local U=root",
                "--auth-password",
                kAuthPassword,
                "--from",
                "alice@example.com",
                "--to",
                List("r", 10, ","),
                "--timeout",
                "10"};
  swaks.stdout_path = sandbox.dir() + "/swaks.out";
  swaks.stderr_path = sandbox.dir() + "/swaks.err";
  const ExitStatus sent = eg::e2e::Run(swaks, kEximTimeout);
  sandbox.StopDaemon();
  ASSERT_TRUE(sent.Ok()) << sent.Describe() << "\n" << ReadAll(swaks.stdout_path);

  const std::string log = sandbox.mainlog();
  // Exim 4.96 logs the id as it came, unquoted, after its own P= (smtp_in.c, receive.c).
  const size_t id = log.find(" A=plain:evil P=local U=root S=");
  ASSERT_NE(id, std::string::npos) << log;
  const size_t line = log.rfind('\n', id) + 1;
  ASSERT_NE(log.substr(line, id - line).find(" P=esmtpa "), std::string::npos) << log;

  std::vector<nlohmann::json> incidents;
  std::string summary;
  const ExitStatus status =
      Replay(sandbox, sandbox.dir() + "/log/mainlog", SystemEximUser(), &incidents, &summary);
  ASSERT_TRUE(status.Ok()) << status.Describe() << "\n" << summary;
  bool found = false;
  for (const nlohmann::json& i : incidents) {
    if (i.is_object() && i.value("key", "") == "evil p=local u=root") found = true;
  }
  EXPECT_TRUE(found) << ::testing::PrintToString(Keys(incidents)) << "\n" << log;
  for (const std::string& key : Keys(incidents)) EXPECT_NE(key, "evil");  // the id's first word
}

}  // namespace
}  // namespace eg::e2e
