// http_client.cpp - HttpSend through one libcurl easy handle per call; UrlEncode.
//
// CONTRACT: see http_client.h. Notes on how it is kept:
//   - curl_global_init(CURL_GLOBAL_DEFAULT) runs once under std::call_once; never cleaned up
//     (the process exits with it).
//   - CURLOPT_NOSIGNAL (no SIGALRM for DNS timeouts: threads), CURLOPT_PROTOCOLS_STR and
//     CURLOPT_REDIR_PROTOCOLS_STR "http,https", CURLOPT_FOLLOWLOCATION off (a 3xx is an answer),
//     "Expect:" sent empty so a large POST does not wait a second for "100 Continue".
//   - CURLOPT_PROXY is always set: request.proxy, or "" (libcurl would otherwise honour the
//     environment's http_proxy/https_proxy and send a token to whoever set them).
//   - ca_file set: CURLOPT_CAINFO = it and CURLOPT_CAPATH = NULL, so only that file is trusted.
//   - The body is collected by a write callback that refuses (and so aborts the transfer) once
//     it would pass max_body.
//   - SECURITY: `error` is curl's error buffer (else curl_easy_strerror), then Scrub() replaces
//     any occurrence of the URL, its path, its query, path segments and query values of 8+
//     characters, and header values (whole, and their space/colon-separated parts of 8+
//     characters) with kSecretMask (text_escape.h: ScrubSecrets). curl's messages do not quote them
//     today; the scrub keeps a future libcurl from leaking one.

#include "http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "text_escape.h"

namespace eg::sidecar {
namespace {

constexpr size_t kMinSecretPart = 8;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

struct Sink {
  std::string* body;
  size_t max_body;
  bool overflow = false;
};

size_t WriteBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* sink = static_cast<Sink*>(user);
  size_t n = size * nmemb;
  if (sink->body->size() + n > sink->max_body) {
    sink->overflow = true;
    return 0;  // anything but n aborts the transfer with CURLE_WRITE_ERROR
  }
  sink->body->append(data, n);
  return n;
}

void SplitInto(const std::string& text, const std::string& seps, std::vector<std::string>* out) {
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find_first_of(seps, start);
    if (end == std::string::npos) end = text.size();
    if (end - start >= kMinSecretPart) out->push_back(text.substr(start, end - start));
    start = end + 1;
  }
}

// Everything of the request that must not show in `error`.
std::vector<std::string> Secrets(const HttpRequest& request) {
  std::vector<std::string> secrets;
  const std::string& url = request.url;
  if (!url.empty()) secrets.push_back(url);
  size_t scheme = url.find("://");
  size_t host_start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t rest = url.find_first_of("/?#", host_start);
  if (rest != std::string::npos) {
    std::string tail = url.substr(rest);  // path, query, fragment
    if (tail.size() > 1) secrets.push_back(tail);
    size_t q = tail.find_first_of("?#");
    std::string path = tail.substr(0, q);
    if (path.size() > 1) secrets.push_back(path);
    SplitInto(path, "/", &secrets);
    if (q != std::string::npos) {
      std::string query = tail.substr(q + 1);
      if (!query.empty()) secrets.push_back(query);
      SplitInto(query, "&=#", &secrets);
    }
  }
  for (const std::string& header : request.headers) {
    size_t colon = header.find(':');
    if (colon == std::string::npos) continue;
    size_t v = header.find_first_not_of(" \t", colon + 1);
    if (v == std::string::npos) continue;
    std::string value = header.substr(v);
    if (value.size() >= 4) secrets.push_back(value);
    SplitInto(value, " \t:", &secrets);
  }
  return secrets;  // ScrubSecrets replaces the longest first
}

std::string Scrub(std::string text, const HttpRequest& request) {
  return ScrubSecrets(std::move(text), Secrets(request));
}

// Sets an option; the first failure is remembered (the request is then not sent).
class Options {
 public:
  explicit Options(CURL* curl) : curl_(curl) {}
  template <typename T>
  void Set(CURLoption option, T value) {
    if (code_ == CURLE_OK) code_ = curl_easy_setopt(curl_, option, value);
  }
  CURLcode code() const { return code_; }

 private:
  CURL* curl_;
  CURLcode code_ = CURLE_OK;
};

// curl's progress callback: non-zero aborts the transfer.
int Cancelled(void* flag, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(flag)->load(std::memory_order_relaxed) ? 1 : 0;
}

}  // namespace

HttpResponse HttpSend(const HttpRequest& request) {
  HttpResponse response;
  if (request.method != "GET" && request.method != "POST") {
    response.error = "unsupported HTTP method";
    return response;
  }
  GlobalInit();
  std::unique_ptr<CURL, EasyDeleter> curl(curl_easy_init());
  if (!curl) {
    response.error = "curl_easy_init failed";
    return response;
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  for (const std::string& h : request.headers) {
    curl_slist* next = curl_slist_append(headers.get(), h.c_str());
    if (next == nullptr) {
      response.error = "out of memory building the request headers";
      return response;
    }
    headers.release();
    headers.reset(next);
  }
  if (request.method == "POST") {
    curl_slist* next = curl_slist_append(headers.get(), "Expect:");
    if (next == nullptr) {
      response.error = "out of memory building the request headers";
      return response;
    }
    headers.release();
    headers.reset(next);
  }

  char errbuf[CURL_ERROR_SIZE] = {0};
  Sink sink{&response.body, request.max_body};
  Options o(curl.get());
  o.Set(CURLOPT_ERRORBUFFER, errbuf);
  o.Set(CURLOPT_URL, request.url.c_str());
  o.Set(CURLOPT_NOSIGNAL, 1L);
  o.Set(CURLOPT_PROTOCOLS_STR, "http,https");
  o.Set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  o.Set(CURLOPT_FOLLOWLOCATION, 0L);
  o.Set(CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout_ms));
  o.Set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout_ms));
  o.Set(CURLOPT_USERAGENT, "eximguard");
  o.Set(CURLOPT_PROXY, request.proxy.c_str());  // "": no proxy, whatever the environment says
  o.Set(CURLOPT_WRITEFUNCTION, &WriteBody);
  o.Set(CURLOPT_WRITEDATA, &sink);
  if (headers) o.Set(CURLOPT_HTTPHEADER, headers.get());
  if (request.method == "POST") {
    o.Set(CURLOPT_POST, 1L);
    o.Set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    o.Set(CURLOPT_POSTFIELDS, request.body.c_str());
  } else {
    o.Set(CURLOPT_HTTPGET, 1L);
  }
  if (!request.ca_file.empty()) {
    o.Set(CURLOPT_CAINFO, request.ca_file.c_str());
    o.Set(CURLOPT_CAPATH, static_cast<const char*>(nullptr));
  }
  if (request.cancel != nullptr) {
    o.Set(CURLOPT_NOPROGRESS, 0L);
    o.Set(CURLOPT_XFERINFOFUNCTION, &Cancelled);
    o.Set(CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(request.cancel));
  }
  o.Set(CURLOPT_SSL_VERIFYPEER, request.verify_tls ? 1L : 0L);
  o.Set(CURLOPT_SSL_VERIFYHOST, request.verify_tls ? 2L : 0L);

  CURLcode code = o.code();
  if (code == CURLE_OK) code = curl_easy_perform(curl.get());
  if (code != CURLE_OK) {
    if (sink.overflow) {
      response.error = "answer body larger than " + std::to_string(request.max_body) + " bytes";
    } else {
      response.error = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(code);
      while (!response.error.empty() && response.error.back() == '\n') response.error.pop_back();
      response.error = Scrub(std::move(response.error), request);
    }
    response.timed_out = code == CURLE_OPERATION_TIMEDOUT;
    response.status = 0;
    response.body.clear();
    return response;
  }
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  response.status = status;
  return response;
}

std::string UrlEncode(const std::string& value) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size() * 3);
  for (unsigned char c : value) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

}  // namespace eg::sidecar
