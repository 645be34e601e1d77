// Fuzz target: the JSON-driven input readers must never crash, whatever the
// bytes: the safetensors header parser (with every accepted tensor's extent
// touched, so a bad bounds check shows under ASan), the sharded index parser
// and the config.json mapping.
#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/strings/string_view.h"
#include "zcpack/converter/architecture.h"
#include "zcpack/converter/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zcpack::converter;
  const std::span<const uint8_t> bytes(data, size);
  auto header = ParseSafetensors(bytes, "fuzz.safetensors");
  if (header.ok()) {
    volatile uint8_t sink = 0;
    for (const SafetensorsEntry& e : header->tensors) {
      if (e.nbytes == 0) continue;
      sink = sink ^ bytes[e.offset] ^ bytes[e.offset + e.nbytes - 1];
      (void)PlaceTensor(e.name, TensorNaming::kHuggingFace);
    }
  }
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  (void)ParseSafetensorsIndex(text, "fuzz.index.json");
  auto model = ModelInfoFromHfConfig(text, "fuzz.config.json");
  if (model.ok()) (void)ExpectedTensors(*model);
  return 0;
}
