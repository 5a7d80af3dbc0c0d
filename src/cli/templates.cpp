// `waverless new TEMPLATE DIR`: copies a template folder. Templates are the
// folders of <sdk>/templates (or $WAVERLESS_TEMPLATES), so a guest language
// adds one by adding a folder; see sdk/templates/README.md.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "cli/cli_common.h"
#include "meta/app_registry.h"
#include "toolchain/guest_builder.h"

namespace waverless::cli {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDescriptionFile = "template.txt";

fs::path templatesDir() {
  if (const char* env = getenv("WAVERLESS_TEMPLATES"); env != nullptr && *env != '\0') return env;
  return toolchain::defaultSdkDir() / "templates";
}

// Template name -> its one-line description.
std::map<std::string, std::string> templates(const fs::path& root) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (!e.is_directory() || !fs::exists(e.path() / kDescriptionFile)) continue;
    std::ifstream f(e.path() / kDescriptionFile);
    std::string line;
    std::getline(f, line);
    out[e.path().filename().string()] = line;
  }
  return out;
}

void printTemplates(FILE* to, const std::map<std::string, std::string>& all) {
  size_t w = 0;
  for (const auto& [n, d] : all) w = std::max(w, n.size());
  for (const auto& [n, d] : all)
    fprintf(to, "  %-*s  %s\n", static_cast<int>(w), n.c_str(), d.c_str());
}

std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

}  // namespace

int runNew(const Args& a) {
  fs::path root = templatesDir();
  auto all = templates(root);
  if (all.empty())
    return fail("no templates found in " + root.string() + " (set $WAVERLESS_TEMPLATES)");
  if (a.has("list")) {
    for (const auto& [n, d] : all) printf("%s\n", n.c_str());
    return 0;
  }
  if (a.positional.size() < 3) {
    fprintf(stderr, "usage: waverless new TEMPLATE DIR [--name APP]\ntemplates:\n");
    printTemplates(stderr, all);
    return kUsage;
  }
  const std::string& name = a.positional[1];
  if (!all.contains(name)) {
    fprintf(stderr, "waverless: no template named '%s'; there are:\n", name.c_str());
    printTemplates(stderr, all);
    return kUsage;
  }
  fs::path dir = fs::absolute(a.positional[2]).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  std::string app = a.get("name", dir.filename().string());
  if (auto st = meta::validateAppName(app); !st.ok()) {
    return usageError(std::string(st.message()) + " (the app name is DIR's last part, or --name)");
  }
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    return fail(dir.string() + " exists and is not empty: pick a new folder");
  }
  fs::path from = root / name;
  for (const auto& e : fs::recursive_directory_iterator(from, ec)) {
    fs::path rel = fs::relative(e.path(), from);
    if (rel == kDescriptionFile) continue;
    if (e.is_directory()) {
      fs::create_directories(dir / rel, ec);
      continue;
    }
    std::ifstream in(e.path(), std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    fs::create_directories((dir / rel).parent_path(), ec);
    std::ofstream outf(dir / rel, std::ios::binary | std::ios::trunc);
    outf << replaceAll(text, "{{app}}", app);
    if (!outf) return fail("cannot write " + (dir / rel).string());
  }
  if (ec) return fail("copying template " + name + ": " + ec.message());
  fprintf(stderr,
          "created %s from template %s; next:\n  waverless deploy %s\n  waverless invoke %s --data "
          "you\n",
          dir.c_str(), name.c_str(), a.positional[2].c_str(), app.c_str());
  return 0;
}

}  // namespace waverless::cli
