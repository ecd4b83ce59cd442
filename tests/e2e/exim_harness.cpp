// exim_harness.cpp - a sandboxed real Exim for the end-to-end tests (see exim_harness.h).

#include "exim_harness.h"

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace eg::e2e {

const char* const kEximBin = EG_EXIM_BIN;
const char* const kSwaksBin = EG_SWAKS_BIN;
const char* const kGuardSo = EG_GUARD_SO;
const char* const kSidecarBin = EG_SIDECAR_BIN;
const char* const kNoopSo = EG_NOOP_SO;
const char* const kConfigTemplate = EG_CONFIG_TEMPLATE;
const char* const kAuthPassword = "e2e-secret";

namespace fs = std::filesystem;

namespace {

constexpr const char* kTestUserName = "egtest";

void Chown(const std::string& path, const std::string& user, const std::string& group) {
  struct passwd* pw = getpwnam(user.c_str());
  struct group* gr = getgrnam(group.c_str());
  if (pw == nullptr || gr == nullptr)
    throw std::runtime_error("no user/group " + user + ":" + group);
  if (chown(path.c_str(), pw->pw_uid, gr->gr_gid) != 0) throw std::runtime_error("chown " + path);
}

void MakeDir(const std::string& path, mode_t mode) {
  fs::create_directories(path);
  if (chmod(path.c_str(), mode) != 0) throw std::runtime_error("chmod " + path);
}

std::string GroupName(gid_t gid) {
  struct group* gr = getgrgid(gid);
  if (gr == nullptr) throw std::runtime_error("no group " + std::to_string(gid));
  return gr->gr_name;
}

std::string PrimaryGroupOf(const std::string& user) {
  struct passwd* pw = getpwnam(user.c_str());
  if (pw == nullptr) throw std::runtime_error("no user " + user);
  return GroupName(pw->pw_gid);
}

std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// A free TCP port on 127.0.0.1 (the kernel picks it; tiny race before Exim binds it).
int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

bool CanConnect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

nlohmann::json LimitJson(const Limit& limit) {
  return {{"per_minute", limit.per_minute}, {"per_hour", limit.per_hour}};
}

std::string UniqueSegmentName() {
  static std::atomic<int> counter{0};
  return "/eximguard-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 100000);
}

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

void AppendReplyLine(std::string& text, const std::string& line) {
  if (!text.empty()) text += ' ';
  text += line;
}

// Replies to a swaks transcript: "<-  250 ..." / "<** 451 ..." answer the last " -> " line.
SmtpSession ParseSwaksTranscript(const std::string& transcript) {
  static const std::regex kReply(R"(^<(?:-|\*\*) +(\d{3})([ -])(.*?)\r?$)");
  SmtpSession session;
  session.transcript = transcript;
  std::istringstream in(transcript);
  std::string line;
  std::string pending;
  bool has_pending = false;
  std::smatch m;
  std::string text;
  while (std::getline(in, line)) {
    if (StartsWith(line, " -> ")) {
      pending = line.substr(4);
      has_pending = true;
      text.clear();
    } else if (std::regex_match(line, m, kReply)) {
      AppendReplyLine(text, m[3]);
      if (m[2] != " ") continue;
      int code = std::stoi(m[1]);
      if (!has_pending && session.banner == 0) {
        session.banner = code;
      } else if (has_pending) {
        session.replies.push_back({pending, code, text});
        has_pending = false;
      }
      text.clear();
    }
  }
  return session;
}

}  // namespace

// ---------------------------------------------------------------- SMTP sessions

int SmtpSession::CountRcpt(int code) const {
  return CountRcpt(code, "");
}

int SmtpSession::CountRcpt(int code, const std::string& prefix) const {
  int n = 0;
  for (const SmtpReply& reply : replies) {
    if (StartsWith(reply.command, "RCPT") && reply.code == code && StartsWith(reply.text, prefix)) {
      ++n;
    }
  }
  return n;
}

int SmtpSession::RcptTotal() const {
  int n = 0;
  for (const SmtpReply& reply : replies) n += StartsWith(reply.command, "RCPT") ? 1 : 0;
  return n;
}

int QueueListing::frozen() const {
  int n = 0;
  for (const QueuedMessage& message : messages) n += message.frozen ? 1 : 0;
  return n;
}

std::string Base64(const std::string& data) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8) | uint8_t(data[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(v >> shift) & 63];
  }
  if (i + 1 == data.size()) {
    uint32_t v = uint8_t(data[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == data.size()) {
    uint32_t v = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::vector<std::string> Recipients(int n, const std::string& domain) {
  std::vector<std::string> rcpts;
  for (int i = 1; i <= n; ++i) rcpts.push_back("rcpt" + std::to_string(i) + "@" + domain);
  return rcpts;
}

std::vector<std::string> PlainSession(const std::string& from,
                                      const std::vector<std::string>& rcpts) {
  std::vector<std::string> commands{"EHLO client.example", "MAIL FROM:<" + from + ">"};
  for (const std::string& rcpt : rcpts) commands.push_back("RCPT TO:<" + rcpt + ">");
  commands.push_back("QUIT");
  return commands;
}

std::vector<std::string> AuthSession(const std::string& user,
                                     const std::vector<std::string>& rcpts) {
  std::vector<std::string> commands = PlainSession(user, rcpts);
  std::string credentials = std::string(1, '\0') + user + '\0' + kAuthPassword;
  commands.insert(commands.begin() + 1, "AUTH PLAIN " + Base64(credentials));
  return commands;
}

SmtpSession ParseSmtpReplies(const std::string& server_output,
                             const std::vector<std::string>& commands) {
  static const std::regex kReplyLine(R"(^(\d{3})([ -])(.*?)\r?$)");
  SmtpSession session;
  session.transcript = server_output;
  std::istringstream in(server_output);
  std::string line;
  std::smatch m;
  size_t next = 0;
  std::string text;
  while (std::getline(in, line)) {
    if (!std::regex_match(line, m, kReplyLine)) continue;
    AppendReplyLine(text, m[3]);
    if (m[2] != " ") continue;  // Exim wraps long replies: "451-4.7.1 ... over" "451 5/min)"
    int code = std::stoi(m[1]);
    if (session.banner == 0) {
      session.banner = code;
    } else if (next < commands.size()) {
      session.replies.push_back({commands[next++], code, text});
    }
    text.clear();
  }
  for (; next < commands.size(); ++next) session.replies.push_back({commands[next], 0, ""});
  return session;
}

// ---------------------------------------------------------------- users

std::string SystemEximUser() {
  for (const char* name : {"Debian-exim", "exim", "mailnull", "mail"}) {
    if (getpwnam(name) != nullptr) return name;
  }
  throw std::runtime_error("no Exim user on this system");
}

ScopedTempDir::ScopedTempDir() {
  std::string pattern = "/tmp/eximguard-e2e-work-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path = pattern;
}

ScopedTempDir::~ScopedTempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path, ignored);
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

std::string LocalMessage(int i) {
  const std::string n = std::to_string(i);
  return "To: friend" + n + "@remote.example\nSubject: e2e local " + n + "\n\nbody " + n + "\n";
}

TestUser EnsureTestUser() {
  if (getpwnam(kTestUserName) == nullptr) {
    SpawnOptions useradd;
    useradd.argv = {
        "/usr/sbin/useradd", "--system",  "--no-create-home",    "--user-group", "--shell",
        "/usr/sbin/nologin", "--comment", "eximguard e2e tests", kTestUserName};
    ExitStatus status = Run(useradd, std::chrono::seconds(30));
    if (!status.Ok() && getpwnam(kTestUserName) == nullptr) {
      throw std::runtime_error("useradd egtest failed: " + status.Describe());
    }
  }
  std::optional<Credentials> credentials = LookUpUser(kTestUserName);
  if (!credentials) throw std::runtime_error("test user vanished");
  return TestUser{kTestUserName, GroupName(credentials->gid), *credentials};
}

// ---------------------------------------------------------------- sandbox

EximSandbox::EximSandbox(SandboxOptions options) : options_(std::move(options)) {
  if (options_.exim_user.empty()) options_.exim_user = SystemEximUser();
  if (options_.exim_group.empty()) options_.exim_group = PrimaryGroupOf(options_.exim_user);

  std::string pattern = "/tmp/eximguard-e2e-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
  segment_ = UniqueSegmentName();
  try {
    Populate();
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
    throw;
  }
}

void EximSandbox::Populate() {
  MakeDir(dir_, 0755);
  for (const char* sub : {"/spool", "/log"}) {
    MakeDir(dir_ + sub, 0750);
    Chown(dir_ + sub, options_.exim_user, options_.exim_group);
  }
  MakeDir(dir_ + "/state", 0700);
  MakeDir(dir_ + "/out", 0755);
  MakeDir(dir_ + "/lib", 0755);
  guard_so_copy_ = dir_ + "/lib/" + fs::path(options_.guard_so).filename().string();
  fs::copy_file(options_.guard_so, guard_so_copy_);
  chmod(guard_so_copy_.c_str(), 0644);
  RenderConfig();
}

EximSandbox::~EximSandbox() {
  StopDaemon();
  KillLeftovers();
  shm_unlink(segment_.c_str());
  if (getenv("EG_E2E_KEEP") != nullptr) {  // debugging: keep config, logs and spool
    fprintf(stderr, "EG_E2E_KEEP: sandbox kept in %s\n", dir_.c_str());
    return;
  }
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

std::string EximSandbox::mainlog() const {
  return ReadFile(dir_ + "/log/mainlog");
}

std::string EximSandbox::SegmentPath() const {
  return "/dev/shm" + segment_;
}

std::string EximSandbox::NewPath(const std::string& stem) {
  return dir_ + "/out/" + stem + "-" + std::to_string(file_counter_++);
}

void EximSandbox::RenderConfig() {
  std::string text = ReadFile(options_.config_template);
  if (text.empty()) throw std::runtime_error("cannot read " + options_.config_template);
  const std::pair<const char*, std::string> values[] = {
      {"@WORKDIR@", dir_},
      {"@EXIM_USER@", options_.exim_user},
      {"@EXIM_GROUP@", options_.exim_group},
      {"@GUARD_SO@", guard_so_copy_},
      {"@RCPT_FN@", options_.rcpt_fn},
      {"@LOCAL_FN@", options_.local_fn},
      {"@SEGMENT@", segment_},
      {"@AUTH_PASSWORD@", kAuthPassword},
      {"@EVENT_FN@", options_.event_fn},
      {"@FAKE_MX_PORT@", std::to_string(options_.fake_mx_port)},
  };
  for (const auto& [placeholder, value] : values) text = ReplaceAll(text, placeholder, value);
  static const std::regex kLeftover(R"(^[^#\n]*@[A-Z_]+@)", std::regex::multiline);
  if (std::regex_search(text, kLeftover)) {
    throw std::runtime_error("unrendered placeholder left in the test config");
  }
  config_path_ = dir_ + "/exim.conf";
  WriteFile(config_path_, text, 0644);  // read by the test user too (local submissions)
}

ExitStatus EximSandbox::CreateSegment(const GuardPolicy& policy, std::string* output) {
  nlohmann::json overrides = nlohmann::json::object();
  for (const auto& [key, limit] : policy.overrides) overrides[key] = LimitJson(limit);
  nlohmann::json config = {
      {"shm_name", segment_},
      {"state_dir", dir_ + "/state"},
      {"exim_log", dir_ + "/log/mainlog"},
      {"exim_group", options_.exim_group},
      {"limits",
       {{"sender", LimitJson(policy.sender)},
        {"cwd", LimitJson(policy.cwd)},
        {"uid", LimitJson(policy.uid)}}},
      {"overrides", overrides},
      {"whitelist", policy.whitelist},
      {"blocklist", policy.blocklist},
  };
  std::string config_path = dir_ + "/state/eximguard.json";
  WriteFile(config_path, config.dump(2) + "\n", 0600);
  SpawnOptions run;
  run.argv = {kSidecarBin, "run", "--config", config_path};
  run.stdout_path = run.stderr_path = NewPath("sidecar");
  ExitStatus status = Run(run, kEximTimeout);
  if (output != nullptr) *output = ReadFile(run.stdout_path);
  return status;
}

EximSandbox::PendingSession EximSandbox::StartBh(const std::string& client_ip,
                                                 const std::vector<std::string>& commands) {
  std::string script;
  for (const std::string& command : commands) script += command + "\r\n";
  std::string input_path = NewPath("bh-in");
  WriteFile(input_path, script, 0644);
  SpawnOptions bh;
  bh.argv = {kEximBin, "-C", config_path_, "-bh", client_ip};
  bh.stdin_path = input_path;
  bh.stdout_path = NewPath("bh-out");
  bh.stderr_path = "/dev/null";  // -bh writes its ACL trace there: large and not needed
  return PendingSession{Spawn(bh), bh.stdout_path, commands};
}

SmtpSession EximSandbox::FinishBh(PendingSession& session, std::chrono::milliseconds timeout) {
  ExitStatus status = session.child.Wait(timeout);
  SmtpSession result = ParseSmtpReplies(ReadFile(session.output_path), session.commands);
  result.exit = status;
  return result;
}

SmtpSession EximSandbox::RunBh(const std::string& client_ip,
                               const std::vector<std::string>& commands) {
  PendingSession session = StartBh(client_ip, commands);
  return FinishBh(session);
}

void EximSandbox::StartDaemon() {
  if (daemon_.running()) return;
  port_ = FreeLoopbackPort();
  SpawnOptions daemon;
  daemon.argv = {kEximBin,     "-C",
                 config_path_, "-bdf",
                 "-oX",        std::to_string(port_),
                 "-oP",        dir_ + "/exim-daemon.pid"};
  daemon.stdout_path = daemon.stderr_path = NewPath("daemon");
  daemon_ = Spawn(daemon);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!CanConnect(port_)) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("Exim daemon did not listen: " + ReadFile(daemon.stdout_path));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void EximSandbox::StopDaemon() {
  if (!daemon_.running()) return;
  daemon_.Kill(SIGTERM);
  daemon_.Wait(std::chrono::seconds(5));
}

EximSandbox::PendingSession EximSandbox::StartSwaks(const std::string& user,
                                                    const std::vector<std::string>& rcpts) {
  std::string to;
  for (const std::string& rcpt : rcpts) to += (to.empty() ? "" : ",") + rcpt;
  SpawnOptions swaks;
  swaks.argv = {kSwaksBin,
                "--server",
                "127.0.0.1:" + std::to_string(port_),
                "--auth",
                "PLAIN",
                "--auth-user",
                user,
                "--auth-password",
                kAuthPassword,
                "--from",
                user,
                "--to",
                to,
                "--timeout",
                "10"};
  swaks.stdout_path = NewPath("swaks");
  swaks.stderr_path = swaks.stdout_path + ".err";
  return PendingSession{Spawn(swaks), swaks.stdout_path, {}};
}

SmtpSession EximSandbox::FinishSwaks(PendingSession& session) {
  ExitStatus status = session.child.Wait(kEximTimeout);
  SmtpSession result = ParseSwaksTranscript(ReadFile(session.output_path));
  result.exit = status;
  return result;
}

SmtpSession EximSandbox::RunSwaks(const std::string& user, const std::vector<std::string>& rcpts) {
  PendingSession session = StartSwaks(user, rcpts);
  return FinishSwaks(session);
}

std::string EximSandbox::MakeScriptDir(const TestUser& user) {
  std::string home = dir_ + "/home/" + user.name;
  MakeDir(dir_ + "/home", 0755);
  MakeDir(home, 0711);
  MakeDir(home + "/public_html", 0755);
  Chown(home, user.name, user.group);
  Chown(home + "/public_html", user.name, user.group);
  return home + "/public_html";
}

ExitStatus EximSandbox::SubmitLocal(const TestUser& user, const std::string& cwd,
                                    const std::string& message, std::string* output) {
  std::string input_path = NewPath("local-in");
  WriteFile(input_path, message, 0644);
  SpawnOptions submit;
  submit.argv = {kEximBin, "-C", config_path_, "-oi", "-t"};
  submit.stdin_path = input_path;  // opened as root before the switch to the user
  submit.stdout_path = submit.stderr_path = NewPath("local-out");
  submit.cwd = cwd;
  submit.credentials = user.credentials;
  ExitStatus status = Run(submit, kEximTimeout);
  if (output != nullptr) *output = ReadFile(submit.stdout_path);
  return status;
}

QueueListing EximSandbox::Queue() {
  // " 0m   365 1xV1OQ-0000uS-1E <user@host> *** frozen ***" (ids of Exim < 4.97 and >= 4.97)
  static const std::regex kMessageLine(
      R"(^\s*\d+[smhdw]\s+\S+\s+([0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4})\s+<([^>]*)>(.*)$)");
  SpawnOptions bp;
  bp.argv = {kEximBin, "-C", config_path_, "-bp"};
  bp.stdout_path = bp.stderr_path = NewPath("bp");
  ExitStatus status = Run(bp, kEximTimeout);
  if (!status.Ok()) throw std::runtime_error("exim -bp failed: " + status.Describe());
  QueueListing listing;
  std::istringstream in(ReadFile(bp.stdout_path));
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (!std::regex_match(line, m, kMessageLine)) continue;
    listing.messages.push_back(
        {m[1], m[2], m[3].str().find("*** frozen ***") != std::string::npos});
  }
  return listing;
}

std::string EximSandbox::Sidecar(const std::vector<std::string>& args, int* exit_code) {
  SpawnOptions o;
  o.argv = {kSidecarBin};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.argv.push_back("--config");
  o.argv.push_back(sidecar_config_path());
  o.stdout_path = NewPath("sidecar-out");
  o.stderr_path = NewPath("sidecar-err");
  const ExitStatus s = Run(o, std::chrono::milliseconds(30000));
  if (exit_code != nullptr) *exit_code = s.Ok() ? 0 : 1;
  return ReadFile(o.stdout_path);
}

ExitStatus EximSandbox::RunQueue() {
  SpawnOptions q;
  q.argv = {kEximBin, "-C", config_path_, "-qff"};
  q.stdout_path = q.stderr_path = NewPath("qff");
  return Run(q, std::chrono::milliseconds(60000));
}

std::vector<pid_t> EximSandbox::EximProcesses() const {
  std::vector<pid_t> pids;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = ReadFile(entry.path().string() + "/cmdline");
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    if (cmdline.find(config_path_) != std::string::npos &&
        cmdline.find("swaks") == std::string::npos) {
      pids.push_back(static_cast<pid_t>(std::stol(name)));
    }
  }
  return pids;
}

// Reception processes forked by our daemon keep its command line; kill them by pid.
void EximSandbox::KillLeftovers() {
  for (pid_t pid : EximProcesses()) kill(pid, SIGKILL);
}

}  // namespace eg::e2e
