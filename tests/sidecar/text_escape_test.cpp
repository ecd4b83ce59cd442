// text_escape_test.cpp - outside strings shown safely (sidecar/text_escape.h): Printable,
// PrintableAscii, OneLine, ScrubSecrets, MaskUrl; and the property every verb relies on: no
// byte a terminal acts on survives.

#include "text_escape.h"

#include <gtest/gtest.h>

#include <string>

#include "sidecar_test_util.h"

namespace eg::sidecar {
namespace {

using testing::NoTerminalControl;

// ESC (clear screen), CR, newlines, BEL, DEL, a C1 CSI, invalid UTF-8, a bidi override.
const std::string kHostile =
    std::string("a\x1b[2J\rAll clear\nUndo: x\a\x7f\xc2\x9b") + "\xff\xfe" + "\xe2\x80\xae" + "end";

TEST(TextEscape, PrintableLeavesNoControlByte) {
  const std::string p = Printable(kHostile);
  EXPECT_TRUE(NoTerminalControl(p)) << p;
  EXPECT_EQ(p.find('\n'), std::string::npos);
  EXPECT_EQ(Printable("j\xc3\xb6rg a\\b"), "j\xc3\xb6rg a\\\\b");  // valid UTF-8 stays
  const std::string a = PrintableAscii(kHostile + "\xc3\xb6");
  EXPECT_TRUE(NoTerminalControl(a));
  for (const char c : a) EXPECT_LT(static_cast<unsigned char>(c), 0x80);
}

TEST(TextEscape, ShowsAsIsOnlyWhenNothingNeedsEscaping) {
  EXPECT_TRUE(ShowsAsIs("block of sender a\\x1bb@c lapsed, j\xc3\xb6rg"));
  EXPECT_FALSE(ShowsAsIs(kHostile));
  EXPECT_FALSE(ShowsAsIs("a\xff"));
  EXPECT_FALSE(ShowsAsIs("a\nb"));
  EXPECT_TRUE(ShowsAsIs(Printable(kHostile)));
}

TEST(TextEscape, OneLineCutsAtABoundary) {
  EXPECT_EQ(OneLine("short"), "short");
  const std::string cut = OneLine(std::string(20, 'x') + "\x1b" + std::string(20, 'y'), 24);
  EXPECT_EQ(cut, std::string(20, 'x') + "...");  // not inside "\x1b"
  EXPECT_LE(OneLine(kHostile + kHostile, 30).size(), 30u);
  EXPECT_TRUE(NoTerminalControl(OneLine(kHostile, 30)));
}

TEST(TextEscape, ScrubSecretsMasksEveryOccurrenceLongestFirst) {
  EXPECT_EQ(ScrubSecrets("token abc and abcdef, abc", {"abc", "abcdef", ""}),
            "token ******** and ********, ********");
  EXPECT_EQ(ScrubSecrets("nothing", {""}), "nothing");
}

TEST(TextEscape, MaskUrlKeepsOnlySchemeHostAndPort) {
  EXPECT_EQ(MaskUrl("https://hooks.slack.com/services/T0/B0/SECRET"),
            "https://hooks.slack.com/\u2026");
  EXPECT_EQ(MaskUrl("https://user:pw@example.com:8443/x?token=SECRET#f"),
            "https://example.com:8443/\u2026");
  EXPECT_EQ(MaskUrl("http://proxy.example:3128"), "http://proxy.example:3128");
  EXPECT_EQ(MaskUrl("http://u:SECRET@proxy.example:3128"), "http://proxy.example:3128/\u2026");
  EXPECT_EQ(MaskUrl(""), "");
  EXPECT_EQ(MaskUrl("no-scheme/SECRET"), "********");
}

}  // namespace
}  // namespace eg::sidecar
