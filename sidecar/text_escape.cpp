// text_escape.cpp - see text_escape.h.

#include "text_escape.h"

#include <algorithm>
#include <cstdint>

namespace eg::sidecar {
namespace {

bool Plain(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("@._+-/:=%,").find(static_cast<char>(c)) != std::string_view::npos;
}

// The length of the valid UTF-8 sequence at s[i] (2..4) that is not a C1 control, or 0.
size_t Utf8Length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n = 0;
  uint32_t cp = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (b(i + k) & 0x3f);
  }
  const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  const bool bad = cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff);
  const bool c1 = cp >= 0x80 && cp <= 0x9f;
  // Bidirectional overrides and isolates reorder what a terminal shows.
  const bool bidi = (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
  if (overlong || bad || c1 || bidi) return 0;
  return n;
}

}  // namespace

std::string ShellWord(std::string_view s) {
  std::string clean(s);
  for (char& c : clean) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  const bool plain = !clean.empty() && clean[0] != '-' &&
                     std::all_of(clean.begin(), clean.end(),
                                 [](char c) { return Plain(static_cast<unsigned char>(c)); });
  if (plain) return clean;
  std::string out = "'";
  for (char c : clean) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string EximguardCommand(std::string_view verb, std::string_view key) {
  std::string out = "eximguard ";
  out += verb;
  out += key.starts_with('-') ? " -- " : " ";
  out += ShellWord(key);
  return out;
}

namespace {

std::string Escape(std::string_view s, bool keep_utf8) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      if (c == '\\') out += '\\';
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c >= 0x80 && keep_utf8) {
      if (const size_t n = Utf8Length(s, i); n > 0) {
        out.append(s.substr(i, n));
        i += n;
        continue;
      }
    }
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
    }
    ++i;
  }
  return out;
}

}  // namespace

std::string Printable(std::string_view s) {
  return Escape(s, true);
}

bool ShowsAsIs(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      ++i;
      continue;
    }
    const size_t n = c >= 0x80 ? Utf8Length(s, i) : 0;
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string PrintableAscii(std::string_view s) {
  return Escape(s, false);
}

std::string OneLine(std::string_view s, size_t max_bytes) {
  const std::string full = Printable(s);
  if (full.size() <= max_bytes) return full;
  const size_t room = max_bytes > 3 ? max_bytes - 3 : 0;
  // Cut at a boundary of Printable's output: before a '\\' escape or a UTF-8 lead byte.
  std::string out;
  for (size_t i = 0; i < s.size();) {
    size_t n = 1;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) n = std::max<size_t>(1, Utf8Length(s, i));
    const std::string piece = Printable(s.substr(i, n));
    if (out.size() + piece.size() > room) break;
    out += piece;
    i += n;
  }
  return out + "...";
}

std::string ScrubSecrets(std::string text, std::vector<std::string> secrets) {
  std::sort(secrets.begin(), secrets.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& secret : secrets) {
    if (secret.empty()) continue;
    for (size_t pos = text.find(secret); pos != std::string::npos;
         pos = text.find(secret, pos + kSecretMask.size())) {
      text.replace(pos, secret.size(), kSecretMask);
    }
  }
  return text;
}

std::string MaskUrl(std::string_view url) {
  if (url.empty()) return "";
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) return std::string(kSecretMask);
  const size_t host_begin = scheme_end + 3;
  size_t host_end = url.find_first_of("/?#", host_begin);
  if (host_end == std::string_view::npos) host_end = url.size();
  std::string_view authority = url.substr(host_begin, host_end - host_begin);
  const bool had_userinfo = authority.rfind('@') != std::string_view::npos;
  if (had_userinfo) authority.remove_prefix(authority.rfind('@') + 1);
  std::string out = Printable(url.substr(0, host_begin));
  out += Printable(authority);
  if (had_userinfo || host_end < url.size()) out += "/\u2026";
  return out;
}

}  // namespace eg::sidecar
