// webhook_receiver.cpp - a webhook receiver on 127.0.0.1 for scripts/demo.sh: it stands in for
// the admins' chat or ticket system, so the demo can show a notice arriving.
//
// Usage: webhook_receiver PORT_FILE OUT_FILE
//   Listens on an ephemeral port of 127.0.0.1 (FakeHttpServer, plain HTTP), writes the port to
//   PORT_FILE, then appends the body of every request it gets to OUT_FILE, one per line, and
//   answers 200. Runs until SIGTERM/SIGINT. Demo and test use only: never installed.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include "fake_http_server.h"

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) {
  g_stop = true;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: webhook_receiver PORT_FILE OUT_FILE\n");
    return 2;
  }
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  const std::string out_path = argv[2];
  std::mutex mu;
  eg::testing::FakeHttpServer server;
  server.Handle([&](const eg::testing::FakeRequest& r) {
    std::lock_guard lock(mu);
    std::ofstream out(out_path, std::ios::app);
    std::string body = r.body;
    for (char& c : body) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    out << body << "\n";
    return eg::testing::FakeResponse{200, "{}"};
  });
  {
    std::ofstream port(argv[1]);
    port << server.port() << "\n";
  }
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return 0;
}
