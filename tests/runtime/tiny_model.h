// The `tiny` synthetic llama (converter/synth.cc) converted to a container,
// for runtime tests that need a real model file.
#ifndef ZCPACK_TESTS_RUNTIME_TINY_MODEL_H_
#define ZCPACK_TESTS_RUNTIME_TINY_MODEL_H_

#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/container_fixtures.h"
#include "zcpack/converter/convert.h"
#include "zcpack/converter/synth.h"

namespace zcpack::testing {

// ConvertTinyModel(): synthesizes the tiny shape into `dir`/`name` and
// converts it to `dir`/`name`.zcpack (q4_0), whose path it returns. With
// `record_context_length` false the manifest records no context length
// (max_position_embeddings 0), as for a GGUF file without one; otherwise it
// is the shape's 256.
inline std::string ConvertTinyModel(const ScopedTempDir& dir, const std::string& name,
                                    bool record_context_length = true) {
  converter::SynthOptions synth;
  synth.shape = "tiny";
  synth.out_dir = dir.File(name);
  EXPECT_TRUE(converter::Synthesize(synth).ok());
  if (!record_context_length) {
    const std::string config = synth.out_dir + "/config.json";
    nlohmann::json j = nlohmann::json::parse(std::ifstream(config));
    j.erase("max_position_embeddings");
    std::ofstream(config) << j.dump();
  }
  converter::ConvertOptions options;
  options.source = synth.out_dir;
  options.output = dir.File(name + ".zcpack");
  EXPECT_TRUE(converter::Convert(options).ok());
  return options.output;
}

}  // namespace zcpack::testing

#endif  // ZCPACK_TESTS_RUNTIME_TINY_MODEL_H_
