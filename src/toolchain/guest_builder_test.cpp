#include "toolchain/guest_builder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "toolchain/guest_languages.h"

namespace waverless::toolchain {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class GuestBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("wl-toolchain-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const fs::path& rel, const std::string& text = "") {
    fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p;
  }

  // Sets p's mtime relative to a fixed base, so ordering never depends on
  // the file system's timestamp granularity.
  void age(const fs::path& p, int seconds) {
    fs::last_write_time(p, base_ + std::chrono::seconds(seconds));
  }

  fs::path dir_;
  fs::file_time_type base_ = fs::file_time_type::clock::now() - std::chrono::hours(1);
};

TEST_F(GuestBuilderTest, DetectsEachLanguageFromItsMarkers) {
  write("a/main.c");
  EXPECT_EQ(*detectLanguage(dir_ / "a"), GuestLanguage::kC);
  write("b/main.c");
  write("b/src/more.cc");
  EXPECT_EQ(*detectLanguage(dir_ / "b"), GuestLanguage::kCxx);
  write("c/Cargo.toml");
  write("c/src/lib.rs");
  write("c/shim.c");  // a crate may carry C for its build script: still Rust
  EXPECT_EQ(*detectLanguage(dir_ / "c"), GuestLanguage::kRust);
  write("d/asconfig.json", "{}");
  EXPECT_EQ(*detectLanguage(dir_ / "d"), GuestLanguage::kAssemblyScript);
  write("e/package.json", "{}");
  write("e/assembly/index.ts");
  EXPECT_EQ(*detectLanguage(dir_ / "e"), GuestLanguage::kAssemblyScript);
  // package.json alone (tooling for a C app, say) is not AssemblyScript.
  write("f/package.json", "{}");
  write("f/main.cpp");
  EXPECT_EQ(*detectLanguage(dir_ / "f"), GuestLanguage::kCxx);
}

TEST_F(GuestBuilderTest, NothingToBuildOrTwoLanguagesIsAnError) {
  write("empty/app.yaml");
  auto none = detectLanguage(dir_ / "empty");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(none.status().message(), HasSubstr("Cargo.toml"));
  EXPECT_THAT(none.status().message(), HasSubstr("*.c"));
  EXPECT_THAT(none.status().message(), HasSubstr("asconfig.json"));

  write("both/Cargo.toml");
  write("both/asconfig.json", "{}");
  auto both = detectLanguage(dir_ / "both");
  ASSERT_FALSE(both.ok());
  EXPECT_THAT(both.status().message(), HasSubstr("one language per app folder"));
  EXPECT_FALSE(buildApp(dir_ / "both", BuildOptions{defaultSdkDir(), {}}).ok());
}

TEST_F(GuestBuilderTest, RustIsStaleWhenAnySourceOrTheSdkChangesButNotBuildOutput) {
  fs::path app = dir_ / "app", sdk = dir_ / "sdk";
  for (const auto& p : {write("app/Cargo.toml"), write("app/src/lib.rs"),
                        write("app/src/words/mod.rs"), write("sdk/rust/waverless/src/lib.rs")}) {
    age(p, 0);
  }
  EXPECT_TRUE(needsBuild(app, sdk)) << "no app.wasm yet";
  age(write("app/app.wasm"), 10);
  EXPECT_FALSE(needsBuild(app, sdk));

  // Build output, the app's data, its manifest and hidden files do not count.
  age(write("app/target/wasm32-wasi/release/app.wasm"), 20);
  age(write("app/files/input.txt"), 20);
  age(write("app/app.yaml"), 20);
  age(write("app/.editor-swap"), 20);
  EXPECT_FALSE(needsBuild(app, sdk));

  age(dir_ / "app/src/words/mod.rs", 20);  // a nested module
  EXPECT_TRUE(needsBuild(app, sdk));
  age(dir_ / "app/src/words/mod.rs", 0);
  age(dir_ / "sdk/rust/waverless/src/lib.rs", 20);  // the SDK the crate links
  EXPECT_TRUE(needsBuild(app, sdk));
}

TEST_F(GuestBuilderTest, AssemblyScriptIsStaleWhenItsSourcesChangeButNotNodeModules) {
  fs::path app = dir_ / "app", sdk = dir_ / "sdk";
  for (const auto& p : {write("app/package.json", "{}"), write("app/assembly/index.ts"),
                        write("sdk/assemblyscript/waverless/index.ts")}) {
    age(p, 0);
  }
  age(write("app/app.wasm"), 10);
  age(write("app/node_modules/x/index.js"), 20);
  age(write("sdk/assemblyscript/node_modules/assemblyscript/bin/asc.js"), 20);
  EXPECT_FALSE(needsBuild(app, sdk));
  age(dir_ / "sdk/assemblyscript/waverless/index.ts", 20);
  EXPECT_TRUE(needsBuild(app, sdk));
}

TEST_F(GuestBuilderTest, CStalenessLooksOnlyAtSources) {
  fs::path app = dir_ / "app";
  age(write("app/main.c"), 0);
  age(write("app/app.wasm"), 10);
  age(write("app/notes.txt"), 20);
  EXPECT_FALSE(needsBuild(app, dir_ / "sdk"));
  age(dir_ / "app/main.c", 20);
  EXPECT_TRUE(needsBuild(app, dir_ / "sdk"));
}

TEST_F(GuestBuilderTest, PrebuiltModuleWithoutSourcesIsNeverStale) {
  fs::path app = dir_ / "app";
  age(write("app/app.wasm"), 0);
  age(write("app/app.yaml"), 20);
  age(write("app/files/input.txt"), 20);
  EXPECT_FALSE(needsBuild(app, dir_ / "sdk"));
  fs::remove(app / "app.wasm");
  EXPECT_TRUE(needsBuild(app, dir_ / "sdk"));
}

TEST(CargoOutput, FindsTheWasmArtifactAmongJsonLines) {
  std::string out =
      "   Compiling waverless v0.1.0 (/sdk/rust/waverless)\n"
      "{\"reason\":\"compiler-artifact\",\"target\":{\"kind\":[\"lib\"]},\"filenames\":[\"/t/"
      "libwaverless-1.rlib\",\"/t/libwaverless-1.rmeta\"],\"fresh\":false}\n"
      "{\"reason\":\"compiler-artifact\",\"target\":{\"kind\":[\"cdylib\"]},\"filenames\":[\"/t/"
      "wasm32-wasi/release/my \\\"app\\\".wasm\"],\"fresh\":true}\n"
      "{\"reason\":\"build-finished\",\"success\":true}\n"
      "    Finished release [optimized] target(s) in 0.02s\n";
  auto wasm = internal::cargoWasmArtifacts(out);
  ASSERT_EQ(wasm.size(), 1u);
  EXPECT_EQ(wasm[0], fs::path("/t/wasm32-wasi/release/my \"app\".wasm"));
  EXPECT_TRUE(internal::cargoWasmArtifacts("error: could not compile\n").empty());
}

// The real toolchain: Debian's cargo and rustc (scripts/install-deps.sh).
TEST_F(GuestBuilderTest, RustCompileErrorsCarryTheCompilersMessage) {
  write("bad/Cargo.toml",
        "[package]\nname = \"bad\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n"
        "[lib]\ncrate-type = [\"cdylib\"]\n");
  write("bad/src/lib.rs", "pub fn f() -> u32 { \"not a number\" }\n");
  absl::Status st = buildApp(dir_ / "bad", BuildOptions{defaultSdkDir(), {}});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("error[E0308]: mismatched types"));
  EXPECT_THAT(st.message(), HasSubstr("src/lib.rs:1"));
  EXPECT_THAT(st.message(), ::testing::Not(HasSubstr("{\"reason\"")));
  EXPECT_FALSE(fs::exists(dir_ / "bad/app.wasm"));
}

TEST_F(GuestBuilderTest, RustCrateThatIsNotACdylibIsRefusedWithTheFix) {
  write("lib/Cargo.toml", "[package]\nname = \"lib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n");
  write("lib/src/lib.rs", "pub fn f() -> u32 { 1 }\n");
  absl::Status st = buildApp(dir_ / "lib", BuildOptions{defaultSdkDir(), {}});
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("crate-type = [\"cdylib\"]"));
  EXPECT_FALSE(fs::exists(dir_ / "lib/app.wasm"));
}

// The usual manifest says `waverless = "0.1"` (resolved to the SDK by the
// build, see languages_e2e_test); one naming the SDK by path builds as well.
TEST_F(GuestBuilderTest, RustCrateNamingTheSdkByPathBuildsToo) {
  write("bypath/Cargo.toml",
        "[package]\nname = \"bypath\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n"
        "[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nwaverless = { path = \"" +
            (defaultSdkDir() / "rust/waverless").string() + "\" }\n");
  write("bypath/src/lib.rs",
        "fn f(_: &waverless::Args) -> waverless::Result<()> { waverless::output(\"ok\") }\n"
        "waverless::export!(f);\n");
  absl::Status st = buildApp(dir_ / "bypath", BuildOptions{defaultSdkDir(), {}});
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_GT(fs::file_size(dir_ / "bypath/app.wasm"), 1000u);
}

TEST_F(GuestBuilderTest, AssemblyScriptWithoutAnEntryFileIsRefused) {
  write("as/asconfig.json", "{}");
  absl::Status st = buildApp(dir_ / "as", BuildOptions{defaultSdkDir(), {}});
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("assembly/index.ts is missing"));
}

}  // namespace
}  // namespace waverless::toolchain
