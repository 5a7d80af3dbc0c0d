#include "cluster_procs.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"

namespace waverless::faults {

namespace fs = std::filesystem;

namespace {

bool bindable(uint16_t port) {
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
}

// A node uses port, port + 1 (HTTP) and port + 2 (raft): multiples of 4 never overlap.
uint16_t freePortQuad(std::mt19937& rng, const std::vector<uint16_t>& taken) {
  for (;;) {
    uint16_t p = static_cast<uint16_t>(20000 + (rng() % 10000) * 4);
    bool clash = false;
    for (uint16_t t : taken) clash |= t == p;
    if (!clash && bindable(p) && bindable(p + 1) && bindable(p + 2)) return p;
  }
}

}  // namespace

int runShell(const std::string& cmd) {
  int st = system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

NodeProc::NodeProc(const ClusterLayout& layout, int id, std::string host, uint16_t port,
                   bool master)
    : layout_(layout), id_(id), host_(std::move(host)), port_(port), master_(master) {}

NodeProc::~NodeProc() {
  if (paused_) resume();
  kill9();
}

std::string NodeProc::logPath() const {
  return (layout_.root / absl::StrCat("node", id_, ".log")).string();
}

bool NodeProc::start(std::chrono::seconds wait) {
  std::vector<std::string> args;
  if (!layout_.netns.empty()) {
    args = {"ip", "netns", "exec", absl::StrCat(layout_.netns, "-n", id_)};
  }
  args.insert(
      args.end(),
      {layout_.binary.string(), "node", "--config", (layout_.root / "cluster.yaml").string(),
       "--id", std::to_string(id_), "--data", (layout_.root / absl::StrCat("data", id_)).string(),
       "--cache", layout_.cache.string(), "--token-file", (layout_.root / "admin.token").string()});
  if (master_) args.insert(args.end(), {"--apps", layout_.apps.string()});
  std::string log = logPath();
  fflush(stdout);  // or the child's freopen writes our buffered output a second time
  fflush(stderr);
  pid_ = fork();
  if (pid_ == 0) {
    // Nodes die with the harness, even when it is killed itself.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    FILE* f = freopen(log.c_str(), "a", stderr);
    f = freopen(log.c_str(), "a", stdout);
    (void)f;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());  // "ip" from PATH in netns mode
    _exit(127);
  }
  paused_ = false;
  // For tests/faults/run's cleanup, should this process die without reaping its nodes.
  std::ofstream(layout_.root / absl::StrCat("node", id_, ".pid")) << pid_ << "\n";
  auto until = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < until) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    if (call("GET", "/healthz", "", std::chrono::seconds(2)).status == 200) {
      std::ifstream f(layout_.root / "admin.token");
      std::getline(f, token_);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

void NodeProc::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  paused_ = false;
}

void NodeProc::pause() {
  if (pid_ > 0 && ::kill(pid_, SIGSTOP) == 0) paused_ = true;
}

void NodeProc::resume() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
  paused_ = false;
}

bool NodeProc::partition(bool cut) {
  if (layout_.netns.empty()) return false;
  return runShell(absl::StrCat("ip link set ", layout_.netns, "-h", id_, cut ? " down" : " up")) ==
         0;
}

http::ClientResponse NodeProc::call(const std::string& method, const std::string& path,
                                    const std::string& body,
                                    std::chrono::milliseconds timeout) const {
  http::FetchOptions o;
  if (path.starts_with("/api")) o.headers.emplace_back("Authorization", "Bearer " + token_);
  o.timeout = timeout;
  auto r = http::fetch(method, absl::StrCat("http://", host_, ":", port_ + 1, path), body, o);
  if (!r.ok()) return {-1, std::string(r.status().message()), ""};
  return *r;
}

std::vector<std::unique_ptr<NodeProc>> makeCluster(const ClusterLayout& layout) {
  std::mt19937 rng(static_cast<unsigned>(getpid()) * 7919u);
  std::vector<std::unique_ptr<NodeProc>> nodes;
  std::vector<uint16_t> taken;
  std::ofstream yaml(layout.root / "cluster.yaml");
  yaml << "nodes:\n";
  for (int id = 1; id <= layout.workers + 1; ++id) {
    std::string host;
    uint16_t port;
    if (layout.netns.empty()) {
      host = "127.0.0.1";
      port = freePortQuad(rng, taken);
      taken.push_back(port);
    } else {
      host = absl::StrCat(layout.net, ".", id);
      port = 2500;
    }
    // Node 1 is the master; the meta raft group is the master and two workers.
    const char* spec = id == 1 ? "[meta, master]" : id <= 3 ? "[meta, worker]" : "[worker]";
    yaml << "  " << id << ": {addr: " << host << ":" << port << ", spec: " << spec << "}\n";
    nodes.push_back(std::make_unique<NodeProc>(layout, id, host, port, id == 1));
  }
  yaml.close();
  // One admin token for the whole cluster, made before any node starts.
  std::random_device rd;
  std::string token;
  for (int i = 0; i < 32; ++i) absl::StrAppend(&token, absl::Hex(rd() & 0xff, absl::kZeroPad2));
  {
    std::ofstream t(layout.root / "admin.token");
    t << token << "\n";
  }
  fs::permissions(layout.root / "admin.token", fs::perms::owner_read | fs::perms::owner_write);
  return nodes;
}

}  // namespace waverless::faults
