// doctor_test.cpp - `doctor` without a real Exim (a fake one answers as Debian's does): each check
// finds its problem and names its fix, a good setup passes; what `status` and `config check`
// say about a missing log and a broken config; `start --pidfile` and `start --help`. The same
// checks against the real Exim are in tests/e2e/e2e_doctor_test.cpp.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "config.h"
#include "fake_exim.h"
#include "sidecar_test_util.h"
#include "verbs_doctor.h"

namespace eg::sidecar {
namespace {

using testing::CliResult;
using testing::FakeAnswer;
using testing::RunCli;
using Json = nlohmann::ordered_json;
using namespace std::chrono_literals;

// ---- the pure parts ------------------------------------------------------------------------

TEST(DoctorParts, LogSelectorItemsAreAppliedLeftToRight) {
  using S = std::vector<std::string>;
  const S all = {"+pid", "+arguments", "+subject", "+received_recipients"};
  EXPECT_EQ(MissingLogSelectorItems(""), all);
  // Debian 12's default (main/01_exim4-config_listmacrosdefs).
  EXPECT_EQ(MissingLogSelectorItems(
                "+smtp_protocol_error +smtp_syntax_error +tls_certificate_verified +tls_peerdn"),
            all);
  EXPECT_EQ(MissingLogSelectorItems("+smtp_protocol_error +pid +arguments +subject "
                                    "+received_recipients"),
            S{});
  EXPECT_EQ(MissingLogSelectorItems("+all"), S{});
  EXPECT_EQ(MissingLogSelectorItems("+all -arguments"), S{"+arguments"});
  EXPECT_EQ(MissingLogSelectorItems("+all -all +pid"),
            (S{"+arguments", "+subject", "+received_recipients"}));
  EXPECT_EQ(MissingLogSelectorItems("+pid +arguments +subject +received_recipients -pid"),
            S{"+pid"});
  EXPECT_EQ(MissingLogSelectorItems("pid arguments"), all);  // not selector syntax
}

// Debian's split config as `exim -bP config` prints it: the guard in a wrapper ACL that then
// runs Debian's own acl_check_rcpt.
constexpr const char* kDebianConfig =
    "acl_smtp_rcpt = acl_eximguard_rcpt\n"
    "begin acl\n"
    "  acl_check_rcpt:\n"
    "    accept\n"
    "    hosts = :\n"
    "  acl_eximguard_rcpt:\n"
    "    warn\n"
    "    set acl_m_eg = ${dlfunc{/usr/lib/eximguard/eximguard.so}{eximguard_rcpt}{/eximguard}"
    "{$authenticated_id}}\n"
    "    require acl = acl_check_rcpt\n"
    "  acl_eximguard_not_smtp:\n"
    "    warn\n"
    "    set acl_m_eg = ${dlfunc{/usr/lib/eximguard/eximguard.so}{eximguard_local}{/eximguard}"
    "{$originator_uid}}\n"
    "begin routers\n"
    "  acl_fake:\n"
    "    driver = redirect\n";

TEST(DoctorParts, TheGuardIsFoundInTheAclOrOneItCalls) {
  std::string so, seg;
  EXPECT_TRUE(AclCallsGuard(kDebianConfig, "acl_eximguard_rcpt", "eximguard_rcpt", &so, &seg));
  EXPECT_EQ(so, "/usr/lib/eximguard/eximguard.so");
  EXPECT_EQ(seg, "/eximguard");
  EXPECT_FALSE(AclCallsGuard(kDebianConfig, "acl_check_rcpt", "eximguard_rcpt", &so, &seg));
  EXPECT_FALSE(AclCallsGuard(kDebianConfig, "acl_eximguard_rcpt", "eximguard_local", &so, &seg));
  EXPECT_FALSE(AclCallsGuard(kDebianConfig, "acl_fake", "eximguard_rcpt", &so, &seg));  // routers

  // A config file as written: comments, continuation lines, the call in a nested ACL.
  const std::string file =
      "# eximguard\n"
      "begin acl\n"
      "check_recipient:\n"
      "  # the guard\n"
      "  warn  !acl = guard\n"
      "  accept\n"
      "guard:\n"
      "  warn  set acl_m_eg = ${dlfunc{/opt/eg.so}\\\n"
      "           {eximguard_rcpt}{/seg}{$authenticated_id}}\n"
      "check_loop:\n"
      "  warn acl = check_loop\n";
  EXPECT_TRUE(AclCallsGuard(file, "check_recipient", "eximguard_rcpt", &so, &seg));
  EXPECT_EQ(so, "/opt/eg.so");
  EXPECT_EQ(seg, "/seg");
  EXPECT_FALSE(AclCallsGuard(file, "check_loop", "eximguard_rcpt", &so, &seg));  // ends
}

// ---- doctor with a fake Exim ---------------------------------------------------------------

class Doctor : public testing::CliFixture {
 protected:
  void SetUp() override {
    testing::WriteFile(dir_.File("mainlog"), "");
    testing::WriteFile(dir_.File("eximguard.so"), "", 0644);
    answers_ = {
        {"-bV", {testing::kDebianBv}},
        {"-bP log_file_path", {"log_file_path = " + dir_.path() + "/%slog"}},
        {"-bP log_selector",
         {"log_selector = +smtp_protocol_error +smtp_syntax_error +pid +arguments +subject "
          "+received_recipients"}},
        {"-bP config", {Config(segment_.name)}},
        {"-bP acl_smtp_rcpt", {"acl_smtp_rcpt = acl_eximguard_rcpt"}},
        {"-bP acl_not_smtp", {"acl_not_smtp = acl_eximguard_not_smtp"}},
        {"-bP exim_group", {"exim_group = " + group_}},
        {"-bP event_action", {"event_action = " + kEvent}},
        {"-bP transport_list", {"address_pipe\nremote_smtp\nremote_smtp_smarthost\n"}},
        {"-bP transport address_pipe", {"address_pipe:\ndriver = pipe\nevent_action = \n"}},
        {"-bP transport remote_smtp",
         {"remote_smtp:\ndriver = smtp\nevent_action = " + kEvent + "\n"}},
        {"-bP transport remote_smtp_smarthost",
         {"remote_smtp_smarthost:\ndriver = smtp\nevent_action = " + kEvent + "\n"}},
    };
  }
  // What `exim -bP` prints for Debian's EXIMGUARD_EVENT.
  inline static const std::string kEvent =
      "${if exists{/usr/lib/eximguard/eximguard.so}{${dlfunc{/usr/lib/eximguard/eximguard.so}"
      "{eximguard_event}{/eximguard}{$event_name}{$authenticated_id}{$originator_uid}"
      "{$received_protocol}{$domain}}}}";
  void TearDown() override {
    if (daemon_ > 0) {
      kill(daemon_, SIGKILL);
      waitpid(daemon_, nullptr, 0);
    }
  }
  std::string Config(const std::string& segment) const {
    std::string c = kDebianConfig;
    for (const std::string from : {"/usr/lib/eximguard/eximguard.so", "{/eximguard}"}) {
      const std::string to = from[0] == '{' ? "{" + segment + "}" : dir_.File("eximguard.so");
      for (size_t at = c.find(from); at != std::string::npos; at = c.find(from, at + to.size())) {
        c.replace(at, from.size(), to);
      }
    }
    return c;
  }
  // The config with the fake Exim as actions.exim_command, then the doctor's report.
  DoctorReport Run(const Json& extra = Json::object(), int64_t now = 0) {
    const std::string exim = testing::WriteFakeExim(dir_.File("exim"), answers_);
    Json config = {{"actions", {{"exim_command", {exim}}}}};
    config.merge_patch(extra);
    WriteConfig(config);
    DoctorOptions o;
    o.root = dir_.File("host");  // a host of no known kind, without systemd
    o.now = now;
    return RunDoctor(config_path_, o);
  }
  static const DoctorCheck* Find(const DoctorReport& r, const std::string& name) {
    for (const DoctorCheck& c : r.checks) {
      if (c.name == name && c.level != CheckLevel::kOk) return &c;
    }
    for (const DoctorCheck& c : r.checks) {
      if (c.name == name) return &c;
    }
    return nullptr;
  }
  // The table made and published by `run`, and one check answered by it.
  void MakeTable() {
    ASSERT_EQ(RunCli({"run", "--config", config_path_}).exit_code, 0);
    auto seg = Open();
    ASSERT_TRUE(seg);
    Send(*seg, KeyClass::kSender, "a@example.com", 1, static_cast<uint32_t>(std::time(nullptr)));
  }
  void StartDaemon(const std::string& pidfile = "") {
    std::vector<std::string> args = {EG_SIDECAR_BIN, "start", "--config", config_path_};
    if (!pidfile.empty()) args.insert(args.end(), {"--pidfile", pidfile});
    std::vector<char*> argv;
    for (std::string& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, dir_.File("daemon.err").c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    ASSERT_EQ(posix_spawn(&daemon_, argv[0], &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    ASSERT_TRUE(WaitFor([&] { return DaemonStatusWritten(); }))
        << testing::ReadFile(dir_.File("daemon.err"));
  }
  // The daemon's own status.json (a `run` before it left one too).
  bool DaemonStatusWritten() const {
    const Json s = Json::parse(testing::ReadFile(dir_.File("state/status.json")), nullptr, false);
    return s.is_object() && s.value("pid", 0) == daemon_ && s.value("mode", "") == "start";
  }
  int StopDaemon() {
    kill(daemon_, SIGTERM);
    int status = 0;
    waitpid(daemon_, &status, 0);
    daemon_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  template <typename Pred>
  static bool WaitFor(Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(5ms);
    }
    return pred();
  }

  std::map<std::string, FakeAnswer> answers_;
  pid_t daemon_ = -1;
};

TEST_F(Doctor, AGoodSetupPassesEveryCheck) {
  // Under -C, Exim may log to stderr before it answers.
  answers_["-bV"] = {"2026-01-02 03:04:05.678 [99] cwd=/ 2 args: exim -bV\n" +
                     std::string(testing::kDebianBv)};
  Run();  // writes the config
  MakeTable();
  StartDaemon();
  const DoctorReport r = Run();
  const std::string text = FormatDoctorReport(r);
  EXPECT_EQ(r.Count(CheckLevel::kProblem), 0) << text;
  EXPECT_EQ(r.Count(CheckLevel::kWarning), 0) << text;
  for (const char* name : {"config", "exim_log", "state_dir", "exim", "log file", "log_selector",
                           "acls", "events", "group", "table", "daemon"}) {
    EXPECT_NE(Find(r, name), nullptr) << name << "\n" << text;
  }
  EXPECT_NE(text.find("all 12 checks passed"), std::string::npos) << text;
  EXPECT_EQ(
      Find(r, "exim")->what,
      dir_.File("exim") + ": Exim version 4.96 #2 built 26-Nov-2026 14:26:47, with ${dlfunc}");
  EXPECT_NE(text.find("acl_smtp_rcpt = acl_eximguard_rcpt calls eximguard_rcpt ("),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("answered 1 checks (1 ok, 0 deferred, 0 held, 0 denied); 1 keys"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("the daemon follows the logs (pid " + std::to_string(daemon_)),
            std::string::npos)
      << text;
  const CliResult cli = RunCli({"doctor", "--config", config_path_});
  EXPECT_EQ(cli.exit_code, 0) << cli.out << cli.err;
  EXPECT_EQ(StopDaemon(), 0);
}

TEST_F(Doctor, EachProblemIsNamedWithItsFix) {
  // Nothing running, no table: both are problems, with the start command for this host.
  DoctorReport r = Run();
  const DoctorCheck* daemon = Find(r, "daemon");
  ASSERT_NE(daemon, nullptr);
  EXPECT_EQ(daemon->level, CheckLevel::kProblem);
  EXPECT_EQ(daemon->what, "the daemon is NOT running: nothing follows the log, detects or blocks");
  EXPECT_NE(daemon->fix.find("start --config " + config_path_ + " --pidfile /run/eximguard.pid"),
            std::string::npos)
      << daemon->fix;
  const DoctorCheck* table = Find(r, "table");
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(table->level, CheckLevel::kProblem);
  EXPECT_NE(table->what.find("does not exist: the guard lets all mail through"), std::string::npos);

  // A table that never answered a check: a warning, not a problem.
  ASSERT_EQ(RunCli({"run", "--config", config_path_}).exit_code, 0);
  r = Run();
  EXPECT_EQ(Find(r, "table")->level, CheckLevel::kWarning) << FormatDoctorReport(r);

  // exim4-daemon-light.
  answers_["-bV"] = {testing::kLightBv};
  r = Run();
  EXPECT_EQ(Find(r, "exim")->level, CheckLevel::kProblem);
  EXPECT_NE(Find(r, "exim")->what.find("has no ${dlfunc}"), std::string::npos);
  answers_["-bV"] = {testing::kDebianBv};

  // Debian's log_selector, untouched.
  answers_["-bP log_selector"] = {
      "log_selector = +smtp_protocol_error +smtp_syntax_error +tls_certificate_verified "
      "+tls_peerdn"};
  r = Run();
  ASSERT_EQ(Find(r, "log_selector")->level, CheckLevel::kProblem);
  EXPECT_EQ(Find(r, "log_selector")->what,
            "Exim's log_selector lacks +pid +arguments +subject +received_recipients (it is: "
            "+smtp_protocol_error +smtp_syntax_error +tls_certificate_verified +tls_peerdn): "
            "eximguard misses script directories, pids, subjects or recipients");
  EXPECT_NE(Find(r, "log_selector")
                ->fix.find("add +pid +arguments +subject "
                           "+received_recipients to log_selector"),
            std::string::npos);

  // Exim logs elsewhere than exim_log.
  answers_["-bP log_file_path"] = {"log_file_path = /var/log/exim4/%slog"};
  r = Run();
  EXPECT_EQ(Find(r, "log file")->what,
            "Exim writes its mainlog to /var/log/exim4/mainlog (exim -bP log_file_path), exim_log "
            "is " +
                dir_.File("mainlog"));
  EXPECT_EQ(Find(r, "log file")->fix,
            "set \"exim_log\": \"/var/log/exim4/mainlog\" in " + config_path_);

  // No not-SMTP ACL; an RCPT ACL without the guard; the guard asked about another table.
  answers_["-bP acl_not_smtp"] = {"acl_not_smtp = "};
  answers_["-bP acl_smtp_rcpt"] = {"acl_smtp_rcpt = acl_check_rcpt"};
  r = Run();
  std::vector<std::string> acls;
  for (const DoctorCheck& c : r.checks) {
    if (c.name == "acls") acls.push_back(c.what);
  }
  EXPECT_EQ(acls, (std::vector<std::string>{
                      "acl_smtp_rcpt = acl_check_rcpt does not call eximguard_rcpt (${dlfunc}): "
                      "SMTP recipients are not counted",
                      "acl_not_smtp is not set: local submissions (PHP mail(), cron) are not "
                      "counted"}));
  answers_["-bP acl_smtp_rcpt"] = {"acl_smtp_rcpt = acl_eximguard_rcpt"};
  answers_["-bP config"] = {Config("/another")};
  r = Run();
  EXPECT_EQ(Find(r, "acls")->what,
            "acl_smtp_rcpt asks the guard about table /another, "
            "eximguard publishes " +
                segment_.name);

  // No delivery events: a warning (bounce_storm stays a notice), naming what lacks them.
  answers_["-bP event_action"] = {"event_action = "};
  answers_["-bP transport remote_smtp_smarthost"] = {
      "remote_smtp_smarthost:\ndriver = smtp\nevent_action = \n"};
  r = Run();
  ASSERT_NE(Find(r, "events"), nullptr);
  EXPECT_EQ(Find(r, "events")->level, CheckLevel::kWarning);
  EXPECT_EQ(Find(r, "events")->what,
            "the main event_action does not call eximguard_event; smtp transports without it: "
            "remote_smtp_smarthost: bounce_storm is then only a notice from the log");

  // Exim's group is not the table's.
  answers_["-bP exim_group"] = {"exim_group = mail"};
  r = Run();
  EXPECT_NE(Find(r, "group")
                ->what.find("Exim runs as group mail but the table is given to group " + group_),
            std::string::npos);

  // Exim cannot be run at all: said once, and its checks are skipped.
  r = Run({{"actions", {{"exim_command", {dir_.File("no-exim")}}}}});
  EXPECT_EQ(Find(r, "exim")->level, CheckLevel::kProblem);
  EXPECT_EQ(Find(r, "acls"), nullptr);
}

TEST_F(Doctor, ConfigLogAndStateDirProblems) {
  // A broken config is listed and the rest still runs with what could be read.
  DoctorReport r = Run({{"limits", {{"sender", {{"per_minute", "ten"}}}}}});
  const DoctorCheck* config = Find(r, "config");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->level, CheckLevel::kProblem);
  EXPECT_NE(config->what.find("limits.sender.per_minute"), std::string::npos) << config->what;
  EXPECT_NE(Find(r, "exim_log"), nullptr);
  EXPECT_NE(Find(r, "acls"), nullptr);

  // The log is missing.
  std::filesystem::remove(dir_.File("mainlog"));
  r = Run();
  EXPECT_EQ(Find(r, "exim_log")->level, CheckLevel::kProblem);
  EXPECT_EQ(Find(r, "exim_log")->what,
            "exim_log " + dir_.File("mainlog") + " DOES NOT EXIST: eximguard sees no mail");
  EXPECT_EQ(r.checks[1].name, "exim_log");  // at the top, right after the config
  testing::WriteFile(dir_.File("mainlog"), "");

  // Older than --log-minutes: a warning. (Judged 90 minutes after the file's own time, as
  // stat() shows it: under libfaketime, file times and the clock are shifted differently.)
  struct stat st {};
  ASSERT_EQ(stat(dir_.File("mainlog").c_str(), &st), 0);
  r = Run(Json::object(), st.st_mtime + 5400);
  EXPECT_EQ(Find(r, "exim_log")->level, CheckLevel::kWarning);
  EXPECT_NE(Find(r, "exim_log")->what.find("was last written 90 min ago"), std::string::npos)
      << Find(r, "exim_log")->what;

  // A state directory others can write.
  ASSERT_EQ(RunCli({"run", "--config", config_path_}).exit_code, 0);
  ASSERT_EQ(chmod(dir_.File("state").c_str(), 0777), 0);
  r = Run();
  EXPECT_EQ(Find(r, "state_dir")->level, CheckLevel::kProblem);
  EXPECT_EQ(Find(r, "state_dir")->fix, "chmod 0700 " + dir_.File("state"));
  const CliResult cli = RunCli({"doctor", "--config", config_path_});
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_NE(cli.out.find("  PROBLEM  state_dir " + dir_.File("state") + " has mode 0777"),
            std::string::npos)
      << cli.out;
  EXPECT_NE(cli.out.find("           fix: chmod 0700 " + dir_.File("state")), std::string::npos);
  EXPECT_EQ(RunCli({"doctor", "--config", config_path_, "--log-minutes", "0"}).exit_code, 2);
}

TEST_F(Doctor, ADaemonRunningADeletedBinaryIsAProblem) {
  // A copy of eximguard that is removed while it runs (what uninstall.sh used to leave).
  const std::string copy = dir_.File("eximguard");
  std::filesystem::copy_file(EG_SIDECAR_BIN, copy);
  chmod(copy.c_str(), 0755);
  Run();
  std::vector<std::string> args = {copy, "start", "--config", config_path_};
  std::vector<char*> argv;
  for (std::string& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  ASSERT_EQ(posix_spawn(&daemon_, argv[0], nullptr, nullptr, argv.data(), environ), 0);
  ASSERT_TRUE(WaitFor([&] { return DaemonStatusWritten(); }));
  std::filesystem::remove(copy);
  const DoctorReport r = Run();
  EXPECT_EQ(Find(r, "daemon")->level, CheckLevel::kProblem);
  EXPECT_EQ(Find(r, "daemon")->what, "the daemon (pid " + std::to_string(daemon_) +
                                         ") runs a deleted binary: " + copy + " (deleted)");
  EXPECT_EQ(StopDaemon(), 0);
}

TEST_F(Doctor, ADaemonThatHasNotWrittenItsStatusYetIsStarting) {
  Run();
  StartDaemon();
  // As right after a start: the lock is the daemon's, status.json still the last `run`'s.
  // SIGSTOP keeps the daemon from writing its own meanwhile.
  ASSERT_EQ(kill(daemon_, SIGSTOP), 0);
  Json earlier = Json::parse(testing::ReadFile(dir_.File("state/status.json")));
  earlier["pid"] = daemon_ + 100000;
  earlier["mode"] = "run";
  testing::WriteFile(dir_.File("state/status.json"), earlier.dump());
  const DoctorReport r = Run();
  ASSERT_EQ(kill(daemon_, SIGCONT), 0);
  const DoctorCheck* daemon = Find(r, "daemon");
  ASSERT_NE(daemon, nullptr);
  EXPECT_EQ(daemon->level, CheckLevel::kWarning) << daemon->what;
  EXPECT_EQ(daemon->what, "the daemon (pid " + std::to_string(daemon_) +
                              ") has not written its status.json yet: it is starting");
  EXPECT_EQ(StopDaemon(), 0);
}

// ---- start --pidfile, start --help -----------------------------------------------------------

TEST_F(Doctor, StartWritesAndRemovesItsPidFile) {
  Run();
  const std::string pidfile = dir_.File("eximguard.pid");
  StartDaemon(pidfile);
  EXPECT_EQ(testing::ReadFile(pidfile), std::to_string(daemon_) + "\n");
  EXPECT_EQ(StopDaemon(), 0);
  EXPECT_FALSE(std::filesystem::exists(pidfile));

  // A pid file that cannot be written: start refuses, and says why.
  const CliResult r =
      RunCli({"start", "--config", config_path_, "--pidfile", dir_.File("no/such/dir/pid")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("pid file " + dir_.File("no/such/dir/pid") + ": No such file or directory"),
            std::string::npos)
      << r.err;
}

TEST(DoctorCli, StartHelpSaysItStaysInTheForegroundAndHowToBackgroundIt) {
  const CliResult r = RunCli({"start", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* want : {"foreground", "stderr", "--pidfile", "eximguard.init", "nohup"}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  }
  const CliResult d = RunCli({"doctor", "--help"});
  EXPECT_EQ(d.exit_code, 0);
  EXPECT_NE(d.out.find("--log-minutes"), std::string::npos) << d.out;
}

// ---- status and config check: a missing log, a broken config ---------------------------------

TEST_F(Doctor, StatusRunsWithABrokenConfigAndSaysWhatItCan) {
  Run();
  ASSERT_EQ(RunCli({"run", "--config", config_path_}).exit_code, 0);  // the table exists
  Json broken = Json::parse(testing::ReadFile(config_path_));
  broken["limits"] = {{"sender", {{"per_minute", "ten"}}}};
  testing::WriteFile(config_path_, broken.dump(2));
  const CliResult r = RunCli({"status", "--config", config_path_});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out.rfind("PROBLEM: config " + config_path_ + ": limits.sender.per_minute: ", 0), 0u)
      << r.out;
  EXPECT_NE(r.out.find("eximguard is NOT following the logs (start it: nohup "), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("shared table " + segment_.name + ": policy generation 1"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("0 incidents in the last 24 hours"), std::string::npos) << r.out;

  const CliResult j = RunCli({"status", "--config", config_path_, "--json"});
  EXPECT_EQ(j.exit_code, 1);
  const Json s = Json::parse(j.out);
  ASSERT_EQ(s["problems"].size(), 1u);
  EXPECT_EQ(s["table"]["name"], segment_.name);
}

TEST_F(Doctor, StatusAndConfigCheckNameAMissingLogFirst) {
  Run();
  std::filesystem::remove(dir_.File("mainlog"));
  const CliResult status = RunCli({"status", "--config", config_path_});
  EXPECT_EQ(status.exit_code, 1);
  EXPECT_EQ(status.out.rfind("PROBLEM: exim_log " + dir_.File("mainlog") + " DOES NOT EXIST", 0),
            0u)
      << status.out;
  const CliResult check = RunCli({"config", "check", "--config", config_path_});
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_EQ(check.out, "");
  EXPECT_EQ(check.err.rfind("config " + config_path_ + ": exim_log: " + dir_.File("mainlog") +
                                " DOES NOT EXIST: eximguard sees nothing from it",
                            0),
            0u)
      << check.err;

  testing::WriteFile(dir_.File("mainlog"), "");
  EXPECT_EQ(RunCli({"status", "--config", config_path_}).exit_code, 0);
  EXPECT_EQ(RunCli({"config", "check", "--config", config_path_}).exit_code, 0);
}

// Which kind of file dovecot_log is: a syslog file is forgeable by any local user (logger).
TEST(DovecotLogKind, SyslogFilesAreForgeableDovecotsOwnFileIsNot) {
  testing::TempDir dir;
  const std::string syslog = dir.File("dovecot.log");
  testing::WriteFile(syslog,
                     "Jun 10 12:00:00 mx1 dovecot[812]: imap-login: Login: user=<a@b.example>\n");
  DovecotLogJudgement j = JudgeDovecotLog(syslog);
  EXPECT_TRUE(j.syslog);
  EXPECT_NE(j.what.find("is a syslog file"), std::string::npos) << j.what;
  EXPECT_NE(j.what.find("dovecot_policy"), std::string::npos) << j.what;

  const std::string own = dir.File("own.log");
  testing::WriteFile(own,
                     "Jun 10 12:00:00 imap-login: Info: Login: user=<a@b.example>\n"
                     "Jun 10 12:00:01 auth: Info: passwd-file(x,1.2.3.4): unknown user\n");
  j = JudgeDovecotLog(own);
  EXPECT_FALSE(j.syslog);
  EXPECT_NE(j.what.find("Dovecot's own log_path file"), std::string::npos) << j.what;

  // Empty: judged by its name.
  const std::string maillog = dir.File("maillog");
  testing::WriteFile(maillog, "");
  EXPECT_TRUE(JudgeDovecotLog(maillog).syslog);
  EXPECT_FALSE(JudgeDovecotLog(dir.File("dovecot-own.log")).syslog);

  // config check says it too.
  const std::string config = dir.File("c.json");
  testing::WriteFile(config, nlohmann::ordered_json{{"state_dir", dir.File("state")},
                                                    {"exim_log", own},
                                                    {"dovecot_log", syslog},
                                                    {"local_domains_file", ""}}
                                 .dump());
  const testing::CliResult r = testing::RunCli({"config", "check", "--config", config});
  EXPECT_NE(r.out.find("is a syslog file"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("recommended: Dovecot's auth policy server"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace eg::sidecar
