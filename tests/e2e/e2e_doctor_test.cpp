// e2e_doctor_test.cpp - `eximguard doctor` against a real Exim (the sandbox of exim_harness.h):
// a good setup passes every check; a config without +arguments in log_selector, one whose RCPT
// ACL does not call the guard, and a sidecar config naming a missing mainlog each get the
// PROBLEM line that names what is wrong, and exit 1.
//
// Contract: needs root (as every Exim end-to-end test). Exim is asked through the sidecar
// config's actions.exim_command = {exim, -C, <the sandbox's config>}, as the README tells an
// admin whose Exim runs another config. Everything is removed at the end.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "exim_harness.h"
#include "shipped_configs.h"

namespace eg::e2e {
namespace {

using Json = nlohmann::json;

template <typename Pred>
bool Eventually(Pred pred) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

struct DoctorResult {
  ExitStatus exit;
  std::string out;
};

class EximDoctor : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the Exim end-to-end tests need root";
  }

  // The sandbox's sidecar config (made by CreateSegment), told how to ask this Exim.
  static std::string DoctorConfig(EximSandbox& sandbox, const Json& extra = Json::object()) {
    const std::string path = sandbox.dir() + "/state/eximguard.json";
    Json config = Json::parse(ReadFile(path));
    config["actions"] = {{"exim_command", {kEximBin, "-C", sandbox.config_path()}}};
    config.merge_patch(extra);
    WriteFile(path, config.dump(2) + "\n", 0600);
    return path;
  }

  static DoctorResult Doctor(EximSandbox& sandbox, const std::string& config) {
    SpawnOptions doctor;
    doctor.argv = {kSidecarBin, "doctor", "--config", config};
    doctor.stdout_path = doctor.stderr_path = sandbox.dir() + "/doctor.out";
    DoctorResult r;
    r.exit = ::eg::e2e::Run(doctor, std::chrono::seconds(60));
    r.out = ReadFile(doctor.stdout_path);
    return r;
  }

  // One authenticated message through the real Exim daemon: the mainlog is written and the
  // guard answers (the table's verdict counters move).
  static void SendOne(EximSandbox& sandbox) {
    sandbox.StartDaemon();
    SmtpSession s = sandbox.RunSwaks("alice@example.com", Recipients(1));
    ASSERT_EQ(s.CountRcpt(250), 1) << s.transcript;
    ASSERT_TRUE(Eventually([&] { return sandbox.mainlog().find(" <= ") != std::string::npos; }));
  }
};

TEST_F(EximDoctor, AGoodSetupPassesEveryCheck) {
  EximSandbox sandbox;
  ASSERT_TRUE(sandbox.CreateSegment(GuardPolicy{}).Ok());
  const std::string config = DoctorConfig(sandbox);
  SendOne(sandbox);

  SpawnOptions start;
  start.argv = {kSidecarBin, "start", "--config", config};
  start.stdout_path = start.stderr_path = sandbox.dir() + "/sidecar-start.log";
  Child daemon = Spawn(start);
  ASSERT_TRUE(Eventually([&] {  // the daemon's own status (CreateSegment's `run` left one too)
    const Json s = Json::parse(ReadFile(sandbox.dir() + "/state/status.json"), nullptr, false);
    return s.is_object() && s.value("pid", 0) == daemon.pid() && s.value("mode", "") == "start";
  })) << ReadFile(start.stderr_path);

  const DoctorResult r = Doctor(sandbox, config);
  EXPECT_TRUE(r.exit.Ok()) << r.exit.Describe() << "\n" << r.out;
  EXPECT_EQ(r.out.find("PROBLEM"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("warning"), std::string::npos) << r.out;
  for (const std::string& want :
       {std::string(": Exim version 4."), std::string("with ${dlfunc}"),
        std::string("Exim writes " + sandbox.dir() + "/log/mainlog"),
        std::string("log_selector has +pid +arguments +subject +received_recipients"),
        std::string("acl_smtp_rcpt = acl_check_rcpt calls eximguard_rcpt"),
        std::string("acl_not_smtp = acl_check_not_smtp calls eximguard_local"),
        std::string("Exim reports each recipient's outcome to the guard (event_action)"),
        std::string("table " + sandbox.segment()), std::string("the daemon follows the logs"),
        std::string("checks passed")}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  }
  daemon.Kill(SIGTERM);
  EXPECT_TRUE(daemon.Wait(std::chrono::seconds(10)).Ok()) << ReadFile(start.stderr_path);
  sandbox.StopDaemon();
}

TEST_F(EximDoctor, ALogSelectorWithoutArgumentsIsAProblemWithItsFix) {
  struct ScopedFile {
    std::string path = "/tmp/eximguard-e2e-doctor-" + std::to_string(getpid()) + ".conf.in";
    ~ScopedFile() { std::filesystem::remove(path); }
  } tmpl;
  std::string text = ReadFile(kConfigTemplate);
  const size_t at = text.find("log_selector = +all\n");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 20, "log_selector = +all -arguments\n");
  WriteFile(tmpl.path, text, 0644);
  SandboxOptions options;
  options.config_template = tmpl.path;
  EximSandbox sandbox(options);
  ASSERT_TRUE(sandbox.CreateSegment(GuardPolicy{}).Ok());

  const DoctorResult r = Doctor(sandbox, DoctorConfig(sandbox));
  EXPECT_EQ(r.exit.code, 1) << r.out;
  EXPECT_NE(r.out.find("PROBLEM  Exim's log_selector lacks +arguments (it is: +all -arguments)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("fix: "), std::string::npos) << r.out;
}

TEST_F(EximDoctor, AnRcptAclWithoutTheGuardIsAProblem) {
  struct ScopedDir {
    std::string path;
    ScopedDir() {
      std::string pattern = "/tmp/eximguard-e2e-doctor-XXXXXX";
      if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
      path = pattern;
    }
    ~ScopedDir() { std::filesystem::remove_all(path); }
  } work;
  const std::vector<std::string> ours = EximguardBlocks(ReadFile(kConfigTemplate));
  ASSERT_EQ(ours.size(), 2u);
  SandboxOptions options;
  options.config_template = SpliceTemplate(work.path, "", ours[1], "");  // no RCPT block
  EximSandbox sandbox(options);
  ASSERT_TRUE(sandbox.CreateSegment(GuardPolicy{}).Ok());

  const DoctorResult r = Doctor(sandbox, DoctorConfig(sandbox));
  EXPECT_EQ(r.exit.code, 1) << r.out;
  EXPECT_NE(r.out.find("PROBLEM  acl_smtp_rcpt = acl_check_rcpt does not call eximguard_rcpt"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("acl_not_smtp = acl_check_not_smtp calls eximguard_local"),
            std::string::npos)
      << r.out;
}

TEST_F(EximDoctor, AMissingMainlogIsAProblemAndExim_sLogIsNamed) {
  EximSandbox sandbox;
  ASSERT_TRUE(sandbox.CreateSegment(GuardPolicy{}).Ok());
  const std::string missing = sandbox.dir() + "/log/no-such-mainlog";
  const DoctorResult r = Doctor(sandbox, DoctorConfig(sandbox, {{"exim_log", missing}}));
  EXPECT_EQ(r.exit.code, 1) << r.out;
  EXPECT_NE(r.out.find("PROBLEM  exim_log " + missing + " DOES NOT EXIST"), std::string::npos)
      << r.out;
  // Exim itself says where it writes, and doctor passes that on as the fix.
  EXPECT_NE(r.out.find("Exim writes its mainlog to " + sandbox.dir() + "/log/mainlog"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("set \"exim_log\": \"" + sandbox.dir() + "/log/mainlog\""),
            std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace eg::e2e
