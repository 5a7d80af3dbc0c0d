// The word-count pipeline written the usual serverless way, as the
// comparison for Waverless's word_count: stateless functions behind HTTP
// that keep all data in a remote store (Redis, through hiredis) and are
// chained by the caller (wc_driver), not by the platform.
//
//   POST /split  body: the text    stores ~1 MiB slices as wc:<token>:s:<i>;
//                                  answers their keys, one per line
//   POST /split_stored  body: key  the same, for a text already in Redis
//   POST /store  body: a text      (set-up, untimed) stores it, answers its key
//   POST /count  body: a slice key GET + DEL the slice, count it,
//                                  SET wc:<token>:p:<i>; answers the part key
//   POST /merge  body: part keys   GET + DEL each part, merge; answers the JSON
//
// Same slicing, counting and part format as apps/word_count (see
// bench/native/word_count_core.h), so the answers compare byte for byte.
// Each handler runs on a server thread and blocks on Redis, as a function
// instance does while it waits on its store.
//
// usage: wc_functions PORT [REDIS_HOST:]REDIS_PORT [THREADS] [LISTEN_ADDR]
// (Redis on 127.0.0.1 and listening on 127.0.0.1 unless given: the netns
// benchmark puts Redis on another host.)
#include <hiredis/hiredis.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include "../native/mini_http.h"
#include "../native/word_count_core.h"

namespace {

namespace wc = wlbench::wc;
using wlbench::mini::Reply;
using wlbench::mini::Request;

// Set once in main before any thread starts.
std::string g_redis_host = "127.0.0.1";
int g_redis_port = 6379;

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using RedisReply = std::unique_ptr<redisReply, ReplyFree>;

// One connection per server thread, made on first use.
redisContext* redis() {
  thread_local redisContext* ctx = nullptr;
  if (ctx != nullptr && ctx->err) {
    redisFree(ctx);
    ctx = nullptr;
  }
  if (ctx == nullptr) ctx = redisConnect(g_redis_host.c_str(), g_redis_port);
  return ctx;
}

RedisReply command(const char* fmt, std::string_view a, std::string_view b = {}) {
  return RedisReply(
      static_cast<redisReply*>(redisCommand(redis(), fmt, a.data(), a.size(), b.data(), b.size())));
}

bool set(std::string_view key, std::string_view value) {
  RedisReply r = command("SET %b %b", key, value);
  return r && r->type == REDIS_REPLY_STATUS;
}

bool get(std::string_view key, std::string* out) {
  RedisReply r = command("GET %b", key);
  if (!r || r->type != REDIS_REPLY_STRING) return false;
  out->assign(r->str, r->len);
  return true;
}

void del(std::string_view key) { command("DEL %b", key); }

std::string newToken() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

std::vector<std::string_view> lines(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    size_t eol = s.find('\n');
    if (eol != 0) out.push_back(s.substr(0, eol));
    if (eol == std::string_view::npos) break;
    s.remove_prefix(eol + 1);
  }
  return out;
}

void splitText(std::string_view text, const Reply& reply) {
  std::string token = newToken(), keys;
  size_t i = 0;
  for (std::string_view slice : wc::slices(text)) {
    std::string key = "wc:" + token + ":s:" + std::to_string(i++);
    if (!set(key, slice)) return reply(500, "redis SET failed\n");
    keys += key + "\n";
  }
  reply(200, keys);
}

void splitStored(Request& req, const Reply& reply) {
  std::string text;
  if (!get(req.body, &text)) return reply(500, "redis GET of the input failed\n");
  splitText(text, reply);
}

void store(Request& req, const Reply& reply) {
  std::string key = "wc:input:" + newToken();
  if (!set(key, req.body)) return reply(500, "redis SET failed\n");
  reply(200, key);
}

void count(Request& req, const Reply& reply) {
  const std::string& key = req.body;
  size_t s = key.rfind(":s:");
  if (s == std::string::npos) return reply(400, "expected a slice key\n");
  std::string slice;
  if (!get(key, &slice)) return reply(500, "redis GET failed\n");
  del(key);
  std::string part = wc::encodePart(wc::count(slice.data(), slice.size()));
  std::string part_key = key.substr(0, s) + ":p:" + key.substr(s + 3);
  if (!set(part_key, part)) return reply(500, "redis SET failed\n");
  reply(200, part_key);
}

void merge(Request& req, const Reply& reply) {
  std::unordered_map<std::string, uint64_t> totals;
  std::string part;
  for (std::string_view key : lines(req.body)) {
    if (!get(key, &part)) return reply(500, "redis GET failed\n");
    del(key);
    if (!wc::mergePart(part, totals)) return reply(500, "malformed part\n");
  }
  reply(200, wc::toJson({totals.begin(), totals.end()}));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: wc_functions PORT [REDIS_HOST:]REDIS_PORT [THREADS] [LISTEN_ADDR]\n");
    return 2;
  }
  auto port = static_cast<uint16_t>(std::atoi(argv[1]));
  std::string redis = argv[2];
  if (auto colon = redis.rfind(':'); colon != std::string::npos) {
    g_redis_host = redis.substr(0, colon);
    redis.erase(0, colon + 1);
  }
  g_redis_port = std::atoi(redis.c_str());
  int threads = argc > 3 ? std::atoi(argv[3]) : 4;
  std::string listen = argc > 4 ? argv[4] : "127.0.0.1";
  return wlbench::mini::serve(listen, port, threads, [](Request& req, Reply reply) {
    if (req.target == "/split") return splitText(req.body, reply);
    if (req.target == "/split_stored") return splitStored(req, reply);
    if (req.target == "/store") return store(req, reply);
    if (req.target == "/count") return count(req, reply);
    if (req.target == "/merge") return merge(req, reply);
    reply(404, "no such function\n");
  });
}
