// log_follower_test.cpp - tests of the log follower (sidecar/log_follower.h): appended lines
// within a second, partial lines held back, rename rotation and copytruncate without a lost or
// repeated line, restarts from a saved checkpoint (also after a rotation while stopped), the
// checkpoint file, and the start after a garbage checkpoint.
//
// Each test works in its own temporary directory; writers append with O_APPEND like Exim. The
// whole set runs in well under 10 s (rotation tests use a 150 ms quiet period).

#include "log_follower.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "sidecar_test_util.h"

namespace eg::sidecar {
namespace {

using std::chrono::milliseconds;
using testing::TempDir;

void Append(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
}

// Polls until `want` lines arrived in total or `limit` passed; returns their texts.
std::vector<std::string> Collect(LogFollower& f, size_t want,
                                 milliseconds limit = milliseconds(3000),
                                 std::vector<FollowedLine>* raw = nullptr) {
  std::vector<std::string> texts;
  const auto end = std::chrono::steady_clock::now() + limit;
  while (texts.size() < want && std::chrono::steady_clock::now() < end) {
    for (FollowedLine& l : f.Poll(milliseconds(50))) {
      texts.push_back(l.text);
      if (raw) raw->push_back(std::move(l));
    }
  }
  return texts;
}

// Whatever arrives within `wait` (to prove nothing more comes).
std::vector<std::string> Drain(LogFollower& f, milliseconds wait = milliseconds(300)) {
  return Collect(f, SIZE_MAX, wait);
}

std::string Lines(const std::string& prefix, int from, int to) {
  std::string s;
  for (int i = from; i <= to; ++i) s += prefix + std::to_string(i) + "\n";
  return s;
}

std::vector<std::string> Names(const std::string& prefix, int from, int to) {
  std::vector<std::string> v;
  for (int i = from; i <= to; ++i) v.push_back(prefix + std::to_string(i));
  return v;
}

std::vector<std::string> Cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

FollowerOptions Fast() {
  FollowerOptions o;
  o.rotate_quiet = milliseconds(150);
  return o;
}

TEST(LogFollowerTest, AppendedLineArrivesWithinOneSecond) {
  TempDir dir;
  const std::string log = dir.File("mainlog");
  Append(log, "");
  LogFollower f(log, Fast());
  std::string err;
  ASSERT_TRUE(f.Open(nullptr, &err)) << err;
  EXPECT_EQ(f.open_note(), OpenNote::kStartedAtBeginning);
  EXPECT_TRUE(f.Poll(milliseconds(0)).empty());

  std::chrono::steady_clock::time_point written;
  std::thread writer([&] {
    std::this_thread::sleep_for(milliseconds(100));
    written = std::chrono::steady_clock::now();
    Append(log, "line one\nline two\n");
  });
  std::vector<FollowedLine> got = f.Poll(milliseconds(3000));
  const auto returned = std::chrono::steady_clock::now();
  writer.join();
  // Both lines come from one write; a Poll may in theory see the first chunk only.
  std::vector<std::string> texts;
  for (auto& l : got) texts.push_back(l.text);
  if (texts.size() < 2) texts = Cat(texts, Collect(f, 2 - texts.size()));
  EXPECT_EQ(texts, (std::vector<std::string>{"line one", "line two"}));
  const auto latency = std::chrono::duration_cast<milliseconds>(returned - written);
  EXPECT_LT(latency.count(), 1000) << "latency " << latency.count() << " ms";
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got[0].checkpoint.offset, 9u);
  EXPECT_EQ(got[0].checkpoint.last_line_hash, LineTailHash("line one"));
}

TEST(LogFollowerTest, PartialLineHeldBackUntilNewline) {
  TempDir dir;
  const std::string log = dir.File("mainlog");
  Append(log, "first\nsec");
  LogFollower f(log, Fast());
  std::string err;
  ASSERT_TRUE(f.Open(nullptr, &err)) << err;
  EXPECT_EQ(Collect(f, 1), (std::vector<std::string>{"first"}));
  EXPECT_TRUE(f.Poll(milliseconds(150)).empty());
  EXPECT_EQ(f.checkpoint().offset, 6u);  // not past the partial line
  Append(log, "ond");
  EXPECT_TRUE(f.Poll(milliseconds(150)).empty());
  Append(log, "\nthird\n");
  EXPECT_EQ(Collect(f, 2), (std::vector<std::string>{"second", "third"}));
  EXPECT_EQ(f.checkpoint().offset, 19u);
}

TEST(LogFollowerTest, RenameRotationEveryLineOnceInOrder) {
  TempDir dir;
  const std::string log = dir.File("mainlog");
  Append(log, Lines("a", 1, 3));
  LogFollower f(log, Fast());
  std::string err;
  ASSERT_TRUE(f.Open(nullptr, &err)) << err;
  std::vector<std::string> all = Collect(f, 3);

  // A writer that keeps the old file open, as an Exim process does across the rename.
  int old_fd = open(log.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  ASSERT_GE(old_fd, 0);
  auto old_write = [&](const std::string& s) {
    ASSERT_EQ(write(old_fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  };
  ASSERT_EQ(rename(log.c_str(), (log + ".1").c_str()), 0);
  old_write(Lines("a", 4, 5));    // after the rename, before the new file exists
  all = Cat(all, Collect(f, 2));  // read through the still-open fd
  Append(log, Lines("b", 1, 2));  // the new file appears
  old_write(Lines("a", 6, 7));    // the old file still grows after that
  Append(log, Lines("b", 3, 3));
  all = Cat(all, Collect(f, 5));
  close(old_fd);
  all = Cat(all, Drain(f));
  EXPECT_EQ(all, Cat(Names("a", 1, 7), Names("b", 1, 3)));
  EXPECT_EQ(f.rotations(), 1u);

  struct stat st;
  ASSERT_EQ(stat(log.c_str(), &st), 0);
  EXPECT_EQ(f.checkpoint().ino, static_cast<uint64_t>(st.st_ino));
  EXPECT_EQ(f.checkpoint().offset, static_cast<uint64_t>(st.st_size));
}

TEST(LogFollowerTest, RenameRotationWithoutWaitingForPoll) {
  // Everything happens between two Polls: the old file's rest, then the new file.
  TempDir dir;
  const std::string log = dir.File("mainlog");
  Append(log, Lines("a", 1, 2));
  LogFollower f(log, Fast());
  std::string err;
  ASSERT_TRUE(f.Open(nullptr, &err)) << err;
  std::vector<std::string> all = Collect(f, 2);
  Append(log, Lines("a", 3, 4));
  ASSERT_EQ(rename(log.c_str(), (log + ".1").c_str()), 0);
  Append(log, Lines("b", 1, 3));
  all = Cat(all, Collect(f, 5));
  all = Cat(all, Drain(f));
  EXPECT_EQ(all, Cat(Names("a", 1, 4), Names("b", 1, 3)));
}

TEST(LogFollowerTest, CopytruncateLinesAfterTruncateOnce) {
  TempDir dir;
  const std::string log = dir.File("mainlog");
  Append(log, Lines("a", 1, 5));
  LogFollower f(log, Fast());
  std::string err;
  ASSERT_TRUE(f.Open(nullptr, &err)) << err;
  EXPECT_EQ(Collect(f, 5), Names("a", 1, 5));

  // Shorter after the truncate than before.
  std::filesystem::copy_file(log, log + ".1");
  ASSERT_EQ(truncate(log.c_str(), 0), 0);
  Append(log, Lines("b", 1, 2));
  std::vector<std::string> all = Collect(f, 2);
  EXPECT_EQ(f.truncations(), 1u);

  // Truncated and refilled beyond the old offset before the follower looks: the hash of the
  // line at the checkpoint tells.
  ASSERT_EQ(truncate(log.c_str(), 0), 0);
  Append(log, Lines("c-a-longer-line-", 1, 4));
  all = Cat(all, Collect(f, 4));
  all = Cat(all, Drain(f));
  EXPECT_EQ(all, Cat(Names("b", 1, 2), Names("c-a-longer-line-", 1, 4)));
  EXPECT_EQ(f.truncations(), 2u);
  EXPECT_EQ(f.rotations(), 0u);
}

TEST(LogFollowerTest, KillWithoutSavingRepeatsOnlyUnsavedLines) {
  TempDir dir;
  const std::string log = dir.File("mainlog");
  const std::string cpf = dir.File("checkpoint");
  Append(log, Lines("a", 1, 10));
  std::string err;
  {
    LogFollower f(log, Fast());
    ASSERT_TRUE(f.Open(nullptr, &err)) << err;
    std::vector<FollowedLine> raw;
    ASSERT_EQ(Collect(f, 10, milliseconds(3000), &raw).size(), 10u);
    // The caller processed all ten but saved only after the fifth, then was killed (-9: the
    // follower is destroyed without any further save).
    ASSERT_TRUE(SaveCheckpoint(cpf, raw[4].checkpoint, &err)) << err;
  }
  Append(log, Lines("a", 11, 12));
  Checkpoint cp;
  ASSERT_EQ(LoadCheckpoint(cpf, &cp, &err), LoadResult::kOk) << err;
  LogFollower f(log, Fast());
  ASSERT_TRUE(f.Open(&cp, &err)) << err;
  EXPECT_EQ(f.open_note(), OpenNote::kResumed);
  std::vector<std::string> all = Collect(f, 7);
  all = Cat(all, Drain(f, milliseconds(100)));
  EXPECT_EQ(all, Names("a", 6, 12));  // 6..10 again: processed after the last save
}

TEST(LogFollowerTest, CheckpointSavedPerLineNothingLostOrRepeated) {
  TempDir dir;
  const std::string log = dir.File("mainlog");
  const std::string cpf = dir.File("checkpoint");
  Append(log, Lines("a", 1, 10));
  std::vector<std::string> processed;
  std::string err;
  for (int run = 0; run < 4; ++run) {
    Checkpoint cp;
    const LoadResult r = LoadCheckpoint(cpf, &cp, &err);
    ASSERT_TRUE(r == LoadResult::kOk || (run == 0 && r == LoadResult::kMissing)) << err;
    LogFollower f(log, Fast());
    ASSERT_TRUE(f.Open(r == LoadResult::kOk ? &cp : nullptr, &err)) << err;
    if (run > 0) {
      EXPECT_EQ(f.open_note(), OpenNote::kResumed);
    }
    // Process (and save after) three lines, then "die" with the rest unprocessed.
    std::vector<FollowedLine> raw;
    Collect(f, 3, milliseconds(3000), &raw);
    ASSERT_GE(raw.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      processed.push_back(raw[i].text);
      ASSERT_TRUE(SaveCheckpoint(cpf, raw[i].checkpoint, &err)) << err;
    }
    Append(log, Lines("r" + std::to_string(run) + "-", 1, 1));
  }
  EXPECT_EQ(processed, (std::vector<std::string>{"a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8",
                                                 "a9", "a10", "r0-1", "r1-1"}));
}

TEST(LogFollowerTest, RestartAfterRotationWhileStopped) {
  TempDir dir;
  const std::string log = dir.File("mainlog");
  const std::string cpf = dir.File("checkpoint");
  Append(log, Lines("a", 1, 5));
  std::string err;
  {
    LogFollower f(log, Fast());
    ASSERT_TRUE(f.Open(nullptr, &err)) << err;
    std::vector<FollowedLine> raw;
    Collect(f, 5, milliseconds(3000), &raw);
    ASSERT_EQ(raw.size(), 5u);
    ASSERT_TRUE(SaveCheckpoint(cpf, raw[2].checkpoint, &err)) << err;
  }
  // While stopped: the old file gets a line more, is rotated to mainlog.1, a new one starts.
  Append(log, Lines("a", 6, 6));
  ASSERT_EQ(rename(log.c_str(), (log + ".1").c_str()), 0);
  Append(log, Lines("b", 1, 2));

  Checkpoint cp;
  ASSERT_EQ(LoadCheckpoint(cpf, &cp, &err), LoadResult::kOk) << err;
  LogFollower f(log, Fast());
  ASSERT_TRUE(f.Open(&cp, &err)) << err;
  EXPECT_EQ(f.open_note(), OpenNote::kResumedRotated) << f.open_message();
  std::vector<std::string> all = Collect(f, 5);
  Append(log, Lines("b", 3, 3));
  all = Cat(all, Collect(f, 1));
  all = Cat(all, Drain(f, milliseconds(100)));
  EXPECT_EQ(all, Cat(Names("a", 4, 6), Names("b", 1, 3)));
}

TEST(LogFollowerTest, RestartWhenRotatedFileIsGoneStartsNewFile) {
  TempDir dir;
  const std::string log = dir.File("mainlog");
  Append(log, Lines("a", 1, 3));
  std::string err;
  Checkpoint cp;
  {
    LogFollower f(log, Fast());
    ASSERT_TRUE(f.Open(nullptr, &err)) << err;
    Collect(f, 3);
    cp = f.checkpoint();
  }
  ASSERT_EQ(rename(log.c_str(), (log + ".2.gz").c_str()), 0);  // not a candidate
  Append(log, Lines("b", 1, 2));
  LogFollower f(log, Fast());
  ASSERT_TRUE(f.Open(&cp, &err)) << err;
  EXPECT_EQ(f.open_note(), OpenNote::kRotatedNotFound);
  EXPECT_FALSE(f.open_message().empty());
  EXPECT_EQ(Collect(f, 2), Names("b", 1, 2));
}

TEST(LogFollowerTest, RestartAfterTruncateOrReplaceStartsAtZero) {
  TempDir dir;
  const std::string log = dir.File("mainlog");
  Append(log, Lines("a", 1, 3));
  std::string err;
  Checkpoint cp;
  {
    LogFollower f(log, Fast());
    ASSERT_TRUE(f.Open(nullptr, &err)) << err;
    Collect(f, 3);
    cp = f.checkpoint();
  }
  // Same inode, shorter: copytruncate while stopped.
  ASSERT_EQ(truncate(log.c_str(), 0), 0);
  Append(log, "x\n");
  {
    LogFollower f(log, Fast());
    ASSERT_TRUE(f.Open(&cp, &err)) << err;
    EXPECT_EQ(f.open_note(), OpenNote::kTruncated);
    EXPECT_EQ(Collect(f, 1), (std::vector<std::string>{"x"}));
  }
  // Same inode, long enough, other content: replaced in place.
  ASSERT_EQ(truncate(log.c_str(), 0), 0);
  Append(log, Lines("other", 1, 3));
  LogFollower f(log, Fast());
  ASSERT_TRUE(f.Open(&cp, &err)) << err;
  EXPECT_EQ(f.open_note(), OpenNote::kReplaced);
  EXPECT_FALSE(f.open_message().empty());
  EXPECT_EQ(Collect(f, 3), Names("other", 1, 3));
}

TEST(LogFollowerTest, CheckpointFileRoundTripIsAtomic) {
  TempDir dir;
  const std::string cpf = dir.File("checkpoint");
  std::string err;
  Checkpoint got;
  EXPECT_EQ(LoadCheckpoint(cpf, &got, &err), LoadResult::kMissing);

  const Checkpoint a{2049, 1234567, 987654321, 0xfedcba9876543210ULL};
  ASSERT_TRUE(SaveCheckpoint(cpf, a, &err)) << err;
  ASSERT_EQ(LoadCheckpoint(cpf, &got, &err), LoadResult::kOk) << err;
  EXPECT_EQ(got, a);
  EXPECT_EQ(FormatCheckpoint(a),
            "eximguard-checkpoint 1 dev=2049 ino=1234567 offset=987654321 hash=fedcba9876543210\n");

  const Checkpoint b{1, 2, 3, 4};
  ASSERT_TRUE(SaveCheckpoint(cpf, b, &err)) << err;
  ASSERT_EQ(LoadCheckpoint(cpf, &got, &err), LoadResult::kOk) << err;
  EXPECT_EQ(got, b);
  // Only the checkpoint itself is left: no temporary file.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1u);
  struct stat st;
  ASSERT_EQ(stat(cpf.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  Checkpoint parsed;
  EXPECT_TRUE(ParseCheckpoint(FormatCheckpoint(a), &parsed, &err));
  EXPECT_EQ(parsed, a);
  EXPECT_FALSE(SaveCheckpoint(dir.File("no/such/dir/cp"), a, &err));
  EXPECT_NE(err.find("no/such/dir"), std::string::npos) << err;
}

TEST(LogFollowerTest, GarbageCheckpointClearErrorThenStartPolicy) {
  TempDir dir;
  const std::string cpf = dir.File("checkpoint");
  std::string err;
  Checkpoint cp;
  for (const std::string& bad : std::vector<std::string>{
           "hello\n", "", "eximguard-checkpoint 1 dev=1 ino=2 offset=3\n",
           "eximguard-checkpoint 1 dev=1 ino=2 offset=x hash=0000000000000000\n",
           "eximguard-checkpoint 1 dev=1 ino=2 offset=3 hash=000000000000000g\n",
           "eximguard-checkpoint 1 dev=1 ino=2 offset=3 hash=0000000000000001 more\n",
           "eximguard-checkpoint 1 dev=99999999999999999999 ino=2 offset=3 hash=0000000000000001\n",
           std::string(5000, 'z')}) {
    testing::WriteFile(cpf, bad);
    err.clear();
    EXPECT_EQ(LoadCheckpoint(cpf, &cp, &err), LoadResult::kCorrupt) << bad;
    EXPECT_NE(err.find("not a checkpoint"), std::string::npos) << err;
    EXPECT_NE(err.find(cpf), std::string::npos) << err;
  }

  // Without a usable checkpoint: a small file is read from its beginning...
  const std::string log = dir.File("mainlog");
  Append(log, Lines("a", 1, 20));
  {
    LogFollower f(log, Fast());
    ASSERT_TRUE(f.Open(nullptr, &err)) << err;
    EXPECT_EQ(f.open_note(), OpenNote::kStartedAtBeginning);
    EXPECT_EQ(Collect(f, 20), Names("a", 1, 20));
  }
  // ...a big one from the last start_backlog_bytes, at a line start.
  FollowerOptions o = Fast();
  o.start_backlog_bytes = 10;  // "a19\na20\n" is 8 bytes: starts inside "a18", skips to a19
  LogFollower f(log, o);
  ASSERT_TRUE(f.Open(nullptr, &err)) << err;
  EXPECT_EQ(f.open_note(), OpenNote::kStartedAtTail);
  std::vector<std::string> all = Collect(f, 2);
  all = Cat(all, Drain(f, milliseconds(100)));
  EXPECT_EQ(all, Names("a", 19, 20));
}

TEST(LogFollowerTest, LongLineTruncatedWithFlagAndResumable) {
  TempDir dir;
  const std::string log = dir.File("mainlog");
  FollowerOptions o = Fast();
  o.max_line_bytes = 1000;
  const std::string huge = std::string(300000, 'x') + "END";
  Append(log, "short\n" + huge + "\nafter\n");
  LogFollower f(log, o);
  std::string err;
  ASSERT_TRUE(f.Open(nullptr, &err)) << err;
  std::vector<FollowedLine> raw;
  Collect(f, 3, milliseconds(3000), &raw);
  ASSERT_EQ(raw.size(), 3u);
  EXPECT_FALSE(raw[0].truncated);
  EXPECT_TRUE(raw[1].truncated);
  EXPECT_EQ(raw[1].text, huge.substr(0, 1000));
  EXPECT_EQ(raw[1].checkpoint.last_line_hash, LineTailHash(huge));
  EXPECT_EQ(raw[2].text, "after");

  // A checkpoint just past the long line resumes (its hash is checked by a small read).
  LogFollower g(log, o);
  ASSERT_TRUE(g.Open(&raw[1].checkpoint, &err)) << err;
  EXPECT_EQ(g.open_note(), OpenNote::kResumed);
  EXPECT_EQ(Collect(g, 1), (std::vector<std::string>{"after"}));
}

TEST(LogFollowerTest, WaitsForMissingFileAndCapsLinesPerPoll) {
  TempDir dir;
  const std::string log = dir.File("mainlog");
  FollowerOptions o = Fast();
  o.max_lines_per_poll = 4;
  LogFollower f(log, o);
  std::string err;
  ASSERT_TRUE(f.Open(nullptr, &err)) << err;
  EXPECT_EQ(f.open_note(), OpenNote::kWaitingForFile);
  EXPECT_TRUE(f.Poll(milliseconds(50)).empty());
  Append(log, Lines("a", 1, 10));
  std::vector<FollowedLine> first = f.Poll(milliseconds(2000));
  EXPECT_EQ(first.size(), 4u);
  std::vector<std::string> all;
  for (auto& l : first) all.push_back(l.text);
  all = Cat(all, Collect(f, 6));
  EXPECT_EQ(all, Names("a", 1, 10));
}

}  // namespace
}  // namespace eg::sidecar
