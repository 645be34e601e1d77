// ModelSuite: a gtest fixture for CLI suites that share one synthesized
// checkpoint and its container, made once per suite in a fresh temporary
// folder (`zcpack synth --shape SHAPE`, then `zcpack convert`) and removed
// after the suite. A suite names its folder and shape in its own
// SetUpTestSuite():
//
//   class FlagsTest : public ModelSuite {
//    protected:
//     static void SetUpTestSuite() { SetUpModel("flags", "tiny"); }
//   };
#ifndef ZCPACK_TESTS_TOOLS_MODEL_SUITE_H_
#define ZCPACK_TESTS_TOOLS_MODEL_SUITE_H_

#include <string>

#include "gtest/gtest.h"
#include "tests/tools/cli_runner.h"

namespace zcpack::testing {

class ModelSuite : public ::testing::Test {
 protected:
  // The folder, then DIR/SHAPE (the checkpoint) and DIR/SHAPE.zcpack.
  static void SetUpModel(const std::string& tag, const std::string& shape) {
    dir_ = new std::string(MakeTempDir(tag));
    shape_ = new std::string(shape);
    ASSERT_EQ(RunZcpack({"synth", "--shape", shape, "-o", Source()}).exit_code, 0);
    ASSERT_EQ(RunZcpack({"convert", Source(), "-o", Container()}).exit_code, 0);
  }
  static void TearDownTestSuite() {
    RemoveTree(*dir_);
    delete dir_;
    delete shape_;
    dir_ = shape_ = nullptr;
  }
  static const std::string& Dir() { return *dir_; }
  static std::string Path(const std::string& name) { return *dir_ + "/" + name; }
  static std::string Source() { return Path(*shape_); }
  static std::string Container() { return Source() + ".zcpack"; }

 private:
  static inline std::string* dir_ = nullptr;
  static inline std::string* shape_ = nullptr;
};

}  // namespace zcpack::testing

#endif  // ZCPACK_TESTS_TOOLS_MODEL_SUITE_H_
