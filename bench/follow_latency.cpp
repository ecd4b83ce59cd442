// follow_latency.cpp - how long `eximguard start` takes from "a line is appended to the mainlog"
// to "its incident is in the state store" (bench/follow_latency.sh runs it; numbers in
// bench/README.md, "Follow mode: latency and memory").
//
//   follow_latency --eximguard BIN [-n 300] [--rate 2000] [--dir DIR] [--policy-capacity 1024]
//
// Starts the real daemon on a sandbox (DIR, default a new /tmp/eg-lat-XXXXXX) with
// limits.sender.per_minute = 1. A second thread appends benign traffic (--rate lines per second
// of other senders: inbound mail to local.example, each with its "=>" and "Completed" lines,
// none of which can fire a rule) in 10 ms slices. The main thread, N times: appends one arrival
// of a NEW authenticated account with 2 external recipients (one rate_per_minute incident) with a
// single write(), takes the time just before the write, and polls the database through its own
// read-only SQLite connection every 2 ms until that account's incident is there. Then
// SIGTERM; the daemon must exit 0. Prints p50/p90/p99/max and exits 1 if p99 >= 1 s, an
// incident never came (10 s), benign traffic produced an incident, or the exit code was not 0.

#include <sqlite3.h>

#include <atomic>
#include <random>

#include "follow_latency.h"

namespace {

using egbench::Clock;

struct Options {
  std::string bin;
  std::string dir;
  int n = 300;
  int rate = 2000;
  int policy_capacity = 1024;
  bool keep = false;
};

// Benign traffic: `rate` lines/s in 10 ms slices, one write() per slice.
void Background(const std::string& path, int rate, const std::atomic<bool>* stop,
                std::atomic<uint64_t>* lines) {
  const int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return;
  uint64_t msg = 1000000;
  double owed = 0;
  Clock::time_point next = Clock::now();
  std::string buf;
  while (!stop->load()) {
    next += std::chrono::milliseconds(10);
    owed += rate / 100.0;
    buf.clear();
    const std::string now = egbench::Stamp(std::time(nullptr));
    while (owed >= 3) {  // one message = 3 lines
      owed -= 3;
      const std::string id = egbench::MessageId(++msg);
      const std::string from =
          "s" + std::to_string(msg) + "@remote" + std::to_string(msg % 97) + ".example";
      const std::string to = "box" + std::to_string(msg % 500) + "@local.example";
      buf += now + " " + id + " <= " + from + " H=mail.remote.example [203.0.113." +
             std::to_string(msg % 250 + 1) + "]:25 P=esmtps S=2048 id=" + std::to_string(msg) +
             "@remote.example T=\"newsletter " + std::to_string(msg) + "\" for " + to + "\n";
      buf += now + " " + id + " => " + to + " R=virtual_user T=virtual_userdelivery\n";
      buf += now + " " + id + " Completed\n";
      *lines += 3;
    }
    if (!buf.empty() && !egbench::WriteAll(fd, buf)) break;
    std::this_thread::sleep_until(next);
  }
  close(fd);
}

int Run(const Options& o) {
  std::string dir = o.dir;
  if (dir.empty()) {
    char tmpl[] = "/tmp/eg-lat-XXXXXX";
    if (!mkdtemp(tmpl)) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = tmpl;
  }
  egbench::Daemon d;
  std::string error;
  const std::string extra =
      "\"capacity\": 1024, \"policy_capacity\": " + std::to_string(o.policy_capacity) +
      ", \"local_domains\": [\"local.example\"], \"limits\": {\"sender\": {\"per_minute\": 1, "
      "\"per_hour\": 1000}}";
  if (!egbench::StartDaemon(o.bin, dir, extra, &d, &error)) {
    std::fprintf(stderr, "follow_latency: %s\n", error.c_str());
    return 1;
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(d.db.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "follow_latency: %s: %s\n", d.db.c_str(), sqlite3_errmsg(db));
    egbench::StopDaemon(&d);
    return 1;
  }
  sqlite3_busy_timeout(db, 1000);
  sqlite3_stmt* find = nullptr;
  sqlite3_prepare_v2(db, "SELECT 1 FROM incidents WHERE key = ?1 AND rule = 'rate_per_minute'", -1,
                     &find, nullptr);
  sqlite3_stmt* others = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM incidents WHERE key NOT LIKE 'lat%'", -1, &others,
                     nullptr);

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bg_lines{0};
  std::thread bg(Background, d.mainlog, o.rate, &stop, &bg_lines);
  std::this_thread::sleep_for(std::chrono::seconds(1));  // traffic flowing before the first probe

  const int fd = open(d.mainlog.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  std::mt19937 rng(12345);
  std::vector<double> lat;
  int missed = 0;
  const Clock::time_point began = Clock::now();
  for (int i = 0; i < o.n; ++i) {
    const std::string key = "lat" + std::to_string(i) + "@victim.example";
    const std::string line = egbench::Stamp(std::time(nullptr)) + " " +
                             egbench::MessageId(static_cast<uint64_t>(i) + 1) + " <= " + key +
                             " H=(x) [198.51.100.1]:4444 P=esmtpsa A=dovecot_login:" + key +
                             " S=1 id=z" + std::to_string(i) +
                             " T=\"hi\" for a@ext.example b@ext.example\n";
    sqlite3_bind_text(find, 1, key.c_str(), -1, SQLITE_TRANSIENT);
    const Clock::time_point t0 = Clock::now();
    if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      std::perror("follow_latency: write");
      break;
    }
    bool found = false;
    while (Clock::now() - t0 < std::chrono::seconds(10)) {
      const int rc = sqlite3_step(find);
      sqlite3_reset(find);
      if (rc == SQLITE_ROW) {
        found = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    const Clock::time_point t1 = Clock::now();
    if (found) {
      lat.push_back(egbench::Ms(t1 - t0));
    } else {
      ++missed;
    }
    // 10-40 ms apart, so the probes fall at every phase of the daemon's batches.
    std::this_thread::sleep_for(std::chrono::milliseconds(10 + rng() % 31));
  }
  const double seconds = egbench::Ms(Clock::now() - began) / 1000;
  stop = true;
  bg.join();
  close(fd);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let the last batch be handled
  int64_t benign_incidents = -1;
  if (sqlite3_step(others) == SQLITE_ROW) benign_incidents = sqlite3_column_int64(others, 0);
  sqlite3_finalize(find);
  sqlite3_finalize(others);
  sqlite3_close(db);
  const int64_t rss_kb = egbench::ProcStatusKb(d.pid, "VmHWM");
  const int code = egbench::StopDaemon(&d);
  const std::string status = egbench::ReadFile(d.status);  // written again at the stop

  std::sort(lat.begin(), lat.end());
  double mean = 0;
  for (double v : lat) mean += v;
  if (!lat.empty()) mean /= static_cast<double>(lat.size());
  std::printf(
      "follow_latency: %zu/%d incidents seen in %.1f s, background %.0f lines/s (%llu lines)\n",
      lat.size(), o.n, seconds, static_cast<double>(bg_lines.load()) / (seconds + 1),
      static_cast<unsigned long long>(bg_lines.load()));
  std::printf("latency ms: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f  mean %.1f  min %.1f\n",
              egbench::Quantile(lat, 0.5), egbench::Quantile(lat, 0.9),
              egbench::Quantile(lat, 0.99), lat.empty() ? 0 : lat.back(), mean,
              lat.empty() ? 0 : lat.front());
  std::printf(
      "daemon: lines %lld, recorded %lld, errors %lld, peak RSS %lld kB, exit code %d; "
      "incidents of benign senders: %lld; missed: %d\n",
      static_cast<long long>(egbench::JsonNumber(status, "lines")),
      static_cast<long long>(egbench::JsonNumber(status, "recorded")),
      static_cast<long long>(egbench::JsonNumber(status, "errors")), static_cast<long long>(rss_kb),
      code, static_cast<long long>(benign_incidents), missed);
  const bool ok = missed == 0 && code == 0 && benign_incidents == 0 && !lat.empty() &&
                  egbench::Quantile(lat, 0.99) < 1000;
  std::printf("%s (requirement: p99 < 1000 ms, every incident seen, exit code 0)\n",
              ok ? "PASS" : "FAIL");
  if (o.keep || !ok) {
    std::printf("sandbox kept: %s (daemon log: %s)\n", dir.c_str(), d.log.c_str());
  } else {
    const std::string rm = "rm -rf '" + dir + "'";
    if (std::system(rm.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir.c_str());
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool more = i + 1 < argc;
    if (a == "--eximguard" && more) {
      o.bin = argv[++i];
    } else if (a == "-n" && more) {
      o.n = std::atoi(argv[++i]);
    } else if (a == "--rate" && more) {
      o.rate = std::atoi(argv[++i]);
    } else if (a == "--dir" && more) {
      o.dir = argv[++i];
    } else if (a == "--policy-capacity" && more) {
      o.policy_capacity = std::atoi(argv[++i]);
    } else if (a == "--keep") {
      o.keep = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s --eximguard BIN [-n N] [--rate LINES_PER_S] [--dir DIR] "
                   "[--policy-capacity N] [--keep]\n",
                   argv[0]);
      return 2;
    }
  }
  if (o.bin.empty() || o.n <= 0 || o.rate < 0) {
    std::fprintf(stderr, "follow_latency: --eximguard BIN is required; N > 0, rate >= 0\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  return Run(o);
}
