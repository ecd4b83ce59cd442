// guard_test.cpp - eximguard.so loaded with dlopen and called exactly as Exim's ${dlfunc} calls
// it: exported symbols, argument handling, verdict strings, fail-open paths, hostile input.
#include <dlfcn.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "test_segment.h"

namespace eg {
namespace {

using Entry = int (*)(unsigned char**, int, unsigned char**);
using testing::Limits;
using testing::TestSegment;

struct Guard {
  void* handle = dlopen(EG_SO_PATH, RTLD_NOW | RTLD_LOCAL);
  Entry rcpt = handle ? reinterpret_cast<Entry>(dlsym(handle, "eximguard_rcpt")) : nullptr;
  Entry local = handle ? reinterpret_cast<Entry>(dlsym(handle, "eximguard_local")) : nullptr;
  Entry event = handle ? reinterpret_cast<Entry>(dlsym(handle, "eximguard_event")) : nullptr;
  ~Guard() {
    if (handle) dlclose(handle);
  }

  static std::string Call(Entry fn, std::vector<std::string> args) {
    std::vector<unsigned char*> argv;
    for (auto& a : args) argv.push_back(reinterpret_cast<unsigned char*>(a.data()));
    unsigned char* yield = nullptr;
    EXPECT_EQ(fn(&yield, static_cast<int>(argv.size()), argv.data()), 0);  // always OK
    EXPECT_NE(yield, nullptr);
    return yield ? reinterpret_cast<char*>(yield) : "";
  }
  std::string Rcpt(const std::string& seg, const std::string& auth, const std::string& sender) {
    return Call(rcpt, {seg, auth, sender, "192.0.2.1", "rcpt@example.net"});
  }
  std::string Local(const std::string& seg, const std::string& uid, const std::string& cwd,
                    const std::string& count, const std::string& sender = "u@host.example") {
    return Call(local, {seg, uid, cwd, sender, count});
  }
  std::string Event(const std::string& seg, const std::string& name, const std::string& auth,
                    const std::string& uid = "", const std::string& protocol = "esmtpa",
                    const std::string& domain = "remote.example") {
    return Call(event, {seg, name, auth, uid, protocol, domain});
  }
};

// The delivery outcomes counted on (klass, key); all zero if the key has no slot.
std::vector<uint32_t> OutcomesOf(const Table& t, KeyClass klass, const std::string& key) {
  for (const SlotView& v : Snapshot(t, UINT32_MAX / 2, UINT32_MAX / 2)) {
    if (v.klass == klass && v.key == key) return {v.outcomes[0], v.outcomes[1], v.outcomes[2]};
  }
  return {0, 0, 0};
}

TEST(Guard, ExportsOnlyTheThreeEntryPoints) {
  Guard g;
  ASSERT_NE(g.handle, nullptr) << dlerror();
  EXPECT_NE(g.rcpt, nullptr);
  EXPECT_NE(g.local, nullptr);
  EXPECT_NE(g.event, nullptr);
  EXPECT_EQ(dlsym(g.handle, "_ZN2eg5CheckERKNS_5TableEPKNS_6KeyRefEijjNS_7VerdictE"), nullptr);
  const std::string cmd = std::string("nm -D --defined-only ") + EG_SO_PATH;
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char line[512];
  std::vector<std::string> names;
  while (fgets(line, sizeof line, p)) {
    std::string s(line);
    names.push_back(s.substr(s.rfind(' ') + 1));
  }
  pclose(p);
  std::vector<std::string> ours;
  for (auto& n : names) {
    if (n.find("eximguard") != std::string::npos || n.find("eg") == 3) ours.push_back(n);
  }
  EXPECT_EQ(names.size(), 3u) << "exported: " << ::testing::PrintToString(names);
}

TEST(Guard, EventCountsEachRecipientsOutcomeOnTheAuthenticatedAccount) {
  TestSegment s;
  s.Publish(Limits(100, 1000));
  Guard g;
  ASSERT_EQ(g.Rcpt(s.spec.name, "Acct@Example.com", ""), "ok");  // the account has a slot
  EXPECT_EQ(g.Event(s.spec.name, "msg:delivery", "acct@example.com"), "");
  EXPECT_EQ(g.Event(s.spec.name, "msg:fail:delivery", "ACCT@example.com"), "");
  EXPECT_EQ(g.Event(s.spec.name, "msg:fail:internal", "acct@example.com"), "");
  EXPECT_EQ(g.Event(s.spec.name, "msg:rcpt:defer", "acct@example.com"), "");
  // Events that are no recipient's outcome count nothing (and tcp:connect must get "").
  EXPECT_EQ(g.Event(s.spec.name, "tcp:connect", "acct@example.com"), "");
  EXPECT_EQ(g.Event(s.spec.name, "msg:defer", "acct@example.com"), "");
  EXPECT_EQ(g.Event(s.spec.name, "msg:complete", "acct@example.com"), "");
  EXPECT_EQ(OutcomesOf(s.table(), KeyClass::kSender, "Acct@Example.com"),
            (std::vector<uint32_t>{1, 2, 1}));
}

TEST(Guard, EventRemembersTheDomainsOfFailures) {
  TestSegment s;
  s.Publish(Limits(100, 1000));
  Guard g;
  ASSERT_EQ(g.Rcpt(s.spec.name, "list@example.com", ""), "ok");
  auto bits = [&] {
    for (const SlotView& v : Snapshot(s.table(), UINT32_MAX / 2, UINT32_MAX / 2))
      if (v.key == "list@example.com") return __builtin_popcount(v.failed_domains);
    return -1;
  };
  // One domain refusing everything is one domain, whatever its case.
  for (const char* d : {"attacker.example", "ATTACKER.example", "attacker.example"})
    g.Event(s.spec.name, "msg:fail:delivery", "list@example.com", "", "esmtpa", d);
  g.Event(s.spec.name, "msg:delivery", "list@example.com", "", "esmtpa", "other.example");
  EXPECT_EQ(bits(), 1);
  // Many domains: many bits (the keyed hash may put two in one bit: at least most of them).
  for (int i = 0; i < 12; ++i)
    g.Event(s.spec.name, "msg:fail:delivery", "list@example.com", "", "esmtpa",
            "d" + std::to_string(i) + ".example");
  EXPECT_GE(bits(), 5);
}

TEST(Guard, EventNeverClaimsASlotAndIgnoresMailTheGuardDoesNotCount) {
  TestSegment s;
  s.Publish(Limits(100, 1000, 100, 1000, 100, 1000));
  Guard g;
  // A key the guard never counted gets no slot from an event (internet mail, Exim's bounces).
  EXPECT_EQ(g.Event(s.spec.name, "msg:fail:delivery", "never@counted.example"), "");
  EXPECT_TRUE(Snapshot(s.table(), UINT32_MAX / 2, UINT32_MAX / 2).empty());
  // A local submission's uid: counted only when the message was received locally.
  ASSERT_EQ(g.Local(s.spec.name, "1001", "/home/u/public_html", "1"), "ok");
  EXPECT_EQ(g.Event(s.spec.name, "msg:fail:delivery", "", "1001", "esmtp"), "");  // from outside
  EXPECT_EQ(g.Event(s.spec.name, "msg:fail:delivery", "", "1001", "local"), "");
  EXPECT_EQ(g.Event(s.spec.name, "msg:delivery", "", "1001", "local-esmtp"), "");
  EXPECT_EQ(g.Event(s.spec.name, "msg:delivery", "", "10x1", "local"), "");  // not a uid
  EXPECT_EQ(OutcomesOf(s.table(), KeyClass::kUid, "1001"), (std::vector<uint32_t>{1, 1, 0}));
  // The envelope sender is never the key of an event (a relay host's or a forged one).
  EXPECT_EQ(OutcomesOf(s.table(), KeyClass::kSender, "u@host.example"),
            (std::vector<uint32_t>{0, 0, 0}));
}

TEST(Guard, EventAnswersAnEmptyStringWhateverGoesWrong) {
  Guard g;
  EXPECT_EQ(g.Event("/eg-unit-does-not-exist", "msg:delivery", "a@b"), "");
  EXPECT_EQ(g.Event("no/slash/../../etc/passwd", "msg:delivery", "a@b"), "");
  EXPECT_EQ(Guard::Call(g.event, {"/x", "msg:delivery"}), "");
  unsigned char* yield = nullptr;
  EXPECT_EQ(g.event(&yield, 6, nullptr), 0);
  EXPECT_STREQ(reinterpret_cast<char*>(yield), "");
}

TEST(Guard, RcptCountsTheAuthenticatedAccountElseTheSender) {
  TestSegment s;
  s.Publish(Limits(2, 100));
  Guard g;
  EXPECT_EQ(g.Rcpt(s.spec.name, "acct@example.com", "forged@else.where"), "ok");
  EXPECT_EQ(g.Rcpt(s.spec.name, "acct@example.com", "other@else.where"), "ok");
  EXPECT_EQ(g.Rcpt(s.spec.name, "acct@example.com", "x@y"),
            "defer sender acct@example.com 2/minute");
  // Unauthenticated (relay host): the envelope sender is the key.
  EXPECT_EQ(g.Rcpt(s.spec.name, "", "app@example.com"), "ok");
  EXPECT_EQ(g.Rcpt(s.spec.name, "", "app@example.com"), "ok");
  EXPECT_EQ(g.Rcpt(s.spec.name, "", "App@Example.com"), "defer sender App@Example.com 2/minute");
  // Neither: nothing to count.
  EXPECT_EQ(g.Rcpt(s.spec.name, "", ""), "ok");
}

TEST(Guard, LocalCountsRecipientsPerScriptDirAndHolds) {
  TestSegment s;
  s.Publish(Limits(0, 0, 5, 0, 0, 0));
  Guard g;
  EXPECT_EQ(g.Local(s.spec.name, "1001", "/home/u/public_html", "3"), "ok");
  EXPECT_EQ(g.Local(s.spec.name, "1001", "/home/u/public_html", "3"),
            "hold cwd /home/u/public_html 5/minute");
  EXPECT_EQ(g.Local(s.spec.name, "1001", "/home/u/public_html", "2"), "ok");
  EXPECT_EQ(g.Local(s.spec.name, "1001", "/home/u/public_html", "garbage"),
            "hold cwd /home/u/public_html 5/minute");  // unparsable count counts as 1
}

TEST(Guard, BlockedKeyIsDenied) {
  TestSegment s;
  Policy p = Limits(10, 100, 10, 100, 10, 100);
  p.rules.push_back({KeyClass::kSender, "bad@example.com", kFlagBlocked, {}});
  p.rules.push_back({KeyClass::kUid, "666", kFlagBlocked, {}});
  s.Publish(p);
  Guard g;
  EXPECT_EQ(g.Rcpt(s.spec.name, "bad@example.com", ""), "deny sender bad@example.com blocked");
  EXPECT_EQ(g.Local(s.spec.name, "666", "/tmp", "1"), "deny uid 666 blocked");
}

TEST(Guard, DryRunSaysWhatItWouldHaveDone) {
  TestSegment s;
  Policy p = Limits(1, 0);
  p.dry_run = true;
  s.Publish(p);
  Guard g;
  EXPECT_EQ(g.Rcpt(s.spec.name, "a@b", ""), "ok");
  EXPECT_EQ(g.Rcpt(s.spec.name, "a@b", ""), "ok dry-run defer sender a@b 1/minute");
}

TEST(Guard, FailsOpenWithoutSegmentOrWithWrongArguments) {
  Guard g;
  EXPECT_EQ(g.Rcpt("/eg-unit-does-not-exist", "a@b", ""),
            "ok fail-open cannot attach the shared-memory segment");
  EXPECT_EQ(g.Rcpt("no/slash/../../etc/passwd", "a@b", ""), "ok fail-open invalid segment name");
  EXPECT_EQ(Guard::Call(g.rcpt, {"/x", "a"}), "ok fail-open eximguard_rcpt needs 5 arguments");
  unsigned char* yield = nullptr;
  EXPECT_EQ(g.rcpt(&yield, 5, nullptr), 0);
  EXPECT_STREQ(reinterpret_cast<char*>(yield), "ok fail-open eximguard_rcpt needs 5 arguments");
  std::vector<unsigned char*> nulls(5, nullptr);
  EXPECT_EQ(g.rcpt(&yield, 5, nulls.data()), 0);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(yield)).rfind("ok", 0), 0u);
}

TEST(Guard, FailsOpenOnUnknownLayoutAndReattachesWhenReplaced) {
  TestSegment s;
  s.Publish(Limits(1, 0));
  Guard g;
  EXPECT_EQ(g.Rcpt(s.spec.name, "r@x", ""), "ok");
  EXPECT_EQ(g.Rcpt(s.spec.name, "r@x", ""), "defer sender r@x 1/minute");
  // The sidecar replaces the segment (new capacity): the guard notices and re-attaches.
  SegmentSpec bigger = s.spec;
  bigger.capacity = 2048;
  eg::SegmentOutcome outcome{};
  std::string error;
  auto fresh = CreateSegment(bigger, &outcome, &error);
  ASSERT_TRUE(fresh) << error;
  Policy p = Limits(3, 0);
  ASSERT_TRUE(PublishPolicy(fresh->table, p, &error)) << error;
  EXPECT_EQ(g.Rcpt(s.spec.name, "r@x", ""), "ok");  // new table, new counters
  // A layout this build does not know: fail open.
  fresh->table.header->layout_version = kLayoutVersion + 7;
  fresh->table.header->retired.store(1);  // make the guard look again
  EXPECT_EQ(g.Rcpt(s.spec.name, "r@x", ""), "ok fail-open segment has an unknown layout version");
  // The sidecar replaces a table of another layout version too (an upgrade), and marks it
  // retired all the same, so processes of the old version attached to it re-attach.
  fresh->table.header->retired.store(0);
  UnlockSegment(*fresh);
  auto upgraded = CreateSegment(bigger, &outcome, &error);
  ASSERT_TRUE(upgraded) << error;
  EXPECT_EQ(outcome, SegmentOutcome::kReplaced);
  EXPECT_EQ(fresh->table.header->retired.load(), 1u);
  UnlockSegment(*upgraded);
  ASSERT_TRUE(PublishPolicy(upgraded->table, p, &error)) << error;
  auto reader = OpenSegment(s.spec.name, &error);  // as the guard will, after its 10 s
  ASSERT_TRUE(reader) << error;
  EXPECT_EQ(reader->table.header->layout_version, kLayoutVersion);
}

TEST(Guard, RefusesASegmentSomebodyElseMadeAndTheSidecarReplacesIt) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give the segment away";
  TestSegment s;
  s.Publish(Limits(1, 0));
  // A local user got there first (e.g. before the sidecar started at boot): their object.
  const std::string path = "/dev/shm" + s.spec.name;
  ASSERT_EQ(chown(path.c_str(), 65534, 65534), 0);
  Guard g;
  EXPECT_EQ(g.Rcpt(s.spec.name, "x@y", ""), "ok fail-open segment has an unsafe owner or mode");
  std::string error;
  EXPECT_EQ(OpenSegment(s.spec.name, &error), nullptr);
  EXPECT_NE(error.find("owned by uid 65534"), std::string::npos) << error;
  SegmentOutcome outcome{};
  auto fresh = CreateSegment(s.spec, &outcome, &error);
  ASSERT_TRUE(fresh) << error;
  EXPECT_EQ(outcome, SegmentOutcome::kReplaced);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

// Issue 10 item 6: a local user takes the public name before the sidecar starts (at boot
// /dev/shm is empty: a customer's @reboot job wins). Whatever they put there - a symlink, a
// directory (empty or not), a FIFO, a file of theirs open to everybody - the guard refuses it and
// the sidecar still creates its table, never following or writing the squatter's object.
enum class Squat { kSymlink, kDirectory, kFullDirectory, kFile, kFifo };

// In a child that is uid/gid 65534 (an ordinary local user): puts `squat` at `path`.
bool SquatAs65534(Squat squat, const std::string& path, const std::string& symlink_target) {
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    int r = 0;
    switch (squat) {
      case Squat::kSymlink:
        r = symlink(symlink_target.c_str(), path.c_str());
        break;
      case Squat::kDirectory:
        r = mkdir(path.c_str(), 0777);
        break;
      case Squat::kFullDirectory: {
        r = mkdir(path.c_str(), 0777);
        const int fd = r == 0 ? open((path + "/inside").c_str(), O_CREAT | O_WRONLY, 0666) : -1;
        r = fd >= 0 ? close(fd) : -1;
        break;
      }
      case Squat::kFile: {
        const int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0666);
        r = (fd >= 0 && write(fd, "EXGUARD1 not a table", 20) == 20 && fchmod(fd, 0666) == 0) ? 0
                                                                                              : -1;
        break;
      }
      case Squat::kFifo:
        r = mkfifo(path.c_str(), 0666);
        break;
    }
    _exit(r == 0 ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST(Guard, SidecarAlwaysCreatesTheTableWhenALocalUserSquatsTheName) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as another local user";
  // A root-owned file the symlink points at: it must come out untouched.
  char target[] = "/tmp/eg-squat-target-XXXXXX";
  const int tfd = mkstemp(target);
  ASSERT_GE(tfd, 0);
  ASSERT_EQ(fchmod(tfd, 0644), 0);
  close(tfd);
  for (Squat squat :
       {Squat::kSymlink, Squat::kDirectory, Squat::kFullDirectory, Squat::kFile, Squat::kFifo}) {
    SCOPED_TRACE(static_cast<int>(squat));
    SegmentSpec spec;
    spec.name = testing::UniqueSegmentName();
    spec.capacity = 1024;
    spec.policy_capacity = 256;
    const std::string path = std::string(kShmDirectory) + spec.name;
    ASSERT_TRUE(SquatAs65534(squat, path, target));
    struct stat st {};
    ASSERT_EQ(lstat(path.c_str(), &st), 0);
    ASSERT_EQ(st.st_uid, 65534u);

    // Before the sidecar: the guard will not use it (fails open), nor will `top`.
    {
      Guard early;  // unloaded at the end of the block: the guard below attaches afresh
      EXPECT_EQ(early.Rcpt(spec.name, "x@y", ""),
                "ok fail-open segment has an unsafe owner or mode");
    }
    std::string error;
    EXPECT_EQ(OpenSegment(spec.name, &error), nullptr);
    EXPECT_NE(error.find("not trusted"), std::string::npos) << error;

    // The sidecar: its create succeeds, loudly.
    SegmentOutcome outcome{};
    auto seg = CreateSegment(spec, &outcome, &error);
    ASSERT_TRUE(seg) << error;
    EXPECT_EQ(outcome, SegmentOutcome::kReplaced);
    EXPECT_NE(seg->notice.find("SQUATTED"), std::string::npos) << seg->notice;
    EXPECT_NE(seg->notice.find("uid 65534"), std::string::npos) << seg->notice;
    ASSERT_EQ(lstat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_EQ(st.st_mode & 0777, 0660u);
    if (squat == Squat::kFullDirectory) {  // left aside under the random name, not walked as root
      const size_t at = seg->notice.find("moved to ");
      ASSERT_NE(at, std::string::npos) << seg->notice;
      const std::string aside = seg->notice.substr(at + 9, seg->notice.find(' ', at + 9) - at - 9);
      EXPECT_EQ(aside.rfind("/dev/shm/.eximguard-new-", 0), 0u) << aside;
      EXPECT_EQ(unlink((aside + "/inside").c_str()), 0);
      EXPECT_EQ(rmdir(aside.c_str()), 0);
    } else {
      EXPECT_NE(seg->notice.find("removed"), std::string::npos) << seg->notice;
    }

    // And the guard works on it.
    Guard g;
    UnlockSegment(*seg);
    Policy p = Limits(1, 0);
    ASSERT_TRUE(PublishPolicy(seg->table, p, &error)) << error;
    EXPECT_EQ(g.Rcpt(spec.name, "x@y", ""), "ok");
    EXPECT_EQ(g.Rcpt(spec.name, "x@y", ""), "defer sender x@y 1/minute");

    // A restart reuses it quietly.
    seg.reset();
    auto again = CreateSegment(spec, &outcome, &error);
    ASSERT_TRUE(again) << error;
    EXPECT_EQ(outcome, SegmentOutcome::kReused);
    EXPECT_EQ(again->notice, "");
    again.reset();
    EXPECT_TRUE(RemoveSegment(spec.name));
  }
  struct stat st {};
  ASSERT_EQ(stat(target, &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_EQ(st.st_size, 0);
  unlink(target);
}

// A sidecar killed while building leaves its temporary table; the next create removes it once
// it is ten minutes old (never a fresh one: another sidecar may be building it).
TEST(Guard, CreateRemovesStaleTemporaryTables) {
  const std::string tag = std::to_string(getpid());
  const std::string stale = std::string(kShmDirectory) + "/.eximguard-new-stale" + tag;
  const std::string fresh = std::string(kShmDirectory) + "/.eximguard-new-fresh" + tag;
  for (const std::string& p : {stale, fresh}) {
    const int fd = open(p.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    close(fd);
  }
  const struct timeval old[2] = {{time(nullptr) - 3600, 0}, {time(nullptr) - 3600, 0}};
  ASSERT_EQ(utimes(stale.c_str(), old), 0);
  TestSegment s;
  struct stat st {};
  EXPECT_NE(lstat(stale.c_str(), &st), 0);
  EXPECT_EQ(lstat(fresh.c_str(), &st), 0);
  unlink(fresh.c_str());
}

// Issue 10 item 11: the client's IP is the source whose new keys are budgeted.
TEST(Guard, AClientOverItsNewKeyBudgetIsDeferredWhenTheTableIsFull) {
  TestSegment s(16, 64);  // one probe run: full after 16 keys
  Policy p = Limits(8, 0);
  p.new_key_budget = 2;
  s.Publish(p);
  Guard g;
  for (int i = 0; i < 16; ++i)
    EXPECT_EQ(g.Rcpt(s.spec.name, "", "s" + std::to_string(i) + "@x"), "ok");
  EXPECT_EQ(g.Rcpt(s.spec.name, "", "s16@x"), "defer new-keys 192.0.2.1 2/minute");
  EXPECT_EQ(g.Rcpt(s.spec.name, "", "s0@x"), "ok");  // a known key is counted as ever
  EXPECT_EQ(Totals(s.table()).new_key_refusals, 1u);
}

TEST(Guard, HostileArgumentsAreHandledSafely) {
  TestSegment s;
  s.Publish(Limits(1, 0, 1, 0, 1, 0));
  Guard g;
  const std::string huge(10240, 'x');
  EXPECT_EQ(g.Rcpt(s.spec.name, huge, ""), "ok");
  const std::string v = g.Rcpt(s.spec.name, huge, "");
  EXPECT_EQ(v, "defer sender " + std::string(200, 'x') + "... 1/minute");
  const std::string evil = "a b\tc\n\x01\xff${run{/bin/sh}}@x";
  EXPECT_EQ(g.Rcpt(s.spec.name, evil, ""), "ok");
  EXPECT_EQ(g.Rcpt(s.spec.name, evil, ""), "defer sender a?b?c???${run{/bin/sh}}@x 1/minute");
  // Non-numeric uid: the uid key is skipped, the others still count.
  EXPECT_EQ(g.Local(s.spec.name, "12ab", "/d", "1", "s1@x"), "ok");
  EXPECT_EQ(g.Local(s.spec.name, "12ab", "/e", "1", "s2@x"), "ok");  // uid not counted twice
  EXPECT_EQ(g.Local(s.spec.name, "99999999999999", "/f", "1", "s3@x"), "ok");
  // An absurd recipient count is clamped (to 100000) and held whole; nothing was counted.
  EXPECT_EQ(g.Local(s.spec.name, "", "", "99999999999999999999", "s4@x"),
            "hold sender s4@x 1/minute");
  EXPECT_EQ(g.Local(s.spec.name, "", "", "1", "s4@x"), "ok");
}

}  // namespace
}  // namespace eg
