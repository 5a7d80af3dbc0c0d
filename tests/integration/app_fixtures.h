// Helpers shared by the end-to-end tests: temp folders, app copies, and the
// native reference results the demo apps are checked against.
#pragma once

#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <map>
#include <random>
#include <string>

namespace waverless::testing {

namespace fs = std::filesystem;

inline fs::path tempDir(const std::string& tag) {
  auto d = fs::temp_directory_path() / ("wl-it-" + tag + "-" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Copies an app folder; the prebuilt app.wasm is copied last so it is newer
// than the sources and the node does not rebuild it.
inline void copyApp(const fs::path& src, const fs::path& wasm, const fs::path& dst) {
  fs::create_directories(dst);
  for (const auto& e : fs::directory_iterator(src)) {
    if (e.path().filename() == "app.wasm") continue;
    fs::copy(e.path(), dst / e.path().filename(), fs::copy_options::recursive);
  }
  fs::copy_file(wasm, dst / "app.wasm");
}

// The word_count app's definition: maximal runs of [A-Za-z0-9], lowercased;
// JSON object sorted by key, no spaces.
inline std::string nativeWordCount(const std::string& text) {
  std::map<std::string, uint64_t> counts;
  std::string w;
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!w.empty()) {
      counts[w]++;
      w.clear();
    }
  }
  if (!w.empty()) counts[w]++;
  std::string out = "{";
  for (const auto& [k, v] : counts) {
    if (out.size() > 1) out += ',';
    out += "\"" + k + "\":" + std::to_string(v);
  }
  return out + "}";
}

inline std::string rotate(std::string s, int times) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>('a' + (c - 'a' + times) % 26);
    if (c >= 'A' && c <= 'Z') c = static_cast<char>('A' + (c - 'A' + times) % 26);
  }
  return s;
}

// The demo apps and the test apps (testkit, cppkit, register), with their prebuilt app.wasm, under
// dir.
inline void copyTestApps(const fs::path& dir) {
  for (const char* a : {"hello", "word_count", "longchain"}) {
    copyApp(fs::path(WL_SOURCE_DIR) / "apps" / a, fs::path(WL_BUILD_DIR) / "apps" / a / "app.wasm",
            dir / a);
  }
  for (const char* a : {"testkit", "cppkit", "register"}) {
    copyApp(fs::path(WL_SOURCE_DIR) / "tests/apps" / a,
            fs::path(WL_BUILD_DIR) / "tests/apps" / a / "app.wasm", dir / a);
  }
}

// A multi-MB text of words, digits and punctuation over many lines.
inline std::string generateText(size_t bytes, unsigned seed) {
  std::mt19937 rng(seed);
  const char* words[] = {"alpha", "Beta", "gamma", "delta42", "EPSILON", "zeta", "eta", "theta"};
  std::string text;
  while (text.size() < bytes) {
    int n = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) {
      text += words[rng() % 8];
      text += (rng() % 5 == 0) ? ", " : " ";
    }
    text += std::to_string(rng() % 1000);
    text += "\n";
  }
  return text;
}

}  // namespace waverless::testing
