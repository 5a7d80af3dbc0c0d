// The native baseline behind HTTP: what the benchmark's functions cost with
// no sandbox and no platform, on a bare Boost.Beast server.
//
//   GET|POST /hello    "hello world"          (the physical limit of the HTTP path)
//   POST /kernel       body "n rounds"        bench/kernel/kernel.c natively
//   GET|POST /sleep    body "ms" (100)        answers after an asio timer
//
// usage: native_server PORT [THREADS]
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <cstdlib>

#include "../kernel/kernel.h"
#include "mini_http.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: native_server PORT [THREADS]\n");
    return 2;
  }
  auto port = static_cast<uint16_t>(std::atoi(argv[1]));
  int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  using namespace wlbench::mini;
  return serve("127.0.0.1", port, threads, [](Request& req, Reply reply) {
    if (req.target == "/hello") {
      reply(200, "hello world");
    } else if (req.target == "/kernel") {
      unsigned n = 100000, rounds = 10;
      sscanf(req.body.c_str(), "%u %u", &n, &rounds);
      char out[32];
      snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(kernel_run(n, rounds)));
      reply(200, out);
    } else if (req.target == "/sleep") {
      int ms = req.body.empty() ? 100 : std::atoi(req.body.c_str());
      auto timer = std::make_shared<net::steady_timer>(req.executor, std::chrono::milliseconds(ms));
      timer->async_wait([timer, reply](boost::system::error_code) { reply(200, "slept"); });
    } else {
      reply(404, "no such path\n");
    }
  });
}
