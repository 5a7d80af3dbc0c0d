// The caller that chains the Redis pipeline's functions, as an orchestrator
// (a workflow engine, a client) does in a platform without triggers:
//
//   POST /split (the text) -> slice keys
//   POST /count per key, `fanout` at a time over their own connections
//   POST /merge (the part keys) -> the JSON answer
//
// With --stored yes the text is first put in Redis (untimed, through the
// functions' /store) and each run starts with POST /split_stored (its key):
// the input already lives in the store, as in a data-lake pipeline.
//
// Times the whole chain per run. Prints {"runs":N,"ms":[...],"slices":S}.
//
// usage: wc_driver --target HOST:PORT --input FILE [--runs N] [--fanout K] [--save FILE]
//                  [--stored yes]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "load/http_wire.h"

namespace {

using waverless::load::BlockingConnection;
using waverless::load::ResponseParser;

// POSTs body to path; false (with a message) unless the answer is 200.
bool post(BlockingConnection& c, const std::string& host, const std::string& path,
          const std::string& body, std::string* out) {
  ResponseParser p(/*keep_body=*/true);
  int status = c.exchange(waverless::load::buildRequest("POST", path, host, body), p);
  if (status != 200) {
    fprintf(stderr, "wc_driver: %s -> %d %s\n", path.c_str(), status, p.body().c_str());
    return false;
  }
  *out = p.body();
  return true;
}

std::vector<std::string> splitLines(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t eol = s.find('\n', pos);
    if (eol == std::string::npos) eol = s.size();
    if (eol > pos) out.push_back(s.substr(pos, eol - pos));
    pos = eol + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i + 1 < argc; i += 2) flags[std::string(argv[i]).substr(2)] = argv[i + 1];
  std::string target = flags["target"];
  auto colon = target.rfind(':');
  if (colon == std::string::npos || flags["input"].empty()) {
    fprintf(stderr, "usage: wc_driver --target HOST:PORT --input FILE [--runs N] [--fanout K]\n");
    return 2;
  }
  std::string host = target.substr(0, colon);
  auto port = static_cast<uint16_t>(std::atoi(target.c_str() + colon + 1));
  int runs = flags.count("runs") ? std::atoi(flags["runs"].c_str()) : 3;
  int fanout = flags.count("fanout") ? std::atoi(flags["fanout"].c_str()) : 4;
  std::ifstream f(flags["input"], std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());

  BlockingConnection main_conn(host, port);
  std::vector<std::unique_ptr<BlockingConnection>> workers;
  for (int i = 0; i < fanout; ++i)
    workers.push_back(std::make_unique<BlockingConnection>(host, port));

  std::string split_path = "/split", split_body = text;
  if (flags["stored"] == "yes") {
    split_path = "/split_stored";
    if (!post(main_conn, target, "/store", text, &split_body)) return 1;
  }

  std::string ms_list, answer;
  size_t slices = 0;
  for (int run = 0; run < runs; ++run) {
    auto start = std::chrono::steady_clock::now();
    std::string keys_text;
    if (!post(main_conn, target, split_path, split_body, &keys_text)) return 1;
    std::vector<std::string> keys = splitLines(keys_text);
    slices = keys.size();
    std::vector<std::string> parts(keys.size());
    std::atomic<size_t> next{0};
    std::atomic<bool> ok{true};
    {
      std::vector<std::jthread> pool;
      for (auto& w : workers) {
        pool.emplace_back([&, conn = w.get()] {
          for (size_t i; ok && (i = next.fetch_add(1)) < keys.size();) {
            if (!post(*conn, target, "/count", keys[i], &parts[i])) ok = false;
          }
        });
      }
    }
    if (!ok) return 1;
    std::string part_keys;
    for (const auto& p : parts) part_keys += p + "\n";
    if (!post(main_conn, target, "/merge", part_keys, &answer)) return 1;
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    ms_list += (run ? "," : "") + std::to_string(ms);
  }
  if (flags.count("save")) std::ofstream(flags["save"], std::ios::binary) << answer;
  printf("{\"runs\":%d,\"ms\":[%s],\"slices\":%zu}\n", runs, ms_list.c_str(), slices);
  return 0;
}
