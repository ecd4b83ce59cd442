// verbs_logs.cpp - the verbs that read whole log files: `replay` (what-if, no action), `rerun`
// (a past day through the full engine) and `skip` (checkpoints to the end). See verbs.h.

#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <system_error>
#include <thread>

#include "config.h"
#include "daemon.h"
#include "engine.h"
#include "exim_query.h"
#include "log_reader.h"
#include "policy_from_state.h"
#include "progress.h"
#include "publish.h"
#include "state_store.h"
#include "text_escape.h"
#include "time_text.h"
#include "verbs.h"

namespace eg::sidecar {
namespace {

using Json = nlohmann::ordered_json;

// One incident as a line of text.
std::string IncidentLine(const Incident& i) {
  std::string s = LocalTimeText(i.time) + "  " + i.rule + "  " + i.key_class + " " +
                  Printable(i.key) + "  " + std::to_string(i.count) + " (threshold " +
                  std::to_string(i.threshold) + ")";
  if (!i.ips.empty()) {
    s += "  ips";
    size_t n = 0;
    for (const std::string& ip : i.ips) {
      if (n++ == 5) {
        s += " ...";
        break;
      }
      s += " " + Printable(ip);
    }
  }
  if (!i.scripts.empty()) s += "  script " + Printable(i.scripts.front());
  return s;
}

// Reads several files at once, handing out their lines in time order (a k-way merge on the
// parsed timestamps), so a mainlog and a Dovecot log of the same hours interleave as they
// happened. Lines without a timestamp follow their predecessor.
struct MergedFiles {
  struct Input {
    std::unique_ptr<LogReader> reader;
    LogSource source = LogSource::kExim;
    std::string_view line;
    int64_t time = 0;
    bool has_line = false;
  };
  std::vector<Input> inputs;
  LogEvent scratch;

  void Advance(Input& in) {
    in.has_line = in.reader->Next(&in.line);
    if (!in.has_line || inputs.size() == 1) return;
    ParseLine(in.line, &scratch);
    if (scratch.kind != LineKind::kUnknown) in.time = scratch.time;
  }
  void Start() {
    for (Input& in : inputs) Advance(in);
  }
  // The input whose line comes next, or nullptr at the end of all.
  Input* Next() {
    Input* best = nullptr;
    for (Input& in : inputs) {
      if (in.has_line && (best == nullptr || in.time < best->time)) best = &in;
    }
    return best;
  }
  uint64_t BytesRead() const {
    uint64_t n = 0;
    for (const Input& in : inputs) n += in.reader->bytes_read();
    return n;
  }
  uint64_t Size() const {
    uint64_t n = 0;
    for (const Input& in : inputs) n += in.reader->size();
    return n;
  }
};

bool OpenInputs(const std::vector<std::string>& files, MergedFiles* merged, std::ostream& err,
                bool quiet) {
  bool ok = true;
  for (const std::string& f : files) {
    std::string error;
    MergedFiles::Input in;
    if (!SniffLogSource(f, &in.source, &error) || !(in.reader = LogReader::Open(f, &error))) {
      err << Printable(error) << "\n";
      ok = false;
      continue;
    }
    if (!quiet) err << Printable(f) << ": " << LogSourceName(in.source) << "\n";
    merged->inputs.push_back(std::move(in));
  }
  return ok;
}

// Reads ahead of the engine on a second thread. The reader thread reads the files (gunzipping
// a .gz), merges their lines in time order (MergedFiles), copies them into a batch and parses
// them there (ParseLogLine, with the engine's options), so the calling thread only runs the
// detectors (the larger half of the work: bench/README.md, "Replay vs eximstats"). Batches are
// a fixed pool going round: free -> filled by the reader -> fed by the
// caller -> free again, so memory is bounded (kBatches batches of at most kBatchLines lines or
// about kBatchBytes bytes, plus their events) and nothing is allocated per line once warm.
//
// CONTRACT
//   - Next(), on the thread that made the ReadAhead: the next batch, valid until the next call;
//     nullptr when all lines were handed out. The lines come in the order MergedFiles gives.
//   - `merged` belongs to the reader thread from the constructor until Next() returned nullptr
//     or the ReadAhead is destroyed; only then may the caller look at it (its readers' errors).
//     `keep` (optional) is called on the reader thread; it must only read what it captures.
//   - The destructor stops and joins the reader thread, whatever the state (an exception in the
//     caller's loop included). An exception on the reader thread (std::bad_alloc) ends its
//     reading and is rethrown by Next(). If no thread can be started, Next() reads each batch
//     itself: slower, same lines.
class ReadAhead {
 public:
  struct Line {
    size_t begin = 0;  // in Batch::text
    size_t size = 0;
    LogSource source = LogSource::kExim;
    bool keep = true;  // false: filtered out by `keep`; not copied or parsed
  };
  struct Batch {
    std::string text;              // the kept lines' bytes, back to back
    std::vector<Line> lines;       // every line read, kept or not
    std::vector<LogEvent> events;  // events[i]: lines[i] parsed (when kept); views into text
    uint64_t bytes_read = 0;       // MergedFiles::BytesRead() after it (progress bars only)
    std::string_view Text(const Line& l) const { return {text.data() + l.begin, l.size}; }
  };

  ReadAhead(MergedFiles& merged, const ParseOptions& options,
            const std::function<bool(std::string_view)>& keep, bool want_bytes_read)
      : merged_(merged), options_(options), keep_(keep), want_bytes_read_(want_bytes_read) {
    for (auto& b : batches_) {
      b = std::make_unique<Batch>();
      free_.push_back(b.get());
    }
    merged_.Start();
    try {
      thread_ = std::thread([this] { Run(); });
    } catch (const std::system_error&) {
      inline_ = true;  // no thread: Next() reads
    }
  }
  ~ReadAhead() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    freed_.notify_one();
    thread_.join();
  }
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  const Batch* Next() {
    if (inline_) {
      Batch* b = batches_.front().get();
      return Fill(b) ? b : nullptr;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (current_ != nullptr) {
      free_.push_back(current_);
      current_ = nullptr;
      freed_.notify_one();
    }
    filled_.wait(lock, [&] { return !filled_queue_.empty() || done_; });
    if (filled_queue_.empty()) {
      if (error_) std::rethrow_exception(error_);
      return nullptr;
    }
    current_ = filled_queue_.front();
    filled_queue_.pop_front();
    return current_;
  }

 private:
  static constexpr size_t kBatches = 4;
  static constexpr size_t kBatchLines = 1024;
  static constexpr size_t kBatchBytes = size_t{1} << 20;

  // The reader thread.
  void Run() {
    try {
      for (;;) {
        Batch* b = nullptr;
        {
          std::unique_lock<std::mutex> lock(mu_);
          freed_.wait(lock, [&] { return !free_.empty() || stop_; });
          if (stop_) break;
          b = free_.front();
          free_.pop_front();
        }
        const bool more = Fill(b);
        std::lock_guard<std::mutex> lock(mu_);
        if (!more) {
          free_.push_back(b);
          break;
        }
        filled_queue_.push_back(b);
        filled_.notify_one();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      error_ = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    filled_.notify_one();
  }

  // Reads the next lines into *b and parses them. False when there were none left.
  bool Fill(Batch* b) {
    b->text.clear();
    b->lines.clear();
    while (b->lines.size() < kBatchLines && b->text.size() < kBatchBytes) {
      MergedFiles::Input* in = merged_.Next();
      if (in == nullptr) break;
      Line l;
      l.source = in->source;
      l.keep = !keep_ || keep_(in->line);
      if (l.keep) {
        l.begin = b->text.size();
        l.size = in->line.size();
        b->text.append(in->line);
      }
      b->lines.push_back(l);
      merged_.Advance(*in);
    }
    if (b->lines.empty()) return false;
    // Parsed only now: `text` no longer moves. The events keep their recipients' capacity.
    if (b->events.size() < b->lines.size()) b->events.resize(b->lines.size());
    for (size_t i = 0; i < b->lines.size(); ++i) {
      const Line& l = b->lines[i];
      if (l.keep) ParseLogLine(b->Text(l), l.source, options_, &b->events[i]);
    }
    if (want_bytes_read_) b->bytes_read = merged_.BytesRead();
    return true;
  }

  MergedFiles& merged_;
  const ParseOptions options_;
  const std::function<bool(std::string_view)>& keep_;
  const bool want_bytes_read_;
  std::array<std::unique_ptr<Batch>, kBatches> batches_;
  bool inline_ = false;

  std::mutex mu_;
  std::condition_variable freed_, filled_;  // free_ got a batch; filled_queue_ did or done_
  std::deque<Batch*> free_, filled_queue_;  // guarded by mu_
  Batch* current_ = nullptr;                // the caller's; only the caller's thread
  bool stop_ = false;                       // guarded by mu_: the destructor wants the end
  bool done_ = false;                       // guarded by mu_: the reader thread has finished
  std::exception_ptr error_;                // guarded by mu_
  std::thread thread_;                      // last: started once the rest is ready
};

// Runs every line of `merged` through `engine` (read and parsed ahead on a second thread,
// ReadAhead); `on_incidents` sees the handled incidents. `keep` (optional, called on the reader
// thread) filters lines before parsing; a line it drops is not fed.
template <typename OnIncidents>
bool Pump(MergedFiles& merged, Engine& engine, const std::string& label, OnIncidents on_incidents,
          std::ostream& err, const std::function<bool(std::string_view)>& keep = nullptr) {
  ProgressBar bar;
  bar.Start(merged.Size(), label);
  uint64_t lines = 0;
  {
    ReadAhead ahead(merged, engine.parse_options(), keep, bar.enabled());
    while (const ReadAhead::Batch* b = ahead.Next()) {
      const size_t n = b->lines.size();
      for (size_t i = 0; i < n; ++i) {
        const ReadAhead::Line& l = b->lines[i];
        if (l.keep) engine.FeedParsed(b->events[i], b->Text(l));
        ++lines;
        if ((lines & 1023) == 0) {
          on_incidents(engine.Handle());
          if (bar.enabled()) bar.Update(b->bytes_read, lines);
        }
      }
    }
  }  // the reader thread has ended: `merged` is ours again
  on_incidents(engine.Handle());
  bar.Finish();
  bool ok = true;
  for (const MergedFiles::Input& in : merged.inputs) {
    if (!in.reader->error().empty()) {
      err << Printable(in.reader->error()) << "\n";
      ok = false;
    }
  }
  return ok;
}

std::string Summary(const EngineStats& s, size_t files, double seconds) {
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.2f", seconds);
  return std::to_string(s.lines) + " lines from " + std::to_string(files) +
         (files == 1 ? " file" : " files") + " in " + secs + " s (" + std::to_string(s.unparsed) +
         " not understood); " + std::to_string(s.incidents) +
         (s.incidents == 1 ? " incident" : " incidents");
}

// The config for replay: the file if it exists or was named, else the defaults.
bool ReplayConfig(const std::string& path, bool named, Config* out, std::ostream& err) {
  struct stat st {};
  if (!named && stat(path.c_str(), &st) != 0) {
    *out = Config{};
    out->exim_group = DefaultEximGroup();
    return true;
  }
  ConfigResult r = LoadConfig(path);
  for (const std::string& e : r.errors) err << e << "\n";
  if (!r.ok()) return false;
  *out = std::move(r.config);
  return true;
}

}  // namespace

int ReplayVerb(const std::string& config_path, bool config_named,
               const std::vector<std::string>& files, bool json, std::ostream& out,
               std::ostream& err) {
  Config config;
  if (!ReplayConfig(config_path, config_named, &config, err)) return kExitFailure;
  MergedFiles merged;
  if (!OpenInputs(files, &merged, err, json)) return kExitFailure;
  std::vector<std::string> domains;
  std::string error;
  std::string note;
  if (!LoadLocalDomains(config, &domains, &note, &error)) err << Printable(error) << "\n";
  if (!note.empty()) err << Printable(note) << "\n";
  ParseOptions parse;
  parse.utc = config.log_utc;
  Engine engine(config, DetectorSettingsFromConfig(config, {}, domains), EngineHooks{}, parse);
  const auto t0 = std::chrono::steady_clock::now();
  const bool ok = Pump(
      merged, engine, "replay",
      [&](const std::vector<HandledIncident>& batch) {
        for (const HandledIncident& h : batch) {
          if (json) {
            out << IncidentToJson(h.incident).dump(-1, ' ', false, Json::error_handler_t::replace)
                << "\n";
          } else {
            out << IncidentLine(h.incident) << "\n";
          }
        }
      },
      err);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  (json ? err : out) << Summary(engine.stats(), merged.inputs.size(), secs) << "\n";
  for (const std::string& line : engine.UnparsedSamples()) {  // escaped already
    (json ? err : out) << "  not understood: | " << line << "\n";
  }
  if (engine.stats().forged_lines > 0) {
    (json ? err : out) << "  FORGERY: " << engine.stats().forged_lines
                       << " lines were inside cwd= records (directory names with newlines): "
                          "skipped\n";
  }
  return ok ? kExitOk : kExitFailure;
}

// The log itself and its rotations (name.N, name.N.gz, name-*, name-*.gz), in no particular
// order: the merge (MergedFiles) puts their lines in time order.
std::vector<std::string> RotatedFiles(const std::string& log) {
  std::vector<std::string> files;
  for (const std::string& pattern : {log + ".*", log + "-*"}) {
    glob_t g{};
    if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) files.emplace_back(g.gl_pathv[i]);
    }
    globfree(&g);
  }
  struct stat st {};
  if (stat(log.c_str(), &st) == 0) files.push_back(log);
  return files;
}

int RerunVerb(const std::string& config_path, const std::string& date, std::ostream& out,
              std::ostream& err) {
  struct tm tm {};
  const char* end = strptime(date.c_str(), "%Y-%m-%d", &tm);
  if (end == nullptr || *end != '\0' || date.size() != 10) {
    err << "rerun: expected a date as YYYY-MM-DD, got \"" << Printable(date) << "\"\n";
    return kExitUsage;
  }
  ConfigResult loaded = LoadConfig(config_path);
  for (const std::string& e : loaded.errors) err << e << "\n";
  if (!loaded.ok()) return kExitFailure;
  const Config& config = loaded.config;
  std::string error;
  std::unique_ptr<StateStore> store = StateStore::Open(config.state_dir, &error);
  if (!store) {
    err << Printable(error) << "\n";
    return kExitFailure;
  }
  std::vector<std::string> files = RotatedFiles(config.exim_log);
  if (!config.dovecot_log.empty()) {
    const std::vector<std::string> more = RotatedFiles(config.dovecot_log);
    files.insert(files.end(), more.begin(), more.end());
  }
  if (files.empty()) {
    err << "rerun: no log files at " << Printable(config.exim_log) << " or its rotations\n";
    return kExitFailure;
  }
  MergedFiles merged;
  if (!OpenInputs(files, &merged, err, false)) return kExitFailure;

  std::vector<WhitelistEntry> wl;
  std::vector<StoredLimit> limits;
  std::vector<std::string> domains;
  std::string note;
  if (!store->ListWhitelist(&wl, &error) || !store->ListLimits(&limits, &error) ||
      !LoadLocalDomains(config, &domains, &note, &error)) {
    err << Printable(error) << "\n";
    return kExitFailure;
  }
  if (!note.empty()) err << Printable(note) << "\n";
  EngineHooks hooks;  // no table (nothing corroborates a past day) and no follow-up: records only
  hooks.store = store.get();
  hooks.republish = [&](std::string* e) {
    PublishResult r;
    return PublishFromStore(config, *store, static_cast<uint32_t>(std::time(nullptr)), &r, e);
  };
  hooks.log = [&](const std::string& line) {
    err << (ShowsAsIs(line) ? line : Printable(line)) << "\n";
  };
  ParseOptions parse;
  parse.utc = config.log_utc;
  const Config effective = WithStoredLimits(config, limits);  // and `eximguard set`'s limits
  Engine engine(effective,
                DetectorSettingsFromConfig(effective, WhitelistKeys(wl, nullptr), domains),
                std::move(hooks), parse);
  // Lines of other days are skipped before parsing when they start with Exim's own date; the
  // previous day's last hour is kept so windows that cross midnight are whole.
  struct tm prev_tm = tm;
  prev_tm.tm_mday -= 1;
  prev_tm.tm_hour = 12;
  mktime(&prev_tm);
  char prev[16];
  std::strftime(prev, sizeof prev, "%Y-%m-%d", &prev_tm);
  const std::string day = date;
  const std::string before = std::string(prev) + " 23:";
  auto keep = [&](std::string_view line) {
    if (line.size() < 10 || line[0] < '0' || line[0] > '9') return true;  // syslog: parse it
    return line.starts_with(day) || line.starts_with(before);
  };
  uint64_t recorded = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const bool ok = Pump(
      merged, engine, "rerun " + date,
      [&](const std::vector<HandledIncident>& batch) {
        for (const HandledIncident& h : batch) {
          if (h.outcome == "recorded") {
            ++recorded;
            out << IncidentLine(h.incident) << "  -> #" << h.id << " " << h.action << "\n";
          }
        }
      },
      err, keep);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out << Summary(engine.stats(), merged.inputs.size(), secs) << "; " << recorded
      << " new (the others were recorded before)\n";
  AuditEntry a;
  a.time = std::time(nullptr);
  a.who = CliUser();
  a.action = "rerun";
  a.key = date;
  a.detail = std::to_string(recorded) + " new incidents";
  store->Audit(a, &error);
  return ok && engine.stats().errors == 0 ? kExitOk : kExitFailure;
}

int SkipVerb(const std::string& config_path, std::ostream& out, std::ostream& err) {
  ConfigResult loaded = LoadConfig(config_path);
  for (const std::string& e : loaded.errors) err << e << "\n";
  if (!loaded.ok()) return kExitFailure;
  const Config& config = loaded.config;
  const int pid = FollowerPid(config.state_dir);
  if (pid != 0) {
    err << "skip: eximguard is following the logs (pid " << pid
        << "); stop it first, or it will overwrite the checkpoint\n";
    return kExitFailure;
  }
  std::string error;
  std::unique_ptr<StateStore> store = StateStore::Open(config.state_dir, &error);
  if (!store) {
    err << Printable(error) << "\n";
    return kExitFailure;
  }
  std::vector<std::pair<std::string, std::string>> logs = {{"mainlog", config.exim_log}};
  if (!config.dovecot_log.empty()) logs.emplace_back("dovecot", config.dovecot_log);
  for (const auto& [name, path] : logs) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st {};
    if (fd < 0 || fstat(fd, &st) != 0) {
      err << Printable(path) << ": " << std::strerror(errno) << "\n";
      if (fd >= 0) close(fd);
      return kExitFailure;
    }
    // The checkpoint must sit at a line end: back off to the last '\n'.
    Checkpoint cp;
    cp.dev = static_cast<uint64_t>(st.st_dev);
    cp.ino = static_cast<uint64_t>(st.st_ino);
    uint64_t end = static_cast<uint64_t>(st.st_size);
    std::string tail(static_cast<size_t>(std::min<uint64_t>(end, 1 << 20)), '\0');
    const ssize_t n = pread(fd, tail.data(), tail.size(), static_cast<off_t>(end - tail.size()));
    close(fd);
    if (n != static_cast<ssize_t>(tail.size())) {
      err << Printable(path) << ": short read\n";
      return kExitFailure;
    }
    const size_t last_nl = tail.rfind('\n');
    if (last_nl != std::string::npos) {
      cp.offset = end - tail.size() + last_nl + 1;
      const size_t prev_nl = last_nl == 0 ? std::string::npos : tail.rfind('\n', last_nl - 1);
      const size_t start = prev_nl == std::string::npos ? 0 : prev_nl + 1;
      cp.last_line_hash = LineTailHash(std::string_view(tail).substr(start, last_nl - start));
    }
    // Also the floor of the detectors' warm-up (daemon.h): what was skipped stays skipped.
    if (!store->SaveCheckpoint(name, cp, &error) ||
        !store->SaveCheckpoint(name + kSkipFloorSuffix, cp, &error)) {
      err << Printable(error) << "\n";
      return kExitFailure;
    }
    out << name << " " << Printable(path) << ": checkpoint moved to offset " << cp.offset
        << " (the end); the lines before it will not be processed\n";
  }
  AuditEntry a;
  a.time = std::time(nullptr);
  a.who = CliUser();
  a.action = "skip";
  a.detail = "checkpoints moved to the end of the logs";
  store->Audit(a, &error);
  return kExitOk;
}

}  // namespace eg::sidecar
