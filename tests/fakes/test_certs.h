// test_certs.h - throw-away TLS material for the tests' fake servers (WHM, Telegram, Slack).
//
// CONTRACT
//   MakeTestCerts(dir) writes, with the OpenSSL API (no `openssl` program needed):
//     ca.pem          a self-signed CA certificate (what a client is told to trust)
//     server.pem      a certificate for DNS:localhost and IP:127.0.0.1 signed by that CA
//     server.key      its private key (PEM)
//     untrusted.pem   another CA that signed nothing here (for "certificate refused" tests)
//   and returns their paths. Returns false with `error` set on failure. Test-only; any thread.

#ifndef EXIMGUARD_TESTS_FAKES_TEST_CERTS_H_
#define EXIMGUARD_TESTS_FAKES_TEST_CERTS_H_

#include <string>

namespace eg::testing {

struct TestCerts {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string untrusted_ca_file;
};

bool MakeTestCerts(const std::string& dir, TestCerts* out, std::string* error);

}  // namespace eg::testing

#endif  // EXIMGUARD_TESTS_FAKES_TEST_CERTS_H_
