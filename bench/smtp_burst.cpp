// smtp_burst.cpp - one pipelined SMTP session with many recipients, timed (bench/exim_bench.sh).
//
// SUMMARY
//   smtp_burst --port PORT [--host 127.0.0.1] [--user U] [--password P] [--rcpts N]
//              [--domain D] [--batch BYTES] [--timeout SECONDS]
//
// DESCRIPTION
//   Connects to an SMTP server and runs, over one connection:
//     EHLO, AUTH PLAIN (one round trip each, as RFC 2920 requires), MAIL FROM:<U> (waited for),
//     then N `RCPT TO:<rcptI@D>` written back to back in writes of up to BATCH bytes while the
//     same poll() loop reads the replies as they come, then RSET and QUIT.
//   The clock runs from just before the first RCPT byte is written to the moment the N-th RCPT
//   reply has been read. Nothing else (connect, EHLO, AUTH, MAIL, RSET, QUIT) is inside it.
//   Prints one line of JSON on stdout:
//     {"rcpts":N,"accepted":A,"other":O,"first_other":"451 ...","elapsed_us":T,"us_per_rcpt":T/N}
//   Exit status: 0 when every RCPT got 250 (A == N) and the session ended cleanly; 1 when the
//   server refused anything, hung up or timed out (the JSON still says how far it got, or an
//   "error" field); 2 for a usage error.
//
// LIMITS
//   Plain POSIX sockets, IPv4, no TLS. The whole session is bounded by --timeout (default 120 s).
//   Multi-line replies ("250-...", "250 ...") count once, at their last line.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string user = "bench@eximguard-bench.example";
  std::string password = "bench-secret";
  std::string domain = "remote.example";
  long rcpts = 20000;
  size_t batch = 64 * 1024;
  int timeout_s = 120;
};

[[noreturn]] void Usage(const char* why) {
  fprintf(stderr,
          "smtp_burst: %s\nusage: smtp_burst --port PORT [--host IP] [--user U] [--password P]\n"
          "                  [--rcpts N] [--domain D] [--batch BYTES] [--timeout SECONDS]\n",
          why);
  exit(2);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) Usage(("missing value for " + a).c_str());
    std::string v = argv[++i];
    char* end = nullptr;
    const long n = strtol(v.c_str(), &end, 10);
    const bool numeric = !v.empty() && *end == '\0' && n > 0;
    if (a == "--host") {
      o.host = v;
    } else if (a == "--port" && numeric && n < 65536) {
      o.port = static_cast<int>(n);
    } else if (a == "--user") {
      o.user = v;
    } else if (a == "--password") {
      o.password = v;
    } else if (a == "--domain") {
      o.domain = v;
    } else if (a == "--rcpts" && numeric) {
      o.rcpts = n;
    } else if (a == "--batch" && numeric) {
      o.batch = static_cast<size_t>(n);
    } else if (a == "--timeout" && numeric) {
      o.timeout_s = static_cast<int>(n);
    } else {
      Usage(("bad option " + a + " " + v).c_str());
    }
  }
  if (o.port == 0) Usage("--port is required");
  return o;
}

std::string Base64(const std::string& data) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8) | uint8_t(data[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += k[(v >> s) & 63];
  }
  const size_t rest = data.size() - i;
  if (rest > 0) {
    uint32_t v = uint8_t(data[i]) << 16;
    if (rest == 2) v |= uint8_t(data[i + 1]) << 8;
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += rest == 2 ? k[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c > 0x7e) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// A connected socket with a line reader; every wait is bounded by the session deadline.
class Connection {
 public:
  Connection(const Options& o, Clock::time_point deadline) : deadline_(deadline) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + strerror(errno));
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(o.port));
    if (inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1) {
      throw std::runtime_error("not an IPv4 address: " + o.host);
    }
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 &&
        errno != EINPROGRESS) {
      throw std::runtime_error(std::string("connect: ") + strerror(errno));
    }
    Wait(POLLOUT);
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) throw std::runtime_error(std::string("connect: ") + strerror(err));
  }
  ~Connection() {
    if (fd_ >= 0) close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd() const { return fd_; }

  // Waits for `events`; throws on timeout. Returns the revents.
  short Wait(short events) {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
      if (left.count() <= 0) throw std::runtime_error("timed out");
      pollfd p{fd_, events, 0};
      const int n = poll(&p, 1, static_cast<int>(left.count()));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw std::runtime_error(std::string("poll: ") + strerror(errno));
      if (n > 0) return p.revents;
    }
  }

  void SendAll(const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        Wait(POLLOUT);
      } else {
        throw std::runtime_error(std::string("send: ") + strerror(errno));
      }
    }
  }

  // Reads what is available now (after poll said so). False on EOF.
  bool Fill() {
    char buf[64 * 1024];
    for (;;) {
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
        if (static_cast<size_t>(n) < sizeof buf) return true;
      } else if (n == 0) {
        return false;
      } else if (errno == EAGAIN || errno == EINTR) {
        return true;
      } else {
        throw std::runtime_error(std::string("recv: ") + strerror(errno));
      }
    }
  }

  // The next complete line from the buffer (without CRLF), if any.
  bool NextLine(std::string* line) {
    const size_t nl = in_.find('\n', pos_);
    if (nl == std::string::npos) {
      in_.erase(0, pos_);
      pos_ = 0;
      return false;
    }
    size_t end = nl;
    if (end > pos_ && in_[end - 1] == '\r') --end;
    line->assign(in_, pos_, end - pos_);
    pos_ = nl + 1;
    return true;
  }

  // One complete reply (the last line of a multi-line one): its code and its last line.
  int ReadReply(std::string* text) {
    std::string line;
    for (;;) {
      while (NextLine(&line)) {
        if (line.size() < 3) continue;
        if (line.size() == 3 || line[3] == ' ') {
          *text = line;
          return atoi(line.substr(0, 3).c_str());
        }
      }
      Wait(POLLIN);
      if (!Fill()) throw std::runtime_error("server closed the connection");
    }
  }

 private:
  int fd_ = -1;
  Clock::time_point deadline_;
  std::string in_;
  size_t pos_ = 0;
};

struct Result {
  long accepted = 0;
  long other = 0;
  long replies = 0;
  std::string first_other;
  double elapsed_us = 0;
  std::string error;
};

void Expect(Connection& c, const std::string& command, int code) {
  if (!command.empty()) c.SendAll(command + "\r\n");
  std::string text;
  const int got = c.ReadReply(&text);
  if (got != code) {
    throw std::runtime_error((command.empty() ? std::string("banner") : command.substr(0, 4)) +
                             ": expected " + std::to_string(code) + ", got: " + text);
  }
}

// The burst: writes every RCPT while reading replies, in one poll() loop.
void Burst(Connection& c, const Options& o, Result* r) {
  std::string rcpts;
  rcpts.reserve(static_cast<size_t>(o.rcpts) * (20 + o.domain.size()));
  for (long i = 1; i <= o.rcpts; ++i) {
    rcpts += "RCPT TO:<rcpt" + std::to_string(i) + "@" + o.domain + ">\r\n";
  }
  size_t sent = 0;
  std::string line;
  const Clock::time_point start = Clock::now();
  while (r->replies < o.rcpts) {
    short events = POLLIN;
    if (sent < rcpts.size()) events |= POLLOUT;
    const short revents = c.Wait(events);
    if ((revents & POLLOUT) != 0 && sent < rcpts.size()) {
      const size_t want = std::min(o.batch, rcpts.size() - sent);
      const ssize_t n = send(c.fd(), rcpts.data() + sent, want, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        throw std::runtime_error(std::string("send: ") + strerror(errno));
      }
    }
    if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const bool open = c.Fill();
      while (r->replies < o.rcpts && c.NextLine(&line)) {
        if (line.size() < 3 || (line.size() > 3 && line[3] != ' ')) continue;
        ++r->replies;
        if (line.compare(0, 4, "250 ") == 0 || line == "250") {
          ++r->accepted;
        } else if (r->other++ == 0) {
          r->first_other = line;
        }
      }
      if (!open && r->replies < o.rcpts) throw std::runtime_error("server closed the connection");
    }
  }
  r->elapsed_us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  Result r;
  bool clean = false;
  try {
    Connection c(o, Clock::now() + std::chrono::seconds(o.timeout_s));
    Expect(c, "", 220);
    Expect(c, "EHLO bench.example", 250);
    Expect(c, "AUTH PLAIN " + Base64(std::string(1, '\0') + o.user + '\0' + o.password), 235);
    Expect(c, "MAIL FROM:<" + o.user + ">", 250);
    Burst(c, o, &r);
    Expect(c, "RSET", 250);
    Expect(c, "QUIT", 221);
    clean = true;
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  printf("{\"rcpts\":%ld,\"accepted\":%ld,\"other\":%ld,\"first_other\":\"%s\",\"elapsed_us\":%.0f,"
         "\"us_per_rcpt\":%.3f",
         o.rcpts, r.accepted, r.other, JsonEscape(r.first_other).c_str(), r.elapsed_us,
         r.elapsed_us / static_cast<double>(o.rcpts));
  if (!r.error.empty()) printf(",\"error\":\"%s\"", JsonEscape(r.error).c_str());
  printf("}\n");
  return clean && r.accepted == o.rcpts ? 0 : 1;
}
