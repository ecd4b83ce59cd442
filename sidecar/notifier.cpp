// notifier.cpp - the Notifier: a worker thread with a bounded queue that sends notices to
// every configured channel and folds floods into digests (DigestGate) (notify.h).

#include "notify.h"

#include <algorithm>
#include <utility>

#include "text_escape.h"

namespace eg::sidecar {

// ---- DigestGate --------------------------------------------------------------------------------

DigestGate::DigestGate(uint32_t digest_after, uint32_t digest_seconds) {
  SetLimits(digest_after, digest_seconds);
}

void DigestGate::SetLimits(uint32_t digest_after, uint32_t digest_seconds) {
  after_ = digest_after;
  period_ms_ = int64_t{digest_seconds} * 1000;
}

std::optional<Notice> DigestGate::Admit(Notice notice, int64_t now_ms) {
  if (period_ms_ <= 0) return notice;  // digests off
  while (!arrivals_.empty() && arrivals_.front() <= now_ms - period_ms_) arrivals_.pop_front();
  arrivals_.push_back(now_ms);
  if (!flooding_ && arrivals_.size() > after_) {
    flooding_ = true;
    deadline_ = now_ms + period_ms_;
  }
  if (!flooding_) return notice;
  held_.push_back(std::move(notice));
  return std::nullopt;
}

std::optional<Notice> DigestGate::Tick(int64_t now_ms, const std::string& host) {
  if (!flooding_ || now_ms < deadline_) return std::nullopt;
  const size_t in_period = held_.size();
  std::optional<Notice> digest;
  if (!held_.empty()) {
    digest = MakeDigest(held_, static_cast<uint32_t>(period_ms_ / 1000), host);
    held_.clear();
  }
  if (in_period <= after_) {
    flooding_ = false;  // a quiet period: the flood is over
  } else {
    deadline_ = now_ms + period_ms_;
  }
  return digest;
}

std::optional<int64_t> DigestGate::NextDeadline() const {
  if (!flooding_) return std::nullopt;
  return deadline_;
}

std::vector<Notice> DigestGate::TakeHeld() {
  std::vector<Notice> out;
  out.swap(held_);
  return out;
}

// ---- Notifier ----------------------------------------------------------------------------------

Notifier::Notifier(const Config& config, NotifierOptions options)
    : options_(std::move(options)), config_(config) {
  if (!options_.now_ms) {
    options_.now_ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
          .count();
    };
  }
  if (options_.host.empty()) options_.host = HostName();
  worker_ = std::thread([this] { Run(); });
}

Notifier::~Notifier() {
  Stop();
}

bool Notifier::Post(Notice notice) {
  std::string log;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || queue_.size() >= options_.max_queue) {
      ++stats_.dropped;
      if (stats_.dropped == 1 || stats_.dropped % 1000 == 0) {
        log = "notify: " + std::string(stop_ ? "stopped" : "queue full") + ": dropped " +
              std::to_string(stats_.dropped) + " notice(s) so far (this one: " + notice.title + ")";
      }
    } else {
      if (notice.host.empty()) notice.host = options_.host;
      queue_.push_back(std::move(notice));
      ++stats_.posted;
    }
  }
  if (!log.empty()) {
    if (options_.log) options_.log(log);
    return false;
  }
  cv_.notify_one();
  return true;
}

void Notifier::Reconfigure(const Config& config) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    config_ = config;
    ++config_generation_;
  }
  cv_.notify_one();
}

void Notifier::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (worker_.joinable()) worker_.join();
}

NotifierStats Notifier::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

bool Notifier::Idle() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.empty() && !busy_ && held_ == 0;
}

void Notifier::SendToAll(const Notice& notice, const SendOptions& options) {
  Config config;
  {
    std::lock_guard<std::mutex> lock(mu_);
    config = config_;
  }
  for (Channel c : ConfiguredChannels(config)) {
    const SendResult r = SendNotice(c, config, notice, options);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ChannelStats& s = stats_.channels[static_cast<size_t>(c)];
      if (r.ok) {
        ++s.sent;
      } else {
        ++s.failed;
        s.last_error = r.error;
      }
    }
    if (!r.ok && options_.log) {
      options_.log(std::string("notify: ") + ChannelName(c) + ": \"" + OneLine(notice.title, 200) +
                   "\" not sent: " + OneLine(r.error));
    }
  }
}

void Notifier::Run() {
  uint64_t generation = 0;
  DigestGate gate(0, 0);
  std::unique_lock<std::mutex> lock(mu_);
  gate.SetLimits(config_.notify.digest_after, config_.notify.digest_seconds);
  generation = config_generation_;
  for (;;) {
    if (!stop_ && queue_.empty()) {
      std::chrono::milliseconds wait = options_.wake;
      if (const auto deadline = gate.NextDeadline()) {
        const int64_t left = *deadline - options_.now_ms();
        wait = std::clamp(std::chrono::milliseconds(left), std::chrono::milliseconds(0),
                          options_.wake);
      }
      if (wait.count() > 0) cv_.wait_for(lock, wait);
    }
    if (stop_) break;
    if (generation != config_generation_) {
      gate.SetLimits(config_.notify.digest_after, config_.notify.digest_seconds);
      generation = config_generation_;
    }
    std::deque<Notice> batch;
    batch.swap(queue_);
    busy_ = true;
    lock.unlock();

    for (Notice& n : batch) {
      if (n.kind == NoticeKind::kTest || n.kind == NoticeKind::kDigest) {
        SendToAll(n, options_.send);
      } else if (auto out = gate.Admit(std::move(n), options_.now_ms())) {
        SendToAll(*out, options_.send);
      }
    }
    if (auto digest = gate.Tick(options_.now_ms(), options_.host)) {
      uint64_t notices = 0;
      for (const auto& rc : digest->rule_counts) notices += rc.second;
      {
        std::lock_guard<std::mutex> stats_lock(mu_);
        ++stats_.digests;
        stats_.digested += notices;
      }
      SendToAll(*digest, options_.send);
    }

    lock.lock();
    held_ = gate.held();
    busy_ = false;
  }

  // Stopping: what is left goes out as one last message, without retries.
  std::vector<Notice> left = gate.TakeHeld();
  for (Notice& n : queue_) left.push_back(std::move(n));
  queue_.clear();
  busy_ = true;
  const uint32_t seconds = config_.notify.digest_seconds;
  lock.unlock();
  SendOptions once = options_.send;
  once.attempts = 1;
  if (left.size() == 1) {
    SendToAll(left[0], once);
  } else if (left.size() > 1) {
    Notice digest = MakeDigest(left, seconds, options_.host);
    {
      std::lock_guard<std::mutex> stats_lock(mu_);
      ++stats_.digests;
      stats_.digested += left.size();
    }
    SendToAll(digest, once);
  }
  lock.lock();
  held_ = 0;
  busy_ = false;
}

}  // namespace eg::sidecar
