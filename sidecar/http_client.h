// http_client.h - one HTTPS request, synchronously, through libcurl: the only way the sidecar
// talks to WHM, Telegram, Slack and webhooks.
//
// SUMMARY
//   HttpRequest req;
//   req.url = "https://127.0.0.1:2087/json-api/suspendacct?api.version=1&user=bob";
//   req.headers = {"Authorization: whm root:TOKEN"};
//   HttpResponse r = HttpSend(req);
//   if (!r.error.empty()) ... transport failure (no answer, TLS refused, timeout)
//   else r.status, r.body
//
// CONTRACT
//   - Callers: the WHM client, the notifiers, the bots; any thread. Each call uses its own curl
//     handle; curl_global_init runs once (std::call_once) on first use.
//   - TLS is verified (peer and host name) unless verify_tls is false. ca_file, when set, is the
//     PEM bundle trusted instead of the system's. Only http:// and https:// URLs are followed;
//     redirects are not followed.
//   - The answer body is capped at max_body bytes; a longer one is an error.
//   - SECURITY: request URLs (a Telegram token is part of its path) and headers (the WHM token)
//     are secrets. `error` never contains the URL, its query or any header: it is curl's
//     reason ("Connection refused", "SSL certificate problem: self-signed certificate", "timed
//     out after 10000 ms"). Nothing here logs.
//   - Never throws but std::bad_alloc.

#ifndef EXIMGUARD_SIDECAR_HTTP_CLIENT_H_
#define EXIMGUARD_SIDECAR_HTTP_CLIENT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace eg::sidecar {

struct HttpRequest {
  std::string method = "GET";        // "GET" or "POST"
  std::string url;                   // http:// or https://
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // POST body (send the Content-Type header yourself)
  uint32_t timeout_ms = 10000;       // whole request
  uint32_t connect_timeout_ms = 5000;
  std::string ca_file;     // PEM to trust instead of the system store; "" = the system's
  bool verify_tls = true;  // false only when the admin opted out explicitly
  // The proxy to use ("" = none: the environment's http_proxy, https_proxy and all_proxy are
  // ignored, CURLOPT_PROXY is ""). Only the config's http_proxy goes here.
  std::string proxy;
  size_t max_body = 8u << 20;
  // When set and it becomes true, the transfer is abandoned within about a second (curl's
  // progress callback): a long poll need not run out when its owner stops.
  const std::atomic<bool>* cancel = nullptr;
};

struct HttpResponse {
  long status = 0;         // the HTTP status; 0 when no answer came
  std::string body;        // the answer's body
  std::string error;       // "" = an HTTP answer came (whatever its status); else why not
  bool timed_out = false;  // the error was a timeout (worth retrying)
};

HttpResponse HttpSend(const HttpRequest& request);

// Percent-encodes a query-string value (RFC 3986 unreserved characters stay).
std::string UrlEncode(const std::string& value);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_HTTP_CLIENT_H_
