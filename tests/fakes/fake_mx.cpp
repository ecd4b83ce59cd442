// fake_mx.cpp - see fake_mx.h.

#include "fake_mx.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace eg::fakes {
namespace {

bool WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// The address inside "<...>" of a MAIL/RCPT argument, else the argument as it is.
std::string AddressOf(const std::string& arg) {
  const size_t lt = arg.find('<'), gt = arg.find('>');
  if (lt != std::string::npos && gt != std::string::npos && gt > lt)
    return arg.substr(lt + 1, gt - lt - 1);
  return arg;
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  return s;
}

}  // namespace

FakeMx::FakeMx() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("fake MX: socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("fake MX: cannot listen on 127.0.0.1");
  }
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

FakeMx::~FakeMx() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

std::vector<std::string> FakeMx::accepted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return accepted_;
}

std::vector<std::string> FakeMx::refused() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refused_;
}

void FakeMx::Serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    Session(fd);
    ::close(fd);
  }
}

void FakeMx::Session(int fd) {
  if (!WriteAll(fd, "220 fake-mx.example ESMTP\r\n")) return;
  std::string buf;
  bool data = false;
  char chunk[4096];
  while (!stop_) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return;
    buf.append(chunk, static_cast<size_t>(n));
    size_t eol;
    while ((eol = buf.find("\r\n")) != std::string::npos) {
      const std::string line = buf.substr(0, eol);
      buf.erase(0, eol + 2);
      if (data) {
        if (line == ".") {
          data = false;
          if (!WriteAll(fd, "250 OK queued\r\n")) return;
        }
        continue;
      }
      const std::string verb = Upper(line.substr(0, 4));
      std::string reply = "500 5.5.1 unknown command\r\n";
      if (verb == "EHLO" || verb == "HELO") {
        reply = "250 fake-mx.example\r\n";
      } else if (verb == "MAIL" || verb == "RSET" || verb == "NOOP") {
        reply = "250 OK\r\n";
      } else if (verb == "RCPT") {
        const std::string address = AddressOf(line.size() > 8 ? line.substr(8) : "");
        const bool bad = address.rfind("bad", 0) == 0;
        {
          std::lock_guard<std::mutex> lock(mu_);
          (bad ? refused_ : accepted_).push_back(address);
        }
        reply = bad ? "550 5.1.1 no such user here\r\n" : "250 OK\r\n";
      } else if (verb == "DATA") {
        data = true;
        reply = "354 go ahead\r\n";
      } else if (verb == "QUIT") {
        WriteAll(fd, "221 bye\r\n");
        return;
      }
      if (!WriteAll(fd, reply)) return;
    }
  }
}

}  // namespace eg::fakes
