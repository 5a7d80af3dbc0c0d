// Starts the real `waverless dev` binary as a child process and talks to it
// only over HTTP and the CLI, as a user would.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "http/http_client.h"

namespace waverless::testing {

// Two consecutive free ports: RPC address port and HTTP (= port + 1). Picked
// below the kernel's ephemeral range (32768+), where the many client
// connections of the tests leave TIME_WAIT entries that would collide.
inline uint16_t freePortPair() {
  static std::mt19937 rng(static_cast<unsigned>(getpid()) * 7919u);
  auto bindable = [](uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    return ok;
  };
  // Multiples of 4: a node also uses port + 2 (raft), never another's port.
  for (int attempt = 0; attempt < 200; ++attempt) {
    uint16_t p = static_cast<uint16_t>(20000 + 4 * (rng() % 3000));
    if (bindable(p) && bindable(p + 1) && bindable(p + 2)) return p;
  }
  return 0;
}

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

// Runs the CLI and captures stdout+stderr.
inline CommandResult runCli(const std::vector<std::string>& args,
                            const std::vector<std::string>& more = {}) {
  std::string cmd = WL_BINARY;
  for (const auto& a : args) cmd += " '" + a + "'";
  for (const auto& a : more) cmd += " '" + a + "'";
  cmd += " 2>&1";
  CommandResult r;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// The value of `--flag VALUE` in args, or "".
inline std::string flagValue(const std::vector<std::string>& args, const std::string& flag) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == flag) return args[i + 1];
  }
  return "";
}

// A `waverless` node (dev or cluster node) as a child process, driven over
// HTTP like a user would. Its admin token is read from the file the node
// uses (--token-file, else <--data>/admin.token) once it serves, and sent
// with every /api/* and /metrics call(); request() sends only what it is given.
// With --tls-cert it is spoken to over https (certificate not verified).
class NodeProcess {
 public:
  NodeProcess(std::vector<std::string> args, uint16_t http_port, std::string log)
      : args_(std::move(args)), http_port_(http_port), log_(std::move(log)) {
    token_file_ = flagValue(args_, "--token-file");
    if (token_file_.empty())
      token_file_ = std::filesystem::path(flagValue(args_, "--data")) / "admin.token";
    tls_ = !flagValue(args_, "--tls-cert").empty();
  }
  ~NodeProcess() { kill(SIGKILL); }

  bool start(std::chrono::seconds timeout = std::chrono::seconds(300)) {
    std::error_code ec;
    const auto log_before = std::filesystem::file_size(log_, ec);
    const size_t log_offset = ec ? 0 : static_cast<size_t>(log_before);
    pid_ = fork();
    if (pid_ == 0) {
      // The node dies with the test process, even when that one crashes.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      FILE* f = freopen(log_.c_str(), "a", stderr);
      (void)f;
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(WL_BINARY));
      for (auto& a : args_) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        std::ifstream f(log_);
        std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        fprintf(stderr, "node exited; its log:\n%s\n",
                text.substr(text.size() > 2000 ? text.size() - 2000 : 0).c_str());
        return false;
      }
      auto r = request("GET", "/healthz", "", {}, std::chrono::seconds(2));
      // Only once this process says it serves: a port picked free may have been taken by another
      // test's node meanwhile, whose /healthz would answer for it (and refuse our token).
      if (r.status == 200 && loggedServing(log_offset)) {
        std::ifstream f(token_file_);
        std::getline(f, token_);
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  bool loggedServing(size_t offset) const {
    std::ifstream f(log_);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return text.size() > offset && text.find("msg=\"serving\"", offset) != std::string::npos;
  }

  void kill(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  void signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  std::string url(const std::string& path) const {
    return (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(http_port_) + path;
  }
  http::ClientResponse call(const std::string& method, const std::string& path,
                            const std::string& body = "",
                            std::chrono::milliseconds timeout = std::chrono::seconds(120)) const {
    std::vector<std::pair<std::string, std::string>> headers;
    if (path.starts_with("/api") || path == "/metrics") {
      headers.emplace_back("Authorization", "Bearer " + token_);
    }
    return request(method, path, body, std::move(headers), timeout);
  }
  // Sends exactly these headers (no admin token of its own).
  http::ClientResponse request(
      const std::string& method, const std::string& path, const std::string& body,
      std::vector<std::pair<std::string, std::string>> headers,
      std::chrono::milliseconds timeout = std::chrono::seconds(120)) const {
    http::FetchOptions o;
    o.headers = std::move(headers);
    o.timeout = timeout;
    o.insecure = tls_;
    auto r = http::fetch(method, url(path), body, o);
    if (!r.ok()) return {-1, std::string(r.status().message()), ""};
    return *r;
  }
  const std::string& token() const { return token_; }
  const std::filesystem::path& tokenFile() const { return token_file_; }
  pid_t pid() const { return pid_; }
  // What the CLI needs to reach this node's control API.
  std::vector<std::string> cliArgs() const {
    std::vector<std::string> a = {"--to", url(""), "--token-file", token_file_.string()};
    if (tls_) a.push_back("--insecure");
    return a;
  }

 private:
  std::vector<std::string> args_;
  uint16_t http_port_;
  std::string log_;
  std::filesystem::path token_file_;
  std::string token_;
  bool tls_ = false;
  pid_t pid_ = -1;
};

// `waverless dev` on a fresh pair of ports.
class DevNode {
 public:
  DevNode(std::filesystem::path data, std::filesystem::path apps,
          std::vector<std::string> extra = {})
      : data_(std::move(data)), apps_(std::move(apps)), extra_(std::move(extra)) {}

  // Starts the node (again, after a kill) and waits until /healthz is 200.
  bool start(std::chrono::seconds timeout = std::chrono::seconds(300)) {
    uint16_t port = freePortPair();
    std::vector<std::string> args = {"dev", "--addr", "127.0.0.1:" + std::to_string(port), "--data",
                                     data_.string()};
    if (!apps_.empty()) args.insert(args.end(), {"--apps", apps_.string()});
    args.insert(args.end(), extra_.begin(), extra_.end());
    http_port_ = static_cast<uint16_t>(port + 1);
    process_ = std::make_unique<NodeProcess>(
        args, http_port_, (data_.parent_path() / (data_.filename().string() + ".log")).string());
    return process_->start(timeout);
  }
  void kill(int sig) {
    if (process_) process_->kill(sig);
  }
  std::string url(const std::string& path) const { return process_->url(path); }
  std::string base() const { return url(""); }
  http::ClientResponse call(const std::string& method, const std::string& path,
                            const std::string& body = "") const {
    return process_->call(method, path, body, std::chrono::seconds(300));
  }
  http::ClientResponse request(const std::string& method, const std::string& path,
                               const std::string& body,
                               std::vector<std::pair<std::string, std::string>> headers) const {
    return process_->request(method, path, body, std::move(headers), std::chrono::seconds(300));
  }
  const std::string& token() const { return process_->token(); }
  std::filesystem::path tokenFile() const { return process_->tokenFile(); }
  pid_t pid() const { return process_->pid(); }
  uint16_t httpPort() const { return http_port_; }
  // --to and --token-file (and --insecure for https) for runCli.
  std::vector<std::string> cliArgs() const { return process_->cliArgs(); }
  const std::filesystem::path& dataDir() const { return data_; }

 private:
  std::filesystem::path data_, apps_;
  std::vector<std::string> extra_;
  uint16_t http_port_ = 0;
  std::unique_ptr<NodeProcess> process_;
};

}  // namespace waverless::testing
