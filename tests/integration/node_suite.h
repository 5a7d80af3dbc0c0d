// A test suite that shares one `waverless dev` node between its tests: the
// node and its folder live from SetUpTestSuite to TearDownTestSuite.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "app_fixtures.h"
#include "dev_node.h"

namespace waverless::testing {

// Derive as `class MyTest : public NodeSuite<MyTest>` and call startNode()
// from SetUpTestSuite.
template <class Suite>
class NodeSuite : public ::testing::Test {
 protected:
  // A fresh folder for the suite; `apps` and `flags` are given to the node
  // (apps relative to that folder).
  static fs::path makeRoot(const std::string& tag) {
    root_ = new fs::path(tempDir(tag));
    return *root_;
  }
  static void startNode(const fs::path& apps, std::vector<std::string> flags) {
    node_ = new DevNode(*root_ / "data", apps, std::move(flags));
    ASSERT_TRUE(node_->start()) << "node did not start; see " << (*root_ / "data.log");
  }
  static void TearDownTestSuite() {
    delete node_;
    node_ = nullptr;
    if (root_ != nullptr) fs::remove_all(*root_);
    delete root_;
    root_ = nullptr;
  }

  static inline DevNode* node_ = nullptr;
  static inline fs::path* root_ = nullptr;
};

}  // namespace waverless::testing
