// Native single-thread word count, the floor for the word_count case; and
// the generator of its input text.
//
//   wc_native gen BYTES OUT_FILE          write deterministic text
//   wc_native count IN_FILE [OUT_JSON]    count on one thread; prints
//       {"bytes":..,"distinct_words":..,"ms":..,"sliced_ms":..}
// ms: one pass over the whole text, then sort and render the JSON answer.
// sliced_ms: the work the app and the Redis pipeline do, on one thread and
// without any store: count each ~1 MiB slice into its own map, encode the
// "<word> <count>" part, parse and merge the parts, render the JSON.
// Neither includes reading the file.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <unordered_map>

#include "word_count_core.h"

int main(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "gen" && argc == 4) {
    std::string text = wlbench::wc::generateText(std::strtoull(argv[2], nullptr, 10), 42);
    std::ofstream(argv[3], std::ios::binary) << text;
    return 0;
  }
  if (cmd == "count" && argc >= 3) {
    std::ifstream f(argv[2], std::ios::binary);
    if (!f) {
      fprintf(stderr, "wc_native: cannot read %s\n", argv[2]);
      return 1;
    }
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::string copy = text;  // counting lowercases in place; the sliced run needs the original
    auto ms_since = [](std::chrono::steady_clock::time_point t) {
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t)
          .count();
    };

    auto start = std::chrono::steady_clock::now();
    auto counts = wlbench::wc::count(text.data(), text.size());
    std::string json = wlbench::wc::toJson({counts.begin(), counts.end()});
    double ms = ms_since(start);

    start = std::chrono::steady_clock::now();
    std::unordered_map<std::string, uint64_t> totals;
    std::string_view rest = copy;
    for (std::string_view slice : wlbench::wc::slices(rest)) {
      char* p = copy.data() + (slice.data() - copy.data());
      std::string part = wlbench::wc::encodePart(wlbench::wc::count(p, slice.size()));
      wlbench::wc::mergePart(part, totals);
    }
    std::string sliced_json = wlbench::wc::toJson({totals.begin(), totals.end()});
    double sliced_ms = ms_since(start);
    if (sliced_json != json) {
      fprintf(stderr, "wc_native: sliced and one-pass answers differ\n");
      return 1;
    }
    if (argc > 3) std::ofstream(argv[3], std::ios::binary) << json;
    printf("{\"bytes\":%zu,\"distinct_words\":%zu,\"ms\":%.2f,\"sliced_ms\":%.2f}\n", text.size(),
           counts.size(), ms, sliced_ms);
    return 0;
  }
  fprintf(stderr, "usage: wc_native gen BYTES OUT | wc_native count IN [OUT_JSON]\n");
  return 2;
}
