// gen_mainlog.cpp - writes a synthetic, deterministic Exim 4.96 main log for the replay
// benchmark (bench/replay_bench.sh): N lines (default 1,000,000) of a day of a shared hosting
// server with A accounts (default 5,000), in time order.
//
//   gen_mainlog [-n LINES] [-a ACCOUNTS] [-s SEED] [-o FILE]     (stdout without -o)
//
// What is in it (log_selector +pid +arguments +subject +received_recipients, as on cPanel):
//   - SMTP AUTH submissions: "<= user@dom H=(helo) [ip]:port P=esmtpsa X=... A=dovecot_login:
//     user@dom S= id= T="..." for a b c" (mostly 1-3 recipients, a few 4-8, one in 5,000 to
//     50-500), then per recipient "=>" (first of a domain) or "->" (same connection), some "**"
//     (then Exim's own "<= <> R=id U=mailnull P=local" bounce message to the sender), some "=="
//     deferrals delivered 15-30 minutes later, and "Completed" once every recipient is done;
//   - inbound mail from the internet to the accounts (P=esmtps, no A=, tens of thousands of
//     distinct senders) delivered locally;
//   - local submissions by PHP scripts: "[pid] cwd=/home/user/public_html 3 args: ..." followed
//     by "[pid] id <= user@host U=user P=local ...";
//   - "rejected RCPT" lines and "dovecot_login authenticator failed" lines;
//   - abuse: a compromised account (10:00-10:40: logins from 12 IPs, one subject, many bounces),
//     a spamming script (03:00-03:20, cwd=.../wp-content/uploads) and a password-guessing IP
//     (all day), so the detectors' incidents fire.
// Timestamps run from 2026-11-22 00:00:00 over ~24 hours, never backwards. The same arguments
// always give the same bytes.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr int64_t kStart = 1795305600;  // 2026-11-22 00:00:00 (formatted as given, no zone)
constexpr int64_t kSpan = 86000;

struct Pending {
  int64_t time;
  uint64_t seq;
  std::string text;  // the line after the timestamp
  bool operator>(const Pending& o) const { return time != o.time ? time > o.time : seq > o.seq; }
};

class Gen {
 public:
  Gen(uint64_t lines, int accounts, uint64_t seed, FILE* out)
      : target_(lines), accounts_(accounts), rng_(seed), out_(out) {
    buf_.reserve(1 << 20);
  }

  void Run() {
    while (written_ < target_) {
      // The clock follows the share of lines written, so the day is covered evenly.
      now_ =
          kStart + static_cast<int64_t>(static_cast<double>(kSpan) * static_cast<double>(written_) /
                                        static_cast<double>(target_));
      if (now_ < last_clock_) now_ = last_clock_;
      last_clock_ = now_;
      Flush(now_);
      OneStep();
    }
    Flush(INT64_MAX);
    std::fwrite(buf_.data(), 1, buf_.size(), out_);
  }

 private:
  // ---- random helpers ----
  uint64_t U(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  bool P(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  // Accounts are skewed: a few send a lot, most little (a rough Zipf via a squared uniform).
  int Account() {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng_);
    return static_cast<int>(u * u * accounts_) % accounts_;
  }
  std::string Domain(int account) const { return "dom" + std::to_string(account / 5) + ".example"; }
  std::string Address(int account) const {
    static const char* kNames[] = {"info", "sales", "john", "mary", "office"};
    return std::string(kNames[account % 5]) + std::to_string(account) + "@" + Domain(account);
  }
  std::string CpUser(int account) const { return "cpuser" + std::to_string(account / 5); }
  std::string Ip(uint32_t n) const {
    return std::to_string(11 + (n >> 16) % 200) + "." + std::to_string((n >> 8) & 255) + "." +
           std::to_string(n & 255) + "." + std::to_string(1 + n % 250);
  }
  std::string External() {
    static const char* kDomains[] = {"gmail.com",   "yahoo.com", "hotmail.com", "outlook.com",
                                     "aol.com",     "gmx.de",    "mail.ru",     "example.org",
                                     "example.net", "icloud.com"};
    const uint64_t who = U(200000);
    return "user" + std::to_string(who) + "@" + kDomains[who % 10];
  }
  std::string MessageId() {
    static const char kB62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    uint64_t a = static_cast<uint64_t>(now_), b = ++messages_;
    char id[17];
    for (int i = 5; i >= 0; --i, a /= 62) id[i] = kB62[a % 62];
    id[6] = '-';
    for (int i = 12; i >= 7; --i, b /= 62) id[i] = kB62[b % 62];
    id[13] = '-';
    id[14] = kB62[U(62)];
    id[15] = kB62[U(62)];
    id[16] = 0;
    return id;
  }
  uint32_t Pid() { return static_cast<uint32_t>(1000 + U(4000000)); }
  std::string Subject() {
    static const char* kSubjects[] = {"Re: meeting tomorrow",
                                      "Invoice 2026-11",
                                      "Fw: photos",
                                      "Quote request",
                                      "Re: Re: contract",
                                      "Weekly report",
                                      "Order confirmation",
                                      "Hello",
                                      "Question about \\\"pricing\\\"",
                                      "Lunch?",
                                      "Re: your application",
                                      "Newsletter"};
    std::string s = kSubjects[U(12)];
    if (P(0.5)) s += " #" + std::to_string(U(100000));
    return s;
  }

  // ---- output ----
  void At(int64_t t, std::string text) { heap_.push(Pending{t, seq_++, std::move(text)}); }
  void Flush(int64_t upto) {
    while (!heap_.empty() && heap_.top().time <= upto && written_ < target_) {
      const Pending& p = heap_.top();
      const int64_t t = std::max(p.time, last_written_);
      last_written_ = t;
      Stamp(t);
      buf_ += stamp_;
      buf_ += ' ';
      buf_ += p.text;
      buf_ += '\n';
      ++written_;
      heap_.pop();
      if (buf_.size() > (1 << 20) - 4096) {
        std::fwrite(buf_.data(), 1, buf_.size(), out_);
        buf_.clear();
      }
    }
    if (written_ >= target_)
      while (!heap_.empty()) heap_.pop();
  }
  void Stamp(int64_t t) {
    if (t == stamp_time_) return;
    stamp_time_ = t;
    const time_t tt = static_cast<time_t>(t);
    tm tm{};
    gmtime_r(&tt, &tm);
    char s[32];
    std::strftime(s, sizeof s, "%Y-%m-%d %H:%M:%S", &tm);
    stamp_ = s;
  }
  static uint32_t Fnv(std::string_view s) {  // not std::hash: the same bytes everywhere
    uint32_t h = 2166136261u;
    for (unsigned char c : s) h = (h ^ c) * 16777619u;
    return h;
  }
  std::string Pfx(uint32_t pid) { return "[" + std::to_string(pid) + "] "; }

  // ---- one message: arrival, deliveries, completion ----
  struct Msg {
    std::string sender;    // envelope sender ("" = <>)
    std::string auth_id;   // A=, "" if none
    std::string helo, ip;  // SMTP only
    std::string proto;     // esmtpsa, esmtps, local
    std::string user;      // U= (local)
    std::string subject;
    std::string ref;  // R= of a bounce message
    std::vector<std::string> rcpts;
    bool inbound = false;       // to local mailboxes
    double bounce_p = 0.015;    // per external recipient
    bool notify_sender = true;  // a "**" produces Exim's bounce message to the sender
  };

  void Send(const Msg& m, int64_t t, uint32_t pid) {
    const std::string id = MessageId();
    std::string line = Pfx(pid) + id + " <= " + (m.sender.empty() ? "<>" : m.sender);
    if (!m.ref.empty()) line += " R=" + m.ref;
    if (!m.user.empty()) line += " U=" + m.user;
    if (!m.ip.empty())
      line += " H=(" + m.helo + ") [" + m.ip + "]:" + std::to_string(1024 + U(60000));
    line += " P=" + m.proto;
    if (m.proto != "local") line += " X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no";
    if (!m.auth_id.empty()) line += " A=dovecot_login:" + m.auth_id;
    line += " S=" + std::to_string(800 + U(40000));
    if (m.proto != "local") line += " id=" + std::to_string(U(1u << 30)) + "@" + m.helo;
    line += " T=\"" + m.subject + "\" for";
    for (const std::string& r : m.rcpts) line += " " + r;
    At(t, std::move(line));

    // Deliveries: a few seconds later, one "=>" per domain then "->" on the same connection.
    int64_t done = t;
    const uint32_t dpid = Pid();
    std::string last_domain;
    const int64_t dt = t + 1 + static_cast<int64_t>(U(3));
    for (const std::string& r : m.rcpts) {
      const std::string dom = r.substr(r.find('@') + 1);
      std::string d = Pfx(dpid) + id + " ";
      if (m.inbound) {
        At(dt, d + "=> " + r + " R=virtual_user T=virtual_userdelivery");
        done = std::max(done, dt);
        continue;
      }
      const std::string host = "mx" + std::to_string(dom.size() % 5) + "." + dom;
      const std::string hip = Ip(Fnv(dom));
      if (P(m.bounce_p)) {
        At(dt, d + "** " + r + " R=dnslookup T=remote_smtp H=" + host + " [" + hip +
                   "]: SMTP error from remote mail server after RCPT TO:<" + r + ">: 550 5.1.1 <" +
                   r + ">: Recipient address rejected: User unknown");
        if (m.notify_sender && !m.sender.empty()) bounces_.push_back({m.sender, id, dt + 1});
        done = std::max(done, dt);
      } else if (P(0.03)) {
        At(dt, d + "== " + r + " R=dnslookup T=remote_smtp defer (-44) H=" + host + " [" + hip +
                   "]: SMTP error from remote mail server after RCPT TO:<" + r +
                   ">: 451 4.7.1 Greylisted, please try again later");
        const int64_t later = dt + 900 + static_cast<int64_t>(U(900));
        At(later, Pfx(Pid()) + id + " => " + r + " R=dnslookup T=remote_smtp H=" + host + " [" +
                      hip + "] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes C=\"250 2.0.0 Ok\"");
        done = std::max(done, later);
      } else {
        const bool same = dom == last_domain;
        At(dt, d + (same ? "-> " : "=> ") + r + " R=dnslookup T=remote_smtp H=" + host + " [" +
                   hip + "]" + (same ? "*" : "") +
                   " X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes C=\"250 2.0.0 Ok: queued as " +
                   std::to_string(U(1u << 30)) + "\"");
        done = std::max(done, dt);
      }
      last_domain = dom;
    }
    At(done, Pfx(done == t ? dpid : Pid()) + id + " Completed");
  }

  void SmtpSubmission(int a) {
    Msg m;
    m.sender = m.auth_id = Address(a);
    m.helo = "pc" + std::to_string(a);
    m.ip = Ip(static_cast<uint32_t>(a * 7919 + 17));
    m.proto = "esmtpsa";
    m.subject = Subject();
    size_t n = 1;
    const double r = std::uniform_real_distribution<double>(0, 1)(rng_);
    if (r < 0.0002)
      n = 50 + U(451);
    else if (r < 0.03)
      n = 4 + U(5);
    else if (r < 0.12)
      n = 3;
    else if (r < 0.30)
      n = 2;
    for (size_t i = 0; i < n; ++i) m.rcpts.push_back(P(0.2) ? Address(Account()) : External());
    Send(m, now_, Pid());
  }

  void Inbound() {
    Msg m;
    const std::string from = External();
    m.sender = from;
    m.helo = "mail." + from.substr(from.find('@') + 1);
    m.ip = Ip(static_cast<uint32_t>(U(1u << 24)));
    m.proto = "esmtps";
    m.subject = Subject();
    m.inbound = true;
    m.rcpts.push_back(Address(Account()));
    if (P(0.1)) m.rcpts.push_back(Address(Account()));
    Send(m, now_, Pid());
  }

  void LocalSubmission(int a, const std::string& cwd, const std::string& subject, size_t rcpts) {
    const uint32_t pid = Pid();
    At(now_, Pfx(pid) + "cwd=" + cwd + " 3 args: /usr/sbin/sendmail -t -i");
    Msg m;
    m.user = CpUser(a);
    m.sender = m.user + "@server.example";
    m.proto = "local";
    m.subject = subject;
    for (size_t i = 0; i < rcpts; ++i) m.rcpts.push_back(External());
    Send(m, now_, pid);
  }

  void BounceMessages() {
    while (!bounces_.empty()) {
      const BounceTo b = bounces_.back();
      bounces_.pop_back();
      Msg m;
      m.ref = b.ref;
      m.user = "mailnull";
      m.proto = "local";
      m.subject = "Mail delivery failed: returning message to sender";
      m.inbound = true;
      m.rcpts.push_back(b.to);
      const int64_t keep = now_;
      now_ = std::max(now_, b.time);
      Send(m, now_, Pid());
      now_ = keep;
    }
  }

  void OneStep() {
    const int64_t sod = now_ - kStart;  // second of the day
    // A compromised account, 10:00-10:40: logins from many IPs, one subject, bad lists.
    if (sod >= 36000 && sod < 38400 && P(0.6)) {
      Msg m;
      m.sender = m.auth_id = Address(4242 % accounts_);
      m.helo = "User";
      m.ip = Ip(0x5b000000u + static_cast<uint32_t>(U(12)) * 977);
      m.proto = "esmtpsa";
      m.subject = "Your account has been suspended - verify now";
      m.bounce_p = 0.6;
      m.notify_sender = false;
      const size_t n = 1 + U(3);
      for (size_t i = 0; i < n; ++i) m.rcpts.push_back(External());
      Send(m, now_, Pid());
    }
    // A spamming PHP script, 03:00-03:20.
    if (sod >= 10800 && sod < 12000 && P(0.5)) {
      const int a = 777 % accounts_;
      LocalSubmission(a, "/home/" + CpUser(a) + "/public_html/wp-content/uploads/2026/11",
                      "Cheap meds " + std::to_string(U(10)), 1 + U(2));
    }
    // Password guessing from one IP all day, and everyone's typos.
    if (P(0.004) || (P(0.003))) {
      const bool guess = P(0.5);
      const std::string ip = guess ? std::string("185.143.75.81") : Ip(U(1u << 24));
      At(now_, "dovecot_login authenticator failed for (User) [" + ip +
                   "]:" + std::to_string(1024 + U(60000)) +
                   ": 535 Incorrect authentication data (set_id=" + Address(Account()) + ")");
    }
    if (P(0.012)) {
      At(now_, "H=(" + std::string(P(0.5) ? "User" : "ylmf-pc") + ") [" + Ip(U(1u << 24)) +
                   "]:" + std::to_string(1024 + U(60000)) + " F=<" + External() +
                   "> rejected RCPT <" + External() + ">: relay not permitted");
    }
    const double r = std::uniform_real_distribution<double>(0, 1)(rng_);
    if (r < 0.45) {
      SmtpSubmission(Account());
    } else if (r < 0.85) {
      Inbound();
    } else {
      const int a = Account();
      LocalSubmission(a, "/home/" + CpUser(a) + (P(0.5) ? "/public_html" : "/public_html/contact"),
                      "Contact form: " + std::to_string(U(1000)), P(0.9) ? 1 : 2);
    }
    BounceMessages();
  }

  struct BounceTo {
    std::string to, ref;
    int64_t time;
  };

  uint64_t target_;
  int accounts_;
  std::mt19937_64 rng_;
  FILE* out_;
  std::string buf_, stamp_;
  int64_t stamp_time_ = -1;
  int64_t now_ = kStart, last_clock_ = kStart, last_written_ = kStart;
  uint64_t written_ = 0, seq_ = 0, messages_ = 0;
  std::priority_queue<Pending, std::vector<Pending>, std::greater<Pending>> heap_;
  std::vector<BounceTo> bounces_;
};

}  // namespace

int main(int argc, char** argv) {
  uint64_t lines = 1000000, seed = 42;
  int accounts = 5000;
  const char* path = nullptr;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 < argc && a == "-n") {
      lines = std::strtoull(argv[++i], nullptr, 10);
    } else if (i + 1 < argc && a == "-a") {
      accounts = std::atoi(argv[++i]);
    } else if (i + 1 < argc && a == "-s") {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (i + 1 < argc && a == "-o") {
      path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [-n LINES] [-a ACCOUNTS] [-s SEED] [-o FILE]\n", argv[0]);
      return 2;
    }
  }
  if (accounts < 1 || lines == 0) {
    std::fprintf(stderr, "gen_mainlog: LINES and ACCOUNTS must be positive\n");
    return 2;
  }
  FILE* out = path ? std::fopen(path, "w") : stdout;
  if (out == nullptr) {
    std::perror(path);
    return 1;
  }
  Gen(lines, accounts, seed, out).Run();
  if (std::fclose(out) != 0) {
    std::perror("gen_mainlog");
    return 1;
  }
  return 0;
}
