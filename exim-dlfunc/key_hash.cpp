// key_hash.cpp - KeyHash (declared in table.h): SipHash-2-4 of (class, normalized key text)
// keyed with the segment's random seed.
//
// Normalization, so that one sender or directory is one key however it is spelled:
//   - sender keys: ASCII letters are lowercased (domains are case-insensitive, and in practice
//     every hosting platform treats mailbox local parts the same way);
//   - script directories: trailing '/' are ignored ("/home/u/x/" is "/home/u/x"; "/" stays);
//   - uid keys: taken as given (the guard only passes decimal digits).
// Any byte value is accepted, including invalid UTF-8; the length is explicit, so NUL bytes in
// a key the sidecar publishes are hashed too. No allocation, O(len).

#include <cstdint>

#include "table.h"

namespace eg {
namespace {

constexpr uint64_t Rotl(uint64_t x, int b) {
  return (x << b) | (x >> (64 - b));
}

struct SipState {
  uint64_t v0, v1, v2, v3;

  void Round() {
    v0 += v1;
    v1 = Rotl(v1, 13);
    v1 ^= v0;
    v0 = Rotl(v0, 32);
    v2 += v3;
    v3 = Rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = Rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = Rotl(v1, 17);
    v1 ^= v2;
    v2 = Rotl(v2, 32);
  }
  void Compress(uint64_t m) {
    v3 ^= m;
    Round();
    Round();
    v0 ^= m;
  }
};

// Feeds bytes one at a time into 8-byte little-endian words.
struct SipStream {
  SipState s;
  uint64_t word = 0;
  uint64_t total = 0;

  void Push(uint8_t byte) {
    word |= uint64_t{byte} << (8 * (total & 7));
    if ((++total & 7) == 0) {
      s.Compress(word);
      word = 0;
    }
  }
  uint64_t Finish() {
    s.Compress(word | (total & 0xff) << 56);
    s.v2 ^= 0xff;
    for (int i = 0; i < 4; ++i) s.Round();
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
  }
};

}  // namespace

uint64_t KeyHash(const Table& t, KeyClass klass, const char* text, size_t len) {
  SipStream h{{t.seed[0] ^ 0x736f6d6570736575ULL, t.seed[1] ^ 0x646f72616e646f6dULL,
               t.seed[0] ^ 0x6c7967656e657261ULL, t.seed[1] ^ 0x7465646279746573ULL}};
  h.Push(static_cast<uint8_t>(klass));
  if (klass == KeyClass::kCwd) {
    while (len > 1 && text[len - 1] == '/') --len;
  }
  for (size_t i = 0; i < len; ++i) {
    uint8_t c = static_cast<uint8_t>(text[i]);
    if (klass == KeyClass::kSender && c >= 'A' && c <= 'Z') c = static_cast<uint8_t>(c + 32);
    h.Push(c);
  }
  const uint64_t v = h.Finish();
  return v == 0 ? 1 : v;
}

}  // namespace eg
