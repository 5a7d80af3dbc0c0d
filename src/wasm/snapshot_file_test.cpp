// Snapshot files: written at the first load, read back by the next one
// instead of running wl_init, refused (and rebuilt) when damaged, stale or
// hostile, and shipped in their packed form.
#include "wasm/snapshot_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "wasm/engine.h"
#include "wasm/test_support.h"

namespace waverless::wasm {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::readGuest;
using testing::TestHost;

std::string readAll(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void writeAll(const fs::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
}

class SnapshotFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ =
        absl::StrCat("snapfile-", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    files_ = fs::temp_directory_path() / absl::StrCat("wl-", name_, "-", getpid());
    fs::create_directories(files_);
    std::ofstream(files_ / "word.txt") << "alpha\n";
    restart();
  }
  void TearDown() override {
    engine_.reset();
    std::error_code ec;
    fs::remove(snapshot_, ec);
    fs::remove_all(files_, ec);
  }

  // A new engine on the same cache: what a node restart does to the engine.
  void restart() {
    if (engine_) engine_->stop();
    EngineOptions o;
    o.cache_dir = WL_TEST_CACHE;
    o.executor.threads = 1;
    engine_ = std::make_unique<Engine>(o);
    ASSERT_TRUE(engine_->start().ok());
  }

  std::shared_ptr<App> load(LoadInfo& info, const std::string& guest = "snapshot") {
    info = LoadInfo{};
    auto app = engine_->load(name_, readGuest(guest + ".wasm"), AppLimits{}, &info, files_);
    EXPECT_TRUE(app.ok()) << app.status();
    if (!info.snapshot_path.empty()) snapshot_ = info.snapshot_path;
    return app.ok() ? *app : nullptr;
  }

  std::string call(const std::shared_ptr<App>& app, const std::string& fn, bool fresh = false) {
    InvocationRequest req;
    req.function = fn;
    req.host = &host_;
    req.fresh_instance = fresh;
    auto r = engine_->invokeSync(app, std::move(req));
    EXPECT_TRUE(r.status.ok()) << r.status;
    return r.output;
  }

  std::string name_;
  fs::path files_, snapshot_;
  std::unique_ptr<Engine> engine_;
  TestHost host_;
};

TEST_F(SnapshotFileTest, ARestartedEngineReadsTheFileInsteadOfRunningWlInit) {
  LoadInfo info;
  auto app = load(info);
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(info.snapshot, SnapshotSource::kBuilt) << info.snapshot_note;
  ASSERT_TRUE(fs::exists(info.snapshot_path));
  std::string nonce = call(app, "nonce");
  std::string state = call(app, "state");
  EXPECT_THAT(state, HasSubstr("inits=1"));
  EXPECT_THAT(state, HasSubstr("word=alpha calls=1"));
  app.reset();

  restart();
  app = load(info);
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(info.snapshot, SnapshotSource::kCache) << info.snapshot_note;
  // The nonce wl_init drew: the same memory, not a second run of wl_init.
  EXPECT_EQ(call(app, "nonce"), nonce);
  EXPECT_EQ(call(app, "state"), state);
  // Fresh calls reset to the image mapped from the file.
  for (int i = 0; i < 2; ++i) {
    call(app, "scribble", true);
    EXPECT_EQ(call(app, "state", true), state);
  }
}

TEST_F(SnapshotFileTest, AChangeToAFileWlInitOpenedRebuildsIt) {
  LoadInfo info;
  ASSERT_NE(load(info), nullptr);
  std::ofstream(files_ / "word.txt") << "beta\n";
  restart();
  auto app = load(info);
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(info.snapshot, SnapshotSource::kBuilt);
  EXPECT_THAT(info.snapshot_note, HasSubstr("files/word.txt, which wl_init opened"));
  EXPECT_THAT(call(app, "state"), HasSubstr("word=beta"));
  app.reset();
  // A file wl_init looked for and did not find counts the same way.
  fs::remove(files_ / "word.txt");
  restart();
  app = load(info);
  EXPECT_EQ(info.snapshot, SnapshotSource::kBuilt);
  EXPECT_THAT(call(app, "state"), HasSubstr("word=none"));
}

// Each damage, applied to a good file: the load runs wl_init instead, says
// why, and writes a good file again.
TEST_F(SnapshotFileTest, DamagedTruncatedOrStaleFilesAreRebuiltWithTheReason) {
  struct Damage {
    const char* what;
    std::function<void(std::string&)> apply;
    const char* reason;
  };
  auto image_byte = [](std::string& f) {
    // The first byte of data in the image (the header's image offset).
    uint64_t off;
    memcpy(&off, f.data() + 104, 8);
    size_t i = off;
    while (i < f.size() && f[i] == 0) ++i;
    ASSERT_LT(i, f.size());
    f[i] ^= 0x40;
  };
  std::vector<Damage> damages = {
      {"truncated", [](std::string& f) { f.resize(f.size() - 4096); }, "truncated"},
      {"header only", [](std::string& f) { f.resize(100); }, "truncated"},
      {"magic", [](std::string& f) { f[0] = 'X'; }, "not a snapshot file"},
      {"format", [](std::string& f) { f[8] = 9; }, "snapshot format 9"},
      {"abi", [](std::string& f) { f[12] = 99; }, "module ABI 99"},
      {"build key", [](std::string& f) { f[20] ^= 1; }, "another build"},
      {"sizes", [](std::string& f) { f[91] = 0x7f; }, "sizes out of range"},
      {"state byte", [](std::string& f) { f[130] ^= 1; }, "checksum"},
      {"image byte", image_byte, "checksum"},
  };
  LoadInfo info;
  ASSERT_NE(load(info), nullptr);
  std::string good = readAll(snapshot_);
  std::string nonce;
  for (const auto& d : damages) {
    SCOPED_TRACE(d.what);
    std::string bad = good;
    d.apply(bad);
    writeAll(snapshot_, bad);
    restart();
    auto app = load(info);
    ASSERT_NE(app, nullptr);
    EXPECT_EQ(info.snapshot, SnapshotSource::kBuilt);
    EXPECT_THAT(info.snapshot_note, HasSubstr(d.reason));
    EXPECT_THAT(call(app, "state"), HasSubstr("inits=1 sum="));
    EXPECT_NE(call(app, "nonce"), nonce);  // wl_init ran again
    nonce = call(app, "nonce");
    // ... and wrote a good file again.
    app.reset();
    restart();
    app = load(info);
    EXPECT_EQ(info.snapshot, SnapshotSource::kCache) << info.snapshot_note;
    EXPECT_EQ(call(app, "nonce"), nonce);
    good = readAll(snapshot_);
  }
}

// A well-formed file (checksum and all) whose instance state names a table
// entry the module does not have, or is cut short: the module's load_state
// refuses it.
TEST_F(SnapshotFileTest, AHostileStateIsRefusedByTheModule) {
  LoadInfo info;
  ASSERT_NE(load(info), nullptr);
  auto file = SnapshotFile::open(snapshot_, "");
  ASSERT_TRUE(file.ok()) << file.status();
  std::string key = readAll(snapshot_).substr(16, 64);
  std::string state = file->state();
  ASSERT_GE(state.size(), 8u);
  std::vector<std::string> hostile = {state, state.substr(0, state.size() - 4), state + "xxxx"};
  uint32_t far = 0xFFFF;  // the last table entry's index, out of range
  memcpy(hostile[0].data() + hostile[0].size() - 4, &far, 4);
  for (const auto& s : hostile) {
    ASSERT_TRUE(
        writeSnapshotFile(snapshot_, key, s, file->files(), file->view(), file->pages()).ok());
    restart();
    auto app = load(info);
    ASSERT_NE(app, nullptr);
    EXPECT_EQ(info.snapshot, SnapshotSource::kBuilt);
    EXPECT_THAT(info.snapshot_note, HasSubstr("instance state does not fit the module"));
    EXPECT_THAT(call(app, "state"), HasSubstr("inits=1"));
  }
}

TEST_F(SnapshotFileTest, PackedFormRoundTripsAndIsChecked) {
  LoadInfo info;
  ASSERT_NE(load(info), nullptr);
  auto packed = packSnapshot(snapshot_);
  ASSERT_TRUE(packed.ok()) << packed.status();
  std::string original = readAll(snapshot_);
  EXPECT_LT(packed->size(), original.size());  // no padding, no zero pages
  fs::path copy = snapshot_.string() + ".copy";
  ASSERT_TRUE(unpackSnapshot(*packed, copy).ok());
  EXPECT_EQ(readAll(copy), original);
  fs::remove(copy);

  std::string cut = packed->substr(0, packed->size() - 1);
  EXPECT_THAT(unpackSnapshot(cut, copy).message(), HasSubstr("truncated"));
  std::string flipped = *packed;
  flipped[flipped.size() - 10] ^= 1;
  EXPECT_THAT(unpackSnapshot(flipped, copy).message(), HasSubstr("checksum"));
  EXPECT_THAT(unpackSnapshot("junk", copy).message(), HasSubstr("truncated"));
  EXPECT_FALSE(fs::exists(copy));
  EXPECT_TRUE(absl::IsNotFound(packSnapshot(copy).status()));
}

TEST_F(SnapshotFileTest, AStateThatOnlyHasAddressesStaysInMemory) {
  LoadInfo info;
  auto app = load(info, "snapshot_ref");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(info.snapshot, SnapshotSource::kBuilt);
  EXPECT_THAT(info.snapshot_note, HasSubstr("snapshot not written"));
  EXPECT_TRUE(info.snapshot_path.empty());
  call(app, "run");  // the function wl_init put in the table is there
}

}  // namespace
}  // namespace waverless::wasm
