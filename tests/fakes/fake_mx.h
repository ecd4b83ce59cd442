// fake_mx.h - a remote mail server for the end-to-end tests of Exim's delivery events: an SMTP
// server on 127.0.0.1 that a real Exim's smtp transport delivers to.
//
// SUMMARY
//   FakeMx mx;                        // listening on 127.0.0.1:mx.port()
//   ... render the Exim config with mx.port(), run a queue ...
//   mx.accepted(), mx.refused()       // RCPT addresses answered 250 / 550, in order
//
//   It answers 220, then EHLO/HELO 250, MAIL 250, RCPT 550 5.1.1 for a local part that starts
//   with "bad" and 250 for any other, DATA 354 then 250 after the lone ".", RSET/NOOP 250,
//   QUIT 221, anything else 500. A remote MX refusing unknown users is what makes a bounce storm.
//
// CONTRACT
//   - Test-only (the eg_fakes library). One thread accepts and serves connections one at a
//     time (Exim's transport opens one at a time); the destructor stops and joins it.
//   - accepted() / refused() are snapshot copies (mutex-guarded).

#ifndef EXIMGUARD_TESTS_FAKES_FAKE_MX_H_
#define EXIMGUARD_TESTS_FAKES_FAKE_MX_H_

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace eg::fakes {

class FakeMx {
 public:
  FakeMx();
  ~FakeMx();
  FakeMx(const FakeMx&) = delete;
  FakeMx& operator=(const FakeMx&) = delete;

  int port() const { return port_; }
  std::vector<std::string> accepted() const;
  std::vector<std::string> refused() const;

 private:
  void Serve();
  void Session(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<std::string> accepted_;
  std::vector<std::string> refused_;
  std::thread thread_;
};

}  // namespace eg::fakes

#endif  // EXIMGUARD_TESTS_FAKES_FAKE_MX_H_
