// key_hash.cpp - KeyHash (declared in table.h): SipHash-2-4 of the normalized key text, keyed
// with the segment's random seed and the key class.
//
// Normalization, so that one sender or directory is one key however it is spelled:
//   - sender keys: ASCII letters are lowercased (domains are case-insensitive, and in practice
//     every hosting platform treats mailbox local parts the same way);
//   - script directories: trailing '/' are ignored ("/home/u/x/" is "/home/u/x"; "/" stays);
//   - uid keys: taken as given (the guard only passes decimal digits).
// Any byte value is accepted, including invalid UTF-8; the length is explicit, so NUL bytes in
// a key the sidecar publishes are hashed too. No allocation, O(len), 8 bytes at a time.

#include <cstdint>
#include <cstring>

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

// ASCII 'A'..'Z' to 'a'..'z' in all 8 bytes at once; every other byte (including bytes >= 0x80)
// unchanged. Per byte: h = low 7 bits; h + 0x3F sets bit 7 iff h >= 'A', h + 0x25 iff h > 'Z';
// neither sum carries into the next byte.
uint64_t LowerAscii(uint64_t x) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  const uint64_t h = x & (0x7F * kOnes);
  const uint64_t at_least_a = h + (0x80 - 'A') * kOnes;
  const uint64_t above_z = h + (0x80 - 'Z' - 1) * kOnes;
  const uint64_t upper = at_least_a & ~above_z & ~x & (0x80 * kOnes);
  return x | (upper >> 2);
}

}  // namespace

uint64_t KeyHash(const Table& t, KeyClass klass, const char* text, size_t len) {
  // The class is folded into the key, so each class hashes with its own SipHash key.
  const uint64_t k0 = t.seed[0];
  const uint64_t k1 =
      t.seed[1] ^ (uint64_t{static_cast<uint8_t>(klass)} + 1) * 0x9E3779B97F4A7C15ULL;
  SipState s{k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL, k0 ^ 0x6c7967656e657261ULL,
             k1 ^ 0x7465646279746573ULL};
  if (klass == KeyClass::kCwd) {
    while (len > 1 && text[len - 1] == '/') --len;
  }
  const bool lower = klass == KeyClass::kSender;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t m;
    std::memcpy(&m, text + i, 8);
    s.Compress(lower ? LowerAscii(m) : m);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, text + i, len - i);
  if (lower) tail = LowerAscii(tail);  // zero bytes stay zero
  s.Compress(tail | uint64_t{len & 0xff} << 56);
  s.v2 ^= 0xff;
  for (int r = 0; r < 4; ++r) s.Round();
  const uint64_t v = s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
  return v == 0 ? 1 : v;
}

}  // namespace eg
