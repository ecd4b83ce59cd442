// replay_driver.cpp - what `eximguard replay FILE` does, without the CLI around it, for
// bench/replay_bench.sh while that verb does not exist: read the file through a large buffer,
// ParseLine each line, Detectors::Feed, TakeIncidents every 4,096 lines, count the incidents.
//
//   replay_driver [--utc] [--list] FILE   prints one JSON object: lines, unknown, incidents per
//                                         rule, detector stats, seconds; --list: each incident
//                                         on stderr (rule, class, key, count, time);
//                                         --parse-only: no Feed (the parser's share)

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "detectors.h"
#include "log_line.h"

int main(int argc, char** argv) {
  using namespace eg::sidecar;
  ParseOptions options;
  const char* path = nullptr;
  bool list = false, parse_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--utc") == 0)
      options.utc = true;
    else if (std::strcmp(argv[i], "--list") == 0)
      list = true;
    else if (std::strcmp(argv[i], "--parse-only") == 0)
      parse_only = true;
    else
      path = argv[i];
  }
  if (path == nullptr) {
    std::fprintf(stderr, "usage: %s [--utc] [--list] [--parse-only] FILE\n", argv[0]);
    return 2;
  }
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::perror(path);
    return 1;
  }
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

  const auto start = std::chrono::steady_clock::now();
  Detectors detectors;
  LogEvent event;
  std::map<std::string, uint64_t> by_rule;
  uint64_t lines = 0, unknown = 0, incidents = 0;
  const auto take = [&] {
    for (const Incident& i : detectors.TakeIncidents()) {
      ++by_rule[i.rule];
      ++incidents;
      if (list)
        std::fprintf(stderr, "%s %s %s %llu %lld\n", i.rule.c_str(), i.key_class.c_str(),
                     i.key.c_str(), static_cast<unsigned long long>(i.count),
                     static_cast<long long>(i.time));
    }
  };
  const auto one = [&](std::string_view line) {
    ParseLine(line, &event, options);
    if (event.counted_as_unknown) ++unknown;
    if (!parse_only) detectors.Feed(event, line);
    if (++lines % 4096 == 0) take();
  };

  constexpr size_t kBuf = 4 << 20;
  std::vector<char> buf(kBuf);
  size_t have = 0;  // bytes of an unfinished line at the start of buf
  for (;;) {
    const ssize_t n = read(fd, buf.data() + have, buf.size() - have);
    if (n < 0) {
      std::perror("read");
      return 1;
    }
    if (n == 0) break;
    const char* p = buf.data();
    const char* end = buf.data() + have + static_cast<size_t>(n);
    for (;;) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      if (nl == nullptr) break;
      one(std::string_view(p, static_cast<size_t>(nl - p)));
      p = nl + 1;
    }
    have = static_cast<size_t>(end - p);
    if (have == buf.size()) {  // one line longer than the buffer: take it as it is
      one(std::string_view(buf.data(), have));
      have = 0;
    } else if (have != 0) {
      std::memmove(buf.data(), p, have);
    }
  }
  if (have != 0) one(std::string_view(buf.data(), have));
  take();
  close(fd);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const DetectorStats s = detectors.Stats();
  std::printf("{\"lines\":%llu,\"unknown\":%llu,\"incidents\":%llu,\"by_rule\":{",
              static_cast<unsigned long long>(lines), static_cast<unsigned long long>(unknown),
              static_cast<unsigned long long>(incidents));
  bool first = true;
  for (const auto& [rule, n] : by_rule) {
    std::printf("%s\"%s\":%llu", first ? "" : ",", rule.c_str(),
                static_cast<unsigned long long>(n));
    first = false;
  }
  std::printf(
      "},\"events\":%llu,\"evictions\":%llu,\"accounts\":%zu,\"cwds\":%zu,\"uids\":%zu,"
      "\"ips\":%zu,\"subjects\":%zu,\"messages\":%zu,\"seconds\":%.4f}\n",
      static_cast<unsigned long long>(s.events), static_cast<unsigned long long>(s.evictions),
      s.accounts, s.cwds, s.uids, s.ips, s.subjects, s.messages, secs);
  return 0;
}
