// log_line.cpp - see log_line.h. A hand-written scanner: every step looks at most at the bytes
// it passes over, so a line costs O(length); nothing allocates but `recipients`.

#include "log_line.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <cstring>
#include <ctime>

namespace eg::sidecar {
namespace {

using std::string_view;

constexpr bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
constexpr bool IsAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool IsBase62(char c) {
  return IsDigit(c) || IsAlpha(c);
}

// The first index in [i, s.size()) whose byte is `a` or `b`, else s.size(). Eight bytes at a
// time (SWAR: a byte equal to `a` becomes zero in w ^ a, and the classic has-zero-byte test
// finds it; the lowest flagged byte is exact, later ones may be false, so only the lowest is
// used); the loads stay inside s.
inline size_t FindEither(string_view s, size_t i, char a, char b) {
  const char* p = s.data();
  const size_t n = s.size();
  if constexpr (std::endian::native == std::endian::little) {
    constexpr uint64_t kOnes = 0x0101010101010101ULL;
    constexpr uint64_t kHighs = 0x8080808080808080ULL;
    const uint64_t ma = kOnes * static_cast<unsigned char>(a);
    const uint64_t mb = kOnes * static_cast<unsigned char>(b);
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      const uint64_t x = w ^ ma, y = w ^ mb;
      const uint64_t z = ((x - kOnes) & ~x & kHighs) | ((y - kOnes) & ~y & kHighs);
      if (z != 0) return i + static_cast<size_t>(std::countr_zero(z) >> 3);
    }
  }
  while (i < n && p[i] != a && p[i] != b) ++i;
  return i;
}

// A position in a line. Invariant: i <= s.size(), so every substr() below is in range.
struct Scan {
  string_view s;
  size_t i = 0;

  bool AtEnd() const { return i >= s.size(); }
  char Peek(size_t k = 0) const { return i + k < s.size() ? s[i + k] : '\0'; }
  string_view Rest() const { return s.substr(i); }
  bool Starts(string_view lit) const {
    return s.size() - i >= lit.size() && s.compare(i, lit.size(), lit) == 0;
  }
  bool Eat(string_view lit) {
    if (!Starts(lit)) return false;
    i += lit.size();
    return true;
  }
  bool EatChar(char c) {
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  void SkipSpaces() {
    while (i < s.size() && s[i] == ' ') ++i;
  }
  // Up to (not including) the next `stop` byte, or the end.
  // (FindEither, inline: the fields here are short, and memchr's call costs more than it saves.)
  string_view Until(char stop) {
    const size_t b = i;
    i = FindEither(s, i, stop, stop);
    return s.substr(b, i - b);
  }
  string_view Word() { return Until(' '); }
  // Up to the next space outside double quotes; inside quotes a backslash escapes one byte.
  string_view QuotedWord() {
    const size_t b = i;
    i = FindEither(s, i, ' ', '"');  // the common case: no quote
    if (i == s.size() || s[i] == ' ') return s.substr(b, i - b);
    SkipToUnquoted(' ');
    return s.substr(b, i - b);
  }
  // Advances to the next `stop` outside double quotes (inside them a backslash escapes one
  // byte), or to the end. Returns whether `stop` was found.
  bool SkipToUnquoted(char stop) {
    bool quoted = false;
    while (i < s.size()) {
      const char c = s[i];
      if (quoted) {
        if (c == '\\') {
          i = i + 2 <= s.size() ? i + 2 : s.size();
          continue;
        }
        if (c == '"') quoted = false;
      } else if (c == stop) {
        return true;
      } else if (c == '"') {
        quoted = true;
      }
      ++i;
    }
    return false;
  }
  // At '"': the text up to the closing unescaped '"' (exclusive); *closed says whether one came.
  string_view Quoted(bool* closed) {
    *closed = false;
    if (!EatChar('"')) return Word();
    const size_t b = i;
    while ((i = FindEither(s, i, '\\', '"')) < s.size()) {
      if (s[i] == '\\') {
        i = i + 2 <= s.size() ? i + 2 : s.size();
        continue;
      }
      *closed = true;  // s[i] == '"'
      break;
    }
    const string_view inner = s.substr(b, i - b);
    if (*closed) ++i;
    return inner;
  }
  // At '<': the address up to the matching '>' (a quoted local part may hold '>' and spaces).
  string_view Bracketed(bool* closed) {
    *closed = false;
    if (!EatChar('<')) return Word();
    const size_t b = i;
    *closed = SkipToUnquoted('>');
    const string_view inner = s.substr(b, i - b);
    if (*closed) ++i;
    return inner;
  }
  // A field name ("H", "id*", "CV") directly followed by '='; consumes "NAME=" on success.
  bool Key(string_view* key) {
    size_t j = i;
    while (j < s.size() && (IsBase62(s[j]) || s[j] == '*') && j - i < 8) ++j;
    if (j == i || j >= s.size() || s[j] != '=') return false;
    *key = s.substr(i, j - i);
    i = j + 1;
    return true;
  }
  // n decimal digits exactly.
  bool Fixed(size_t n, int* out) {
    if (s.size() - i < n) return false;
    int v = 0;
    for (size_t k = 0; k < n; ++k) {
      if (!IsDigit(s[i + k])) return false;
      v = v * 10 + (s[i + k] - '0');
    }
    *out = v;
    i += n;
    return true;
  }
  // 1..max_digits decimal digits, value <= limit.
  bool Number(size_t max_digits, uint64_t limit, uint64_t* out) {
    size_t j = i;
    uint64_t v = 0;
    while (j < s.size() && IsDigit(s[j]) && j - i < max_digits) {
      v = v * 10 + static_cast<uint64_t>(s[j] - '0');
      ++j;
    }
    if (j == i || v > limit || (j < s.size() && IsDigit(s[j]))) return false;
    *out = v;
    i = j;
    return true;
  }
};

uint64_t ToNumber(string_view digits, uint64_t limit, bool* ok) {
  Scan sc{digits};
  uint64_t v = 0;
  *ok = sc.Number(20, limit, &v) && sc.AtEnd();
  return *ok ? v : 0;
}

string_view TrimEol(string_view line) {
  if (line.ends_with('\n')) line.remove_suffix(1);
  if (line.ends_with('\r')) line.remove_suffix(1);
  return line;
}

// ---- Time ----------------------------------------------------------------------------------

struct Civil {
  int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0, millis = 0;
  bool has_year = false;
  bool zone = false;
  int zone_secs = 0;  // east of UTC
};

constexpr int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian, 1970-01-01 = 0).
constexpr int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

constexpr void CivilFromDays(int64_t z, int* year, int* mon, int* day) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;
  *year = static_cast<int>(yoe + era * 400 + (m <= 2));
  *mon = static_cast<int>(m);
  *day = static_cast<int>(d);
}

bool ValidClock(const Civil& c) {
  return c.mon >= 1 && c.mon <= 12 && c.day >= 1 && c.day <= 31 && c.hour <= 23 && c.min <= 59 &&
         c.sec <= 60;
}

// Wall-clock seconds of the local timezone -> UTC, with the offset cached per wall-clock hour.
int64_t LocalWallToUtc(int64_t wall) {
  struct Cache {
    int64_t hour = INT64_MIN;
    int64_t offset = 0;
  };
  thread_local Cache cache;
  const int64_t hour = FloorDiv(wall, 3600);
  if (hour != cache.hour) {
    int y = 0, m = 0, d = 0;
    CivilFromDays(FloorDiv(hour, 24), &y, &m, &d);
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    tm.tm_hour = static_cast<int>(hour - FloorDiv(hour, 24) * 24);
    tm.tm_isdst = -1;
    const std::time_t t = std::mktime(&tm);
    cache.offset = t == static_cast<std::time_t>(-1) ? 0 : hour * 3600 - static_cast<int64_t>(t);
    cache.hour = hour;
  }
  return wall - cache.offset;
}

int64_t ToUnix(const Civil& c, const ParseOptions& options) {
  const int64_t wall =
      DaysFromCivil(c.year, c.mon, c.day) * 86400 + c.hour * 3600 + c.min * 60 + c.sec;
  if (c.zone) return wall - c.zone_secs;
  if (options.utc) return wall;
  return LocalWallToUtc(wall);
}

int64_t ResolveTime(Civil c, const ParseOptions& options) {
  if (c.has_year) return ToUnix(c, options);
  if (options.year > 0) {
    c.year = options.year;
    return ToUnix(c, options);
  }
  const int64_t now = options.now != 0 ? options.now : static_cast<int64_t>(std::time(nullptr));
  int year = 0, mon = 0, day = 0;
  CivilFromDays(FloorDiv(now, 86400), &year, &mon, &day);
  int64_t t = 0;
  for (int y = year + 1; y >= year - 1; --y) {  // the latest year not more than a day ahead
    c.year = y;
    t = ToUnix(c, options);
    if (t <= now + 86400) break;
  }
  return t;
}

// ".mmm" (any number of digits; the first three are milliseconds).
void Fraction(Scan& sc, Civil* c) {
  if (sc.Peek() != '.' || !IsDigit(sc.Peek(1))) return;
  ++sc.i;
  int scale = 100;
  while (IsDigit(sc.Peek())) {
    if (scale > 0) c->millis += (sc.Peek() - '0') * scale;
    scale /= 10;
    ++sc.i;
  }
}

// Two decimal digits at p.
inline bool Two(const char* p, int* out) {
  const unsigned a = static_cast<unsigned char>(p[0]) - '0';
  const unsigned b = static_cast<unsigned char>(p[1]) - '0';
  if (a > 9 || b > 9) return false;
  *out = static_cast<int>(a * 10 + b);
  return true;
}

// Exim's "YYYY-MM-DD HH:MM:SS[.mmm][ +hhmm]" followed by ' ' (consumed) or the end. (Fixed
// offsets: this runs once per line, so it is written for speed.)
bool EximStamp(Scan& sc, Civil* c) {
  if (sc.s.size() - sc.i < 19) return false;
  const char* p = sc.s.data() + sc.i;
  int century = 0, year = 0;
  if (p[4] != '-' || p[7] != '-' || p[10] != ' ' || p[13] != ':' || p[16] != ':' ||
      !Two(p, &century) || !Two(p + 2, &year) || !Two(p + 5, &c->mon) || !Two(p + 8, &c->day) ||
      !Two(p + 11, &c->hour) || !Two(p + 14, &c->min) || !Two(p + 17, &c->sec)) {
    return false;
  }
  c->year = century * 100 + year;
  c->has_year = true;
  if (!ValidClock(*c)) return false;
  Scan t = sc;
  t.i += 19;
  Fraction(t, c);
  const char sign = t.Peek(1);
  if (t.Peek() == ' ' && (sign == '+' || sign == '-') && IsDigit(t.Peek(2)) && IsDigit(t.Peek(3)) &&
      IsDigit(t.Peek(4)) && IsDigit(t.Peek(5)) && (t.Peek(6) == ' ' || t.i + 6 == t.s.size())) {
    int hh = 0, mm = 0;
    Two(t.s.data() + t.i + 2, &hh);
    Two(t.s.data() + t.i + 4, &mm);
    t.i += 6;
    c->zone = true;
    c->zone_secs = (sign == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
  }
  if (!t.AtEnd() && !t.EatChar(' ')) return false;
  sc = t;
  return true;
}

// Syslog's "Mmm dd HH:MM:SS[.f] " (day space-padded or not) or RFC 3339
// "YYYY-MM-DDTHH:MM:SS[.f](Z|+hh:mm) ", the space consumed.
bool SyslogStamp(Scan& sc, Civil* c) {
  static constexpr string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  Scan t = sc;
  if (IsDigit(t.Peek())) {
    if (!t.Fixed(4, &c->year) || !t.EatChar('-') || !t.Fixed(2, &c->mon) || !t.EatChar('-') ||
        !t.Fixed(2, &c->day) || !t.EatChar('T') || !t.Fixed(2, &c->hour) || !t.EatChar(':') ||
        !t.Fixed(2, &c->min) || !t.EatChar(':') || !t.Fixed(2, &c->sec)) {
      return false;
    }
    Fraction(t, c);
    c->has_year = true;
    if (t.EatChar('Z')) {
      c->zone = true;
    } else if (t.Peek() == '+' || t.Peek() == '-') {
      const int sign = t.Peek() == '-' ? -1 : 1;
      ++t.i;
      int hh = 0, mm = 0;
      if (!t.Fixed(2, &hh)) return false;
      t.EatChar(':');
      if (!t.Fixed(2, &mm)) return false;
      c->zone = true;
      c->zone_secs = sign * (hh * 3600 + mm * 60);
    }
  } else {
    if (t.s.size() - t.i < 4) return false;
    const size_t at = kMonths.find(t.s.substr(t.i, 3));
    if (at == string_view::npos || at % 3 != 0 || t.Peek(3) != ' ') return false;
    c->mon = static_cast<int>(at / 3) + 1;
    t.i += 4;
    if (t.Peek() == ' ') ++t.i;
    if (!IsDigit(t.Peek())) return false;
    c->day = t.Peek() - '0';
    ++t.i;
    if (IsDigit(t.Peek())) {
      c->day = c->day * 10 + (t.Peek() - '0');
      ++t.i;
    }
    if (!t.EatChar(' ') || !t.Fixed(2, &c->hour) || !t.EatChar(':') || !t.Fixed(2, &c->min) ||
        !t.EatChar(':') || !t.Fixed(2, &c->sec)) {
      return false;
    }
    Fraction(t, c);
  }
  if (!t.EatChar(' ') || !ValidClock(*c)) return false;
  sc = t;
  return true;
}

// A syslog tag "name:" or "name[pid]:" followed by ' ' (consumed).
bool SyslogTag(Scan& sc, string_view* name, uint32_t* pid) {
  Scan t = sc;
  const string_view word = t.Word();
  if (word.size() < 2 || word.back() != ':') return false;
  const size_t bracket = word.find('[');
  *name = word.substr(0, bracket == string_view::npos ? word.size() - 1 : bracket);
  *pid = 0;
  if (bracket != string_view::npos) {
    if (word.size() < bracket + 3 || word[word.size() - 2] != ']') return false;
    bool ok = false;
    *pid = static_cast<uint32_t>(
        ToNumber(word.substr(bracket + 1, word.size() - bracket - 3), UINT32_MAX, &ok));
    if (!ok) return false;
  }
  t.EatChar(' ');
  sc = t;
  return true;
}

// Exim's syslog split marker "[n/m] " or "[n\m] " (consumed when present): *fragment when the
// line is one of several pieces, *continuation when it is not the first.
void SplitMarker(Scan& sc, bool* fragment, bool* continuation) {
  Scan t = sc;
  uint64_t n = 0, m = 0;
  if (!t.EatChar('[') || !t.Number(6, 999999, &n)) return;
  if (!t.EatChar('/') && !t.EatChar('\\')) return;
  if (!t.Number(6, 999999, &m) || !t.EatChar(']') || !t.EatChar(' ')) return;
  *fragment = m > 1;
  *continuation = n > 1;
  sc = t;
}

// ---- Exim fields ---------------------------------------------------------------------------

// An Exim message id, 6-6-2 (before 4.97) or 6-11-4, followed by ' ' (consumed) or the end.
bool MessageId(Scan& sc, string_view* id) {
  const auto run = [&](size_t from, size_t n) {
    for (size_t k = 0; k < n; ++k) {
      if (!IsBase62(sc.Peek(from + k))) return false;
    }
    return true;
  };
  if (!run(0, 6) || sc.Peek(6) != '-') return false;
  size_t len = 0;
  if (run(7, 6) && sc.Peek(13) == '-' && run(14, 2) && !IsBase62(sc.Peek(16))) {
    len = 16;
  } else if (run(7, 11) && sc.Peek(18) == '-' && run(19, 4) && !IsBase62(sc.Peek(23))) {
    len = 23;
  } else {
    return false;
  }
  if (sc.i + len != sc.s.size() && sc.Peek(len) != ' ') return false;
  *id = sc.s.substr(sc.i, len);
  sc.i += len;
  sc.EatChar(' ');
  return true;
}

// "name (helo) [ip]:port", "(helo) [ip]", "[ip]:port", "name [ip]", "name DS [ip]*", "name":
// the H= of arrivals, rejections, auth failures and deliveries (Exim's sender_fullhost / the
// delivery host). Stops after the address (port, '*') or after the name.
void HostSpec(Scan& sc, LogEvent* e) {
  if (sc.Peek() != '(' && sc.Peek() != '[') {
    e->host_name = sc.Word();
    if (sc.Starts(" DS [")) sc.i += 3;
    if (!sc.Starts(" (") && !sc.Starts(" [")) return;
    ++sc.i;
  }
  if (sc.Peek() == '(') {
    // The HELO name runs to the first ')' that ends a word (it may itself hold brackets, as in
    // "([10.1.2.3])"; Exim refuses HELO names with spaces). Searching only up to there keeps a
    // line of many "H=(" linear.
    const size_t b = sc.i + 1;
    size_t close = b;
    while (close < sc.s.size() &&
           !(sc.s[close] == ')' && (close + 1 == sc.s.size() || sc.s[close + 1] == ' '))) {
      ++close;
    }
    e->helo = sc.s.substr(b, close - b);
    if (close == sc.s.size()) {
      sc.i = close;
      return;
    }
    sc.i = close + 1;
    if (!sc.Starts(" [")) return;
    ++sc.i;
  }
  if (sc.Peek() == '[') {
    const size_t b = sc.i + 1;
    const size_t close = sc.s.find(']', b);
    if (close == string_view::npos) {
      sc.i = sc.s.size();
      return;
    }
    e->host_ip = sc.s.substr(b, close - b);
    sc.i = close + 1;
    if (sc.Peek() == ':' && IsDigit(sc.Peek(1))) {
      ++sc.i;
      uint64_t port = 0;
      if (sc.Number(5, 65535, &port)) e->host_port = static_cast<uint16_t>(port);
    }
    sc.EatChar('*');
  }
}

void Auth(string_view value, LogEvent* e) {
  const size_t colon = value.find(':');
  e->auth = value.substr(0, colon);
  if (colon != string_view::npos) e->auth_id = value.substr(colon + 1);
}

void Size(string_view value, LogEvent* e) {
  bool ok = false;
  const uint64_t size = ToNumber(value, UINT64_MAX / 10, &ok);
  if (ok) e->size = size;
}

// " for a b c": to the end of the line.
void Recipients(Scan& sc, LogEvent* e) {
  while (!sc.AtEnd()) {
    if (sc.Peek() == ' ') {
      ++sc.i;
      continue;
    }
    string_view r = sc.QuotedWord();
    if (r.ends_with("<trunc>")) {
      r.remove_suffix(7);
      e->truncated = true;
    }
    if (!r.empty()) e->recipients.push_back(r);
  }
}

// A word that spells a field Exim writes at most once before an arrival's recipients (or
// "for", which starts them): inside an A= id it can only be the id's own text.
bool FieldWord(string_view word) {
  for (const string_view key :
       {"H=", "U=", "P=", "A=", "S=", "T=", "R=", "I=", "X=", "CV=", "DN=", "SNI=", "F="}) {
    if (word.starts_with(key)) return true;
  }
  return word == "for";
}

bool SizeWord(string_view word) {
  if (!word.starts_with("S=") || word.size() == 2) return false;
  for (const char c : word.substr(2)) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

// Marks *e ambiguous when a word of the id after its first one spells a field.
void CheckAuthId(string_view value, LogEvent* e) {
  for (size_t sp = value.find(' '); sp != string_view::npos; sp = value.find(' ', sp + 1)) {
    const size_t next = value.find(' ', sp + 1);
    const string_view word =
        value.substr(sp + 1, next == string_view::npos ? string_view::npos : next - sp - 1);
    if (FieldWord(word)) {
      e->ambiguous = true;
      return;
    }
  }
}

// The value of an arrival's A=: NAME:ID, the ID as smtp_in_auth() stored it (printing
// characters, spaces kept, not quoted). receive.c writes A= after H= U= P= and before
// [ PRDR][ PRX=ip][ K] S=n, so the value runs to the first word "S=<digits>", less those
// flags. Without an S= (a truncated line) it is the first word only.
string_view ArrivalAuthValue(Scan& sc, LogEvent* e) {
  const size_t b = sc.i;
  size_t size_word = string_view::npos;
  for (size_t sp = sc.s.find(' ', b); sp != string_view::npos; sp = sc.s.find(' ', sp + 1)) {
    const size_t next = sc.s.find(' ', sp + 1);
    const string_view word =
        sc.s.substr(sp + 1, next == string_view::npos ? string_view::npos : next - sp - 1);
    if (SizeWord(word)) {
      size_word = sp + 1;
      break;
    }
  }
  if (size_word == string_view::npos) return sc.Word();
  size_t end = size_word - 1;
  const auto strip = [&](bool (*flag)(string_view)) {
    const size_t sp = end > b ? sc.s.rfind(' ', end - 1) : string_view::npos;
    if (sp != string_view::npos && sp > b && flag(sc.s.substr(sp + 1, end - sp - 1))) end = sp;
  };
  strip([](string_view w) { return w == "K"; });
  strip([](string_view w) { return w.starts_with("PRX="); });
  strip([](string_view w) { return w == "PRDR"; });
  const string_view value = sc.s.substr(b, end - b);
  sc.i = end;
  CheckAuthId(value, e);
  return value;
}

// After "<= " (or "(= "). Each field counts from its first occurrence: a later one can only
// be text of the A= id (see ArrivalAuthValue) and makes the line `ambiguous`.
bool Arrival(Scan& sc, LogEvent* e) {
  e->sender = sc.QuotedWord();
  if (e->sender.empty()) return false;
  if (e->sender == "<>") e->sender = e->sender.substr(0, 0);
  enum : unsigned { kH = 1, kU = 2, kP = 4, kA = 8, kS = 16, kT = 32 };
  unsigned seen = 0;
  const auto first = [&](unsigned bit) {
    if ((seen & bit) != 0) {
      e->ambiguous = true;
      return false;
    }
    seen |= bit;
    return true;
  };
  while (true) {
    sc.SkipSpaces();
    if (sc.AtEnd()) break;
    if (sc.Eat("for ") || sc.Rest() == "for") {
      Recipients(sc, e);
      break;
    }
    if (sc.Eat("from <")) {  // +received_sender: the raw sender
      --sc.i;
      bool closed = false;
      sc.Bracketed(&closed);
      continue;
    }
    string_view key;
    if (!sc.Key(&key)) {
      sc.QuotedWord();  // bare flags: DS, K, L, PRDR, TFO, ARC, SPF, ...
      continue;
    }
    if (key == "H" && first(kH)) {
      HostSpec(sc, e);
    } else if (key == "U" && first(kU)) {
      e->user = sc.Word();
    } else if (key == "P" && first(kP)) {
      e->protocol = sc.Word();
    } else if (key == "A" && first(kA)) {
      Auth(ArrivalAuthValue(sc, e), e);
    } else if (key == "S" && first(kS)) {
      Size(sc.Word(), e);
    } else if (key == "T" && first(kT)) {
      bool closed = true;
      if (sc.Peek() == '"') {
        e->subject = sc.Quoted(&closed);
      } else {
        e->subject = sc.Word();
      }
      if (!closed) {
        e->truncated = true;
        return false;
      }
    } else if (key == "T" && sc.Peek() == '"') {
      bool closed = true;
      sc.Quoted(&closed);  // a second T="..": skip it whole
    } else {
      sc.QuotedWord();  // id=, id*=, R=, I=, X=, CV=, DN="..", SNI=, RT=, M8S=, Ci=, Q=, ...
    }
  }
  return (seen & kS) != 0 && !e->message_id.empty();
}

// For a bounce, a value ending in ':' before a space ends the fields (Exim <= 4.98 wrote
// "R=r T=t: error"); then the rest is the error.
bool ColonEnds(string_view* value, Scan& sc, LogEvent* e) {
  if (value->empty() || value->back() != ':' || (!sc.AtEnd() && sc.Peek() != ' ')) return false;
  value->remove_suffix(1);
  sc.EatChar(' ');
  e->error = sc.Rest();
  sc.i = sc.s.size();
  return true;
}

// After "=> ", "-> ", "** " or "== ".
bool Delivery(Scan& sc, LogEvent* e) {
  const bool bounce = e->kind == LineKind::kBounce;
  const bool deferral = e->kind == LineKind::kDeferral;
  e->recipient = sc.QuotedWord();
  if (e->recipient.empty()) return false;
  if (bounce && ColonEnds(&e->recipient, sc, e)) return !e->message_id.empty();
  bool ended = false;  // the error (bounce) or "defer (n)" (deferral) was found
  while (!ended) {
    sc.SkipSpaces();
    if (sc.AtEnd()) break;
    if (bounce && (sc.Starts(": ") || sc.Rest() == ":")) {
      sc.i = sc.i + 2 <= sc.s.size() ? sc.i + 2 : sc.s.size();
      e->error = sc.Rest();
      ended = true;
      break;
    }
    if (deferral && sc.Eat("defer (")) {
      sc.Until(')');
      sc.EatChar(')');
      if (!sc.Eat(": ")) sc.SkipSpaces();
      e->error = sc.Rest();
      ended = true;
      break;
    }
    if (sc.Peek() == '<') {
      bool closed = false;
      e->original = sc.Bracketed(&closed);
      if (bounce && sc.Peek() == ':' && (sc.i + 1 == sc.s.size() || sc.Peek(1) == ' ')) {
        ++sc.i;
        sc.EatChar(' ');
        e->error = sc.Rest();
        ended = true;
      }
      continue;
    }
    if (sc.Peek() == '(') {  // an intermediate parent address
      sc.Until(')');
      sc.EatChar(')');
      continue;
    }
    string_view key;
    if (!sc.Key(&key)) {
      const size_t start = sc.i;
      string_view word = sc.QuotedWord();  // K, L, PRDR, "routing", ...
      if (bounce && !ColonEnds(&word, sc, e)) {
        // failure_log() writes no bare words: this is a message without a colon, as in
        // "** file@x.y routing yielded a local delivery".
        e->error = sc.s.substr(start);
        sc.i = sc.s.size();
      }
      ended = bounce;
      continue;
    }
    string_view value;
    bool closed = false;
    if (key == "H") {
      HostSpec(sc, e);
      continue;
    } else if (key == "F") {
      e->sender = sc.Peek() == '<' ? sc.Bracketed(&closed) : sc.Word();
      continue;
    } else if (key == "P" && sc.Peek() == '<') {
      sc.Bracketed(&closed);  // the return path
      continue;
    } else if (key == "R") {
      e->router = sc.Word();
      if (bounce) ended = ColonEnds(&e->router, sc, e);
      continue;
    } else if (key == "T") {
      e->transport = sc.Word();
      if (bounce) ended = ColonEnds(&e->transport, sc, e);
      continue;
    } else if (key == "A") {
      value = sc.Word();
      if (bounce) ended = ColonEnds(&value, sc, e);
      Auth(value, e);
      continue;
    } else if (key == "S") {
      value = sc.Word();
      Size(value, e);
      continue;
    }
    value = sc.QuotedWord();  // C="..", X=, CV=, DN=, QT=, DT=, I=, Q=, PS=, ST=, DKIM=, ...
    if (bounce) ended = ColonEnds(&value, sc, e);
  }
  if (e->message_id.empty()) return false;
  return (!bounce && !deferral) || ended;
}

// ---- The +arguments tail (FindArgsTail) -------------------------------------------------------
//
// The tail is split into pieces at every single space (double spaces give empty pieces). An
// argument is one non-empty piece, or (Exim quotes an argument holding white space) a run of
// pieces from one that opens with '"' to the first later one that ends with '"'. Counting the
// arguments of every suffix is one right-to-left sweep that keeps, for the piece at hand, the
// count of the suffix after it and the count after the nearest later piece ending with '"'.

constexpr int64_t kNoFit = -1;

bool PrintingPiece(string_view piece) {
  for (const char c : piece) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

bool OpensQuote(string_view piece) {
  return !piece.empty() && piece.front() == '"' && !(piece.size() >= 2 && piece.back() == '"');
}

// The start of the argument after the one starting at `pos` (a piece start), greedily as
// above; text.size() + 1 past the last one. `last_close` is the start of the last piece that
// ends with '"' (none after it: an opener there is a piece of its own, without a search).
size_t NextArgument(string_view text, size_t pos, size_t last_close) {
  size_t end = text.find(' ', pos);
  if (end == string_view::npos) end = text.size();
  if (pos < last_close && OpensQuote(text.substr(pos, end - pos))) {
    for (size_t q = end + 1; q <= text.size();) {
      size_t qe = text.find(' ', q);
      if (qe == string_view::npos) qe = text.size();
      if (qe > q && text[qe - 1] == '"') return qe + 1;
      q = qe + 1;
    }
  }
  return end + 1;
}

struct TailCandidate {
  size_t digits = 0;      // offset of N
  size_t args_begin = 0;  // offset of the first argument
  uint32_t count = 0;
};

}  // namespace

bool FindArgsTail(std::string_view text, ArgsTail* out) {
  text = TrimEol(text);
  struct Range {  // how many arguments a suffix can be read as; lo == kNoFit: none
    int64_t lo = kNoFit, hi = kNoFit;
    bool ok() const { return lo != kNoFit; }
    void Join(Range r) {
      if (!r.ok()) return;
      lo = ok() ? std::min(lo, r.lo) : r.lo;
      hi = ok() ? std::max(hi, r.hi) : r.hi;
    }
    Range Plus1() const { return ok() ? Range{lo + 1, hi + 1} : Range{}; }
  };
  constexpr size_t kKept = 8;  // the rightmost fitting tails are the ones that matter
  TailCandidate kept[kKept];   // right to left
  size_t n_kept = 0, n_fit = 0;
  Range after{0, 0};             // the pieces after the current one (none: 0 arguments)
  Range after_closers;           // after the later pieces that end with '"' (joined)
  bool control = false;          // a control byte in this piece or a later one
  bool after_args_word = false;  // the piece after the current one is "args:"
  Range after_args;
  size_t args_word_at = 0;
  size_t last_close = 0;  // the start of the last piece ending with '"' (0: none, or at 0)
  size_t end = text.size();
  while (true) {
    const size_t space = end == 0 ? string_view::npos : text.rfind(' ', end - 1);
    const size_t b = space == string_view::npos ? 0 : space + 1;
    const string_view piece = text.substr(b, end - b);
    // A fitting " N args:" ends here: this piece is N, the next "args:", and a space precedes.
    if (after_args_word && b > 0 && after_args.ok() && after_args.lo >= 1 && piece.size() <= 9) {
      bool ok = false;
      const auto n = static_cast<int64_t>(ToNumber(piece, UINT32_MAX, &ok));
      if (ok && n >= after_args.lo && n <= after_args.hi) {
        ++n_fit;
        if (n_kept < kKept) kept[n_kept++] = {b, args_word_at + 6, static_cast<uint32_t>(n)};
      }
    }
    after_args_word = piece == "args:";
    if (after_args_word) {
      after_args = after;
      args_word_at = b;
    }
    if (!PrintingPiece(piece)) control = true;
    Range here;
    if (!piece.empty() && !control) {
      here = after.Plus1();                                        // the piece alone
      if (piece.front() == '"') here.Join(after_closers.Plus1());  // "... up to a later ..."
    }
    if (!piece.empty() && piece.back() == '"') {
      after_closers.Join(after);
      if (last_close == 0) last_close = b;
    }
    after = here;
    if (space == string_view::npos) break;
    end = space;
  }
  if (n_kept == 0) return false;
  // Left to right: a later fitting tail replaces the choice unless it lies inside one of the
  // chosen tail's quoted arguments (then it is text of that argument, not a tail).
  const TailCandidate* best = &kept[n_kept - 1];
  size_t walk = best->args_begin;
  for (size_t k = n_kept - 1; k-- > 0;) {
    const TailCandidate& c = kept[k];
    while (walk < c.digits) walk = NextArgument(text, walk, last_close);
    if (walk == c.digits) {
      best = &c;
      walk = c.args_begin;
    }
  }
  out->path_end = best->digits - 1;
  out->args_begin = best->args_begin;
  out->count = best->count;
  out->ambiguous = n_fit > 1;
  return true;
}

namespace {

// "cwd=PATH N args: ARGS" (PATH may hold anything, even " N args:"; see FindArgsTail).
bool CwdArgs(Scan& sc, LogEvent* e) {
  const string_view rest = sc.Rest();  // after "cwd="
  ArgsTail tail;
  if (!FindArgsTail(rest, &tail)) {
    e->cwd = rest;
    return false;
  }
  e->cwd = rest.substr(0, tail.path_end);
  if (e->cwd == " (failed)") e->cwd = e->cwd.substr(0, 0);
  e->args = rest.substr(tail.args_begin);
  e->args_count = tail.count;
  e->ambiguous = tail.ambiguous;
  return true;
}

// "eximguard: held CLASS KEY LIMIT/minute|hour", after "eximguard: held ".
bool GuardHeld(Scan& sc, LogEvent* e) {
  e->key_class = sc.Word();
  sc.EatChar(' ');
  e->key = sc.Word();
  sc.EatChar(' ');
  uint64_t limit = 0;
  const bool have_limit = sc.Number(10, UINT32_MAX, &limit) && sc.EatChar('/');
  if (have_limit) {
    e->limit = static_cast<uint32_t>(limit);
    e->per = sc.Word();
  }
  if (e->key_class == "sender") e->sender = e->key;
  if (e->key_class == "cwd") e->cwd = e->key;
  return have_limit && !e->key.empty() && (e->per == "minute" || e->per == "hour") &&
         (e->key_class == "sender" || e->key_class == "cwd" || e->key_class == "uid");
}

// Optional " I=[ip]:port", " U=ident", " Ci=n" after a host, then ": message".
bool MessageAfterHost(Scan& sc, LogEvent* e) {
  while (true) {
    if (sc.Eat(": ") || (sc.Peek() == ':' && sc.i + 1 == sc.s.size())) {
      if (sc.Peek() == ':') ++sc.i;
      e->error = sc.Rest();
      return true;
    }
    if (!sc.EatChar(' ')) return false;
    string_view key;
    if (!sc.Key(&key)) return false;
    string_view value = sc.Word();
    if (key == "U") e->user = value;
    if (!value.empty() && value.back() == ':') {
      if (key == "U") e->user.remove_suffix(1);
      sc.EatChar(' ');
      e->error = sc.Rest();
      return true;
    }
  }
}

// "NAME authenticator failed for [H=]HOST[ I=..][ U=..]: MESSAGE (set_id=ID)".
bool AuthFailed(Scan& sc, LogEvent* e) {
  sc.Eat("H=");
  HostSpec(sc, e);
  if (!e->host_name.empty() && e->host_name.back() == ':') {  // no host ("for unknown: ...")
    e->host_name.remove_suffix(1);
    sc.EatChar(' ');
    e->error = sc.Rest();
  } else if (!MessageAfterHost(sc, e)) {
    return false;
  }
  // smtp_in.c smtp_in_auth(): the ID (string_printing()ed: spaces and ')' kept) follows Exim's
  // fixed text. "535 Incorrect authentication data (set_id=ID)" ends the line with it; the
  // 435 forms go on with "): " and Exim's (or the authenticator's) message, so there the ID
  // ends at the last "): ".
  const size_t at = e->error.find("(set_id=");
  if (at != string_view::npos) {
    const string_view id = e->error.substr(at + 8);
    size_t end = string_view::npos;
    if (!e->error.starts_with("535 ")) end = id.rfind("): ");
    if (end == string_view::npos) end = id.ends_with(')') ? id.size() - 1 : id.size();
    e->auth_id = id.substr(0, end);
  }
  e->attempts = 1;
  return !e->host_ip.empty() || !e->host_name.empty();
}

// "[DS ]H=.. [U=..] F=<s> [A=a:id] [temporarily ]rejected RCPT <r>[: message]". Returns false
// (kind left alone) when the walk over the fields does not reach "rejected RCPT".
bool RejectedRcpt(Scan& sc, LogEvent* e) {
  bool temporary = false;
  bool have_sender = false;
  while (true) {
    sc.SkipSpaces();
    if (sc.AtEnd()) return false;
    if (sc.Eat("temporarily ")) {
      temporary = true;
      if (!sc.Eat("rejected RCPT ")) return false;
      break;
    }
    if (sc.Eat("rejected RCPT ")) break;
    string_view key;
    if (!sc.Key(&key)) {
      const string_view word = sc.QuotedWord();
      if (word == "rejected") return false;  // rejected MAIL, rejected connection, ...
      continue;
    }
    bool closed = false;
    if (key == "H" && e->host_name.empty() && e->helo.empty() && e->host_ip.empty()) {
      HostSpec(sc, e);
    } else if (key == "U" && e->user.empty()) {
      e->user = sc.Word();
    } else if (key == "F" && !have_sender) {
      e->sender = sc.Peek() == '<' ? sc.Bracketed(&closed) : sc.Word();
      have_sender = true;
    } else if (key == "A" && e->auth.empty()) {
      // smtp_in.c smtp_handle_acl_fail(): "F=<s> A=NAME:ID [temporarily ]rejected RCPT": the
      // unquoted ID (it may hold spaces) runs to the first "rejected RCPT".
      const size_t at = sc.s.find(" rejected RCPT ", sc.i);
      size_t end = at;
      if (at != string_view::npos && at >= sc.i + 12 &&
          sc.s.compare(at - 12, 12, " temporarily") == 0) {
        end = at - 12;
      }
      if (end == string_view::npos || end < sc.i) {
        Auth(sc.Word(), e);
      } else {
        const string_view value = sc.s.substr(sc.i, end - sc.i);
        CheckAuthId(value, e);
        Auth(value, e);
        sc.i = end;
      }
    } else {
      if (key == "H" || key == "U" || key == "F" || key == "A") e->ambiguous = true;
      sc.QuotedWord();
    }
  }
  e->kind = temporary ? LineKind::kTempRejectedRcpt : LineKind::kRejectedRcpt;
  bool closed = true;
  if (sc.Peek() == '<') {
    e->recipient = sc.Bracketed(&closed);
  } else {
    const size_t b = sc.i;
    while (!sc.AtEnd() && sc.Peek() != ' ' && sc.Peek() != ':') ++sc.i;
    e->recipient = sc.s.substr(b, sc.i - b);
  }
  const size_t colon = sc.s.find(": ", sc.i);
  if (colon != string_view::npos) e->error = sc.s.substr(colon + 2);
  e->counted_as_unknown = !closed || e->recipient.empty();
  return true;
}

void Reset(LogEvent* e) {
  std::vector<std::string_view> recipients = std::move(e->recipients);
  recipients.clear();
  *e = LogEvent{};
  e->recipients = std::move(recipients);
}

// The text after Exim's frame (timestamp, pid, id): which kind, and its fields.
void Classify(Scan& sc, LogEvent* e) {
  e->kind = LineKind::kOther;
  e->counted_as_unknown = false;
  const string_view text = sc.Rest();
  e->text = text;
  const char c0 = sc.Peek(), c1 = sc.Peek(1);
  if (sc.Peek(2) == ' ' && text.size() > 3) {
    LineKind kind = LineKind::kOther;
    if ((c0 == '<' || c0 == '(') && c1 == '=') kind = LineKind::kArrival;
    if ((c0 == '=' || c0 == '-' || c0 == '>' || c0 == '*') && c1 == '>') kind = LineKind::kDelivery;
    if (c0 == '*' && c1 == '*') kind = LineKind::kBounce;
    if (c0 == '=' && c1 == '=') kind = LineKind::kDeferral;
    if (kind != LineKind::kOther) {
      e->kind = kind;
      e->flag = text.substr(0, 2);
      sc.i += 3;
      const bool ok = kind == LineKind::kArrival ? Arrival(sc, e) : Delivery(sc, e);
      e->counted_as_unknown = !ok;
      return;
    }
  }
  if (text == "Completed" || text.starts_with("Completed ")) {
    e->kind = LineKind::kCompleted;
    e->counted_as_unknown = e->message_id.empty();
    return;
  }
  if (text == "Frozen" || text.starts_with("Frozen ") || text.starts_with("frozen by ") ||
      text.starts_with("*** Frozen")) {
    e->kind = LineKind::kFrozen;
    const size_t word = text.find("rozen") + 5;
    e->error = text.substr(word);
    if (e->error.starts_with(' ')) e->error.remove_prefix(1);
    e->counted_as_unknown = e->message_id.empty();
    return;
  }
  if (sc.Eat("eximguard: held ")) {
    e->kind = LineKind::kGuardHeld;
    e->counted_as_unknown = !GuardHeld(sc, e);
    return;
  }
  if (sc.Eat("cwd=")) {
    e->kind = LineKind::kCwdArgs;
    e->counted_as_unknown = !CwdArgs(sc, e);
    return;
  }
  // "NAME authenticator failed for ...": NAME is one word.
  const size_t space = text.find(' ');
  if (space != string_view::npos && space > 0 &&
      text.substr(space).starts_with(" authenticator failed for ")) {
    e->kind = LineKind::kAuthFailed;
    e->auth = text.substr(0, space);
    sc.i += space + 26;
    e->counted_as_unknown = !AuthFailed(sc, e);
    return;
  }
  if (text.find("rejected RCPT ") != string_view::npos) {
    Scan walk = sc;
    if (!RejectedRcpt(walk, e)) {  // it fills fields as it walks: undo them on a miss
      e->host_name = e->helo = e->host_ip = e->user = e->sender = e->auth = e->auth_id = {};
      e->host_port = 0;
      e->ambiguous = false;
    }
  }
}

// ---- Dovecot -------------------------------------------------------------------------------

void SkipLevel(Scan& sc) {
  for (const string_view level : {"Info: ", "Warning: ", "Error: ", "Debug: ", "Fatal: "}) {
    if (sc.Eat(level)) return;
  }
}

// The ", "-joined log_format_elements of a login process (client_get_log_str()): "user=<u>,
// method=M, rip=IP, lip=IP, mpid=N, TLS, session=<S>", any of them missing. The user name comes
// first and may hold anything but ">, " (the name runs to the first one); the fields after it
// are Dovecot's, so for them the last occurrence counts. Returns whether there was a user=<..>.
bool DovecotElements(Scan& sc, LogEvent* e) {
  bool have_user = false;
  while (!sc.AtEnd()) {
    if (sc.Eat("user=<")) {
      const string_view rest = sc.Rest();
      size_t end = rest.find(">, ");
      if (end == string_view::npos) end = rest.ends_with('>') ? rest.size() - 1 : rest.size();
      if (!have_user) e->auth_id = rest.substr(0, end);
      have_user = true;
      sc.i += end + 1 <= rest.size() ? end + 1 : end;
    } else {
      string_view key;
      if (sc.Key(&key)) {
        if (sc.Peek() == '<') {
          bool closed = false;
          const string_view value = sc.Bracketed(&closed);
          if (key == "session" && closed) e->session = value;
        } else {
          const string_view value = sc.Until(',');
          if (key == "method") {
            e->auth = value;
          } else if (key == "rip") {
            e->host_ip = value;
          } else if (key == "lip") {
            e->local_ip = value;
          } else if (key == "rport") {
            bool ok = false;
            const uint64_t port = ToNumber(value, 65535, &ok);
            if (ok) e->host_port = static_cast<uint16_t>(port);
          }
        }
      }
      sc.Until(',');  // the rest of an element without a key ("TLS", "secured", ...)
    }
    if (!sc.Eat(", ")) {
      if (sc.AtEnd()) break;
      ++sc.i;  // a ',' without its space, or a '>' inside the user name: go on after it
    }
  }
  return have_user;
}

// The message of a login process, after "X-login: " (or the syslog tag "X-login[pid]: ").
void DovecotLoginBody(Scan& sc, string_view protocol, LogEvent* e) {
  e->protocol = protocol;
  SkipLevel(sc);
  e->kind = LineKind::kOther;
  e->counted_as_unknown = false;
  e->text = sc.Rest();
  if (sc.Eat("Login: ")) {
    e->kind = LineKind::kDovecotLogin;
    e->counted_as_unknown = !DovecotElements(sc, e) || e->host_ip.empty();
    return;
  }
  // The first "(auth failed, " is Dovecot's (the user name comes after it).
  const size_t at = e->text.find("(auth failed, ");
  if (at == string_view::npos) return;
  e->kind = LineKind::kDovecotAuthFailed;
  sc.i += at + 14;
  uint64_t attempts = 0;
  if (sc.Number(9, UINT32_MAX, &attempts)) e->attempts = static_cast<uint32_t>(attempts);
  // The elements follow the first "): " ("... secs): user=<.." in 2.2/2.3, "... secs)
  // (auth_failed): user=<.." in 2.4).
  const size_t colon = sc.s.find("): ", sc.i);
  if (colon == string_view::npos) {
    e->counted_as_unknown = true;
    return;
  }
  sc.i = colon + 3;
  DovecotElements(sc, e);
  e->counted_as_unknown = e->host_ip.empty() || e->attempts == 0;
}

// "X-login:" -> "X".
bool LoginProcess(string_view word, string_view* protocol) {
  if (!word.ends_with("-login:") || word.size() == 7) return false;
  *protocol = word.substr(0, word.size() - 7);
  return true;
}

constexpr bool IsNameChar(char c) {
  return IsBase62(c) || c == '-' || c == '_' || c == '.';
}

bool IpLike(string_view s) {
  if (s.empty() || s.size() > 45) return false;
  bool sep = false;
  for (const char c : s) {
    if (c == '.' || c == ':') {
      sep = true;
    } else if (!IsDigit(c) && !((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return sep;
}

bool SessionLike(string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (const char c : s) {
    if (c <= ' ' || c == '<' || c == '>' || c == ',' || c == '(' || c == ')' || c == 0x7f) {
      return false;
    }
  }
  return true;
}

// The inside of an auth request's "(...)" (auth-request.c): "USER[,IP][,master][,<SESSION>]"
// (2.2/2.3) or "USER[,IP][,sasl:MECH][,master]" (2.4). The user (str_sanitize()d, at most 64
// bytes) may hold ',' and anything else: the fields are taken from the right.
bool AuthIdentityInside(string_view inner, bool v24, LogEvent* e) {
  string_view session;
  if (!v24 && inner.ends_with('>')) {
    const size_t lt = inner.rfind(",<");
    if (lt == string_view::npos) return false;
    session = inner.substr(lt + 2, inner.size() - lt - 3);
    if (!SessionLike(session)) return false;
    inner = inner.substr(0, lt);
  }
  if (inner.ends_with(",master")) inner.remove_suffix(7);
  if (v24) {
    const size_t sasl = inner.rfind(",sasl:");
    if (sasl != string_view::npos && inner.find(',', sasl + 1) == string_view::npos) {
      inner = inner.substr(0, sasl);
    }
  }
  string_view ip;
  const size_t comma = inner.rfind(',');
  if (comma != string_view::npos && IpLike(inner.substr(comma + 1))) {
    ip = inner.substr(comma + 1);
    inner = inner.substr(0, comma);
  }
  if (inner.empty() || inner.size() > 67) return false;
  e->auth_id = inner == "?" ? inner.substr(0, 0) : inner;
  e->host_ip = ip;
  if (!session.empty()) e->session = session;
  return true;
}

// At '(' of an auth request's identity: the last ')' within reach whose inside parses and that
// the log prefix goes on after (": ", or '<' in 2.4) ends it (the user name comes first and
// may hold ')' itself). Leaves sc after the ')'.
bool AuthIdentity(Scan& sc, bool v24, LogEvent* e) {
  constexpr size_t kReach = 1 + 67 + 1 + 45 + 20 + 7 + 3 + 64 + 1;
  const size_t open = sc.i;
  size_t best = string_view::npos;
  LogEvent fields;
  for (size_t c = sc.s.find(')', open); c != string_view::npos && c - open <= kReach;
       c = sc.s.find(')', c + 1)) {
    const bool goes_on =
        sc.s.compare(c + 1, 2, ": ") == 0 || (v24 && c + 1 < sc.s.size() && sc.s[c + 1] == '<');
    if (!goes_on) continue;
    LogEvent f;
    if (AuthIdentityInside(sc.s.substr(open + 1, c - open - 1), v24, &f)) {
      best = c;
      fields.auth_id = f.auth_id;
      fields.host_ip = f.host_ip;
      fields.session = f.session;
    }
  }
  if (best == string_view::npos) return false;
  e->auth_id = fields.auth_id;
  e->host_ip = fields.host_ip;
  if (!fields.session.empty()) e->session = fields.session;
  sc.i = best + 1;
  return true;
}

// A passdb's (or mechanism's) verdict on one attempt: the failures auth-request.c,
// passdb-pam.c, passdb-ldap.c, db-checkpassword.c and mech-*.c log. Sets error, secret and
// attempts; false for any other message.
bool PassdbFailure(string_view msg, LogEvent* e) {
  bool failure = false;
  for (const string_view f : {"unknown user", "Password mismatch", "password mismatch",
                              "pam_authenticate() failed: ", "invalid credentials",
                              "Login failed (status=", "User unknown",
                              "Username character disallowed by auth_username_chars"}) {
    if (msg.starts_with(f)) failure = true;
  }
  if (!failure || msg.starts_with("invalid credentials length")) return false;
  // auth_request_log_login_failure(): MESSAGE[ (given password: P)][ - trying the next passdb]
  const bool next =
      msg.ends_with(" - trying the next passdb") || msg.ends_with(" - trying the next userdb");
  size_t secret = msg.find(" (given password: ");
  if (secret == string_view::npos) secret = msg.find(" (SHA1 of given password: ");
  if (secret != string_view::npos) {
    const string_view tail = next ? msg.substr(0, msg.size() - 25) : msg;
    size_t close = tail.rfind(')');
    if (close == string_view::npos || close < secret) close = tail.size() - 1;
    e->secret = msg.substr(secret + 1, close - secret);
    e->error = msg.substr(0, secret);
  } else {
    e->error = next ? msg.substr(0, msg.size() - 25) : msg;
  }
  e->attempts = next ? 0 : 1;
  return true;
}

// After Dovecot's auth process name: "auth: ..", "auth-worker(PID): .." (2.2/2.3) or the 2.4
// prefixes "auth(ID)[<S>]: .." and "auth-worker(ID)<PID>[<S>]: request [N]: ..".
bool DovecotAuthBody(Scan& sc, LogEvent* e) {
  const size_t start = sc.i;
  bool v24 = false;
  if (sc.Eat("auth-worker(")) {
    Scan t = sc;
    uint64_t pid = 0;
    if (t.Number(10, UINT32_MAX, &pid) && t.Eat("): ")) {
      e->pid = static_cast<uint32_t>(pid);
      sc = t;
    } else {
      v24 = true;
      --sc.i;
    }
    e->protocol = sc.s.substr(start, 11);
  } else if (sc.Eat("auth-worker: ")) {
    e->protocol = sc.s.substr(start, 11);
  } else if (sc.Eat("auth: ") || sc.Eat("auth(default): ")) {  // the latter: Dovecot 1.x
    e->protocol = sc.s.substr(start, 4);
  } else if (sc.Eat("auth(")) {
    v24 = true;
    --sc.i;
    e->protocol = sc.s.substr(start, 4);
  } else {
    return false;
  }
  e->kind = LineKind::kOther;
  e->counted_as_unknown = false;
  if (!v24) {
    SkipLevel(sc);
    // 2.3: "conn unix:auth-worker (pid=P,uid=U): auth-worker<N>: " before the request's prefix.
    if (sc.Starts("conn ")) {
      const size_t at = sc.s.find(": auth-worker<", sc.i);
      const size_t gt = at == string_view::npos ? at : sc.s.find(">: ", at);
      if (gt != string_view::npos) sc.i = gt + 3;
    }
    const size_t b = sc.i;
    while (!sc.AtEnd() && IsNameChar(sc.Peek())) ++sc.i;
    if (sc.i == b || sc.Peek() != '(') return true;
    e->auth = sc.s.substr(b, sc.i - b);
  }
  e->text = sc.Rest();
  if (!AuthIdentity(sc, v24, e)) return true;
  if (v24) {
    bool first = true;
    while (sc.Peek() == '<') {
      bool closed = false;
      const string_view v = sc.Bracketed(&closed);
      bool ok = false;
      const uint64_t pid = ToNumber(v, UINT32_MAX, &ok);
      if (first && ok && e->protocol.size() == 11) {
        e->pid = static_cast<uint32_t>(pid);
      } else if (closed && SessionLike(v)) {
        e->session = v;
      }
      first = false;
    }
    if (sc.Eat(": request [")) {
      sc.Until(']');
      sc.EatChar(']');
    }
    if (!sc.Eat(": ")) return true;
    SkipLevel(sc);
    // "PASSDB: " (auth_request_get_log_prefix_db()) or "MECH: " (the mechanism's event).
    const size_t b = sc.i;
    while (!sc.AtEnd() && IsNameChar(sc.Peek())) ++sc.i;
    if (sc.i > b && sc.Starts(": ")) {
      e->auth = sc.s.substr(b, sc.i - b);
      sc.i += 2;
    } else {
      sc.i = b;
    }
  } else if (!sc.Eat(": ")) {
    return true;
  }
  SkipLevel(sc);
  if (PassdbFailure(sc.Rest(), e)) e->kind = LineKind::kDovecotPassdbFailed;
  return true;
}

// PAM's own line about a Dovecot login (Linux-PAM pam_unix_auth.c, pam_sss, ...):
// "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 tty=dovecot
// ruser=USER rhost=IP[  user=USER]". Dovecot sets PAM_RUSER and PAM_USER to the name it
// tries (passdb-pam.c), so the name may hold " rhost="; it is the same on both sides.
bool PamBody(Scan& sc, LogEvent* e) {
  const size_t b = sc.i;
  if (!sc.Starts("pam_")) return false;
  while (!sc.AtEnd() && (IsBase62(sc.Peek()) || sc.Peek() == '_')) ++sc.i;
  const string_view module = sc.s.substr(b, sc.i - b);
  if (!sc.Eat("(dovecot:auth): ")) return false;
  e->kind = LineKind::kOther;
  e->counted_as_unknown = false;
  e->protocol = sc.s.substr(b, 3);
  e->auth = module;
  e->text = sc.Rest();
  if (!sc.Eat("authentication failure; ")) return true;
  e->kind = LineKind::kDovecotPassdbFailed;
  e->attempts = 1;
  const size_t ruser = sc.s.find(" ruser=", sc.i);
  if (ruser == string_view::npos) {
    e->counted_as_unknown = true;
    return true;
  }
  const string_view rest = sc.s.substr(ruser + 7);
  for (size_t k = rest.find(" rhost="); k != string_view::npos; k = rest.find(" rhost=", k + 1)) {
    const string_view user = rest.substr(0, k);
    const string_view after = rest.substr(k + 7);
    const size_t space = after.find(' ');
    if (space == string_view::npos) {  // "ruser=U rhost=IP": the name is not known to PAM
      e->auth_id = user;
      e->host_ip = after;
      return true;
    }
    for (const string_view sep : {"  user=", " user="}) {
      if (after.compare(space, sep.size(), sep) == 0 && after.substr(space + sep.size()) == user) {
        e->auth_id = user;
        e->host_ip = after.substr(0, space);
        return true;
      }
    }
  }
  e->counted_as_unknown = true;
  return true;
}

}  // namespace

std::string_view LineKindName(LineKind kind) {
  switch (kind) {
    case LineKind::kUnknown:
      return "unknown";
    case LineKind::kOther:
      return "other";
    case LineKind::kArrival:
      return "arrival";
    case LineKind::kDelivery:
      return "delivery";
    case LineKind::kBounce:
      return "bounce";
    case LineKind::kDeferral:
      return "deferral";
    case LineKind::kCompleted:
      return "completed";
    case LineKind::kFrozen:
      return "frozen";
    case LineKind::kRejectedRcpt:
      return "rejected_rcpt";
    case LineKind::kTempRejectedRcpt:
      return "temp_rejected_rcpt";
    case LineKind::kAuthFailed:
      return "auth_failed";
    case LineKind::kCwdArgs:
      return "cwd_args";
    case LineKind::kGuardHeld:
      return "guard_held";
    case LineKind::kDovecotLogin:
      return "dovecot_login";
    case LineKind::kDovecotAuthFailed:
      return "dovecot_auth_failed";
    case LineKind::kDovecotPassdbFailed:
      return "dovecot_passdb_failed";
  }
  return "unknown";
}

void ParseEximLine(std::string_view line, LogEvent* out, const ParseOptions& options) {
  Reset(out);
  Scan sc{TrimEol(line)};
  Civil when;
  uint32_t tag_pid = 0;
  if (!EximStamp(sc, &when)) {
    // A syslog line: "STAMP host tag[pid]: [n/m] " then Exim's text.
    Civil syslog_time;
    string_view tag;
    if (!SyslogStamp(sc, &syslog_time)) return;
    sc.Word();
    if (!sc.EatChar(' ') || !SyslogTag(sc, &tag, &tag_pid)) return;
    bool continuation = false;
    SplitMarker(sc, &out->fragment, &continuation);
    if (continuation || !EximStamp(sc, &when)) {
      if (!tag.starts_with("exim")) return;  // another program's line
      when = syslog_time;
    }
    if (continuation) {  // the rest of a split line: nothing to classify on its own
      out->kind = LineKind::kOther;
      out->counted_as_unknown = false;
      out->time = ResolveTime(when, options);
      out->millis = static_cast<uint16_t>(when.millis);
      out->zone_known = when.zone;
      out->pid = tag_pid;
      out->text = sc.Rest();
      return;
    }
  }
  out->time = ResolveTime(when, options);
  out->millis = static_cast<uint16_t>(when.millis);
  out->zone_known = when.zone;
  out->pid = tag_pid;
  if (sc.Peek() == '[' && IsDigit(sc.Peek(1))) {
    Scan t = sc;
    ++t.i;
    uint64_t pid = 0;
    if (t.Number(10, UINT32_MAX, &pid) && t.EatChar(']') && (t.AtEnd() || t.EatChar(' '))) {
      out->pid = static_cast<uint32_t>(pid);
      sc = t;
    }
  }
  MessageId(sc, &out->message_id);
  Classify(sc, out);
}

void ParseDovecotLine(std::string_view line, LogEvent* out, const ParseOptions& options) {
  Reset(out);
  Scan sc{TrimEol(line)};
  Civil when;
  if (!SyslogStamp(sc, &when)) return;
  // Dovecot's own file: "STAMP imap-login: ..." or "STAMP auth...". Syslog: "STAMP host
  // dovecot[pid]: imap-login: ..." (or auth...), or, with the process as the tag, "STAMP host
  // imap-login[pid]: ...". PAM's line may have any tag.
  const auto framed = [&](uint32_t pid) {
    out->time = ResolveTime(when, options);
    out->millis = static_cast<uint16_t>(when.millis);
    out->zone_known = when.zone;
    out->pid = pid;
  };
  const auto body = [&](Scan& at, uint32_t pid) {
    string_view protocol;
    Scan word = at;
    if (LoginProcess(word.Word(), &protocol)) {
      framed(pid);
      at.i = word.i;
      at.EatChar(' ');
      DovecotLoginBody(at, protocol, out);
      return true;
    }
    if (at.Starts("auth")) {
      framed(pid);
      if (DovecotAuthBody(at, out)) return true;
      Reset(out);
      return false;
    }
    return false;
  };
  if (body(sc, 0)) return;
  sc.Word();  // the host
  string_view tag;
  uint32_t pid = 0;
  if (!sc.EatChar(' ') || !SyslogTag(sc, &tag, &pid)) return;
  if (tag.ends_with("-login") && tag.size() > 6) {
    framed(pid);
    DovecotLoginBody(sc, tag.substr(0, tag.size() - 6), out);
    return;
  }
  if (tag.starts_with("dovecot") && body(sc, pid)) return;
  if (sc.Starts("pam_")) {
    framed(pid);
    if (!PamBody(sc, out)) Reset(out);
  }
}

void ParseLine(std::string_view line, LogEvent* out, const ParseOptions& options) {
  ParseEximLine(line, out, options);
  if (out->kind != LineKind::kUnknown) return;
  ParseDovecotLine(line, out, options);
}

LogEvent ParseEximLine(std::string_view line, const ParseOptions& options) {
  LogEvent e;
  ParseEximLine(line, &e, options);
  return e;
}

LogEvent ParseDovecotLine(std::string_view line, const ParseOptions& options) {
  LogEvent e;
  ParseDovecotLine(line, &e, options);
  return e;
}

LogEvent ParseLine(std::string_view line, const ParseOptions& options) {
  LogEvent e;
  ParseLine(line, &e, options);
  return e;
}

std::string UnescapeExim(std::string_view escaped) {
  std::string out;
  out.reserve(escaped.size());
  for (size_t i = 0; i < escaped.size(); ++i) {
    const char c = escaped[i];
    if (c != '\\' || i + 1 == escaped.size()) {
      out += c;
      continue;
    }
    const char n = escaped[++i];
    switch (n) {
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 'b':
        out += '\b';
        break;
      case 'v':
        out += '\v';
        break;
      case 'f':
        out += '\f';
        break;
      case 't':
        out += '\t';
        break;
      default:
        if (n >= '0' && n <= '7') {
          int v = 0, k = 0;
          while (k < 3 && i < escaped.size() && escaped[i] >= '0' && escaped[i] <= '7') {
            v = v * 8 + (escaped[i] - '0');
            ++i;
            ++k;
          }
          --i;
          out += static_cast<char>(v & 0xff);
        } else {
          out += n;
        }
    }
  }
  return out;
}

}  // namespace eg::sidecar
