#include "script.h"

#include <time.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <vector>

#include "load/http_wire.h"
#include "load/stats.h"

namespace wlbench {

using namespace waverless::load;  // the load generator proper (src/load/)

namespace {

int64_t monoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct Line {
  std::string tag, method, path, body_file, save_file;
};

bool parseScript(const std::string& path, std::vector<Line>* out) {
  std::ifstream f(path);
  if (!f) return false;
  std::string text;
  while (std::getline(f, text)) {
    if (text.empty() || text[0] == '#') continue;
    std::istringstream in(text);
    Line l;
    in >> l.tag >> l.method >> l.path;
    if (l.path.empty()) {
      fprintf(stderr, "loadgen: bad script line: %s\n", text.c_str());
      return false;
    }
    for (std::string extra; in >> extra;) {
      if (extra[0] == '@') l.body_file = extra.substr(1);
      if (extra[0] == '>') l.save_file = extra.substr(1);
    }
    out->push_back(std::move(l));
  }
  return true;
}

}  // namespace

int runScript(const ScriptOptions& o) {
  std::vector<Line> lines;
  if (!parseScript(o.script_path, &lines)) {
    fprintf(stderr, "loadgen: cannot read script %s\n", o.script_path.c_str());
    return 2;
  }
  std::map<std::string, std::string> bodies;  // file -> contents, read once
  for (const Line& l : lines) {
    if (l.body_file.empty() || bodies.count(l.body_file)) continue;
    std::ifstream f(l.body_file, std::ios::binary);
    if (!f) {
      fprintf(stderr, "loadgen: cannot read body file %s\n", l.body_file.c_str());
      return 2;
    }
    bodies[l.body_file].assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  FILE* samples = o.samples_path.empty() ? nullptr : fopen(o.samples_path.c_str(), "w");

  std::vector<std::string> order;  // tags in order of first appearance
  std::map<std::string, std::vector<uint32_t>> latencies;
  std::map<std::string, uint64_t> errors;
  BlockingConnection conn(o.host, o.port);
  std::string host = o.host + ":" + std::to_string(o.port);
  std::string extra_headers = o.header.empty() ? "" : o.header + "\r\n";
  for (const Line& l : lines) {
    static const std::string kEmpty;
    const std::string& body = l.body_file.empty() ? kEmpty : bodies[l.body_file];
    std::string request = buildRequest(l.method, l.path, host, body, extra_headers);
    ResponseParser parser(/*keep_body=*/!l.save_file.empty());
    int64_t start = monoNs();
    int status = conn.exchange(request, parser);
    uint32_t us = static_cast<uint32_t>((monoNs() - start) / 1000);
    if (!latencies.count(l.tag)) order.push_back(l.tag);
    latencies[l.tag].push_back(us);
    if (status < 200 || status > 299) {
      ++errors[l.tag];
      if (errors[l.tag] <= 3) {
        fprintf(stderr, "loadgen: %s %s %s -> status %d\n", l.tag.c_str(), l.method.c_str(),
                l.path.c_str(), status);
      }
    }
    if (samples != nullptr) fprintf(samples, "%s %u %d\n", l.tag.c_str(), us, status);
    if (!l.save_file.empty()) {
      std::ofstream(l.save_file, std::ios::binary) << parser.body();
    }
  }
  if (samples != nullptr) fclose(samples);

  std::string json = "{\"mode\":\"script\",\"tags\":{";
  for (size_t i = 0; i < order.size(); ++i) {
    const std::string& tag = order[i];
    Summary s = summarize(latencies[tag]);
    std::string js = toJson(s);
    js.insert(js.size() - 1, ",\"errors\":" + std::to_string(errors[tag]));
    json += (i ? ",\"" : "\"") + tag + "\":" + js;
  }
  json += "}}";
  printf("%s\n", json.c_str());
  return 0;
}

}  // namespace wlbench
