// text_escape.h - outside strings made safe where they are shown: in a terminal, in a line meant
// to be pasted into a root shell.
//
// Keys, paths, subjects and log lines come from the people eximguard judges. Printed raw, a
// subject can clear an admin's screen and write "All clear, run: eximguard whitelist add ...";
// pasted raw, a directory named "x;touch $HOME" runs a command as root.
//
// CONTRACT
//   - Callers: every verb that prints outside text, the notices' undo lines, the daemon's log.
//   - Pure functions, reentrant, never throw but std::bad_alloc.

#ifndef EXIMGUARD_SIDECAR_TEXT_ESCAPE_H_
#define EXIMGUARD_SIDECAR_TEXT_ESCAPE_H_

#include <string>
#include <string_view>

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

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_TEXT_ESCAPE_H_
