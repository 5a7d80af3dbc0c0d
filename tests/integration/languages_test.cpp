// End-to-end tests of the guest languages beyond C/C++: Rust and
// AssemblyScript apps built from source by the real toolchains (Debian's
// cargo/rustc, the SDK's pinned asc), deployed to a real `waverless dev`
// node, and invoked over HTTP and the CLI.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>

#include "node_suite.h"

namespace waverless::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

const fs::path kSdk = fs::path(WL_SOURCE_DIR) / "sdk";

std::string readText(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void writeText(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// Copies an app's sources without its build output.
void copySources(const fs::path& src, const fs::path& dst) {
  fs::create_directories(dst);
  for (const auto& e : fs::directory_iterator(src)) {
    auto name = e.path().filename().string();
    if (name == "target" || name == "app.wasm" || name == "node_modules") continue;
    fs::copy(e.path(), dst / name, fs::copy_options::recursive);
  }
}

class LanguagesTest : public NodeSuite<LanguagesTest> {
 protected:
  static void SetUpTestSuite() {
    fs::path apps = makeRoot("languages") / "apps";
    fs::path src = WL_SOURCE_DIR;
    // No app.wasm: the node builds these at start, as scripts/setup.sh has it do.
    copySources(src / "apps/word_count_rs", apps / "word_count_rs");
    copySources(src / "apps/hello_as", apps / "hello_as");
    copySources(src / "tests/apps/rustkit", apps / "rustkit");
    copySources(src / "tests/apps/askit", apps / "askit");
    // The C++ word_count, prebuilt, to compare answers with.
    copyApp(src / "apps/word_count", fs::path(WL_BUILD_DIR) / "apps/word_count/app.wasm",
            apps / "word_count");
    startNode(apps, {"--cache", WL_TEST_CACHE, "--max-body", std::to_string(16 << 20)});
  }

  static fs::path root() { return *root_; }
};

TEST_F(LanguagesTest, TheNodeBuiltEachAppFromSource) {
  for (const char* app : {"word_count_rs", "hello_as", "rustkit", "askit"}) {
    EXPECT_TRUE(fs::exists(root() / "apps" / app / "app.wasm")) << app;
  }
  auto apps = runCli({"apps", "--output", "json"}, node_->cliArgs());
  EXPECT_THAT(apps.output, HasSubstr("\"name\":\"word_count_rs\""));
  EXPECT_THAT(apps.output, HasSubstr("\"name\":\"hello_as\""));
}

TEST_F(LanguagesTest, AssemblyScriptHelloGreetsAndCountsInTheKvStore) {
  auto r = node_->call("POST", "/hello_as", "Ada");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "hello Ada from AssemblyScript (greeting 1)");
  r = node_->call("POST", "/hello_as", "Ada");
  EXPECT_EQ(r.body, "hello Ada from AssemblyScript (greeting 2)");
  r = node_->call("GET", "/hello_as");
  EXPECT_EQ(r.body, "hello world from AssemblyScript (greeting 1)");
  auto cli = runCli({"invoke", "hello_as", "--data", "Grace"}, node_->cliArgs());
  EXPECT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_THAT(cli.output, HasSubstr("hello Grace from AssemblyScript (greeting 1)"));
}

TEST_F(LanguagesTest, AssemblyScriptFailGivesItsCodeAndMessage) {
  auto r = node_->call("POST", "/hello_as", "not a key segment!");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("function hello"));
  EXPECT_THAT(r.body, HasSubstr("a name is letters, digits"));
}

TEST_F(LanguagesTest, AssemblyScriptKvBindingsAgainstTheRealStore) {
  auto r = node_->call("POST", "/askit/kvops", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body,
            "batch=0 set=0 scan=[as_a=one,as_b=two,as_c=three,as_empty=] missing=null empty='' "
            "big=true del=0 deleted=null outside=2");
}

TEST_F(LanguagesTest, AssemblyScriptFilesAndStreamedBody) {
  auto r = node_->call("POST", "/askit/files", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "data='askit data\n' missing=null");
  std::string body = generateText(600u << 10, 3);  // over the 256 KiB streaming threshold
  auto echo = node_->call("POST", "/askit/echo", body);
  ASSERT_EQ(echo.status, 200) << echo.body.substr(0, 200);
  EXPECT_TRUE(echo.body == body) << echo.body.size() << " bytes back of " << body.size();
}

// The host has no env.abort: the SDK points AssemblyScript's abort at wl_fail.
TEST_F(LanguagesTest, AssemblyScriptAbortFailsTheInvocationWithItsMessage) {
  auto r = node_->call("POST", "/askit/aborts", "");
  EXPECT_EQ(r.status, 500);
  EXPECT_THAT(r.body, HasSubstr("function aborts"));
  EXPECT_THAT(r.body,
              HasSubstr("AssemblyScript abort: askit asserted on purpose at assembly/index.ts:"));
  EXPECT_EQ(node_->call("POST", "/askit/files", "").status, 200);
}

TEST_F(LanguagesTest, RustWordCountMatchesNativeCountAndTheCppApp) {
  std::string text = generateText(6u << 20, 11);
  text += "trailing-word without newline ÄÖÜ\tTAB\r\nCRLF";
  auto rs = node_->call("POST", "/word_count_rs", text);
  ASSERT_EQ(rs.status, 200) << rs.body;
  EXPECT_EQ(rs.body, nativeWordCount(text));
  auto cpp = node_->call("POST", "/word_count", text);
  ASSERT_EQ(cpp.status, 200) << cpp.body;
  EXPECT_EQ(rs.body, cpp.body);
}

TEST_F(LanguagesTest, RustWordCountHandlesALineLongerThanASlice) {
  std::string text(3u << 20, 'a');
  for (size_t i = 0; i < text.size(); i += 7) text[i] = ' ';
  text += "\nshort line\n";
  auto rs = node_->call("POST", "/word_count_rs", text);
  ASSERT_EQ(rs.status, 200) << rs.body;
  EXPECT_EQ(rs.body, nativeWordCount(text));
}

TEST_F(LanguagesTest, RustWordCountReadsItsFilesWhenBodyIsEmpty) {
  std::string text = readText(fs::path(WL_SOURCE_DIR) / "apps/word_count_rs/files/input.txt");
  ASSERT_FALSE(text.empty());
  auto r = node_->call("POST", "/word_count_rs", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, nativeWordCount(text));
}

TEST_F(LanguagesTest, RustKvBindingsAgainstTheRealStore) {
  auto r = node_->call("POST", "/rustkit/kvops", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body,
            "scan=[rk_a=one,rk_b=two,rk_c=three,rk_empty=] missing=none empty='' a='one' "
            "big=true deleted=none");
}

// cas with "expected absent", a conflict as its own code, incr, and the
// invocation id, in both SDKs: the same host calls, the same answers.
TEST_F(LanguagesTest, RustAndAssemblyScriptCasIncrAndInvocationId) {
  const std::map<std::string, std::string> want = {
      {"rustkit",
       "cas=stored,Conflict,stored,Conflict value='v3' incr=5,-2 stored='-2' bad=Invalid id="},
      {"askit", "cas=0,10,0,10 value='v3' incr=5,-2 stored='-2' bad=3 id="}};
  for (const auto& [app, prefix] : want) {
    std::set<std::string> ids;
    for (int i = 0; i < 2; ++i) {
      auto r = node_->call("POST", "/" + app + "/atomics", "");
      ASSERT_EQ(r.status, 200) << app << ": " << r.body;
      ASSERT_THAT(r.body, ::testing::StartsWith(prefix)) << app;
      std::string id = r.body.substr(prefix.size());
      // "<request id>.<n>": the entry function of its request is 0.
      EXPECT_THAT(id, ::testing::MatchesRegex(".+\\.0")) << app;
      ids.insert(id);
    }
    EXPECT_EQ(ids.size(), 2u) << app << ": each call has its own id";
  }
}

TEST_F(LanguagesTest, RustFilesBindingsReadTheAppsFolderOnly) {
  auto r = node_->call("POST", "/rustkit/files", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "size=13 head='rustkit' all='rustkit data' outside=Permission");
}

TEST_F(LanguagesTest, RustErrorsFailTheInvocationWithTheirCodesHttpStatus) {
  const std::pair<int, int> cases[] = {{3, 400}, {2, 403}, {1, 404}, {7, 503}, {6, 500}};
  for (auto [code, http] : cases) {
    auto r = node_->call("POST", "/rustkit/failwith", std::to_string(code));
    EXPECT_EQ(r.status, http) << "code " << code << ": " << r.body;
    EXPECT_THAT(r.body, HasSubstr("function failwith"));
    EXPECT_THAT(r.body, HasSubstr("rustkit failed with code " + std::to_string(code)));
  }
  auto denied = node_->call("POST", "/rustkit/denied", "");
  EXPECT_EQ(denied.status, 403) << denied.body;
  EXPECT_THAT(denied.body, HasSubstr("kv::set: permission denied"));
}

TEST_F(LanguagesTest, RustPanicFailsTheInvocationWithThePanicMessage) {
  auto r = node_->call("POST", "/rustkit/panics", "");
  EXPECT_EQ(r.status, 500);
  EXPECT_THAT(r.body, HasSubstr("rustkit panicked on purpose"));
  // The instance is not poisoned: the app keeps serving.
  EXPECT_EQ(node_->call("POST", "/rustkit/files", "").status, 200);
}

TEST_F(LanguagesTest, RustReadsAStreamedBodyInPieces) {
  std::string body = generateText(700u << 10, 5);  // over the 256 KiB streaming threshold
  auto r = node_->call("POST", "/rustkit/echo", body);
  ASSERT_EQ(r.status, 200) << r.body.substr(0, 200);
  EXPECT_EQ(r.body.size(), body.size());
  EXPECT_TRUE(r.body == body);
}

// What `waverless new <template> DIR` does (src/cli/templates.cpp): copy
// the folder but its template.txt, replacing {{app}} with the app's name.
void instantiateTemplate(const std::string& name, const fs::path& dir) {
  fs::path from = kSdk / "templates" / name;
  ASSERT_TRUE(fs::exists(from / "template.txt")) << from;
  for (const auto& e : fs::recursive_directory_iterator(from)) {
    fs::path rel = fs::relative(e.path(), from);
    if (!e.is_regular_file() || rel == "template.txt") continue;
    std::string text = readText(e.path());
    text = std::regex_replace(text, std::regex("\\{\\{app\\}\\}"), dir.filename().string());
    writeText(dir / rel, text);
  }
}

TEST_F(LanguagesTest, EachTemplateDeploysWithTheCliWhichBuildsItFirst) {
  const std::pair<const char*, const char*> cases[] = {
      {"rust", "compiling Rust crate"}, {"assemblyscript", "compiling AssemblyScript"}};
  for (auto [name, progress] : cases) {
    fs::path dir = root() / (std::string("tpl_") + name);
    instantiateTemplate(name, dir);
    auto deploy = runCli({"deploy", dir.string()}, node_->cliArgs());
    ASSERT_EQ(deploy.exit_code, 0) << deploy.output;
    EXPECT_THAT(deploy.output, HasSubstr(progress));
    // The same behaviour as the C and C++ templates: a counter per name.
    std::string path = "/" + dir.filename().string();
    auto r = node_->call("POST", path, "there");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, "hello there (call 1)");
    EXPECT_EQ(node_->call("POST", path, "there").body, "hello there (call 2)");
    EXPECT_EQ(node_->call("POST", path, "").body, "hello world (call 1)");
    EXPECT_EQ(node_->call("POST", path, "no spaces please").status, 400);
  }
}

const char kRustManifest[] =
    "[package]\nname = \"broken\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n"
    "[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nwaverless = \"0.1\"\n";

TEST_F(LanguagesTest, RustCompileErrorsReachTheBuildAndDeployError) {
  fs::path dir = root() / "broken_rs";
  writeText(dir / "Cargo.toml", kRustManifest);
  writeText(dir / "app.yaml", "fns:\n  hi:\n    event:\n    - http_app:\n");
  writeText(dir / "src/lib.rs",
            "fn hi(_: &waverless::Args) -> waverless::Result<()> {\n"
            "    let n: u32 = \"not a number\";\n    Ok(())\n}\nwaverless::export!(hi);\n");
  auto build = runCli({"build", dir.string()});
  EXPECT_NE(build.exit_code, 0);
  EXPECT_THAT(build.output, HasSubstr("error[E0308]: mismatched types"));
  EXPECT_THAT(build.output, HasSubstr("src/lib.rs:2"));
  EXPECT_THAT(build.output, Not(HasSubstr("{\"reason\"")));
  auto deploy = runCli({"deploy", dir.string()}, node_->cliArgs());
  EXPECT_NE(deploy.exit_code, 0);
  EXPECT_THAT(deploy.output, HasSubstr("error[E0308]: mismatched types"));
  EXPECT_EQ(node_->call("POST", "/broken_rs", "").status, 404);
}

TEST_F(LanguagesTest, AssemblyScriptCompileErrorsReachTheBuildError) {
  fs::path dir = root() / "broken_as";
  writeText(dir / "package.json", "{\"name\": \"broken_as\", \"private\": true}\n");
  writeText(dir / "app.yaml", "fns:\n  hi:\n    event:\n    - http_app:\n");
  writeText(dir / "assembly/index.ts",
            "export function hi(argv: usize, argc: u32): void {\n"
            "  const n: i32 = \"not a number\";\n}\n");
  auto build = runCli({"build", dir.string()});
  EXPECT_NE(build.exit_code, 0);
  EXPECT_THAT(build.output, HasSubstr("TS2322"));
  EXPECT_THAT(build.output, HasSubstr("assembly/index.ts"));
  EXPECT_FALSE(fs::exists(dir / "app.wasm"));
}

}  // namespace
}  // namespace waverless::testing
