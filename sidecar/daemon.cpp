// daemon.cpp - see daemon.h.

#include "daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>
#include <vector>

#include "action_command.h"
#include "bot_commands.h"
#include "config.h"
#include "dovecot_policy_server.h"
#include "engine.h"
#include "exim_query.h"
#include "follow_up.h"
#include "ip_match.h"
#include "log_follower.h"
#include "notify.h"
#include "policy_from_state.h"
#include "publish.h"
#include "reconcile.h"
#include "slack_socket.h"
#include "state_store.h"
#include "table_watch.h"
#include "telegram_bot.h"
#include "text_escape.h"
#include "time_text.h"
#include "top.h"
#include "users.h"
#include "whm_client.h"

namespace eg::sidecar {
namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_reload = 0;

void OnSignal(int sig) {
  if (sig == SIGHUP) {
    g_reload = 1;
  } else {
    g_stop = 1;
  }
}

void InstallSignals() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a poll() waiting for log lines returns at once
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int64_t Now() {
  return static_cast<int64_t>(std::time(nullptr));
}

// One line to the daemon's log, from either thread. Lines are made with Printable() pieces;
// one that still holds a control character or invalid UTF-8 (an outside string someone forgot)
// is written Printable() whole: the log is read on terminals.
struct Logger {
  explicit Logger(std::ostream& o) : out(o) {}
  std::ostream& out;
  std::mutex mu;
  void operator()(const std::string& line) {
    const std::string stamp = LocalTimeText(Now());
    const std::string shown = ShowsAsIs(line) ? line : Printable(line);
    std::lock_guard lock(mu);
    out << stamp << " eximguard: " << shown << std::endl;
  }
};

// Follows up each recorded incident, one at a time, off the following thread: the rule's WHM,
// queue, firewall and command steps (follow_up.h; only for incidents that may punish), then the
// notice to the admins (notify.h, which sends on its own thread and digests floods).
class FollowUpWorker {
 public:
  FollowUpWorker(const Config& config, StateStore* store, Logger* log)
      : store_(store), log_(log), own_addresses_(OwnAddressTexts()) {
    Reconfigure(config);
    NotifierOptions n;
    n.log = [log](const std::string& line) { (*log)(line); };
    notifier_ = std::make_unique<Notifier>(config, std::move(n));
    thread_ = std::thread([this] { Loop(); });
  }
  // Finishes what is queued, then gives the notifier up to kNotifyDrain to send.
  ~FollowUpWorker() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
    const auto until = std::chrono::steady_clock::now() + kNotifyDrain;
    while (!notifier_->Idle() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    notifier_->Stop();
  }
  // A reloaded config: the next incidents use it.
  void Reconfigure(const Config& config) {
    std::lock_guard lock(mu_);
    config_ = std::make_shared<const Config>(config);
    if (config.whm.token.empty()) {
      whm_.reset();
    } else {
      whm_ = std::make_shared<WhmClient>(config.whm);
    }
    if (notifier_) notifier_->Reconfigure(config);
  }
  void Push(const HandledIncident& h) {
    {
      std::lock_guard lock(mu_);
      if (queue_.size() >= kMaxQueuedActions) {
        (*log_)("follow-up: " + std::to_string(kMaxQueuedActions) +
                " incidents already queued; this one is only recorded");
        return;
      }
      queue_.push_back(h);
    }
    cv_.notify_one();
  }
  // A notice that is no incident (a forgery attempt, the guard failing open, a lapsed block).
  void Tell(Notice n) { notifier_->Post(std::move(n)); }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and nothing left
      HandledIncident h = std::move(queue_.front());
      queue_.pop_front();
      std::shared_ptr<const Config> config = config_;
      std::shared_ptr<WhmClient> whm = whm_;
      lock.unlock();
      FollowUpOne(*config, whm.get(), h);
      lock.lock();
    }
  }

  void FollowUpOne(const Config& config, WhmClient* whm, const HandledIncident& h) {
    FollowUpEnv env;
    env.config = &config;
    env.store = store_;
    env.whm = whm;
    env.own_addresses = own_addresses_;
    const FollowUp f = RunFollowUp(env, h);
    const std::string what = h.incident.rule + " " + Printable(h.incident.key);
    for (const StepResult& s : f.steps)
      (*log_)("follow-up " + what + ": " + s.action + ": " + s.outcome);
    if (f.valve_tripped) {
      (*log_)(
          "SAFETY VALVE: actions.max_auto_suspensions_per_hour reached; automatic "
          "suspensions are paused, incidents are only blocked and notified");
    }
    notifier_->Post(FollowUpNotice(h, f));
  }

  StateStore* store_;
  Logger* log_;
  const std::vector<std::string> own_addresses_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<const Config> config_;  // guarded by mu_
  std::shared_ptr<WhmClient> whm_;        // guarded by mu_; null without whm.token
  std::unique_ptr<Notifier> notifier_;
  std::deque<HandledIncident> queue_;
  bool stop_ = false;
  std::thread thread_;  // last: started once the rest is ready
};

// <state_dir>/follow.lock, held while following.
class FollowLock {
 public:
  bool Take(const std::string& state_dir, std::string* error) {
    const std::string path = state_dir + "/" + kFollowLockName;
    fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ < 0) {
      *error = path + ": " + std::strerror(errno);
      return false;
    }
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int pid = FollowerPid(state_dir);
      *error = "another eximguard start or run is following the logs" +
               (pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string()) + "; lock " + path;
      return false;
    }
    const std::string pid = std::to_string(getpid()) + "\n";
    if (ftruncate(fd_, 0) != 0 || pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
      *error = path + ": " + std::strerror(errno);
      return false;
    }
    return true;
  }
  ~FollowLock() {
    if (fd_ >= 0) close(fd_);
  }

 private:
  int fd_ = -1;
};

// `start --pidfile FILE`: the pid, written once the follow lock is held; removed at the end if
// it still names us.
class PidFile {
 public:
  bool Write(const std::string& path, std::string* error) {
    const std::string tmp = path + ".tmp";
    const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    const std::string pid = std::to_string(getpid()) + "\n";
    const bool ok =
        fd >= 0 && write(fd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size());
    if (fd >= 0) close(fd);
    if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
      *error = "pid file " + path + ": " + std::strerror(errno);
      unlink(tmp.c_str());
      return false;
    }
    path_ = path;
    return true;
  }
  ~PidFile() {
    if (path_.empty()) return;
    char buf[32] = {};
    const int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return;
    const bool ours = read(fd, buf, sizeof buf - 1) > 0 && std::atoi(buf) == getpid();
    close(fd);
    if (ours) unlink(path_.c_str());
  }

 private:
  std::string path_;
};

struct FollowedLog {
  std::string name;  // checkpoint name in the store: "mainlog", "dovecot"
  std::string path;
  LogSource source = LogSource::kExim;
  std::unique_ptr<LogFollower> follower;
  Checkpoint saved;
  bool have_saved = false;
};

// Feeds the up to kWarmUpBytes of `path` before the checkpoint to the engine (see daemon.h).
// Returns the number of lines fed.
uint64_t WarmUp(Engine& engine, const FollowedLog& log, const Checkpoint& cp,
                const Checkpoint* floor) {
  const int fd = open(log.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return 0;
  struct stat st {};
  uint64_t lines = 0;
  if (fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_dev) == cp.dev &&
      static_cast<uint64_t>(st.st_ino) == cp.ino &&
      static_cast<uint64_t>(st.st_size) >= cp.offset) {
    uint64_t start = cp.offset > kWarmUpBytes ? cp.offset - kWarmUpBytes : 0;
    bool at_line_start = start == 0;
    if (floor != nullptr && floor->dev == cp.dev && floor->ino == cp.ino &&
        floor->offset <= cp.offset && floor->offset >= start) {
      start = floor->offset;  // a checkpoint: the start of a line
      at_line_start = true;
    }
    std::string buf(static_cast<size_t>(cp.offset - start), '\0');
    size_t got = 0;
    while (got < buf.size()) {
      const ssize_t n =
          pread(fd, buf.data() + got, buf.size() - got, static_cast<off_t>(start + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    std::string_view rest(buf.data(), got);
    if (!at_line_start) {  // began mid-line: skip to the next line
      const size_t nl = rest.find('\n');
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    }
    while (!rest.empty()) {
      const size_t nl = rest.find('\n');
      if (nl == std::string_view::npos) break;  // the checkpoint is at a line end: cannot happen
      engine.Feed(rest.substr(0, nl), log.source);
      ++lines;
      rest.remove_prefix(nl + 1);
    }
  }
  close(fd);
  return lines;
}

// The daemon's reconcile ledger: fed authenticated and local arrivals only, and bounded well
// below the library's defaults (a full ledger only makes reconcile credit less - it stops
// vouching - never wrongly, and the daemon's memory must stay flat).
LedgerLimits DaemonLedgerLimits() {
  LedgerLimits limits;
  limits.sees_every_counted_key = false;
  limits.max_keys = 20000;
  limits.max_bytes = size_t{16} << 20;
  return limits;
}

class Daemon {
 public:
  Daemon(std::string config_path, DaemonOptions options, std::ostream& out, std::ostream& err)
      : config_path_(std::move(config_path)), opt_(options), out_(out), err_(err), log_(err) {}

  int Run() {
    ConfigResult loaded = LoadConfig(config_path_);
    for (const std::string& e : loaded.errors) err_ << e << "\n";
    if (!loaded.ok()) return kFailure;
    config_ = std::move(loaded.config);
    std::string error;
    store_ = StateStore::Open(config_.state_dir, &error);
    if (!store_) {
      err_ << error << "\n";
      return kFailure;
    }
    if (!lock_.Take(config_.state_dir, &error)) {
      err_ << error << "\n";
      return kFailure;
    }
    if (!opt_.pidfile.empty() && !pidfile_.Write(opt_.pidfile, &error)) {
      err_ << error << "\n";
      return kFailure;
    }
    if (!Publish(&error)) {
      err_ << error << "\n";
      return kFailure;
    }
    if (!BuildEngine(&error) || !OpenLogs(&error)) {
      err_ << error << "\n";
      return kFailure;
    }
    watch_.Reconfigure(TableWatchSettingsFromConfig(config_));
    started_ = Now();
    if (!opt_.once) {
      InstallSignals();
      log_("started: following " + DescribeLogs() + "; state " + store_->path());
    }
    return opt_.once ? RunOnce() : RunForever();
  }

 private:
  static constexpr int kFailure = 1;

  bool Publish(std::string* error) {
    PublishResult r;
    std::vector<std::string> notes;
    if (!PublishFromStore(config_, *store_, static_cast<uint32_t>(Now()), &r, error, &notes)) {
      return false;
    }
    for (const std::string& n : notes) log_(n + " (skipped)");
    if (r.dropped.size() != dropped_blocks_) {  // loud, once per change
      dropped_blocks_ = r.dropped.size();
      if (!r.dropped.empty()) {
        const std::string text = DroppedText(config_, r);
        log_("ALERT: " + text);
        TellAdmins("eximguard: the policy table is full", text);
      }
    }
    if (!segment_ || r.created) {
      if (opt_.once) {
        out_ << Describe(config_, r) << "\n";
      } else {
        log_(Describe(config_, r));
      }
    }
    segment_ = std::move(r.segment);
    return true;
  }

  bool BuildEngine(std::string* error) {
    std::vector<WhitelistEntry> wl;
    if (!store_->ListWhitelist(&wl, error)) return false;
    const std::vector<PolicyKey> extra = WhitelistKeys(wl, nullptr);  // Publish() logs skips
    std::vector<std::string> domains;
    std::string note;
    if (!LoadLocalDomains(config_, &domains, &note, error)) return false;
    if (!note.empty()) log_(note);
    EngineHooks hooks;
    hooks.store = store_.get();
    hooks.republish = [this](std::string* e) { return Publish(e); };
    hooks.log = [this](const std::string& line) { log_(line); };
    if (!follow_up_) {
      follow_up_ = std::make_unique<FollowUpWorker>(config_, store_.get(), &log_);
    } else {
      follow_up_->Reconfigure(config_);
    }
    hooks.follow_up = [this](const HandledIncident& h) { follow_up_->Push(h); };
    hooks.table = [this]() -> const Table* { return segment_ ? &segment_->table : nullptr; };
    std::vector<StoredLimit> limits;
    if (!store_->ListLimits(&limits, error)) return false;
    const Config effective = WithStoredLimits(config_, limits);  // `eximguard set`'s limits
    DetectorSettings settings = DetectorSettingsFromConfig(effective, extra, domains);
    // A limit applies to what is sent after it: the times `set` stored, and now for every limit
    // this reload changed (the warm-up re-reads the last hour under the new limits).
    if (have_effective_) NoteChangedLimits(effective_, effective, Now());
    settings.rate_floors = rate_floors_;
    for (const StoredLimit& l : limits) {
      PolicyKey k = StoredLimitKey(l);
      k.klass = l.key_class;
      settings.rate_floors.push_back({KeyForDetectors(k), l.time});
    }
    effective_ = effective;
    have_effective_ = true;
    if (!opt_.once) {   // only the daemon reconciles (two reconcilers would credit twice)
      ledger_.reset();  // made again at the first arrival the warm-up feeds
      settings.on_arrival = [this](const CountedArrival& a) { OnArrival(a); };
    }
    ParseOptions parse;
    parse.utc = config_.log_utc;
    if (engine_) before_reload_ += engine_->stats();  // a reload: keep the old counters
    DetectorSettings policy_settings = settings;      // Dovecot's reports (FeedAuthAttempts)
    policy_settings.on_arrival = nullptr;
    policy_detectors_ = std::make_unique<Detectors>(std::move(policy_settings));
    engine_ = std::make_unique<Engine>(effective, std::move(settings), std::move(hooks), parse);
    ResetMarks marks;  // `reset`: what came before no longer counts for the key
    if (!LoadResetMarks(*store_, Now(), &marks, error)) return false;
    engine_->SetResetMarks(std::move(marks));
    return true;
  }

  // Rate floors for the limits that differ between two effective configs (classes and keys).
  void NoteChangedLimits(const Config& before, const Config& after, int64_t now) {
    for (int c = 0; c < kKeyClasses; ++c) {
      if (before.limits[c].per_minute != after.limits[c].per_minute ||
          before.limits[c].per_hour != after.limits[c].per_hour) {
        rate_floors_.push_back({PolicyKey{"", static_cast<KeyClass>(c), ""}, now});
      }
    }
    auto limit_of = [](const Config& cfg, const PolicyKey& k, Limit* out) {
      for (const Override& o : cfg.overrides) {
        if (Identity(o.key) == Identity(k)) {
          *out = EffectiveLimit(cfg, o);
          return true;
        }
      }
      return false;
    };
    auto compare = [&](const Config& a, const Config& b) {
      for (const Override& o : a.overrides) {
        Limit la = EffectiveLimit(a, o), lb{};
        if (!limit_of(b, o.key, &lb) || la.per_minute != lb.per_minute ||
            la.per_hour != lb.per_hour) {
          rate_floors_.push_back({KeyForDetectors(o.key), now});
        }
      }
    };
    compare(before, after);
    compare(after, before);
    if (rate_floors_.size() > 4096) {  // bounded: keep the newest
      rate_floors_.erase(rate_floors_.begin(), rate_floors_.end() - 4096);
    }
  }

  // The detectors' hook: arrivals the guard counted (authenticated or local) go to the ledger
  // under the keys the guard used (uid: the numeric uid of U=).
  void OnArrival(const CountedArrival& a) {
    if (!a.authenticated && !a.local) return;
    if (!ledger_) ledger_ = std::make_unique<ArrivalLedger>(a.time, DaemonLedgerLimits());
    if (!a.account.empty()) ledger_->Add(KeyClass::kSender, a.account, a.time, a.recipients_all);
    if (!a.cwd.empty()) ledger_->Add(KeyClass::kCwd, a.cwd, a.time, a.recipients_all);
    if (a.local && !a.user.empty()) {
      auto it = uid_of_user_.find(std::string(a.user));
      if (it == uid_of_user_.end()) {
        if (uid_of_user_.size() > 10000) uid_of_user_.clear();
        it = uid_of_user_.emplace(std::string(a.user), UidOfUser(std::string(a.user))).first;
      }
      if (!it->second.empty()) ledger_->Add(KeyClass::kUid, it->second, a.time, a.recipients_all);
    }
  }

  // The guard's own counters (table_watch.h): its refusals become trusted incidents, its
  // fail-open answers an alert.
  void LookAtTable() {
    if (!segment_) return;
    const uint32_t now = static_cast<uint32_t>(Now());
    std::vector<Incident> found = watch_.Look(segment_->table, now);
    for (Incident& i : found) engine_->Add(std::move(i));
    if (!found.empty()) engine_->Handle();
    for (const std::string& alert : watch_.TakeAlerts()) {
      log_("ALERT: " + alert);
      TellAdmins("eximguard: the guard is failing open", alert);
    }
  }

  // A notice about eximguard itself (no incident): what went wrong, in `title` and `text`.
  void TellAdmins(const std::string& title, const std::string& text) {
    if (!follow_up_) return;
    Notice n;
    n.kind = NoticeKind::kAction;
    n.host = HostName();
    n.title = title;
    n.action = text;
    follow_up_->Tell(std::move(n));
  }

  // Automatic blocks whose time is up (actions.block_minutes) are judged again: a key the guard
  // went on refusing while blocked (it kept trying: at least the throttled threshold within the
  // last 10 minutes) stays blocked for another period; any other is lifted. An admin's blocks
  // never lapse.
  void LapseBlocks() {
    std::vector<StoredBlock> blocks;
    std::string error;
    if (!store_->ActiveBlocks(&blocks, &error)) {
      log_("lapse: " + error);
      return;
    }
    const int64_t now = Now();
    bool changed = false;
    for (const StoredBlock& b : blocks) {
      if (b.expires == 0 || b.expires > now || b.by != kAutomaticBy || b.kind != kBlockKindBlock)
        continue;
      const uint64_t refused = watch_.RefusedWithin(b.key_class, b.key, 600);
      const std::string what = std::string(KeyClassName(b.key_class)) + " " + Printable(b.key);
      const uint32_t again = config_.detectors.throttled_refused;
      if (again > 0 && refused >= again) {
        const int64_t period = b.expires - b.since > 0 ? b.expires - b.since : 3600;
        if (store_->RenewBlock(b.id, now + period, kAutomaticBy, &error)) {
          log_("block of " + what + " lapsed and is renewed: the guard still refused " +
               std::to_string(refused) + " of its recipients in the last 10 minutes");
        }
        continue;
      }
      int removed = 0;
      if (store_->RemoveBlock(b.key_class, b.key, kBlockKindBlock, now, "eximguard (lapsed)",
                              &removed, &error) &&
          removed > 0) {
        changed = true;
        log_("block of " + what + " lapsed (" + Printable(b.reason) + ")");
      }
    }
    if (changed && !Publish(&error)) log_("lapse: policy not published: " + error);
  }

  void ReconcileTable() {
    if (!ledger_ || !segment_) return;
    const ReconcileStats st =
        Reconcile(segment_->table, *ledger_, static_cast<uint32_t>(Now()), kReconcileLagSeconds);
    reconciled_ += st.recipients_credited;
    if (st.recipients_credited > 0) {
      log_("reconcile: credited back " + std::to_string(st.recipients_credited) +
           " recipients counted at RCPT time that never became a message, on " +
           std::to_string(st.keys_corrected) + " keys");
    }
  }

  bool OpenLogs(std::string* error) {
    logs_.clear();
    auto add = [&](const std::string& name, const std::string& path, LogSource source) {
      FollowedLog log;
      log.name = name;
      log.path = path;
      log.source = source;
      if (!store_->LoadCheckpoint(name, &log.saved, &log.have_saved, error)) return false;
      log.follower = std::make_unique<LogFollower>(path);
      if (!log.follower->Open(log.have_saved ? &log.saved : nullptr, error)) return false;
      const std::string& msg = log.follower->open_message();
      if (!msg.empty() && !opt_.once) log_(name + " " + path + ": " + msg);
      logs_.push_back(std::move(log));
      return true;
    };
    if (!add("mainlog", config_.exim_log, LogSource::kExim)) return false;
    if (!config_.dovecot_log.empty() && !add("dovecot", config_.dovecot_log, LogSource::kDovecot)) {
      return false;
    }
    WarmUpAll();
    return true;
  }

  void WarmUpAll() {
    uint64_t lines = 0;
    for (const FollowedLog& log : logs_) {
      if (!log.have_saved) continue;
      Checkpoint floor;
      bool have_floor = false;
      std::string error;
      store_->LoadCheckpoint(log.name + kSkipFloorSuffix, &floor, &have_floor, &error);
      lines += WarmUp(*engine_, log, log.saved, have_floor ? &floor : nullptr);
    }
    engine_->Discard();  // a warm-up refills the windows and records nothing
    warm_lines_ = engine_->stats().lines;
    if (lines > 0 && !opt_.once) {
      log_("warmed up the detectors with " + std::to_string(lines) +
           " lines before the checkpoint");
    }
  }

  std::string DescribeLogs() const {
    std::string s;
    for (const FollowedLog& log : logs_) s += (s.empty() ? "" : ", ") + log.path;
    return s;
  }

  // One batch from each log; returns the number of lines processed.
  size_t Step(std::chrono::milliseconds wait) {
    size_t total = 0;
    for (FollowedLog& log : logs_) {
      const std::vector<FollowedLine> lines = log.follower->Poll(wait);
      for (const FollowedLine& l : lines) engine_->Feed(l.text, log.source);
      total += lines.size();
      if (!lines.empty()) {
        engine_->Handle();
        SaveCheckpoint(log);
      }
      wait = std::chrono::milliseconds(0);  // only the first log waits
    }
    return total;
  }

  void SaveCheckpoint(FollowedLog& log) {
    const Checkpoint cp = log.follower->checkpoint();
    if (log.have_saved && cp == log.saved) return;
    std::string error;
    if (store_->SaveCheckpoint(log.name, cp, &error)) {
      log.saved = cp;
      log.have_saved = true;
    } else {
      log_("checkpoint of " + log.path + " not saved: " + error);
    }
  }

  int RunOnce() {
    while (Step(std::chrono::milliseconds(0)) > 0) {
    }
    for (FollowedLog& log : logs_) SaveCheckpoint(log);  // a switch to a new file counts too
    WriteStatus();
    const EngineStats& s = engine_->stats();
    out_ << "processed " << s.lines - warm_lines_ << " new lines (and " << warm_lines_
         << " before the checkpoint again, to warm up the detectors); " << s.unparsed
         << " lines not understood; " << s.incidents << " incidents detected, " << s.recorded
         << " recorded, " << s.cooldown << " within their cooldown, " << s.blocks
         << " keys blocked\n";
    return s.errors == 0 ? 0 : kFailure;
  }

  int RunForever() {
    SetUpBots();
    LookAtTable();  // the first look is the baseline: refusals from before are not judged
    SetUpDovecotPolicy();
    WriteStatus();  // also tells `status` (and tests) that the daemon is up
    Clock::time_point next_status = Clock::now() + std::chrono::seconds(2);
    Clock::time_point next_prune = Clock::now();
    Clock::time_point next_reconcile = Clock::now() + std::chrono::seconds(opt_.reconcile_seconds);
    Clock::time_point next_look = Clock::now() + kTableLookEvery;
    Clock::time_point next_lapse = Clock::now() + std::chrono::seconds(60);
    while (!g_stop) {
      if (g_reload) {
        g_reload = 0;
        Reload();
      }
      const size_t n = Step(opt_.poll);
      FeedAuthAttempts();
      TellForgeries();
      if (Clock::now() >= next_look) {
        LookAtTable();
        next_look = Clock::now() + kTableLookEvery;
      }
      if (Clock::now() >= next_lapse) {
        LapseBlocks();
        next_lapse = Clock::now() + std::chrono::seconds(60);
      }
      if (ledger_) {  // at the end of the log: everything logged before now is in the ledger
        const int64_t t = engine_->stats().last_time;
        ledger_->CaughtUp(n == 0 ? std::max(t, Now() - 5) : t);
      }
      const Clock::time_point now = Clock::now();
      if (now >= next_reconcile) {
        ReconcileTable();
        next_reconcile = now + std::chrono::seconds(opt_.reconcile_seconds);
      }
      if (now >= next_status) {
        WriteStatus();
        next_status = now + std::chrono::seconds(2);
      }
      if (now >= next_prune) {
        Prune();
        next_prune = now + std::chrono::hours(1);
      }
    }
    for (FollowedLog& log : logs_) SaveCheckpoint(log);
    telegram_.reset();  // each stops within a second or two
    slack_.reset();
    dovecot_.reset();
    WriteStatus();
    const EngineStats s = Totals();
    log_("stopped: " + std::to_string(s.lines) + " lines, " + std::to_string(s.recorded) +
         " incidents recorded");
    return 0;
  }

  void Reload() {
    ConfigResult loaded = LoadConfig(config_path_);
    if (!loaded.ok()) {
      for (const std::string& e : loaded.errors) log_("reload refused: " + e);
      return;
    }
    Config old = std::move(config_);
    config_ = std::move(loaded.config);
    std::string error;
    if (config_.state_dir != old.state_dir || config_.exim_log != old.exim_log ||
        config_.dovecot_log != old.dovecot_log || config_.shm_name != old.shm_name) {
      log_("reload: state_dir, exim_log, dovecot_log and shm_name take effect at the next start");
      config_.state_dir = old.state_dir;
      config_.exim_log = old.exim_log;
      config_.dovecot_log = old.dovecot_log;
      config_.shm_name = old.shm_name;
    }
    if (!Publish(&error)) log_("reload: policy not published: " + error);
    watch_.Reconfigure(TableWatchSettingsFromConfig(config_));
    if (!BuildEngine(&error)) {
      log_("reload: " + error);
      return;
    }
    for (FollowedLog& log : logs_) SaveCheckpoint(log);
    WarmUpAll();
    SetUpBots();
    SetUpDovecotPolicy();
    log_("reloaded " + config_path_);
  }

  // The admin bots, `start` only: made at start, and made again on a reload that changed their
  // section (a new token, API URL or CA); admins and chats change in place.
  void SetUpBots() {
    const nlohmann::ordered_json shown = ConfigToJson(config_);
    const TelegramSettings& t = config_.telegram;
    if (t.token.empty()) {
      telegram_.reset();
    } else if (!telegram_ || shown["telegram"] != bot_sections_["telegram"]) {
      telegram_.reset();
      TelegramBotOptions o;
      o.log = [this](const std::string& line) { log_(line); };
      telegram_ = std::make_unique<TelegramBot>(config_path_, config_, std::move(o));
      telegram_->Start();
      log_("telegram bot started");
    }
    const SlackSettings& sl = config_.slack;
    if (sl.bot_token.empty() || sl.app_token.empty()) {
      slack_.reset();
    } else if (!slack_ || shown["slack"] != bot_sections_["slack"]) {
      slack_.reset();
      SlackBotOptions o;
      o.log = [this](const std::string& line) { log_(line); };
      slack_ = std::make_unique<SlackBot>(
          sl,
          [path = config_path_, notify = sl.notify_channel](const SlackCommand& c) {
            BotContext ctx;
            ctx.config_path = path;
            ctx.caller_id = c.user_id;
            ctx.is_admin = c.is_admin;
            // Reading too is for admins, or for anyone in the admins' notification channel.
            ctx.may_read = c.is_admin || (!notify.empty() && c.channel_id == notify);
            ctx.channel = "slack";
            ctx.markup = Markup::kMrkdwn;
            return RunBotCommand(ctx, c.text).text;
          },
          std::move(o));
      slack_->Start();
      log_("slack bot started");
    }
    bot_sections_ = {{"telegram", shown["telegram"]}, {"slack", shown["slack"]}};
  }

  // ---- Dovecot's auth policy server (`start` only; dovecot_policy_server.h) ----------------
  // Made at start when dovecot_policy.enabled, made again on a reload that changed the section
  // (its memory of failures starts afresh), stopped on SIGTERM. Its attempts are, for now, only
  // counted and each refusal logged; they arrive on the server's thread.
  struct DovecotCounters {
    std::atomic<uint64_t> attempts{0};  // reports
    std::atomic<uint64_t> failed{0};
    std::atomic<uint64_t> succeeded{0};
    std::atomic<uint64_t> refused{0};  // allows we refused
  };

  void SetUpDovecotPolicy() {
    const nlohmann::ordered_json section = ConfigToJson(config_)["dovecot_policy"];
    if (!config_.dovecot_policy.enabled) {
      if (dovecot_) log_("dovecot policy server stopped");
      dovecot_.reset();
    } else if (!dovecot_ || section != dovecot_section_) {
      dovecot_.reset();
      DovecotPolicyServerOptions o = DovecotPolicyServerOptionsFromConfig(config_);
      o.log = [this](const std::string& line) { log_(line); };
      o.on_attempt = [this](const AuthAttempt& a) { OnAuthAttempt(a); };
      auto server = std::make_unique<DovecotPolicyServer>(std::move(o));
      std::string error;
      if (server->Start(&error)) {
        dovecot_ = std::move(server);
        log_("dovecot policy server listening on " + config_.dovecot_policy.listen);
      } else {
        log_(error);  // never holds the secret
      }
    }
    dovecot_section_ = section;
  }

  // A cwd= record that swallowed lines (a directory name with newlines: issue 10's forgery)
  // is an alert: logged, and one notice per batch.
  void TellForgeries() {
    if (!engine_) return;
    const std::vector<ForgeryAlert> alerts = engine_->TakeForgeryAlerts();
    if (alerts.empty()) return;
    std::string text;
    for (const ForgeryAlert& a : alerts) {
      const std::string one = "a cwd= record of " + std::to_string(a.lines) + " lines (pid " +
                              std::to_string(a.pid) + ", directory " + a.cwd_preview +
                              ") held log lines written by a directory name; "
                              "they were skipped, not judged";
      log_("ALERT: forgery attempt: " + one);
      if (text.size() < 2000) text += (text.empty() ? "" : "; ") + one;
    }
    TellAdmins("eximguard: forged log lines (" + std::to_string(alerts.size()) + ")", text);
  }

  // On the policy server's thread: counted, and queued for the main loop (FeedAuthAttempts).
  void OnAuthAttempt(const AuthAttempt& a) {
    if (a.source == AttemptSource::kRefusedAllow) {
      ++dovecot_counts_.refused;
      log_("dovecot policy: refused " + EscapeKey(a.protocol) + " login of " + EscapeKey(a.login) +
           " from " + EscapeKey(a.remote_ip) + " (" + PolicyRuleName(a.rule) + ")");
      return;
    }
    ++dovecot_counts_.attempts;
    ++(a.success ? dovecot_counts_.succeeded : dovecot_counts_.failed);
    if (a.refused_by_us) return;  // our own refusal says nothing about the password
    std::lock_guard lock(attempts_mu_);
    if (attempts_.size() >= kMaxQueuedAttempts) {
      ++dropped_attempts_;
      return;
    }
    attempts_.push_back(a);
  }

  // Dovecot's own reports are the trusted source of the login rules (many_ips, many_logins,
  // auth_failures): fed to detectors of their own, as the log's logins would be, and their
  // incidents handled as trusted (EvidenceSource::kPolicy). The log's Dovecot lines still make
  // notices (forgeable: never punished without this source agreeing).
  void FeedAuthAttempts() {
    std::vector<AuthAttempt> batch;
    {
      std::lock_guard lock(attempts_mu_);
      batch.swap(attempts_);
      if (dropped_attempts_ > 0) {
        log_("dovecot policy: " + std::to_string(dropped_attempts_) +
             " reports not judged (the queue was full)");
        dropped_attempts_ = 0;
      }
    }
    if (batch.empty() || !policy_detectors_ || !engine_) return;
    for (const AuthAttempt& a : batch) {
      LogEvent e;
      e.time = a.time;
      e.kind = a.success ? LineKind::kDovecotLogin : LineKind::kDovecotAuthFailed;
      e.auth_id = a.login;
      e.host_ip = a.remote_ip;
      e.protocol = a.protocol;
      e.attempts = 1;
      const std::string line = "dovecot auth policy: " + a.protocol + " login of " + a.login +
                               " from " + a.remote_ip + (a.success ? ": succeeded" : ": failed");
      policy_detectors_->Feed(e, line);
    }
    std::vector<Incident> found = policy_detectors_->TakeIncidents();
    for (Incident& i : found) {
      i.source = EvidenceSource::kPolicy;
      engine_->Add(std::move(i));
    }
    if (!found.empty()) engine_->Handle();
  }

  Json DovecotStatus() const {
    if (!dovecot_) return nullptr;
    const DovecotPolicyServerStats s = dovecot_->Stats();
    return {{"listen", config_.dovecot_policy.listen},
            {"attempts", dovecot_counts_.attempts.load()},
            {"failed", dovecot_counts_.failed.load()},
            {"succeeded", dovecot_counts_.succeeded.load()},
            {"refused", dovecot_counts_.refused.load()},
            {"tarpitted", s.policy.tarpitted},
            {"requests", s.requests},
            {"unauthorized", s.unauthorized},
            {"bad_requests", s.bad_requests + s.too_large},
            {"busy", s.busy},
            {"tracked_ips", s.policy.tracked_ips},
            {"tracked_accounts", s.policy.tracked_accounts}};
  }

  void Prune() {
    PruneCounts c;
    std::string error;
    if (!store_->Prune(Now(), static_cast<int>(config_.retention_days), &c, &error)) {
      log_("prune: " + error);
    } else if (c.incidents + c.audit + c.blocks > 0) {
      log_("pruned " + std::to_string(c.incidents) + " incidents, " + std::to_string(c.audit) +
           " audit rows and " + std::to_string(c.blocks) + " old blocks (retention " +
           std::to_string(config_.retention_days) + " days)");
    }
  }

  // The engine's counters plus those of the engines reloads replaced.
  EngineStats Totals() const {
    EngineStats t = engine_->stats();
    t += before_reload_;
    return t;
  }

  void WriteStatus() {
    const EngineStats s = Totals();
    const DetectorStats d = engine_->detectors().Stats();
    Json j;
    j["pid"] = getpid();
    j["mode"] = opt_.once ? "run" : "start";
    j["started"] = started_;
    j["updated"] = Now();
    j["config"] = config_path_;
    j["lines"] = s.lines;
    j["unparsed"] = s.unparsed;
    j["forged_lines"] = s.forged_lines;
    j["unparsed_samples"] = Json::array();
    for (const std::string& line : engine_->UnparsedSamples())
      j["unparsed_samples"].push_back(line);
    j["incidents"] = s.incidents;
    j["recorded"] = s.recorded;
    j["cooldown"] = s.cooldown;
    j["blocks"] = s.blocks;
    j["errors"] = s.errors;
    j["last_log_time"] = s.last_time;
    j["tracked_keys"] = d.TrackedKeys();
    j["evictions"] = d.evictions;
    j["reconciled_recipients"] = reconciled_;
    Json logs = Json::array();
    for (const FollowedLog& log : logs_) {
      const Checkpoint cp = log.follower->checkpoint();
      logs.push_back({{"name", log.name},
                      {"path", log.path},
                      {"offset", cp.offset},
                      {"rotations", log.follower->rotations()},
                      {"truncations", log.follower->truncations()},
                      {"note", OpenNoteName(log.follower->open_note())}});
    }
    j["logs"] = logs;
    j["dovecot_policy"] = DovecotStatus();  // null when the server is not running
    const std::string path = config_.state_dir + "/" + kStatusFileName;
    const std::string tmp = path + ".tmp";
    const std::string text = j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
    const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return;
    const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    close(fd);
    if (ok) rename(tmp.c_str(), path.c_str());
  }

  std::string config_path_;
  DaemonOptions opt_;
  std::ostream& out_;
  std::ostream& err_;
  Logger log_;
  Config config_;
  std::unique_ptr<StateStore> store_;
  FollowLock lock_;
  PidFile pidfile_;  // after lock_: removed before the lock is let go
  std::unique_ptr<Segment> segment_;
  size_t dropped_blocks_ = 0;
  static constexpr size_t kMaxQueuedAttempts = 100000;
  std::mutex attempts_mu_;             // guards attempts_, dropped_attempts_
  std::vector<AuthAttempt> attempts_;  // from the policy server's thread (OnAuthAttempt)
  uint64_t dropped_attempts_ = 0;
  std::unique_ptr<Detectors>
      policy_detectors_;  // judges Dovecot's reports (FeedAuthAttempts)  // automatic blocks the
                          // last publish left out (Publish)
  std::unique_ptr<FollowUpWorker> follow_up_;
  std::unique_ptr<TelegramBot> telegram_;
  std::unique_ptr<SlackBot> slack_;
  nlohmann::ordered_json bot_sections_;  // the telegram and slack sections the bots run with
  DovecotCounters dovecot_counts_;  // since start, across restarts; before dovecot_ (its thread)
  std::unique_ptr<DovecotPolicyServer> dovecot_;
  nlohmann::ordered_json dovecot_section_;  // the dovecot_policy section it runs with
  std::unique_ptr<Engine> engine_;
  std::vector<FollowedLog> logs_;
  int64_t started_ = 0;
  uint64_t warm_lines_ = 0;                // lines the last warm-up fed
  EngineStats before_reload_;              // counters of the engines that reloads replaced
  std::unique_ptr<ArrivalLedger> ledger_;  // made at the first counted arrival
  TableWatch watch_;                       // the guard's own counters (start only)
  Config effective_;                       // the last engine's limits (config + `set`)
  bool have_effective_ = false;
  std::vector<RateFloor> rate_floors_;  // limits changed by reloads (and `set`'s times)
  std::unordered_map<std::string, std::string> uid_of_user_;  // U= name -> uid, bounded
  uint64_t reconciled_ = 0;
};

}  // namespace

int FollowerPid(const std::string& state_dir) {
  const std::string path = state_dir + "/" + kFollowLockName;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return 0;
  int pid = 0;
  if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
    char buf[32] = {};
    if (pread(fd, buf, sizeof buf - 1, 0) > 0) pid = std::atoi(buf);
    if (pid <= 0) pid = -1;  // held, pid not written yet
  }
  close(fd);
  return pid;
}

namespace {

// The target of /proc/.../exe, without the " (deleted)" of an upgraded binary; "" if unreadable.
std::string ExeOf(const std::string& link) {
  char buf[4096];
  const ssize_t n = readlink(link.c_str(), buf, sizeof buf);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof buf) return "";
  std::string exe(buf, static_cast<size_t>(n));
  if (exe.ends_with(" (deleted)")) exe.resize(exe.size() - 10);
  return exe;
}

}  // namespace

bool IsEximguardProcess(int pid) {
  if (pid <= 0) return false;
  const std::string theirs = ExeOf("/proc/" + std::to_string(pid) + "/exe");
  if (theirs.empty()) return false;
  if (theirs == ExeOf("/proc/self/exe")) return true;
  return theirs.substr(theirs.rfind('/') + 1) == "eximguard";
}

int RunDaemon(const std::string& config_path, const DaemonOptions& options, std::ostream& out,
              std::ostream& err) {
  g_stop = 0;
  g_reload = 0;
  Daemon d(config_path, options, out, err);
  return d.Run();
}

}  // namespace eg::sidecar
