// whm_client_test.cpp - WhmClient against the fake HTTPS server standing in for WHM: exact
// requests (paths, query parameters, Authorization), answers read per cPanel's docs, the
// UAPI -> bridge fallback (and when not), the owner cache, retries, TLS refusal, and the token
// kept out of every reason.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fake_http_server.h"
#include "whm_client.h"

namespace eg::sidecar {
namespace {

using eg::testing::FakeHttpServer;
using eg::testing::FakeRequest;
using eg::testing::FakeResponse;
using Query = std::map<std::string, std::string>;

constexpr char kToken[] = "SECRETTOKEN0123456789ABCDEF";

constexpr char kOk[] = R"({"metadata":{"command":"x","reason":"OK","result":1,"version":1}})";
constexpr char kUapiOk[] =
    R"({"data":{"uapi":{"status":1,"errors":null,"data":null,"messages":null,"metadata":{},)"
    R"("warnings":null}},)"
    R"("metadata":{"command":"uapi_cpanel","reason":"OK","result":1,"version":1}})";

class WhmClientTest : public ::testing::Test {
 protected:
  WhmClientTest() : server_({.tls = true}) {
    settings_.url = server_.url() + "/";  // a trailing slash is fine
    settings_.token = kToken;
    settings_.user = "root";
    settings_.ca_file = server_.ca_file();
    settings_.timeout_seconds = 1;
    settings_.retries = 2;
    options_.backoff = std::chrono::milliseconds(1);
  }

  void TearDown() override {
    for (const std::string& reason : reasons_) {
      EXPECT_EQ(reason.find(kToken), std::string::npos) << reason;
      EXPECT_EQ(reason.find("SECRETTOKEN"), std::string::npos) << reason;
    }
  }

  // Every result goes through here so that TearDown can look at its reason.
  WhmResult Keep(WhmResult r) {
    reasons_.push_back(r.reason);
    return r;
  }

  WhmClient Client() { return WhmClient(settings_, options_); }

  static void ExpectAuth(const FakeRequest& r) {
    EXPECT_EQ(r.method, "GET");
    ASSERT_EQ(r.headers.count("authorization"), 1u);
    EXPECT_EQ(r.headers.at("authorization"), std::string("whm root:") + kToken);
  }

  FakeHttpServer server_;
  WhmSettings settings_;
  WhmClientOptions options_;
  std::vector<std::string> reasons_;
};

TEST_F(WhmClientTest, AccountActionsSendTheDocumentedRequests) {
  server_.Handle([](const FakeRequest&) { return FakeResponse{200, kOk}; });
  WhmClient whm = Client();
  struct Case {
    AccountAction action;
    std::string function;
  };
  for (const Case& c : {Case{AccountAction::kSuspendOutgoing, "suspend_outgoing_email"},
                        Case{AccountAction::kUnsuspendOutgoing, "unsuspend_outgoing_email"},
                        Case{AccountAction::kHoldOutgoing, "hold_outgoing_email"},
                        Case{AccountAction::kReleaseOutgoing, "release_outgoing_email"},
                        Case{AccountAction::kUnsuspend, "unsuspendacct"}}) {
    server_.ClearRequests();
    WhmResult r = Keep(whm.Account(c.action, "bob", "ignored except for suspendacct"));
    EXPECT_TRUE(r.ok) << c.function << ": " << r.reason;
    EXPECT_EQ(r.attempts, 1);
    EXPECT_FALSE(r.already);
    auto reqs = server_.requests();
    ASSERT_EQ(reqs.size(), 1u) << c.function;
    EXPECT_EQ(reqs[0].path, "/json-api/" + c.function);
    EXPECT_EQ(reqs[0].query, (Query{{"api.version", "1"}, {"user", "bob"}}));
    ExpectAuth(reqs[0]);
  }
  server_.ClearRequests();
  WhmResult r =
      Keep(whm.Account(AccountAction::kSuspend, "bob", "eximguard: 900 mails/min & more"));
  EXPECT_TRUE(r.ok);
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].path, "/json-api/suspendacct");
  EXPECT_EQ(reqs[0].target.find(' '), std::string::npos) << reqs[0].target;
  EXPECT_EQ(reqs[0].query, (Query{{"api.version", "1"},
                                  {"user", "bob"},
                                  {"reason", "eximguard: 900 mails/min & more"}}));
  ExpectAuth(reqs[0]);
}

TEST_F(WhmClientTest, MailboxActionsGoThroughUapiCpanel) {
  server_.Handle([](const FakeRequest&) { return FakeResponse{200, kUapiOk}; });
  WhmClient whm = Client();
  struct Case {
    MailboxAction action;
    std::string function;
  };
  for (const Case& c : {Case{MailboxAction::kSuspendOutgoing, "suspend_outgoing"},
                        Case{MailboxAction::kUnsuspendOutgoing, "unsuspend_outgoing"},
                        Case{MailboxAction::kHoldOutgoing, "hold_outgoing"},
                        Case{MailboxAction::kReleaseOutgoing, "release_outgoing"},
                        Case{MailboxAction::kSuspendLogin, "suspend_login"},
                        Case{MailboxAction::kUnsuspendLogin, "unsuspend_login"}}) {
    server_.ClearRequests();
    WhmResult r = Keep(whm.Mailbox(c.action, "bob", "info+x@example.com"));
    EXPECT_TRUE(r.ok) << c.function << ": " << r.reason;
    EXPECT_FALSE(r.legacy);
    EXPECT_EQ(r.attempts, 1);
    auto reqs = server_.requests();
    ASSERT_EQ(reqs.size(), 1u) << c.function;
    EXPECT_EQ(reqs[0].path, "/json-api/uapi_cpanel");
    EXPECT_NE(reqs[0].target.find("email=info%2Bx%40example.com"), std::string::npos)
        << reqs[0].target;
    EXPECT_EQ(reqs[0].query, (Query{{"api.version", "1"},
                                    {"cpanel.user", "bob"},
                                    {"cpanel.module", "Email"},
                                    {"cpanel.function", c.function},
                                    {"email", "info+x@example.com"}}));
    ExpectAuth(reqs[0]);
  }
}

TEST_F(WhmClientTest, UapiRefusalIsSurfacedAndNotSentToTheBridge) {
  server_.Handle([](const FakeRequest&) {
    return FakeResponse{200,
                        R"({"data":{"uapi":{"status":0,"errors":[)"
                        R"("The email account “info@example.com” does not exist.","second"]}},)"
                        R"("metadata":{"result":1,"reason":"OK"}})"};
  });
  WhmClient whm = Client();
  WhmResult r = Keep(whm.Mailbox(MailboxAction::kSuspendOutgoing, "bob", "info@example.com"));
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.transient);
  EXPECT_FALSE(r.legacy);
  EXPECT_EQ(r.reason, "The email account “info@example.com” does not exist.; second");
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(server_.requests().size(), 1u);
}

TEST_F(WhmClientTest, MailboxNamedLikeAFunctionIsStillAPlainRefusal) {
  server_.Handle([](const FakeRequest&) {
    return FakeResponse{
        200, R"({"data":{"uapi":{"status":0,"errors":["function@example.com: not found"]}},)"
             R"("metadata":{"result":1,"reason":"OK"}})"};
  });
  WhmClient whm = Client();
  WhmResult r = Keep(whm.Mailbox(MailboxAction::kHoldOutgoing, "bob", "function@example.com"));
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.legacy);
  EXPECT_EQ(server_.requests().size(), 1u);
}

TEST_F(WhmClientTest, FallsBackToTheBridgeWhenUapiCpanelIs404) {
  server_.Handle([](const FakeRequest& r) {
    if (r.path == "/json-api/uapi_cpanel") return FakeResponse{404, "not here"};
    return FakeResponse{200, R"({"apiversion":3,"func":"suspend_login","module":"Email",)"
                             R"("result":{"status":1,"errors":null,"data":null}})"};
  });
  WhmClient whm = Client();
  WhmResult r = Keep(whm.Mailbox(MailboxAction::kSuspendLogin, "bob", "info@example.com"));
  EXPECT_TRUE(r.ok) << r.reason;
  EXPECT_TRUE(r.legacy);
  EXPECT_EQ(r.attempts, 2);
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].path, "/json-api/cpanel");
  EXPECT_EQ(reqs[1].query, (Query{{"cpanel_jsonapi_user", "bob"},
                                  {"cpanel_jsonapi_apiversion", "3"},
                                  {"cpanel_jsonapi_module", "Email"},
                                  {"cpanel_jsonapi_func", "suspend_login"},
                                  {"email", "info@example.com"}}));
  ExpectAuth(reqs[1]);
}

TEST_F(WhmClientTest, FallsBackWhenWhmOrUapiSaysTheFunctionDoesNotExist) {
  for (const std::string& answer :
       {std::string(R"({"metadata":{"result":0,"reason":"Unknown app (“uapi_cpanel”) requested )"
                    R"(for this version (1) of the API."}})"),
        std::string(R"({"data":{"uapi":{"status":0,"errors":["The function “suspend_outgoing” )"
                    R"(does not exist in the module “Email”."]}},"metadata":{"result":1}})")}) {
    server_.ClearRequests();
    server_.Handle([answer](const FakeRequest& r) {
      if (r.path == "/json-api/uapi_cpanel") return FakeResponse{200, answer};
      return FakeResponse{200, R"({"result":{"status":0,"errors":["Mailbox is busy"]}})"};
    });
    WhmClient whm = Client();
    WhmResult r = Keep(whm.Mailbox(MailboxAction::kSuspendOutgoing, "bob", "info@example.com"));
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.transient);
    EXPECT_TRUE(r.legacy);
    EXPECT_NE(r.reason.find("Mailbox is busy"), std::string::npos) << r.reason;
    auto reqs = server_.requests();
    ASSERT_EQ(reqs.size(), 2u);
    EXPECT_EQ(reqs[1].path, "/json-api/cpanel");
  }
}

TEST_F(WhmClientTest, NoFallbackOnAPlainWhmRefusal) {
  server_.Handle([](const FakeRequest&) {
    return FakeResponse{200, R"({"metadata":{"result":0,"reason":"User “bob” does not exist."}})"};
  });
  WhmClient whm = Client();
  WhmResult r = Keep(whm.Mailbox(MailboxAction::kSuspendOutgoing, "bob", "info@example.com"));
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.legacy);
  EXPECT_EQ(r.reason, "User “bob” does not exist.");
  EXPECT_EQ(server_.requests().size(), 1u);
}

TEST_F(WhmClientTest, RefusalReasonIsSurfaced) {
  server_.Handle([](const FakeRequest&) {
    return FakeResponse{200, R"({"metadata":{"command":"suspend_outgoing_email","result":0,)"
                             R"("reason":"You cannot suspend the root user's outgoing email."}})"};
  });
  WhmClient whm = Client();
  WhmResult r = Keep(whm.Account(AccountAction::kSuspendOutgoing, "root"));
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.transient);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.reason, "You cannot suspend the root user's outgoing email.");
}

TEST_F(WhmClientTest, AlreadyInThatStateCountsAsOk) {
  server_.Handle([](const FakeRequest& r) {
    if (r.path == "/json-api/suspendacct") {
      return FakeResponse{200, R"({"metadata":{"result":0,"reason":"bob is already suspended."}})"};
    }
    return FakeResponse{200, R"({"metadata":{"result":0,"reason":"bob is not suspended."}})"};
  });
  WhmClient whm = Client();
  WhmResult r = Keep(whm.Account(AccountAction::kSuspend, "bob", "spam"));
  EXPECT_TRUE(r.ok);
  EXPECT_TRUE(r.already);
  r = Keep(whm.Account(AccountAction::kUnsuspend, "bob"));
  EXPECT_TRUE(r.ok);
  EXPECT_TRUE(r.already);
  // "not suspended" only means "already" for an undo.
  r = Keep(whm.Account(AccountAction::kHoldOutgoing, "bob"));
  EXPECT_FALSE(r.ok);
}

TEST_F(WhmClientTest, DomainOwnerIsCached) {
  server_.Handle([](const FakeRequest& r) {
    if (r.path == "/json-api/getdomainowner" && r.query.at("domain") == "example.com") {
      return FakeResponse{200, R"({"data":{"user":"bob"},"metadata":{"result":1,"reason":"OK"}})"};
    }
    return FakeResponse{404, "{}"};
  });
  WhmClient whm = Client();
  std::string user;
  WhmResult r = Keep(whm.DomainOwner("example.com", &user));
  ASSERT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(user, "bob");
  EXPECT_EQ(r.attempts, 1);
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].query, (Query{{"api.version", "1"}, {"domain", "example.com"}}));
  ExpectAuth(reqs[0]);

  user.clear();
  r = Keep(whm.DomainOwner("Example.COM", &user));
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(user, "bob");
  EXPECT_EQ(r.attempts, 0);
  EXPECT_EQ(server_.requests().size(), 1u);  // no new request

  whm.ClearOwnerCache();
  r = Keep(whm.DomainOwner("example.com", &user));
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(server_.requests().size(), 2u);
}

TEST_F(WhmClientTest, DomainOwnerCacheExpires) {
  server_.Handle([](const FakeRequest&) {
    return FakeResponse{200, R"({"data":{"user":"bob"},"metadata":{"result":1}})"};
  });
  options_.owner_ttl = std::chrono::seconds(0);
  WhmClient whm = Client();
  std::string user;
  EXPECT_TRUE(Keep(whm.DomainOwner("example.com", &user)).ok);
  EXPECT_TRUE(Keep(whm.DomainOwner("example.com", &user)).ok);
  EXPECT_EQ(server_.requests().size(), 2u);
}

TEST_F(WhmClientTest, DomainOwnerFallsBackToDomainuserdata) {
  for (const std::string& first :
       {std::string(R"({"data":{"user":null},"metadata":{"result":1,"reason":"OK"}})"),
        std::string(R"({"metadata":{"result":0,"reason":"Domain not found"}})")}) {
    server_.ClearRequests();
    server_.Handle([first](const FakeRequest& r) {
      if (r.path == "/json-api/getdomainowner") return FakeResponse{200, first};
      return FakeResponse{200, R"({"data":{"userdata":{"user":"carol","owner":"root",)"
                               R"("servername":"shop.example"}},"metadata":{"result":1,)"
                               R"("reason":"Obtained userdata."}})"};
    });
    WhmClient whm = Client();
    std::string user;
    WhmResult r = Keep(whm.DomainOwner("shop.example", &user));
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(user, "carol");
    EXPECT_EQ(r.attempts, 2);
    auto reqs = server_.requests();
    ASSERT_EQ(reqs.size(), 2u);
    EXPECT_EQ(reqs[1].path, "/json-api/domainuserdata");
    EXPECT_EQ(reqs[1].query, (Query{{"api.version", "1"}, {"domain", "shop.example"}}));
    ExpectAuth(reqs[1]);
  }
}

TEST_F(WhmClientTest, DomainNobodyOwnsIsNotCached) {
  server_.Handle([](const FakeRequest& r) {
    if (r.path == "/json-api/getdomainowner") {
      return FakeResponse{200, R"({"data":{"user":null},"metadata":{"result":1}})"};
    }
    return FakeResponse{
        200, R"({"metadata":{"result":0,"reason":"The domain nowhere.example does not exist."}})"};
  });
  WhmClient whm = Client();
  std::string user = "unchanged";
  WhmResult r = Keep(whm.DomainOwner("nowhere.example", &user));
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.transient);
  EXPECT_EQ(user, "unchanged");
  EXPECT_NE(r.reason.find("nowhere.example"), std::string::npos) << r.reason;
  Keep(whm.DomainOwner("nowhere.example", &user));
  EXPECT_EQ(server_.requests().size(), 4u);
}

TEST_F(WhmClientTest, TimeoutIsRetriedThenTransient) {
  server_.Handle([](const FakeRequest&) {
    FakeResponse slow{200, kOk};
    slow.delay_ms = 4000;
    return slow;
  });
  WhmClient whm = Client();
  auto start = std::chrono::steady_clock::now();
  WhmResult r = Keep(whm.Account(AccountAction::kSuspendOutgoing, "bob"));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.transient);
  EXPECT_EQ(r.attempts, 3);  // 1 + retries
  EXPECT_EQ(server_.requests().size(), 3u);
  EXPECT_LT(took, std::chrono::seconds(8));
  EXPECT_NE(r.reason.find("WHM did not answer"), std::string::npos) << r.reason;
}

TEST_F(WhmClientTest, ServerErrorsAreRetriedUntilSuccess) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  server_.Handle([calls](const FakeRequest&) {
    int n = ++*calls;
    if (n == 1) return FakeResponse{503, "busy"};
    if (n == 2) return FakeResponse{429, "slow down"};
    return FakeResponse{200, kOk};
  });
  WhmClient whm = Client();
  WhmResult r = Keep(whm.Account(AccountAction::kHoldOutgoing, "bob"));
  EXPECT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(r.attempts, 3);
}

TEST_F(WhmClientTest, BackoffDoublesBetweenAttempts) {
  server_.Handle([](const FakeRequest&) { return FakeResponse{500, "oops"}; });
  options_.backoff = std::chrono::milliseconds(100);
  WhmClient whm = Client();
  auto start = std::chrono::steady_clock::now();
  WhmResult r = Keep(whm.Account(AccountAction::kHoldOutgoing, "bob"));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.transient);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_GE(took, std::chrono::milliseconds(300));  // 100 + 200
  EXPECT_EQ(r.reason, "WHM answered HTTP 500");
}

TEST_F(WhmClientTest, NonJsonAnswerIsTransient) {
  server_.Handle([](const FakeRequest&) {
    return FakeResponse{200, "<html>cPanel is restarting</html>", "text/html"};
  });
  settings_.retries = 1;
  WhmClient whm = Client();
  WhmResult r = Keep(whm.Account(AccountAction::kSuspend, "bob"));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.transient);
  EXPECT_EQ(r.attempts, 2);
}

TEST_F(WhmClientTest, BadCredentialsAreNotRetried) {
  server_.Handle([](const FakeRequest&) {
    return FakeResponse{
        403, std::string(R"({"metadata":{"result":0,"reason":"Access denied for token )") + kToken +
                 "\"}}"};
  });
  WhmClient whm = Client();
  WhmResult r = Keep(whm.Account(AccountAction::kSuspend, "bob"));
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(r.transient);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_NE(r.reason.find("HTTP 403"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("********"), std::string::npos) << r.reason;
}

TEST_F(WhmClientTest, EchoedTokenIsScrubbedFromARefusal) {
  server_.Handle([](const FakeRequest&) {
    return FakeResponse{200, std::string(R"({"metadata":{"result":0,"reason":"token )") + kToken +
                                 " is not allowed to do this\"}}"};
  });
  WhmClient whm = Client();
  WhmResult r = Keep(whm.Mailbox(MailboxAction::kSuspendLogin, "bob", "a@example.com"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "token ******** is not allowed to do this");
}

TEST_F(WhmClientTest, UntrustedCertificateIsRefused) {
  settings_.ca_file = server_.untrusted_ca_file();
  settings_.retries = 1;
  WhmClient whm = Client();
  WhmResult r = Keep(whm.Account(AccountAction::kSuspend, "bob", "spam"));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.transient);
  EXPECT_NE(r.reason.find("SSL"), std::string::npos) << r.reason;
  EXPECT_TRUE(server_.requests().empty());
  std::string user;
  r = Keep(whm.DomainOwner("example.com", &user));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(server_.requests().empty());
}

TEST_F(WhmClientTest, VerifyTlsOffAcceptsTheCertificate) {
  server_.Handle([](const FakeRequest&) { return FakeResponse{200, kOk}; });
  settings_.ca_file.clear();
  settings_.verify_tls = false;
  WhmClient whm = Client();
  EXPECT_TRUE(Keep(whm.Account(AccountAction::kUnsuspend, "bob")).ok);
}

TEST_F(WhmClientTest, ConnectionRefusedIsTransient) {
  {
    FakeHttpServer gone({.tls = true});
    settings_.url = gone.url();
  }
  settings_.retries = 1;
  WhmClient whm = Client();
  WhmResult r = Keep(whm.Account(AccountAction::kSuspend, "bob"));
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.transient);
  EXPECT_EQ(r.attempts, 2);
}

TEST_F(WhmClientTest, EmptyTokenFailsWithoutARequest) {
  settings_.token.clear();
  WhmClient whm = Client();
  std::string user;
  for (const WhmResult& r : {whm.Account(AccountAction::kSuspend, "bob"),
                             whm.Mailbox(MailboxAction::kSuspendLogin, "bob", "a@example.com"),
                             whm.DomainOwner("example.com", &user)}) {
    Keep(r);
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.transient);
    EXPECT_EQ(r.attempts, 0);
    EXPECT_EQ(r.reason, "whm.token is not set");
  }
  EXPECT_TRUE(server_.requests().empty());
}

TEST_F(WhmClientTest, FunctionNames) {
  EXPECT_EQ(MailboxFunction(MailboxAction::kReleaseOutgoing), "release_outgoing");
  EXPECT_EQ(AccountFunction(AccountAction::kSuspend), "suspendacct");
}

}  // namespace
}  // namespace eg::sidecar
