// Fuzz target: the GGUF reader must never crash, whatever the bytes. An
// accepted file goes on through the llama metadata mapping and the tokenizer
// blob, and every tensor's extent is touched so a bad bounds check shows
// under ASan.
#include <cstddef>
#include <cstdint>
#include <span>

#include "zcpack/converter/architecture.h"
#include "zcpack/converter/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zcpack::converter;
  const std::span<const uint8_t> bytes(data, size);
  auto gguf = ParseGguf(bytes, "fuzz.gguf");
  if (!gguf.ok()) return 0;
  volatile uint8_t sink = 0;
  for (const GgufTensorInfo& t : gguf->tensors) {
    (void)PlaceTensor(t.name, TensorNaming::kGguf);
    if (t.nbytes == 0) continue;
    sink = sink ^ bytes[t.offset] ^ bytes[t.offset + t.nbytes - 1];
  }
  auto model = GgufModelInfo(*gguf, "fuzz.gguf");
  if (model.ok()) (void)ExpectedTensors(*model);
  (void)GgufTokenizerBlob(*gguf, "fuzz.gguf", 1);
  return 0;
}
