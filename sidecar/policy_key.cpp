// policy_key.cpp - see policy_key.h.

#include "policy_key.h"

#include <cstdint>

namespace eg::sidecar {
namespace {

constexpr std::string_view kUidPrefix = "uid:";
constexpr std::string_view kSenderPrefix = "sender:";

bool HasControl(std::string_view s) {
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) return true;
  }
  return false;
}

}  // namespace

bool ParsePolicyKey(std::string_view written, PolicyKey* out, std::string* why) {
  out->written.assign(written);
  out->klass = KeyClass::kSender;
  out->text.clear();
  if (written.empty()) {
    *why = "empty key";
    return false;
  }
  if (HasControl(written)) {
    *why = "key contains a control character";
    return false;
  }
  if (written.front() == '/') {
    size_t len = written.size();
    while (len > 1 && written[len - 1] == '/') --len;
    out->klass = KeyClass::kCwd;
    out->text.assign(written.substr(0, len));
    return true;
  }
  if (written.starts_with(kUidPrefix)) {
    const std::string_view digits = written.substr(kUidPrefix.size());
    out->klass = KeyClass::kUid;
    if (digits.empty() || digits.size() > 10 ||
        digits.find_first_not_of("0123456789") != std::string_view::npos) {
      *why = "expected uid:N with N a decimal uid";
      return false;
    }
    uint64_t uid = 0;
    for (const char c : digits) uid = uid * 10 + static_cast<uint64_t>(c - '0');
    if (uid > UINT32_MAX) {
      *why = "uid above 4294967295";
      return false;
    }
    out->text = std::to_string(uid);
    return true;
  }
  std::string_view sender = written;
  if (sender.starts_with(kSenderPrefix)) sender.remove_prefix(kSenderPrefix.size());
  if (sender.empty()) {
    *why = "empty key";
    return false;
  }
  out->text.assign(sender);
  return true;
}

std::string Identity(const PolicyKey& key) {
  std::string id(1, static_cast<char>('0' + static_cast<int>(key.klass)));
  id += ':';
  for (char c : key.text) {
    if (key.klass == KeyClass::kSender && c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    id += c;
  }
  return id;
}

}  // namespace eg::sidecar
