// daemon_memory.cpp - does `eximguard start` stay flat in memory over a day of traffic?
// (bench/daemon_memory.sh runs it; numbers in bench/README.md, "Follow mode: latency and
// memory").
//
//   daemon_memory --eximguard BIN [--lines 2400000] [--accounts 50000] [--backlog 300000]
//                 [--dir DIR] [--csv FILE] [--keep]
//
// Starts the real daemon on a sandbox (default limits, so only the injected abusers fire) and
// appends a synthetic day to its mainlog: LINES lines whose timestamps advance evenly from 24 h
// ago to now (local time), in 1 MiB write()s, as fast as the daemon keeps up (the writer waits
// while more than --backlog lines are unprocessed, per status.json, which the daemon rewrites
// every 2 s). Traffic, per message:
//   45% SMTP AUTH submissions of one of ACCOUNTS accounts (uniform), 1-3 external recipients,
//       one of 5,000 subjects, "=>" per recipient (1.5% "**"), "Completed";
//   35% inbound mail from one of 400,000 internet senders to an account, "=>", "Completed";
//   15% local PHP submissions: "[pid] cwd=/home/cU/public_html[/contact] 3 args: ..." then
//       "[pid] id <= cU@server.example U=cU P=local ...", U one of ACCOUNTS/2 cPanel users;
//    5% "dovecot_login authenticator failed" from random IPs (set_id= a random account);
//   plus, every 30 minutes of log time, a spamming account (200 recipients in a minute) and a
//   spamming script (60 messages in a minute), so incidents, blocks and republishing happen.
// A sampler thread reads /proc/PID/status (VmRSS, VmHWM) every second, with status.json's
// counters; the samples go to --csv (default DIR/rss.csv). The writer goes at --rate lines/s
// (default 50,000, about half what the daemon manages here, so it never falls behind and the log
// time of a sample is that of the line just written), never more than --backlog lines ahead of
// the daemon. --days D spreads the lines over D days of log time instead of one. Prints the
// profile by 1/12 of the log time, RSS after warm-up (at 2 h of log time: idle_seconds, the
// detectors' maps are full by then), peak and end, and exits 1 if the daemon's exit code was
// not 0 or it did not process every line.

#include <atomic>
#include <mutex>
#include <random>

#include "follow_latency.h"

namespace {

using egbench::Clock;

struct Options {
  std::string bin, dir, csv;
  uint64_t lines = 2400000;
  int accounts = 50000;
  uint64_t backlog = 300000;
  uint64_t rate = 50000;  // lines/s; 0: as fast as the backlog allows
  int days = 1;
  bool keep = false;
};

struct Sample {
  double t = 0;  // seconds since the daemon started
  int64_t rss_kb = 0, hwm_kb = 0;
  int64_t lines = 0, log_time = 0, tracked = 0, evictions = 0, recorded = 0;
};

class Day {
 public:
  Day(const Options& o, int64_t start) : o_(o), start_(start), rng_(42) {}

  // Appends about `bytes` of lines to *out; false when the day is written.
  bool Next(std::string* out, size_t bytes) {
    while (out->size() < bytes && written_ < o_.lines) {
      now_ = start_ + static_cast<int64_t>(86400.0 * o_.days * static_cast<double>(written_) /
                                           static_cast<double>(o_.lines));
      if (now_ != stamp_time_) {
        stamp_time_ = now_;
        stamp_ = egbench::Stamp(now_) + " ";
      }
      if (now_ / 1800 != last_abuse_) {  // a new half hour: the abusers of this one
        last_abuse_ = now_ / 1800;
        Abusers(out);
      }
      Step(out);
    }
    return written_ < o_.lines;
  }
  uint64_t written() const { return written_; }
  int64_t now() const { return now_; }

 private:
  uint64_t U(uint64_t n) { return rng_() % n; }
  void Line(std::string* out, const std::string& text) {
    *out += stamp_;
    *out += text;
    *out += '\n';
    ++written_;
  }
  std::string Account(uint64_t a) const {
    return "u" + std::to_string(a) + "@d" + std::to_string(a / 5) + ".example";
  }
  std::string External() {
    return "r" + std::to_string(U(1000000)) + "@ext" + std::to_string(U(2000)) + ".example";
  }
  std::string Ip(uint64_t v) const {
    return std::to_string(10 + v % 200) + "." + std::to_string((v >> 8) % 256) + "." +
           std::to_string((v >> 16) % 256) + "." + std::to_string(1 + (v >> 24) % 250);
  }
  std::string Pid() { return "[" + std::to_string(1000 + U(4000000)) + "] "; }

  // One arrival plus its deliveries and Completed.
  void Message(std::string* out, const std::string& pid, const std::string& arrival_tail,
               const std::vector<std::string>& rcpts) {
    const std::string id = egbench::MessageId(++msg_);
    std::string a = pid + id + " <= " + arrival_tail + " for";
    for (const std::string& r : rcpts) a += " " + r;
    Line(out, a);
    const std::string dpid = Pid();
    for (const std::string& r : rcpts) {
      if (U(1000) < 15) {
        Line(out, dpid + id + " ** " + r + " R=dnslookup T=remote_smtp H=mx." +
                      r.substr(r.find('@') + 1) +
                      " [192.0.2.7]: SMTP error from remote mail server after RCPT TO:<" + r +
                      ">: 550 5.1.1 User unknown");
      } else {
        Line(out, dpid + id + " => " + r + " R=dnslookup T=remote_smtp H=mx." +
                      r.substr(r.find('@') + 1) +
                      " [192.0.2.8] X=TLS1.3:TLS_AES_256_GCM_SHA384:256" +
                      " CV=yes C=\"250 2.0.0 Ok\"");
      }
    }
    Line(out, dpid + id + " Completed");
  }

  std::string Smtp(uint64_t a, const std::string& subject) {
    const std::string acc = Account(a);
    return acc + " H=(pc" + std::to_string(a) + ") [" + Ip(a * 7919 + U(3)) +
           "]:" + std::to_string(1024 + U(60000)) +
           " P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no A=dovecot_login:" + acc +
           " S=" + std::to_string(800 + U(40000)) + " id=" + std::to_string(msg_) + "@pc T=\"" +
           subject + "\"";
  }

  void Local(std::string* out, uint64_t u, const std::string& cwd, const std::string& subject,
             size_t rcpts) {
    const std::string pid = Pid();
    const std::string user = "c" + std::to_string(u);
    Line(out, pid + "cwd=" + cwd + " 3 args: /usr/sbin/sendmail -t -i");
    std::vector<std::string> r;
    for (size_t i = 0; i < rcpts; ++i) r.push_back(External());
    Message(out, pid,
            user + "@server.example U=" + user + " P=local S=" + std::to_string(500 + U(5000)) +
                " T=\"" + subject + "\"",
            r);
  }

  void Abusers(std::string* out) {
    const uint64_t spammer = U(static_cast<uint64_t>(o_.accounts));
    for (int m = 0; m < 20; ++m) {
      std::vector<std::string> r;
      for (int i = 0; i < 10; ++i) r.push_back(External());
      Message(out, Pid(), Smtp(spammer, "You won " + std::to_string(U(10))), r);
    }
    const uint64_t u = U(static_cast<uint64_t>(o_.accounts / 2));
    const std::string cwd =
        "/home/c" + std::to_string(u) + "/public_html/wp-content/uploads/" + std::to_string(U(99));
    for (int m = 0; m < 60; ++m) Local(out, u, cwd, "Cheap meds " + std::to_string(U(10)), 1);
  }

  void Step(std::string* out) {
    const uint64_t r = U(100);
    const uint64_t accounts = static_cast<uint64_t>(o_.accounts);
    if (r < 45) {
      const uint64_t a = U(accounts);
      const uint64_t x = U(100);
      std::vector<std::string> rc(x < 70 ? 1 : x < 90 ? 2 : 3);
      for (std::string& s : rc) s = External();
      Message(out, Pid(), Smtp(a, "Invoice " + std::to_string(U(5000))), rc);
    } else if (r < 80) {
      const uint64_t s = U(400000);
      const std::string from =
          "s" + std::to_string(s) + "@remote" + std::to_string(s % 3000) + ".example";
      Message(out, Pid(),
              from + " H=mail.remote.example [" + Ip(s * 31) + "]:25 P=esmtps S=" +
                  std::to_string(2000 + U(90000)) + " id=" + std::to_string(msg_) +
                  "@remote T=\"Re: " + std::to_string(U(100000)) + "\"",
              {Account(U(accounts))});
    } else if (r < 95) {
      const uint64_t u = U(accounts / 2);
      Local(out, u,
            "/home/c" + std::to_string(u) + (U(2) ? "/public_html" : "/public_html/contact"),
            "Contact form: " + std::to_string(U(1000)), U(10) ? 1 : 2);
    } else {
      Line(out, "dovecot_login authenticator failed for (User) [" + Ip(U(1u << 30)) +
                    "]:" + std::to_string(1024 + U(60000)) +
                    ": 535 Incorrect authentication data (set_id=" + Account(U(accounts)) + ")");
    }
  }

  const Options& o_;
  int64_t start_;
  std::mt19937_64 rng_;
  uint64_t written_ = 0, msg_ = 0;
  int64_t now_ = 0, stamp_time_ = -1, last_abuse_ = -1;
  std::string stamp_;
};

int Run(const Options& o) {
  std::string dir = o.dir;
  if (dir.empty()) {
    char tmpl[] = "/tmp/eg-mem-XXXXXX";
    if (!mkdtemp(tmpl)) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = tmpl;
  }
  egbench::Daemon d;
  std::string error;
  if (!egbench::StartDaemon(o.bin, dir, "\"policy_capacity\": 4096", &d, &error)) {
    std::fprintf(stderr, "daemon_memory: %s\n", error.c_str());
    return 1;
  }
  const Clock::time_point t_start = Clock::now();
  std::mutex mu;
  std::vector<Sample> samples;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> daemon_lines{0};
  std::atomic<int64_t> log_now{0};  // log time of the last line written
  std::thread sampler([&] {
    Clock::time_point next = Clock::now();
    while (!stop.load()) {
      const std::string st = egbench::ReadFile(d.status);
      Sample s;
      s.t = egbench::Ms(Clock::now() - t_start) / 1000;
      s.rss_kb = egbench::ProcStatusKb(d.pid, "VmRSS");
      s.hwm_kb = egbench::ProcStatusKb(d.pid, "VmHWM");
      s.lines = egbench::JsonNumber(st, "lines");
      s.log_time = log_now.load();
      s.tracked = egbench::JsonNumber(st, "tracked_keys");
      s.evictions = egbench::JsonNumber(st, "evictions");
      s.recorded = egbench::JsonNumber(st, "recorded");
      if (s.lines >= 0) daemon_lines = s.lines;
      {
        std::lock_guard lock(mu);
        samples.push_back(s);
      }
      next += std::chrono::seconds(1);
      std::this_thread::sleep_until(next);
    }
  });

  const int64_t day_start = static_cast<int64_t>(std::time(nullptr)) - 86400 * int64_t{o.days};
  Day day(o, day_start);
  const int fd = open(d.mainlog.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  std::string buf;
  bool more = true;
  double waited = 0;
  while (more) {
    buf.clear();
    more = day.Next(&buf, size_t{1} << 18);
    if (!egbench::WriteAll(fd, buf)) {
      std::perror("daemon_memory: write");
      break;
    }
    log_now = day.now();
    if (o.rate > 0) {  // the steady rate: sleep until the lines written so far are due
      std::this_thread::sleep_until(t_start +
                                    std::chrono::microseconds(day.written() * 1000000 / o.rate));
    }
    const Clock::time_point w0 = Clock::now();
    while (day.written() > static_cast<uint64_t>(daemon_lines.load()) + o.backlog) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    waited += egbench::Ms(Clock::now() - w0) / 1000;
  }
  close(fd);
  const double write_s = egbench::Ms(Clock::now() - t_start) / 1000;
  // Until every line is processed (status.json), then 5 s idle.
  const Clock::time_point deadline = Clock::now() + std::chrono::minutes(10);
  while (static_cast<uint64_t>(daemon_lines.load()) < day.written() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double done_s = egbench::Ms(Clock::now() - t_start) / 1000;
  std::this_thread::sleep_for(std::chrono::seconds(5));
  stop = true;
  sampler.join();
  const std::string status = egbench::ReadFile(d.status);
  const int code = egbench::StopDaemon(&d);

  const std::string csv = o.csv.empty() ? dir + "/rss.csv" : o.csv;
  if (FILE* f = std::fopen(csv.c_str(), "w")) {
    std::fprintf(f, "seconds,rss_kb,hwm_kb,lines,log_hours,tracked_keys,evictions,recorded\n");
    for (const Sample& s : samples) {
      std::fprintf(f, "%.1f,%lld,%lld,%lld,%.2f,%lld,%lld,%lld\n", s.t,
                   static_cast<long long>(s.rss_kb), static_cast<long long>(s.hwm_kb),
                   static_cast<long long>(s.lines),
                   s.log_time > 0 ? static_cast<double>(s.log_time - day_start) / 3600 : 0.0,
                   static_cast<long long>(s.tracked), static_cast<long long>(s.evictions),
                   static_cast<long long>(s.recorded));
    }
    std::fclose(f);
  }

  const int64_t lines_done = egbench::JsonNumber(status, "lines");
  std::printf(
      "daemon_memory: %llu lines (%d accounts) written in %.1f s (%.1f s waiting for the "
      "daemon); all processed after %.1f s = %.0f lines/s\n",
      static_cast<unsigned long long>(day.written()), o.accounts, write_s, waited, done_s,
      static_cast<double>(day.written()) / done_s);
  std::printf(
      "daemon: lines %lld, unparsed %lld, recorded %lld, blocks %lld, errors %lld, "
      "tracked_keys %lld, evictions %lld, exit code %d\n",
      static_cast<long long>(lines_done),
      static_cast<long long>(egbench::JsonNumber(status, "unparsed")),
      static_cast<long long>(egbench::JsonNumber(status, "recorded")),
      static_cast<long long>(egbench::JsonNumber(status, "blocks")),
      static_cast<long long>(egbench::JsonNumber(status, "errors")),
      static_cast<long long>(egbench::JsonNumber(status, "tracked_keys")),
      static_cast<long long>(egbench::JsonNumber(status, "evictions")), code);
  // Profile by 1/12 of the log time (2 h for one day).
  std::printf("RSS by log time (MiB):");
  int64_t warm_kb = -1, peak_kb = 0, end_kb = 0;
  for (int h = 2 * o.days; h <= 24 * o.days; h += 2 * o.days) {
    int64_t kb = -1;  // the first sample at or after the mark (the last one for the end)
    for (const Sample& s : samples) {
      if (s.rss_kb > 0 && (kb < 0 || h == 24 * o.days) && s.log_time - day_start >= h * 3600 - 60) {
        kb = s.rss_kb;
      }
    }
    std::printf(" %dh %.1f", h, static_cast<double>(kb) / 1024);
  }
  std::printf("\n");
  for (const Sample& s : samples) {
    if (warm_kb < 0 && s.rss_kb > 0 && s.log_time - day_start >= 2 * 3600) warm_kb = s.rss_kb;
    if (s.rss_kb > 0) {
      peak_kb = std::max(peak_kb, std::max(s.rss_kb, s.hwm_kb));
      end_kb = s.rss_kb;
    }
  }
  std::printf(
      "RSS MiB: after warm-up (2 h of log) %.1f, peak %.1f, end %.1f (end - warm-up %+.1f)\n",
      static_cast<double>(warm_kb) / 1024, static_cast<double>(peak_kb) / 1024,
      static_cast<double>(end_kb) / 1024, static_cast<double>(end_kb - warm_kb) / 1024);
  std::printf("samples: %s\n", csv.c_str());
  const bool ok = code == 0 && lines_done == static_cast<int64_t>(day.written());
  if (o.keep || !ok) {
    std::printf("sandbox kept: %s\n", dir.c_str());
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
    } else if (a == "--lines" && more) {
      o.lines = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--accounts" && more) {
      o.accounts = std::atoi(argv[++i]);
    } else if (a == "--backlog" && more) {
      o.backlog = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--dir" && more) {
      o.dir = argv[++i];
    } else if (a == "--csv" && more) {
      o.csv = argv[++i];
    } else if (a == "--rate" && more) {
      o.rate = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--days" && more) {
      o.days = std::atoi(argv[++i]);
    } else if (a == "--keep") {
      o.keep = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s --eximguard BIN [--lines N] [--accounts N] [--backlog LINES] [--rate "
                   "LINES_PER_S] [--days D] "
                   "[--dir DIR] [--csv FILE] [--keep]\n",
                   argv[0]);
      return 2;
    }
  }
  if (o.bin.empty() || o.lines == 0 || o.accounts < 2 || o.days < 1) {
    std::fprintf(stderr, "daemon_memory: --eximguard BIN is required; lines > 0, accounts >= 2\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  return Run(o);
}
