// guard_fuzz.cpp - libFuzzer target: eximguard_rcpt / eximguard_local / eximguard_event with
// arbitrary arguments against a live table with tiny limits, overrides, a whitelist and a
// blocklist.
//
// Input: byte 0 picks the entry point (bits 0 and 5: rcpt, local, event), the argument count
// (bits 1-3: 3..7 args) and whether the fuzzer may choose the segment name (bit 4); the rest is
// split at '\0' into the arguments. Checks: the call returns OK (0), yields a NUL-terminated
// verdict that starts with ok/defer/hold/deny and contains only printable ASCII (the event entry:
// an empty string, always). Sanitizers catch the rest.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "segment.h"
#include "table.h"

extern "C" int eximguard_rcpt(unsigned char** yield, int argc, unsigned char* argv[]);
extern "C" int eximguard_local(unsigned char** yield, int argc, unsigned char* argv[]);
extern "C" int eximguard_event(unsigned char** yield, int argc, unsigned char* argv[]);

namespace {

std::string g_name;
std::unique_ptr<eg::Segment> g_seg;

void RemoveAtExit() {
  eg::RemoveSegment(g_name);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_name = "/eg-fuzz-" + std::to_string(getpid());
  eg::SegmentSpec spec;
  spec.name = g_name;
  spec.capacity = 256;
  spec.policy_capacity = 64;
  eg::SegmentOutcome outcome{};
  std::string error;
  g_seg = eg::CreateSegment(spec, &outcome, &error);
  if (!g_seg) abort();
  eg::Policy p;
  p.class_limits[0] = {3, 10};
  p.class_limits[1] = {2, 5};
  p.class_limits[2] = {4, 0};
  p.rules.push_back({eg::KeyClass::kSender, "a", eg::kFlagBlocked, {}});
  p.rules.push_back({eg::KeyClass::kSender, "b", eg::kFlagWhitelist, {}});
  p.rules.push_back({eg::KeyClass::kCwd, "/c", eg::kFlagOverride, {1, 1}});
  p.rules.push_back({eg::KeyClass::kUid, "1", eg::kFlagBlocked, {}});
  if (!eg::PublishPolicy(g_seg->table, p, &error)) abort();
  atexit(RemoveAtExit);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t control = data[0];
  std::vector<std::string> args;
  std::string cur;
  for (size_t i = 1; i < size; ++i) {
    if (data[i] == 0) {
      args.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(data[i]));
    }
  }
  args.push_back(cur);
  const size_t argc = 3 + ((control >> 1) & 7) % 5;
  args.resize(argc);
  if (!(control & 16)) args[0] = g_name;
  std::vector<unsigned char*> argv;
  for (auto& a : args) argv.push_back(reinterpret_cast<unsigned char*>(a.data()));
  unsigned char* yield = nullptr;
  if (control & 32) {  // event_action: counts an outcome, answers "" whatever it is given
    if (eximguard_event(&yield, static_cast<int>(argc), argv.data()) != 0 || yield == nullptr ||
        *yield != '\0')
      abort();
    return 0;
  }
  const int rc = (control & 1) ? eximguard_local(&yield, static_cast<int>(argc), argv.data())
                               : eximguard_rcpt(&yield, static_cast<int>(argc), argv.data());
  if (rc != 0 || yield == nullptr) abort();
  const char* v = reinterpret_cast<const char*>(yield);
  if (strncmp(v, "ok", 2) && strncmp(v, "defer", 5) && strncmp(v, "hold", 4) &&
      strncmp(v, "deny", 4)) {
    abort();
  }
  for (const char* p = v; *p; ++p) {
    if (*p < 0x20 || *p > 0x7e) abort();
  }
  return 0;
}
