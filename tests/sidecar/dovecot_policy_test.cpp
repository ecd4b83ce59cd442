// dovecot_policy_test.cpp - the decision of the Dovecot auth policy server
// (sidecar/dovecot_policy.h) with a made-up clock: each rule, where its window ends, its exceptions
// (loopback, allowlist, CIDRs, an IP that logged in successfully), reports that must not count, the
// memory bound, and the parsers of IPs, CIDRs and the listen address.

#include "dovecot_policy.h"

#include <gtest/gtest.h>

#include <string>

namespace eg::sidecar {
namespace {

constexpr int64_t kT0 = 1'000'000;  // any time: the policy only compares times

AuthQuery Q(const std::string& login, const std::string& ip, const std::string& protocol = "imap") {
  return AuthQuery{login, ip, protocol};
}

DovecotPolicySettings Settings() {
  DovecotPolicySettings s;  // failures 5 in 300 s, block 900 s, 5 IPs, tarpit 3 s, trust 3600 s
  return s;
}

// `n` failed logins of `login` from `ip`, one a second from `start`.
void Fail(DovecotPolicy& p, const std::string& login, const std::string& ip, int n, int64_t start) {
  for (int i = 0; i < n; ++i) p.Report(Q(login, ip), false, false, start + i);
}

TEST(DovecotPolicy, AnIpIsRefusedAfterFailuresWithinTheWindowEvenForAnotherAccount) {
  DovecotPolicy p(Settings());
  Fail(p, "alice@example.com", "203.0.113.9", 4, kT0);
  EXPECT_EQ(p.Allow(Q("alice@example.com", "203.0.113.9"), kT0 + 10).status, 0);
  p.Report(Q("bob@example.com", "203.0.113.9"), false, false, kT0 + 11);  // the 5th, any account
  const PolicyVerdict v = p.Allow(Q("carol@example.com", "203.0.113.9"), kT0 + 12);
  EXPECT_LT(v.status, 0);
  EXPECT_EQ(v.rule, PolicyRule::kIpBlocked);
  EXPECT_FALSE(v.message.empty());
  // Another IP is not affected.
  EXPECT_EQ(p.Allow(Q("carol@example.com", "203.0.113.10"), kT0 + 12).status, 0);
  EXPECT_EQ(p.Stats().refused, 1u);
  EXPECT_EQ(p.Stats().failures, 5u);
}

TEST(DovecotPolicy, FailuresSpreadWiderThanTheWindowDoNotRefuse) {
  DovecotPolicy p(Settings());
  // 5 failures, the first and the last exactly 300 s apart: not within 300 s.
  for (int i = 0; i < 5; ++i)
    p.Report(Q("a@x.example", "198.51.100.1"), false, false, kT0 + i * 75);
  EXPECT_EQ(p.Allow(Q("a@x.example", "198.51.100.1"), kT0 + 301).status, 0);
  // One more within 300 s of the 2nd: the last five now span 225 s.
  p.Report(Q("a@x.example", "198.51.100.1"), false, false, kT0 + 302);
  EXPECT_LT(p.Allow(Q("a@x.example", "198.51.100.1"), kT0 + 303).status, 0);
}

TEST(DovecotPolicy, TheBlockLastsBlockSecondsFromTheFailureThatMadeTheCount) {
  DovecotPolicy p(Settings());
  Fail(p, "a@x.example", "198.51.100.2", 5, kT0);  // the 5th at kT0 + 4
  EXPECT_LT(p.Allow(Q("a@x.example", "198.51.100.2"), kT0 + 4 + 899).status, 0);
  EXPECT_EQ(p.Allow(Q("a@x.example", "198.51.100.2"), kT0 + 4 + 900).status, 0);
}

TEST(DovecotPolicy, OurOwnRefusalsAreNotFailuresAndSuccessesDoNotForgive) {
  DovecotPolicy p(Settings());
  Fail(p, "a@x.example", "198.51.100.3", 4, kT0);
  // Reports of attempts the policy refused say nothing about the password.
  for (int i = 0; i < 10; ++i) p.Report(Q("a@x.example", "198.51.100.3"), false, true, kT0 + 5);
  EXPECT_EQ(p.Allow(Q("a@x.example", "198.51.100.3"), kT0 + 6).status, 0);
  // A success in between does not reset the count.
  p.Report(Q("mine@x.example", "198.51.100.3"), true, false, kT0 + 7);
  p.Report(Q("b@x.example", "198.51.100.3"), false, false, kT0 + 8);
  EXPECT_LT(p.Allow(Q("mine@x.example", "198.51.100.3"), kT0 + 9).status, 0);
  EXPECT_EQ(p.Stats().successes, 1u);
}

TEST(DovecotPolicy, AnAccountAttackedFromManyIpsIsTarpittedExceptFromItsOwnersIp) {
  DovecotPolicySettings s = Settings();
  s.account_ips = 3;
  DovecotPolicy p(s);
  p.Report(Q("Victim@Example.com", "192.0.2.50"), true, false, kT0);  // the owner logs in
  for (int i = 0; i < 2; ++i)
    p.Report(Q("victim@example.com", "203.0.113." + std::to_string(i + 1)), false, false, kT0 + 1);
  EXPECT_EQ(p.Allow(Q("victim@example.com", "203.0.113.77"), kT0 + 2).status, 0);
  p.Report(Q("VICTIM@example.com ", "203.0.113.3"), false, false, kT0 + 2);  // 3rd IP, same key
  const PolicyVerdict v = p.Allow(Q("victim@example.com", "203.0.113.77"), kT0 + 3);
  EXPECT_EQ(v.status, 3);  // tarpit seconds
  EXPECT_EQ(v.rule, PolicyRule::kAccountTarpit);
  // Each attacking IP is tarpitted too (none failed 5 times).
  EXPECT_EQ(p.Allow(Q("victim@example.com", "203.0.113.1"), kT0 + 3).status, 3);
  // The owner's IP logged in successfully within the hour: not slowed down.
  EXPECT_EQ(p.Allow(Q("victim@example.com", "192.0.2.50"), kT0 + 3).status, 0);
  // ... but only for this account, and only within trusted_seconds.
  EXPECT_EQ(p.Allow(Q("victim@example.com", "192.0.2.50"), kT0 + 3601).status, 0);  // window over
  p.Report(Q("victim@example.com", "203.0.113.4"), false, false, kT0 + 3600);
  p.Report(Q("victim@example.com", "203.0.113.5"), false, false, kT0 + 3600);
  p.Report(Q("victim@example.com", "203.0.113.6"), false, false, kT0 + 3600);
  EXPECT_EQ(p.Allow(Q("victim@example.com", "192.0.2.50"), kT0 + 3601).status, 3);
  // Other accounts are not affected.
  EXPECT_EQ(p.Allow(Q("other@example.com", "203.0.113.77"), kT0 + 3601).status, 0);
  EXPECT_EQ(p.Stats().tarpitted, 3u);
}

TEST(DovecotPolicy, TheTarpitEndsWhenTheFailingIpsAgeOutOfTheWindow) {
  DovecotPolicySettings s = Settings();
  s.account_ips = 2;
  DovecotPolicy p(s);
  p.Report(Q("v@x.example", "203.0.113.1"), false, false, kT0);
  p.Report(Q("v@x.example", "203.0.113.2"), false, false, kT0 + 100);
  EXPECT_EQ(p.Allow(Q("v@x.example", "198.51.100.9"), kT0 + 299).status, 3);
  EXPECT_EQ(p.Allow(Q("v@x.example", "198.51.100.9"), kT0 + 300).status, 0);
}

TEST(DovecotPolicy, RepeatedFailuresFromOneIpAreOneIpForTheAccountRule) {
  DovecotPolicySettings s = Settings();
  s.account_ips = 2;
  s.failures = 50;
  DovecotPolicy p(s);
  Fail(p, "v@x.example", "203.0.113.1", 20, kT0);
  EXPECT_EQ(p.Allow(Q("v@x.example", "198.51.100.9"), kT0 + 30).status, 0);
}

TEST(DovecotPolicy, LoopbackAllowlistAndCidrsAreNeverRefusedNorCounted) {
  DovecotPolicySettings s = Settings();
  IpRange r;
  std::string why;
  ASSERT_TRUE(ParseIpRange("10.1.0.0/16", &r, &why));
  s.allow.push_back(r);
  ASSERT_TRUE(ParseIpRange("2001:db8::7", &r, &why));
  s.allow.push_back(r);
  s.account_ips = 1;
  DovecotPolicy p(s);
  for (const std::string ip :
       {"127.0.0.1", "127.9.9.9", "::1", "10.1.200.3", "2001:db8::7", "::ffff:10.1.2.3"}) {
    Fail(p, "a@x.example", ip, 20, kT0);
    EXPECT_EQ(p.Allow(Q("a@x.example", ip), kT0 + 30).status, 0) << ip;
    EXPECT_TRUE(p.IsExempt(ip)) << ip;
  }
  EXPECT_EQ(p.Stats().failures, 0u);
  EXPECT_EQ(p.Stats().tracked_ips, 0u);
  // Just outside the CIDR, and the allowlisted IP's neighbour, are judged as usual.
  Fail(p, "a@x.example", "10.2.0.1", 5, kT0);
  EXPECT_LT(p.Allow(Q("b@x.example", "10.2.0.1"), kT0 + 10).status, 0);
  EXPECT_FALSE(p.IsExempt("2001:db8::8"));
  // The account was attacked (account_ips 1) from 10.2.0.1: even so, exempt IPs pass.
  EXPECT_EQ(p.Allow(Q("a@x.example", "10.1.0.1"), kT0 + 10).status, 0);
}

TEST(DovecotPolicy, LoopbackIsJudgedWhenItsExemptionIsOff) {
  DovecotPolicySettings s = Settings();
  s.exempt_loopback = false;
  DovecotPolicy p(s);
  Fail(p, "a@x.example", "127.0.0.2", 5, kT0);
  EXPECT_LT(p.Allow(Q("a@x.example", "127.0.0.2"), kT0 + 5).status, 0);
  EXPECT_EQ(p.Allow(Q("a@x.example", "127.0.0.3"), kT0 + 5).status, 0);
}

TEST(DovecotPolicy, IPv4MappedAndPlainIPv4AreTheSameIp) {
  DovecotPolicy p(Settings());
  Fail(p, "a@x.example", "::ffff:198.51.100.20", 3, kT0);
  Fail(p, "a@x.example", "198.51.100.20", 2, kT0 + 3);
  EXPECT_LT(p.Allow(Q("a@x.example", "198.51.100.20"), kT0 + 6).status, 0);
  EXPECT_EQ(p.Stats().tracked_ips, 1u);
}

TEST(DovecotPolicy, NoIpOrNoLoginNeverCrashesAndOnlyTheRuleThatCanApplyDoes) {
  DovecotPolicySettings s = Settings();
  s.account_ips = 1;
  DovecotPolicy p(s);
  Fail(p, "", "198.51.100.30", 5, kT0);  // no login: the IP rule still counts
  EXPECT_LT(p.Allow(Q("", "198.51.100.30"), kT0 + 5).status, 0);
  Fail(p, "a@x.example", "not an ip", 10, kT0);  // no IP: nothing to block, no IP to count
  EXPECT_EQ(p.Allow(Q("a@x.example", "not an ip"), kT0 + 10).status, 0);
  EXPECT_EQ(p.Allow(Q("", ""), kT0 + 10).status, 0);
}

TEST(DovecotPolicy, MemoryIsBoundedAndTheLeastRecentlyUsedIsForgottenFirst) {
  DovecotPolicySettings s = Settings();
  s.max_ips = 100;
  s.max_accounts = 50;
  DovecotPolicy p(s);
  Fail(p, "keep@x.example", "198.51.100.1", 4, kT0);
  for (int i = 0; i < 1000; ++i) {
    const std::string ip = "10." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ".1";
    p.Report(Q("user" + std::to_string(i) + "@x.example", ip), false, false, kT0 + 5);
    if (i % 10 == 0) p.Allow(Q("keep@x.example", "198.51.100.1"), kT0 + 5);  // keeps it recent
  }
  const DovecotPolicyStats st = p.Stats();
  EXPECT_LE(st.tracked_ips, 100u);
  EXPECT_LE(st.tracked_accounts, 50u);
  EXPECT_GE(st.evictions, 1000u - 100u + 1000u - 50u - 2u);
  // The recently used IP kept its four failures: one more blocks it.
  p.Report(Q("keep@x.example", "198.51.100.1"), false, false, kT0 + 6);
  EXPECT_LT(p.Allow(Q("keep@x.example", "198.51.100.1"), kT0 + 7).status, 0);
  // The first of the thousand was forgotten: four more failures do not block it.
  Fail(p, "user0@x.example", "10.0.0.1", 4, kT0 + 8);
  EXPECT_EQ(p.Allow(Q("user0@x.example", "10.0.0.1"), kT0 + 12).status, 0);
}

TEST(DovecotPolicy, ManyTrustedIpsPerAccountKeepTheMostRecent) {
  DovecotPolicySettings s = Settings();
  s.account_ips = 1;
  DovecotPolicy p(s);
  for (size_t i = 0; i < kMaxTrustedPerAccount + 4; ++i)
    p.Report(Q("v@x.example", "192.0.2." + std::to_string(i + 1)), true, false, kT0 + i);
  p.Report(Q("v@x.example", "203.0.113.1"), false, false, kT0 + 20);
  const std::string newest = "192.0.2." + std::to_string(kMaxTrustedPerAccount + 4);
  EXPECT_EQ(p.Allow(Q("v@x.example", newest), kT0 + 21).status, 0);
  EXPECT_EQ(p.Allow(Q("v@x.example", "192.0.2.1"), kT0 + 21).status, 3);  // pushed out
}

TEST(DovecotPolicy, ParsesIpsAndRanges) {
  IpRange r;
  std::string why;
  ASSERT_TRUE(ParseIpRange("192.0.2.77/24", &r, &why));
  EXPECT_EQ(IpText(r.base), "192.0.2.0");
  EXPECT_TRUE(InRange(r, *ParseIp("192.0.2.200")));
  EXPECT_FALSE(InRange(r, *ParseIp("192.0.3.1")));
  EXPECT_FALSE(InRange(r, *ParseIp("2001:db8::1")));
  ASSERT_TRUE(ParseIpRange("2001:db8:1234::/33", &r, &why));
  EXPECT_TRUE(InRange(r, *ParseIp("2001:db8:0::5")));
  EXPECT_FALSE(InRange(r, *ParseIp("2001:db8:8000::5")));
  ASSERT_TRUE(ParseIpRange("0.0.0.0/0", &r, &why));
  EXPECT_TRUE(InRange(r, *ParseIp("203.0.113.1")));
  for (const char* bad : {"", "1.2.3", "1.2.3.4/33", "::1/129", "1.2.3.4/", "1.2.3.4/x", "a.b.c.d",
                          "1.2.3.4/-1", "1.2.3.4 "}) {
    EXPECT_FALSE(ParseIpRange(bad, &r, &why)) << bad;
    EXPECT_FALSE(why.empty());
  }
  EXPECT_EQ(IpText(*ParseIp("::FFFF:1.2.3.4")), "1.2.3.4");
  EXPECT_TRUE(IsLoopbackIp(*ParseIp("127.255.0.1")));
  EXPECT_FALSE(IsLoopbackIp(*ParseIp("::2")));
  EXPECT_EQ(AccountKey("  Bob@Example.COM\t"), "bob@example.com");
}

TEST(DovecotPolicy, TheListenAddressMustBeLoopback) {
  std::string ip, why;
  uint16_t port = 0;
  ASSERT_TRUE(ParseLoopbackListen("127.0.0.1:8744", &ip, &port, &why)) << why;
  EXPECT_EQ(ip, "127.0.0.1");
  EXPECT_EQ(port, 8744);
  ASSERT_TRUE(ParseLoopbackListen("[::1]:1", &ip, &port, &why)) << why;
  EXPECT_EQ(ip, "::1");
  EXPECT_FALSE(ParseLoopbackListen("0.0.0.0:8744", &ip, &port, &why));
  EXPECT_NE(why.find("loopback"), std::string::npos);
  EXPECT_FALSE(ParseLoopbackListen("192.0.2.1:8744", &ip, &port, &why));
  EXPECT_FALSE(ParseLoopbackListen("[::]:8744", &ip, &port, &why));
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "localhost:80", "::1:80",
                          "[127.0.0.1]:80", "127.0.0.1:8x"}) {
    EXPECT_FALSE(ParseLoopbackListen(bad, &ip, &port, &why)) << bad;
  }
}

}  // namespace
}  // namespace eg::sidecar
