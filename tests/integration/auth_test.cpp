// The authenticated control API, app invoke keys and HTTPS, end to end:
// the real binary, driven over HTTP(S) and the CLI.
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "app_fixtures.h"
#include "dev_node.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "node_suite.h"

namespace waverless::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

using Headers = std::vector<std::pair<std::string, std::string>>;

Headers bearer(const std::string& secret) { return {{"Authorization", "Bearer " + secret}}; }

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// A shell command's output.
std::string shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// The CLI with one environment variable set for it.
CommandResult runCliWithEnv(const char* name, const std::string& value,
                            const std::vector<std::string>& args,
                            const std::vector<std::string>& more) {
  setenv(name, value.c_str(), 1);
  CommandResult r = runCli(args, more);
  unsetenv(name);
  return r;
}

// The "invoke_key" of a deploy or key answer, or "".
std::string invokeKeyIn(const std::string& json) {
  const std::string field = "\"invoke_key\":\"";
  auto at = json.find(field);
  if (at == std::string::npos) return "";
  at += field.size();
  return json.substr(at, json.find('"', at) - at);
}

// hello, and hello under another name with `auth: key`.
void writeApps(const fs::path& apps, const fs::path& keyed) {
  fs::path hello_src = fs::path(WL_SOURCE_DIR) / "apps/hello";
  fs::path hello_wasm = fs::path(WL_BUILD_DIR) / "apps/hello/app.wasm";
  copyApp(hello_src, hello_wasm, apps / "hello");
  copyApp(hello_src, hello_wasm, keyed);
  std::ofstream(keyed / "app.yaml", std::ios::app) << "auth: key\n";
}

class AuthTest : public NodeSuite<AuthTest> {
 protected:
  static void SetUpTestSuite() {
    fs::path root = makeRoot("auth");
    writeApps(root / "apps", root / "keyed");
    startNode(root / "apps", {"--cache", WL_TEST_CACHE});
  }
};

TEST_F(AuthTest, AdminTokenFileIsPrivateAndSurvivesARestart) {
  fs::path file = *root_ / "data" / "admin.token";
  struct stat st {};
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  std::string token = node_->token();
  ASSERT_EQ(token.size(), 64u);
  EXPECT_EQ(token.find_first_not_of("0123456789abcdef"), std::string::npos);

  node_->kill(SIGTERM);
  ASSERT_TRUE(node_->start());
  EXPECT_EQ(node_->token(), token);
  EXPECT_EQ(node_->call("GET", "/api/apps").status, 200);
  std::string log = slurp(*root_ / "data.log");
  EXPECT_THAT(log, HasSubstr("admin token written to " + file.string()));
  EXPECT_THAT(log, HasSubstr("admin token from " + file.string()));
  // stderr is a file here, not a terminal: the token itself is not in it.
  EXPECT_THAT(log, Not(HasSubstr(token)));
}

TEST_F(AuthTest, EveryControlCallNeedsTheAdminToken) {
  const std::vector<std::pair<std::string, std::string>> calls = {{"GET", "/api/apps"},
                                                                  {"GET", "/api/apps/hello"},
                                                                  {"GET", "/api/apps/hello/logs"},
                                                                  {"POST", "/api/apps/hello/evict"},
                                                                  {"POST", "/api/apps/hello/key"},
                                                                  {"DELETE", "/api/apps/hello"},
                                                                  {"POST", "/api/apps?name=x"},
                                                                  {"GET", "/api/nodes"},
                                                                  {"GET", "/api/meta"},
                                                                  {"GET", "/api/nothing"}};
  for (const auto& [method, path] : calls) {
    auto none = node_->request(method, path, "not a tar", {});
    EXPECT_EQ(none.status, 401) << method << " " << path;
    EXPECT_EQ(none.header("WWW-Authenticate"), "Bearer") << method << " " << path;
    EXPECT_EQ(node_->request(method, path, "", bearer(node_->token() + "0")).status, 403)
        << method << " " << path;
    EXPECT_EQ(node_->request(method, path, "", {{"Authorization", "Basic Zm9vOmJhcg=="}}).status,
              401)
        << method << " " << path;
  }
  // Still there, and reachable with the token.
  auto apps = node_->request("GET", "/api/apps", "", bearer(node_->token()));
  EXPECT_EQ(apps.status, 200);
  EXPECT_THAT(apps.body, HasSubstr("\"hello\""));
  // Open: health, metrics and apps without `auth: key`.
  EXPECT_EQ(node_->request("GET", "/healthz", "", {}).status, 200);
  EXPECT_EQ(node_->request("GET", "/metrics", "", {}).status, 200);
  EXPECT_EQ(node_->request("GET", "/hello", "", {}).body, "hello world");
}

TEST_F(AuthTest, DeployAndDeleteNeedTheToken) {
  fs::path app = *root_ / "hello_cli";
  copyApp(fs::path(WL_SOURCE_DIR) / "apps/hello", fs::path(WL_BUILD_DIR) / "apps/hello/app.wasm",
          app);
  std::vector<std::string> to = {"--to", node_->base()};

  // No token anywhere: the CLI says where it looked.
  auto none = runCli({"deploy", app.string(), "--data", (*root_ / "nowhere").string()}, to);
  EXPECT_NE(none.exit_code, 0);
  EXPECT_THAT(none.output, HasSubstr((*root_ / "nowhere" / "admin.token").string()));
  // A wrong one, from the environment.
  auto wrong = runCliWithEnv("WAVERLESS_TOKEN", "not-the-token", {"deploy", app.string()}, to);
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_THAT(wrong.output, HasSubstr("$WAVERLESS_TOKEN"));
  EXPECT_EQ(node_->call("GET", "/hello_cli").status, 404);

  auto ok = runCliWithEnv("WAVERLESS_TOKEN", node_->token(), {"deploy", app.string()}, to);
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_EQ(node_->call("GET", "/hello_cli").body, "hello world");

  EXPECT_EQ(node_->request("DELETE", "/api/apps/hello_cli", "", {}).status, 401);
  EXPECT_EQ(node_->request("DELETE", "/api/apps/hello_cli", "", bearer("x")).status, 403);
  std::ofstream(*root_ / "wrong.token") << "0123\n";
  auto del_wrong =
      runCli({"delete", "hello_cli", "--token-file", (*root_ / "wrong.token").string()}, to);
  EXPECT_NE(del_wrong.exit_code, 0);
  EXPECT_THAT(del_wrong.output, HasSubstr("HTTP 403"));
  EXPECT_EQ(node_->call("GET", "/hello_cli").body, "hello world");
  // --data finds DIR/admin.token.
  auto del = runCli({"delete", "hello_cli", "--data", (*root_ / "data").string()}, to);
  EXPECT_EQ(del.exit_code, 0) << del.output;
  EXPECT_EQ(node_->call("GET", "/hello_cli").status, 404);
}

TEST_F(AuthTest, KeyedAppNeedsItsInvokeKeyWhichSurvivesRedeployAndRotates) {
  fs::path keyed = *root_ / "keyed";
  auto d = runCli({"deploy", keyed.string(), "--name", "hello_key"}, node_->cliArgs());
  ASSERT_EQ(d.exit_code, 0) << d.output;
  std::string key = invokeKeyIn(d.output);
  ASSERT_EQ(key.size(), 64u) << d.output;
  EXPECT_THAT(d.output, HasSubstr("shown once"));
  // Only its hash is kept.
  fs::path stored = *root_ / "data/apps/hello_key/invoke_key.sha256";
  ASSERT_TRUE(fs::exists(stored));
  EXPECT_THAT(slurp(stored), Not(HasSubstr(key)));

  auto none = node_->request("GET", "/hello_key", "", {});
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.header("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(node_->request("GET", "/hello_key", "", bearer(key.substr(1))).status, 403);
  EXPECT_EQ(node_->request("GET", "/hello_key", "", bearer(node_->token())).status, 403);
  EXPECT_EQ(node_->request("GET", "/hello_key/fn2", "", {}).status, 404);  // no such route
  auto served = node_->request("GET", "/hello_key", "", bearer(key));
  EXPECT_EQ(served.status, 200);
  EXPECT_EQ(served.body, "hello world");

  // The CLI: --key, or the environment.
  auto inv = runCli({"invoke", "hello_key", "--key", key}, node_->cliArgs());
  EXPECT_EQ(inv.exit_code, 0) << inv.output;
  EXPECT_THAT(inv.output, HasSubstr("hello world"));
  auto env = runCliWithEnv("WAVERLESS_APP_KEY", key, {"invoke", "hello_key"}, node_->cliArgs());
  EXPECT_THAT(env.output, HasSubstr("hello world"));
  auto missing = runCli({"invoke", "hello_key"}, node_->cliArgs());
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.output, HasSubstr("--key"));

  // A redeploy keeps the key and does not show it again.
  auto again = runCli({"deploy", keyed.string(), "--name", "hello_key"}, node_->cliArgs());
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(invokeKeyIn(again.output), "");
  EXPECT_EQ(node_->request("GET", "/hello_key", "", bearer(key)).body, "hello world");

  // ... and so does a restart.
  node_->kill(SIGTERM);
  ASSERT_TRUE(node_->start());
  EXPECT_EQ(node_->request("GET", "/hello_key", "", bearer(key)).body, "hello world");

  // Rotation: a new key, shown once; the old one stops working.
  EXPECT_EQ(node_->call("POST", "/api/apps/hello/key").status, 400);  // not `auth: key`
  auto rot = runCli({"key", "hello_key"}, node_->cliArgs());
  ASSERT_EQ(rot.exit_code, 0) << rot.output;
  std::string key2 = invokeKeyIn(rot.output);
  ASSERT_EQ(key2.size(), 64u) << rot.output;
  EXPECT_NE(key2, key);
  EXPECT_EQ(node_->request("GET", "/hello_key", "", bearer(key)).status, 403);
  EXPECT_EQ(node_->request("GET", "/hello_key", "", bearer(key2)).body, "hello world");

  // Deleted and deployed again: a new app, with a new key.
  ASSERT_EQ(node_->call("DELETE", "/api/apps/hello_key").status, 200);
  auto fresh = runCli({"deploy", keyed.string(), "--name", "hello_key"}, node_->cliArgs());
  ASSERT_EQ(fresh.exit_code, 0) << fresh.output;
  std::string key3 = invokeKeyIn(fresh.output);
  ASSERT_EQ(key3.size(), 64u);
  EXPECT_EQ(node_->request("GET", "/hello_key", "", bearer(key2)).status, 403);
  EXPECT_EQ(node_->request("GET", "/hello_key", "", bearer(key3)).body, "hello world");
}

// A node serving HTTPS with a self-signed certificate for 127.0.0.1, its
// /metrics on a plain listener of its own.
TEST(AuthHttps, ServesTlsAndRefusesPlainHttp) {
  fs::path root = tempDir("https");
  writeApps(root / "apps", root / "keyed");
  auto gen = shell(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1"
      " -addext subjectAltName=IP:127.0.0.1 -keyout '" +
      (root / "key.pem").string() + "' -out '" + (root / "cert.pem").string() + "' 2>&1");
  ASSERT_TRUE(fs::exists(root / "cert.pem")) << gen;
  uint16_t metrics_port = static_cast<uint16_t>(freePortPair() + 1);
  std::string metrics_addr = "127.0.0.1:" + std::to_string(metrics_port);
  DevNode node(root / "data", root / "apps",
               {"--cache", WL_TEST_CACHE, "--tls-cert", (root / "cert.pem").string(), "--tls-key",
                (root / "key.pem").string(), "--token-file", (root / "shared.token").string(),
                "--metrics-addr", metrics_addr});
  ASSERT_TRUE(node.start()) << "see " << (root / "data.log");
  ASSERT_THAT(node.base(), ::testing::StartsWith("https://"));
  EXPECT_TRUE(fs::exists(root / "shared.token"));
  EXPECT_FALSE(fs::exists(root / "data/admin.token"));

  EXPECT_EQ(node.request("GET", "/hello", "", {}).body, "hello world");
  // Verified against the certificate as a CA, with its IP address name.
  http::FetchOptions verified;
  verified.ca_file = (root / "cert.pem").string();
  auto v = http::fetch("GET", node.url("/hello"), "", verified);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->body, "hello world");
  // Not verified against the system's CAs.
  EXPECT_FALSE(http::fetch("GET", node.url("/hello"), "", http::FetchOptions{}).ok());
  // Plain HTTP on the TLS port gets no answer.
  std::string plain = "http" + node.url("/hello").substr(5);
  auto p = http::fetch("GET", plain, "", "text/plain", std::chrono::seconds(5));
  EXPECT_TRUE(!p.ok() || p->status != 200);

  // The CLI over https.
  auto apps = runCli({"apps", "--output", "json"}, node.cliArgs());
  EXPECT_EQ(apps.exit_code, 0) << apps.output;
  EXPECT_THAT(apps.output, HasSubstr("\"hello\""));
  auto ca = runCli({"apps", "--to", node.base(), "--token-file", (root / "shared.token").string(),
                    "--ca", (root / "cert.pem").string()});
  EXPECT_EQ(ca.exit_code, 0) << ca.output;
  auto unverified =
      runCli({"apps", "--to", node.base(), "--token-file", (root / "shared.token").string()});
  EXPECT_NE(unverified.exit_code, 0);

  // /metrics: open on its own listener (which serves nothing else), behind
  // the token on the main one.
  auto m = http::fetch("GET", "http://" + metrics_addr + "/metrics");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->status, 200);
  EXPECT_THAT(m->body, HasSubstr("wl_http_requests_total"));
  auto other = http::fetch("GET", "http://" + metrics_addr + "/api/apps");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->status, 404);
  EXPECT_EQ(node.request("GET", "/metrics", "", {}).status, 401);
  EXPECT_EQ(node.call("GET", "/metrics").status, 200);
  node.kill(SIGTERM);
  fs::remove_all(root);
}

}  // namespace
}  // namespace waverless::testing
