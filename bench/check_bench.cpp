// check_bench.cpp - cost of one inline check, in process (Google Benchmark).
//
// BM_Check:      eg::Check() for one sender key chosen at random among N live keys, limits high
//                enough that every call is admitted (the full path: hash, policy read, slot
//                probe, two window CASes). N = 1,000 and 100,000; 1 and 2 threads, each thread
//                with its own half of the keys (different Exim processes, different accounts).
// BM_CheckShared: the same, both threads on all keys: cache lines bounce between the cores.
// With threads, Google Benchmark's "Time" is wall time per call of all threads together and
// "CPU" is the time one call takes on its thread: the latency is the CPU column.
// BM_GuardRcpt:  the exported eximguard_rcpt() entry point through dlopen, as Exim calls it
//                (adds argument handling, the clock read and the verdict string).
// BM_CheckFull:  a key whose minute window is full: the refusal path (read-only).
// BM_KeyHashOnly: building and hashing the key alone (the floor of BM_Check; no shared writes).
// Run: build/bench/check_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <unistd.h>

#include <ctime>
#include <memory>
#include <random>
#include <string>

#include "segment.h"
#include "table.h"

namespace {

// Writes the i-th test key ("user<i>@domain<i % 997>.example") into buf, as Exim hands the
// guard a freshly built string that is already in cache. Returns its length.
size_t KeyText(size_t i, char* buf) {
  char* p = buf;
  auto put = [&p](const char* s) {
    while (*s) *p++ = *s++;
  };
  auto num = [&p](size_t v) {
    char tmp[24];
    int n = 0;
    do {
      tmp[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v);
    while (n) *p++ = tmp[--n];
  };
  put("user");
  num(i);
  put("@domain");
  num(i % 997);
  put(".example");
  *p = '\0';
  return static_cast<size_t>(p - buf);
}

struct Fixture {
  std::string name = "/eg-bench-" + std::to_string(getpid());
  std::unique_ptr<eg::Segment> seg;
  size_t nkeys = 0;

  explicit Fixture(size_t n) : nkeys(n) {
    eg::SegmentSpec spec;
    spec.name = name;
    spec.capacity = 262144;
    eg::SegmentOutcome outcome{};
    std::string error;
    eg::RemoveSegment(name);
    seg = eg::CreateSegment(spec, &outcome, &error);
    eg::Policy p;
    p.class_limits[0] = {4000000000u, 4000000000u};
    p.rules.push_back({eg::KeyClass::kSender, "full@example.com", eg::kFlagOverride, {1, 1}});
    eg::PublishPolicy(seg->table, p, &error);
    const uint32_t now = static_cast<uint32_t>(time(nullptr));
    char buf[64];
    for (size_t i = 0; i < nkeys; ++i) {
      const eg::KeyRef k{eg::KeyClass::kSender, buf, KeyText(i, buf)};
      eg::Check(seg->table, &k, 1, 1, now, eg::Verdict::kDefer);
    }
  }
  ~Fixture() { eg::RemoveSegment(name); }
};

Fixture* g_fixture = nullptr;

void Setup(const benchmark::State& state) {
  g_fixture = new Fixture(state.range(0));
}
void Teardown(const benchmark::State&) {
  delete g_fixture;
  g_fixture = nullptr;
}

// Each thread checks its own share of the keys, as Exim processes serving different accounts do.
void BM_Check(benchmark::State& state) {
  std::minstd_rand rng(state.thread_index() + 1);
  const size_t threads = static_cast<size_t>(state.threads());
  const size_t share = g_fixture->nkeys / threads;
  const size_t me = static_cast<size_t>(state.thread_index());
  const uint32_t now = static_cast<uint32_t>(time(nullptr));
  char buf[64];
  for (auto _ : state) {
    const eg::KeyRef k{eg::KeyClass::kSender, buf, KeyText((rng() % share) * threads + me, buf)};
    benchmark::DoNotOptimize(eg::Check(g_fixture->seg->table, &k, 1, 1, now, eg::Verdict::kDefer));
  }
}
BENCHMARK(BM_Check)
    ->Arg(1000)
    ->Arg(100000)
    ->Threads(1)
    ->Threads(2)
    ->Setup(Setup)
    ->Teardown(Teardown)
    ->UseRealTime();

// Worst case: every thread checks any of the keys, so half the time the key's cache line was
// last written by the other core (as when many connections of one account race).
void BM_CheckShared(benchmark::State& state) {
  std::minstd_rand rng(state.thread_index() + 1);
  const size_t n = g_fixture->nkeys;
  const uint32_t now = static_cast<uint32_t>(time(nullptr));
  char buf[64];
  for (auto _ : state) {
    const eg::KeyRef k{eg::KeyClass::kSender, buf, KeyText(rng() % n, buf)};
    benchmark::DoNotOptimize(eg::Check(g_fixture->seg->table, &k, 1, 1, now, eg::Verdict::kDefer));
  }
}
BENCHMARK(BM_CheckShared)
    ->Arg(1000)
    ->Arg(100000)
    ->Threads(2)
    ->Setup(Setup)
    ->Teardown(Teardown)
    ->UseRealTime();

// Only the key text and its hash: no shared memory is written. With 2 threads it shows how much
// two threads slow each other down on this machine regardless of the table.
void BM_KeyHashOnly(benchmark::State& state) {
  std::minstd_rand rng(state.thread_index() + 1);
  const size_t n = g_fixture->nkeys;
  char buf[64];
  for (auto _ : state) {
    const size_t len = KeyText(rng() % n, buf);
    benchmark::DoNotOptimize(eg::KeyHash(g_fixture->seg->table, eg::KeyClass::kSender, buf, len));
  }
}
BENCHMARK(BM_KeyHashOnly)
    ->Arg(100000)
    ->Threads(1)
    ->Threads(2)
    ->Setup(Setup)
    ->Teardown(Teardown)
    ->UseRealTime();

void BM_CheckFull(benchmark::State& state) {
  const uint32_t now = static_cast<uint32_t>(time(nullptr));
  const std::string key = "full@example.com";
  const eg::KeyRef k{eg::KeyClass::kSender, key.data(), key.size()};
  for (auto _ : state) {
    benchmark::DoNotOptimize(eg::Check(g_fixture->seg->table, &k, 1, 1, now, eg::Verdict::kDefer));
  }
}
BENCHMARK(BM_CheckFull)->Arg(1000)->Setup(Setup)->Teardown(Teardown);

using Entry = int (*)(unsigned char**, int, unsigned char**);

void BM_GuardRcpt(benchmark::State& state) {
  void* so = dlopen(EG_SO_PATH, RTLD_NOW | RTLD_LOCAL);
  auto rcpt = reinterpret_cast<Entry>(dlsym(so, "eximguard_rcpt"));
  std::minstd_rand rng(1);
  const size_t n = g_fixture->nkeys;
  std::string seg = g_fixture->name, sender = "", host = "192.0.2.1", to = "rcpt@example.net";
  char auth[64];
  for (auto _ : state) {
    KeyText(rng() % n, auth);
    unsigned char* argv[5] = {
        reinterpret_cast<unsigned char*>(seg.data()), reinterpret_cast<unsigned char*>(auth),
        reinterpret_cast<unsigned char*>(sender.data()),
        reinterpret_cast<unsigned char*>(host.data()), reinterpret_cast<unsigned char*>(to.data())};
    unsigned char* yield = nullptr;
    benchmark::DoNotOptimize(rcpt(&yield, 5, argv));
  }
  dlclose(so);
}
BENCHMARK(BM_GuardRcpt)->Arg(1000)->Arg(100000)->Setup(Setup)->Teardown(Teardown);

}  // namespace

BENCHMARK_MAIN();
