// test_segment.h - a uniquely named, small segment per test, removed afterwards.
#ifndef EXIMGUARD_TESTS_TEST_SEGMENT_H_
#define EXIMGUARD_TESTS_TEST_SEGMENT_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "segment.h"
#include "table.h"

namespace eg::testing {

inline std::string UniqueSegmentName() {
  static std::atomic<int> counter{0};
  return "/eg-unit-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

struct TestSegment {
  SegmentSpec spec;
  std::unique_ptr<Segment> seg;

  explicit TestSegment(uint32_t capacity = 1024, uint32_t policy_capacity = 256) {
    spec.name = UniqueSegmentName();
    spec.capacity = capacity;
    spec.policy_capacity = policy_capacity;
    eg::SegmentOutcome outcome{};
    std::string error;
    seg = CreateSegment(spec, &outcome, &error);
    EXPECT_TRUE(seg) << error;
    EXPECT_EQ(outcome, SegmentOutcome::kCreated);
    if (seg) UnlockSegment(*seg);  // tests create the same segment again to check reuse
  }
  ~TestSegment() { RemoveSegment(spec.name); }
  const Table& table() const { return seg->table; }

  void Publish(const Policy& p) {
    std::string error;
    ASSERT_TRUE(PublishPolicy(seg->table, p, &error)) << error;
  }
};

inline Policy Limits(uint32_t sender_min, uint32_t sender_hour, uint32_t cwd_min = 0,
                     uint32_t cwd_hour = 0, uint32_t uid_min = 0, uint32_t uid_hour = 0) {
  Policy p;
  p.class_limits[0] = {sender_min, sender_hour};
  p.class_limits[1] = {cwd_min, cwd_hour};
  p.class_limits[2] = {uid_min, uid_hour};
  return p;
}

// The KeyRef points into `s`: pass a literal or a string that outlives the KeyRef.
inline KeyRef Sender(std::string_view s) {
  return {KeyClass::kSender, s.data(), s.size()};
}

}  // namespace eg::testing

#endif  // EXIMGUARD_TESTS_TEST_SEGMENT_H_
