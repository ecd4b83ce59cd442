// exim_query_test.cpp - asking Exim about itself (exim_query.h) with a fake Exim that prints what
// Debian's prints, Exim's local domain lists expanded (literal, @, +name, lsearch, dsearch, the
// items that cannot be listed), the config key that chooses them, and what kind of host this is
// (host_platform.h) on fake host trees.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "config.h"
#include "exim_query.h"
#include "fake_exim.h"
#include "host_platform.h"
#include "sidecar_test_util.h"

namespace eg::sidecar {
namespace {

using testing::FakeAnswer;
using testing::TempDir;
using testing::WriteFakeExim;
using testing::WriteFile;
using Strings = std::vector<std::string>;

// ---- the domain list -------------------------------------------------------------------------

EximDomainList Expand(const std::string& value,
                      const std::map<std::string, std::string>& named = {},
                      const std::string& primary = "mail.example.org") {
  EximLists lists;
  lists.primary_hostname = primary;
  lists.named_list = [&named](const std::string& name, std::string* v) {
    const auto it = named.find(name);
    if (it == named.end()) return false;
    *v = it->second;
    return true;
  };
  EximDomainList out;
  ExpandEximDomainList(value, lists, &out);
  return out;
}

TEST(EximDomains, DebiansDefaultListIsThePrimaryHostnameLocalhostAndTheOtherNames) {
  // update-exim4.conf's MAIN_LOCAL_DOMAINS: @:localhost:dc_other_hostnames
  const EximDomainList d = Expand("@:localhost:Example.COM:mail.example.org");
  EXPECT_EQ(d.domains, (Strings{"mail.example.org", "localhost", "example.com"}));
  EXPECT_TRUE(d.notes.empty()) << ::testing::PrintToString(d.notes);
}

TEST(EximDomains, SeparatorPrefixDoubledColonsAndEmptyItems) {
  EXPECT_EQ(Expand("<; a.example ; b.example ; ").domains, (Strings{"a.example", "b.example"}));
  EXPECT_EQ(Expand("<, a.example , b.example").domains, (Strings{"a.example", "b.example"}));
  EXPECT_EQ(Expand(" : a.example : : b.example :").domains, (Strings{"a.example", "b.example"}));
  EXPECT_EQ(Expand("a.example::x").domains, (Strings{"a.example:x"}));  // :: is a literal colon
  EXPECT_TRUE(Expand("").domains.empty());
  EXPECT_TRUE(Expand("@", {}, "").domains.empty());
  EXPECT_EQ(Expand("@", {}, "").notes, (Strings{"@: Exim's primary_hostname is unknown"}));
}

TEST(EximDomains, LsearchFilesAndDsearchDirectoriesAreRead) {
  TempDir dir;
  WriteFile(dir.File("virtual"),
            "# virtual domains\nShop.example: /var/mail/shop\nblog.example\tx\n"
            "\"quoted.example\": y\n  continuation.example\n\nlast.example\n");
  std::filesystem::create_directory(dir.File("vdir"));
  WriteFile(dir.File("vdir/two.example"), "");
  WriteFile(dir.File("vdir/one.example"), "");
  const EximDomainList d =
      Expand("lsearch;" + dir.File("virtual") + " : dsearch;" + dir.File("vdir") +
             " : partial-lsearch;" + dir.File("virtual") + " : lsearch;" + dir.File("missing"));
  EXPECT_EQ(d.domains, (Strings{"shop.example", "blog.example", "quoted.example", "last.example",
                                "one.example", "two.example"}));
  EXPECT_EQ(d.notes,
            (Strings{"lsearch;" + dir.File("missing") + ": cannot read " + dir.File("missing")}));
}

TEST(EximDomains, NamedListsAreFollowedAndLoopsEnd) {
  const EximDomainList d = Expand("+hosted : localhost",
                                  {{"hosted", "a.example : +more"}, {"more", "b.example : +more"}});
  EXPECT_EQ(d.domains, (Strings{"a.example", "b.example", "localhost"}));
  ASSERT_EQ(d.notes.size(), 1u);
  EXPECT_EQ(d.notes[0], "+more: lists nested more than 8 deep");
  EXPECT_EQ(Expand("+nothing").notes, (Strings{"+nothing: Exim has no domain list of that name"}));
}

TEST(EximDomains, WhatCannotBeListedIsNamedInTheNotes) {
  const EximDomainList d = Expand(
      "*.wild.example : ^re\\.example$ : !neg.example : @[] : @mx_any : "
      "mysql;select 1 : kept.example");
  EXPECT_EQ(d.domains, (Strings{"kept.example"}));
  EXPECT_EQ(d.notes, (Strings{"*.wild.example: a wildcard cannot be listed",
                              "^re\\.example$: a regular expression cannot be listed",
                              "!neg.example: a negated item; it is not subtracted",
                              "@[]: matched by Exim at run time (addresses, MX), not listed",
                              "@mx_any: matched by Exim at run time (addresses, MX), not listed",
                              "mysql;select 1: a mysql lookup cannot be listed"}));
}

// ---- asking Exim -----------------------------------------------------------------------------

TEST(EximQuery, ReadsDebiansLocalDomainsFromAFakeExim) {
  TempDir dir;
  WriteFile(dir.File("virtual"), "hosted.example: x\n");
  const std::string exim = WriteFakeExim(
      dir.File("exim4"),
      {{"-bP +local_domains",
        {"domainlist local_domains = @:localhost:lsearch;" + dir.File("virtual") + ":+extra\n"}},
       {"-bP primary_hostname", {"primary_hostname = vm.example.net\n"}},
       {"-bP +extra", {"domainlist extra = extra.example\n"}}});
  EximDomainList d;
  std::string error;
  ASSERT_TRUE(ReadEximLocalDomains({exim}, &d, &error)) << error;
  EXPECT_EQ(d.domains, (Strings{"vm.example.net", "localhost", "hosted.example", "extra.example"}));
  EXPECT_TRUE(d.notes.empty());
}

TEST(EximQuery, FailuresSayWhy) {
  TempDir dir;
  EximDomainList d;
  std::string error;
  EXPECT_FALSE(ReadEximLocalDomains({dir.File("no-exim")}, &d, &error));
  EXPECT_NE(error.find("cannot run " + dir.File("no-exim")), std::string::npos) << error;

  const std::string exim = WriteFakeExim(
      dir.File("exim"),
      {{"-bP +local_domains",
        {"No address, domain, host, or local part list called \"local_domains\" exists\n", 1}}});
  EXPECT_FALSE(ReadEximLocalDomains({exim}, &d, &error));
  EXPECT_EQ(error, exim +
                       " -bP +local_domains: exit status 1: No address, domain, host, or local "
                       "part list called \"local_domains\" exists");
  EXPECT_FALSE(ReadEximLocalDomains({}, &d, &error));
  EXPECT_EQ(error, "no Exim command (actions.exim_command is empty)");
}

TEST(EximQuery, OptionValuesAreReadFromBpOutput) {
  const std::string out =
      "log_selector = +smtp_protocol_error +pid\n"
      "log_selector_x = nope\n"
      "domainlist local_domains = @:localhost\n"
      "acl_not_smtp = \n";
  EXPECT_EQ(EximOptionValue(out, "log_selector"), "+smtp_protocol_error +pid");
  EXPECT_EQ(EximOptionValue(out, "local_domains"), "@:localhost");
  EXPECT_EQ(EximOptionValue(out, "acl_not_smtp"), "");
  EXPECT_EQ(EximOptionValue(out, "missing"), "");
  TempDir dir;
  const std::string exim = WriteFakeExim(dir.File("exim"), {{"-bP a b", {"a = 1\nb = 2\n"}}});
  const EximAnswer a = RunExim({exim}, {"-bP", "a", "b"});
  ASSERT_TRUE(a.ok) << a.error;
  EXPECT_EQ(EximOptionValue(a.output, "b"), "2");
}

// ---- the config key ------------------------------------------------------------------------

TEST(EximQuery, LocalDomainsFromEximIsAConfigKey) {
  EXPECT_FALSE(ParseConfig("{}", "x.json").config.local_domains_from_exim);
  const ConfigResult on = ParseConfig(R"({"local_domains_from_exim": true})", "x.json");
  ASSERT_TRUE(on.ok()) << on.errors[0];
  EXPECT_TRUE(on.config.local_domains_from_exim);
  EXPECT_EQ(ConfigToJson(on.config)["local_domains_from_exim"], true);
  const ConfigResult bad = ParseConfig(R"({"local_domains_from_exim": "yes"})", "x.json");
  ASSERT_EQ(bad.errors.size(), 1u);
  EXPECT_NE(bad.errors[0].find("local_domains_from_exim"), std::string::npos) << bad.errors[0];
}

// ---- the host --------------------------------------------------------------------------------

void Touch(const std::string& path) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  WriteFile(path, "");
}

TEST(HostPlatform, CpanelDebianOrOtherAndSystemdOrNot) {
  TempDir other;
  HostInfo h = DetectHost(other.path());
  EXPECT_EQ(h.platform, Platform::kOther);
  EXPECT_FALSE(h.systemd);
  EXPECT_FALSE(h.unit_installed);
  EXPECT_FALSE(h.init_script);

  TempDir debian;
  Touch(debian.File("etc/debian_version"));
  EXPECT_EQ(DetectHost(debian.path()).platform, Platform::kOther);  // no Exim's log directory
  std::filesystem::create_directories(debian.File("var/log/exim4"));
  Touch(debian.File("etc/init.d/eximguard"));
  h = DetectHost(debian.path());
  EXPECT_EQ(h.platform, Platform::kDebian);
  EXPECT_TRUE(h.init_script);
  EXPECT_FALSE(h.systemd);

  TempDir cpanel;
  std::filesystem::create_directories(cpanel.File("usr/local/cpanel"));
  std::filesystem::create_directories(cpanel.File("run/systemd/system"));
  Touch(cpanel.File("etc/debian_version"));  // cPanel wins (cPanel on Ubuntu)
  std::filesystem::create_directories(cpanel.File("var/log/exim4"));
  Touch(cpanel.File("etc/systemd/system/eximguard.service"));
  h = DetectHost(cpanel.path());
  EXPECT_EQ(h.platform, Platform::kCpanel);
  EXPECT_TRUE(h.systemd);
  EXPECT_TRUE(h.unit_installed);
}

TEST(HostPlatform, TheStartCommandIsTheOneThatWorksHere) {
  HostInfo h;
  const std::string cfg = kDefaultConfigPath;
  const std::string nohup =
      "nohup /usr/sbin/eximguard start --pidfile /run/eximguard.pid >>/var/log/eximguard.log "
      "2>&1 </dev/null &";
  EXPECT_EQ(StartCommand(h, "/usr/sbin/eximguard", cfg), nohup);
  h.systemd = true;  // systemd, but the unit is not installed: systemctl would fail
  EXPECT_EQ(StartCommand(h, "/usr/sbin/eximguard", cfg), nohup);
  h.unit_installed = true;
  EXPECT_EQ(StartCommand(h, "/usr/sbin/eximguard", cfg), "systemctl start eximguard");
  h.systemd = false;  // a unit file on a host not booted with systemd does not count
  EXPECT_EQ(StartCommand(h, "/usr/sbin/eximguard", cfg), nohup);
  h.init_script = true;
  EXPECT_EQ(StartCommand(h, "/usr/sbin/eximguard", cfg), "/etc/init.d/eximguard start");
  // Another config than the services run: the explicit line, quoted for a shell.
  EXPECT_EQ(StartCommand(h, "/opt/eg/eximguard", "/etc/my eg.json"),
            "nohup /opt/eg/eximguard start --config '/etc/my eg.json' --pidfile "
            "/run/eximguard.pid >>/var/log/eximguard.log 2>&1 </dev/null &");
}

TEST(HostPlatform, EximReloadAndTheLikelyMainlog) {
  TempDir root;
  HostInfo h = DetectHost(root.path());
  EXPECT_EQ(EximReloadCommand(h), "restart Exim (e.g. systemctl restart exim)");
  h.platform = Platform::kDebian;
  EXPECT_EQ(EximReloadCommand(h), "update-exim4.conf && /etc/init.d/exim4 reload");
  h.systemd = true;
  EXPECT_EQ(EximReloadCommand(h), "update-exim4.conf && systemctl reload exim4");
  h.platform = Platform::kCpanel;
  EXPECT_EQ(EximReloadCommand(h), "/scripts/restartsrv_exim");

  h.platform = Platform::kDebian;
  EXPECT_EQ(LikelyEximLog(h, "/var/log/exim_mainlog"), "");
  const std::string missing = MissingLogProblem(h, "exim_log", "/var/log/exim_mainlog", "/e.json");
  EXPECT_EQ(missing,
            "/var/log/exim_mainlog DOES NOT EXIST: eximguard sees nothing from it; `exim -bP "
            "log_file_path` says where Exim writes (%s is \"main\"): set \"exim_log\" to it in "
            "/e.json");
  Touch(root.File("var/log/exim4/mainlog"));
  EXPECT_EQ(LikelyEximLog(h, "/var/log/exim_mainlog"), "/var/log/exim4/mainlog");
  EXPECT_EQ(LikelyEximLog(h, "/var/log/exim4/mainlog"), "");
  EXPECT_EQ(MissingLogProblem(h, "exim_log", "/var/log/exim_mainlog", "/e.json"),
            "/var/log/exim_mainlog DOES NOT EXIST: eximguard sees nothing from it; Exim on this "
            "host writes /var/log/exim4/mainlog: set \"exim_log\": \"/var/log/exim4/mainlog\" in "
            "/e.json");
  EXPECT_EQ(MissingLogProblem(h, "exim_log", root.File("var/log/exim4/mainlog"), "/e.json"), "");
  EXPECT_EQ(MissingLogProblem(h, "dovecot_log", "", "/e.json"), "");  // not followed
  EXPECT_EQ(MissingLogProblem(h, "dovecot_log", "/var/log/dovecot.log", "/e.json"),
            "/var/log/dovecot.log DOES NOT EXIST: eximguard sees nothing from it; correct "
            "\"dovecot_log\" in /e.json (\"\" follows none)");
}

}  // namespace
}  // namespace eg::sidecar
