// text_escape.h - outside strings made safe where they are shown: in a terminal, in a line meant
// to be pasted into a root shell.
//
// Keys, paths, subjects and log lines come from the people eximguard judges. Printed raw, a
// subject can clear an admin's screen and write "All clear, run: eximguard whitelist add ...";
// pasted raw, a directory named "x;touch $HOME" runs a command as root.
//
// CONTRACT
//   - Callers: every verb that prints outside text, the notices' undo lines, the daemon's log;
//     every place that shows a secret's place (ScrubSecrets, MaskUrl).
//   - Pure functions, reentrant, never throw but std::bad_alloc.

#ifndef EXIMGUARD_SIDECAR_TEXT_ESCAPE_H_
#define EXIMGUARD_SIDECAR_TEXT_ESCAPE_H_

#include <string>
#include <string_view>
#include <vector>

namespace eg::sidecar {

// One word for a POSIX shell: as is when it holds only [A-Za-z0-9@._+/:=%,-] and does not start
// with '-', else in single quotes (a ' becomes '\''). Control characters (which a terminal would
// act on, and which would break the line) become '?': such a word names nothing, which is the
// safe failure.
std::string ShellWord(std::string_view s);

// `eximguard VERB KEY` as a line to paste: the key a ShellWord, after "--" when it starts with
// '-' (so it is never read as an option).
std::string EximguardCommand(std::string_view verb, std::string_view key);

// Text safe to print on a terminal and in one log line: printable ASCII and valid UTF-8 stay;
// control characters (C0, DEL, C1), invalid UTF-8 bytes and backslashes are written as \xHH
// (\\ for a backslash), \n \r \t as those escapes. Never adds a line break.
std::string Printable(std::string_view s);

// True when Printable(s) would escape nothing but backslashes: no control character, no
// invalid UTF-8. A sink of lines made of Printable() pieces (the daemon's log) prints such a
// line as it is and a line that is not Printable(line), so nothing raw ever reaches it.
bool ShowsAsIs(std::string_view s);

// Printable(), but every byte >= 0x80 is written as \xHH too: pure ASCII, one column per byte
// (for tables that pad columns, such as `top`).
std::string PrintableAscii(std::string_view s);

// Text for a notice or a chat message that must stay on one line: Printable(), then cut to at
// most `max_bytes` bytes (never inside an escape or a UTF-8 sequence) ending in "..." when cut.
std::string OneLine(std::string_view s, size_t max_bytes = 300);

// What is shown in place of a secret ("********"), and `text` with every occurrence of each of
// `secrets` (empty ones ignored; longest first) replaced by it. The one mask of every secret:
// config.h's MaskSecrets, the HTTP client's and the notifiers' error texts use it.
inline constexpr std::string_view kSecretMask = "********";
std::string ScrubSecrets(std::string text, std::vector<std::string> secrets);

// A URL as it may be shown: "scheme://host[:port]/…" (its userinfo, path, query and fragment can
// carry a bearer secret, e.g. a webhook's). Empty stays empty; text without "://" becomes
// kSecretMask.
std::string MaskUrl(std::string_view url);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_TEXT_ESCAPE_H_
