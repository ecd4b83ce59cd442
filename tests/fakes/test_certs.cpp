// test_certs.cpp - MakeTestCerts with the OpenSSL 3 API: EC P-256 keys, SHA-256 signatures,
// certificates valid from a day ago for ten years.
//
// CONTRACT: see test_certs.h. The CA has basicConstraints critical CA:TRUE, keyUsage
// keyCertSign/cRLSign and a subjectKeyIdentifier; the server certificate CA:FALSE,
// digitalSignature, serverAuth, subjectAltName DNS:localhost + IP:127.0.0.1 and an
// authorityKeyIdentifier. The key file is written mode 0600.

#include "test_certs.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <utility>
#include <vector>

namespace eg::testing {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;

std::string OpensslError(const std::string& what) {
  unsigned long e = ERR_get_error();
  char buf[256] = {0};
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return what + (e != 0 ? std::string(": ") + buf : std::string());
}

bool AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A certificate for `key` named `cn`, signed by issuer_key (issuer null = self-signed).
Cert MakeCert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key,
              const std::vector<std::pair<int, const char*>>& exts) {
  Cert cert(X509_new());
  if (!cert) return nullptr;
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return nullptr;
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  if (bn == nullptr) return nullptr;
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -24L * 3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("eximguard tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (X509_set_pubkey(cert.get(), key) != 1) return nullptr;
  for (const auto& [nid, value] : exts) {
    if (!AddExt(cert.get(), signer, nid, value)) return nullptr;
  }
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    return nullptr;
  }
  return cert;
}

Cert MakeCa(EVP_PKEY* key, const char* cn) {
  return MakeCert(key, cn, nullptr, nullptr,
                  {{NID_basic_constraints, "critical,CA:TRUE"},
                   {NID_key_usage, "critical,keyCertSign,cRLSign"},
                   {NID_subject_key_identifier, "hash"}});
}

bool WriteCert(const std::string& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  bool ok = PEM_write_X509(f, cert) == 1;
  return std::fclose(f) == 0 && ok;
}

bool WriteKey(const std::string& path, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  ::chmod(path.c_str(), 0600);
  bool ok = PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  return std::fclose(f) == 0 && ok;
}

}  // namespace

bool MakeTestCerts(const std::string& dir, TestCerts* out, std::string* error) {
  Pkey ca_key(EVP_EC_gen("P-256"));
  Pkey server_key(EVP_EC_gen("P-256"));
  Pkey other_key(EVP_EC_gen("P-256"));
  if (!ca_key || !server_key || !other_key) {
    *error = OpensslError("EC key generation failed");
    return false;
  }
  Cert ca = MakeCa(ca_key.get(), "eximguard test CA");
  Cert other = MakeCa(other_key.get(), "eximguard untrusted test CA");
  if (!ca || !other) {
    *error = OpensslError("CA certificate failed");
    return false;
  }
  Cert server = MakeCert(server_key.get(), "localhost", ca.get(), ca_key.get(),
                         {{NID_basic_constraints, "critical,CA:FALSE"},
                          {NID_key_usage, "critical,digitalSignature"},
                          {NID_ext_key_usage, "serverAuth"},
                          {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"},
                          {NID_authority_key_identifier, "keyid:always"}});
  if (!server) {
    *error = OpensslError("server certificate failed");
    return false;
  }
  TestCerts certs;
  certs.ca_file = dir + "/ca.pem";
  certs.cert_file = dir + "/server.pem";
  certs.key_file = dir + "/server.key";
  certs.untrusted_ca_file = dir + "/untrusted.pem";
  if (!WriteCert(certs.ca_file, ca.get()) || !WriteCert(certs.cert_file, server.get()) ||
      !WriteKey(certs.key_file, server_key.get()) ||
      !WriteCert(certs.untrusted_ca_file, other.get())) {
    *error = OpensslError("cannot write the certificates into " + dir);
    return false;
  }
  *out = std::move(certs);
  return true;
}

}  // namespace eg::testing
