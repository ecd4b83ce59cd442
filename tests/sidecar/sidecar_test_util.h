// sidecar_test_util.h - helpers for the sidecar tests: a temporary directory, config files with
// a chosen mode, unique segment names removed afterwards, and running the built `eximguard`.
#ifndef EXIMGUARD_TESTS_SIDECAR_SIDECAR_TEST_UTIL_H_
#define EXIMGUARD_TESTS_SIDECAR_SIDECAR_TEST_UTIL_H_

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "segment.h"
#include "table.h"

extern char** environ;

namespace eg::sidecar::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base ? base : "/tmp") + "/eg-sidecar-test-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// True when `text` holds no byte a terminal acts on: nothing below 0x20 but the '\n' that
// separates lines, no DEL, no C1 control (U+0080..U+009F as UTF-8), no invalid UTF-8 byte.
inline bool NoTerminalControl(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c < 0x20 && c != '\n') || c == 0x7f) return false;
    if (c == 0xc2 && i + 1 < text.size()) {
      const auto d = static_cast<unsigned char>(text[i + 1]);
      if (d >= 0x80 && d <= 0x9f) return false;
    }
    if (c == 0xff || c == 0xfe || c == 0xc0 || c == 0xc1) return false;
  }
  return true;
}

// HOUR:00:00 local time, `days` days before today: test logs are stamped relative to the clock,
// never at a fixed date (retention, cooldowns and block expiry judge times against now).
inline int64_t DaysAgoAt(int days, int hour) {
  const time_t now = std::time(nullptr);
  struct tm tm {};
  localtime_r(&now, &tm);
  tm.tm_mday -= days;
  tm.tm_hour = hour;
  tm.tm_min = 0;
  tm.tm_sec = 0;
  tm.tm_isdst = -1;
  return static_cast<int64_t>(mktime(&tm));
}

// "YYYY-MM-DD" of a unix time, local time.
inline std::string LocalDay(int64_t t) {
  const time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  localtime_r(&tt, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

inline void WriteFile(const std::string& path, const std::string& text, mode_t mode = 0600) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path);
  }
  if (chmod(path.c_str(), mode) != 0) throw std::runtime_error("cannot chmod " + path);
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string UniqueSegmentName() {
  static std::atomic<int> counter{0};
  return "/eg-sidecar-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

// A unique segment name whose segment is removed at the end of the scope.
struct ScopedSegmentName {
  std::string name = UniqueSegmentName();
  ~ScopedSegmentName() { RemoveSegment(name); }
};

// A regular (non-system) local user for tests that need a customer's account: created once
// (useradd, no home) when this host has none of that name. Returns its uid, or -1 if it cannot
// be made (not root). System accounts (below UID_MIN) are never punished automatically, so a
// test of a punishment needs one of these.
inline int64_t CustomerUid(const std::string& name = "egcustomer") {
  if (const struct passwd* pw = getpwnam(name.c_str())) return pw->pw_uid;
  const std::string cmd =
      "/usr/sbin/useradd --no-create-home --no-user-group --shell "
      "/usr/sbin/nologin " +
      name + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    if (const struct passwd* pw = getpwnam(name.c_str())) return pw->pw_uid;  // a racing test
    return -1;
  }
  const struct passwd* pw = getpwnam(name.c_str());
  return pw ? pw->pw_uid : -1;
}

// The name of our effective group, so segments can be given to it without privileges.
inline std::string OwnGroupName() {
  const struct group* g = getgrgid(getegid());
  return g ? g->gr_name : "";
}

struct CliResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  std::string out;
  std::string err;
};

// Runs the built eximguard with `args`, stdout/stderr captured through files, 30 s at most.
inline CliResult RunCli(const std::vector<std::string>& args) {
  TempDir dir;
  const std::string out_path = dir.File("stdout");
  const std::string err_path = dir.File("stderr");
  std::vector<std::string> argv_strings{EG_SIDECAR_BIN};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " EG_SIDECAR_BIN);

  CliResult result;
  int status = 0;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (waitpid(pid, &status, WNOHANG) != pid) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!timed_out && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

// A test of the built program: a temp dir, a segment name, and a config file for both.
class CliFixture : public ::testing::Test {
 protected:
  // Writes a config for this test's segment (small, owned by our group), state directory and
  // mainlog (both in the test's directory), plus `extra` keys.
  std::string WriteConfig(const nlohmann::ordered_json& extra = nlohmann::ordered_json::object(),
                          mode_t mode = 0600) {
    nlohmann::ordered_json config = {{"shm_name", segment_.name},
                                     {"exim_group", group_},
                                     {"capacity", 1024},
                                     {"policy_capacity", 64},
                                     {"state_dir", dir_.File("state")},
                                     {"exim_log", dir_.File("mainlog")},
                                     {"local_domains_file", ""}};
    config.merge_patch(extra);
    WriteFile(config_path_, config.dump(2), mode);
    return config_path_;
  }
  std::unique_ptr<Segment> Open() {
    std::string error;
    auto seg = OpenSegment(segment_.name, &error);
    EXPECT_TRUE(seg) << error;
    return seg;
  }
  static Verdict Send(const Segment& seg, KeyClass klass, const std::string& key, uint32_t count,
                      uint32_t now) {
    const KeyRef ref{klass, key.data(), key.size()};
    return Check(seg.table, &ref, 1, count, now, Verdict::kDefer).verdict;
  }

  TempDir dir_;
  ScopedSegmentName segment_;
  const std::string group_ = OwnGroupName();
  const std::string config_path_ = dir_.File("eximguard.json");
};

}  // namespace eg::sidecar::testing

#endif  // EXIMGUARD_TESTS_SIDECAR_SIDECAR_TEST_UTIL_H_
