// fake_slack.h - a fake Slack for the Slack bot's tests: the two Web API methods the bot calls
// and a Socket Mode WebSocket server the test drives.
//
// SUMMARY
//   FakeSlack slack;                                  // HTTPS API + wss:// socket on 127.0.0.1
//   settings.api_url = slack.api_url();  settings.ca_file = slack.ca_file();
//   settings.app_token = slack.app_token();  settings.bot_token = slack.bot_token();
//   ... start the bot, wait for slack.sockets_open() == 1 ...
//   slack.Send(FakeSlack::SlashCommand("E1", "U1", "C1", "status"));
//   ... slack.acks() == {"E1"}, slack.posts()[0].text ...
//
//   POST {api_url}/apps.connections.open  `Authorization: Bearer <app_token>` ->
//     {"ok":true,"url":"wss://127.0.0.1:PORT/link/?ticket=N&app_id=A0FAKE"}; another token ->
//     {"ok":false,"error":"invalid_auth"} (HTTP 200, as Slack does).
//   POST {api_url}/chat.postMessage  `Authorization: Bearer <bot_token>`, JSON {channel, text}
//     -> recorded in posts(), {"ok":true,...}; another token -> invalid_auth; no channel ->
//     channel_not_found.
//   The socket: TLS with a certificate for 127.0.0.1/localhost (MakeTestCerts), then a
//   WebSocket on /link/; a ticket that apps.connections.open did not hand out is refused (HTTP
//   403). It sends {"type":"hello",...} first, then whatever the test Send()s; it records every
//   text frame received and the envelope_id of each ack.
//
// CONTRACT
//   - Test-only (the eg_fakes library). The Web API is a FakeHttpServer; the socket server runs
//     on one io_context thread of its own. The destructor stops and joins everything and
//     removes its temporary directory.
//   - ca_file() trusts both the API's and the socket's certificates; untrusted_ca_file() trusts
//     neither. With https_api false the API is plain http:// (so a refused socket certificate
//     can be tested on its own).
//   - Send/SendDisconnect/DropConnection act on the newest open socket and return false when
//     none is open. All accessors are thread-safe snapshots.

#ifndef EXIMGUARD_TESTS_FAKES_FAKE_SLACK_H_
#define EXIMGUARD_TESTS_FAKES_FAKE_SLACK_H_

#include <memory>
#include <string>
#include <vector>

namespace eg::testing {

struct FakeSlackOptions {
  bool https_api = true;   // false: the Web API is http:// (the socket stays wss://)
  bool tls_socket = true;  // false: ws://
  bool send_hello = true;
  bool read_frames = true;  // false: never reads, so never answers a ping (a dead link)
};

struct FakeSlackPost {
  std::string channel;
  std::string text;
};

class FakeSlack {
 public:
  explicit FakeSlack(FakeSlackOptions options = {});
  ~FakeSlack();
  FakeSlack(const FakeSlack&) = delete;
  FakeSlack& operator=(const FakeSlack&) = delete;

  std::string api_url() const;  // "https://127.0.0.1:PORT/api"
  std::string ca_file() const;
  std::string untrusted_ca_file() const;
  std::string app_token() const { return "xapp-1-A0FAKE-secret-app-token"; }
  std::string bot_token() const { return "xoxb-1-secret-bot-token"; }

  // Sends one text frame on the newest open socket.
  bool Send(const std::string& text);
  bool SendDisconnect(const std::string& reason = "refresh_requested");
  // Closes the newest open socket's TCP connection without a WebSocket close.
  bool DropConnection();

  int open_calls() const;        // apps.connections.open requests, any token
  int open_refused() const;      // ... answered invalid_auth
  int sockets_accepted() const;  // WebSocket handshakes completed
  int sockets_open() const;
  std::vector<std::string> acks() const;            // envelope_id of each ack, in order
  std::vector<std::string> received() const;        // every text frame received
  std::vector<FakeSlackPost> posts() const;         // accepted chat.postMessage calls
  std::vector<std::string> authorizations() const;  // every Authorization header seen

  // Envelopes as Slack sends them.
  static std::string SlashCommand(const std::string& envelope_id, const std::string& user,
                                  const std::string& channel, const std::string& text,
                                  const std::string& command = "/eximguard");
  static std::string AppMention(const std::string& envelope_id, const std::string& user,
                                const std::string& channel, const std::string& text,
                                const std::string& event_id = "Ev0001");

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eg::testing

#endif  // EXIMGUARD_TESTS_FAKES_FAKE_SLACK_H_
