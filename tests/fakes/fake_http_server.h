// fake_http_server.h - a small HTTP/1.1 server on 127.0.0.1 for the tests of the WHM client,
// the notifiers and the bots: it stands in for WHM, the Telegram Bot API, Slack's Web API and a
// webhook receiver, which cannot run here. Boost.Beast; plain HTTP or HTTPS.
//
// SUMMARY
//   FakeHttpServer server({.tls = true});   // makes a throw-away CA + localhost certificate
//   server.Handle([](const FakeRequest& r) {
//     if (r.path == "/json-api/suspendacct") return FakeResponse{200,
//     R"({"metadata":{"result":1}})"}; return FakeResponse{404, "{}"};
//   });
//   req.url = server.url() + "/json-api/...";  req.ca_file = server.ca_file();
//   ... server.requests() lists every request received, in order.
//
// CONTRACT
//   - Test-only (linked into test binaries, never into eximguard). Listens on an ephemeral port
//     of 127.0.0.1; one thread accepts, each connection is served on its own thread, keep-alive
//     honoured; the destructor stops and joins everything.
//   - With tls, the constructor writes ca.pem (the CA to trust), a certificate for "localhost"
//     and 127.0.0.1 signed by it, and its key into a temporary directory removed by the
//     destructor. `untrusted_ca_file()` is a second CA that did NOT sign it (for refusal tests).
//   - The handler runs on connection threads: it must be thread-safe. A response's delay_ms
//     sleeps before answering (timeout tests); close_without_answer drops the connection.
//   - requests() is a snapshot copy (mutex-guarded).

#ifndef EXIMGUARD_TESTS_FAKES_FAKE_HTTP_SERVER_H_
#define EXIMGUARD_TESTS_FAKES_FAKE_HTTP_SERVER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace eg::testing {

struct FakeRequest {
  std::string method;                          // "GET", "POST"
  std::string target;                          // path and query as sent
  std::string path;                            // target without the query
  std::map<std::string, std::string> query;    // decoded query parameters (last one wins)
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
};

struct FakeResponse {
  int status = 200;
  std::string body = "{}";
  std::string content_type = "application/json";
  int delay_ms = 0;
  bool close_without_answer = false;
};

struct FakeHttpServerOptions {
  bool tls = false;
};

class FakeHttpServer {
 public:
  explicit FakeHttpServer(FakeHttpServerOptions options = {});
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  void Handle(std::function<FakeResponse(const FakeRequest&)> handler);
  uint16_t port() const;
  std::string url() const;                // "https://127.0.0.1:PORT" or "http://127.0.0.1:PORT"
  std::string ca_file() const;            // tls only
  std::string untrusted_ca_file() const;  // tls only
  std::vector<FakeRequest> requests() const;
  void ClearRequests();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eg::testing

#endif  // EXIMGUARD_TESTS_FAKES_FAKE_HTTP_SERVER_H_
