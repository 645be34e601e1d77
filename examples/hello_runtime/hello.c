/* hello_c: the same through the C API. */
#include <stdio.h>

#include "zcpack/zcpack.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: hello_c MODEL.zcpack\n");
    return 2;
  }
  zcpack_model* model = NULL;
  if (zcpack_open(argv[1], &model) != ZCPACK_OK) {
    fprintf(stderr, "hello_c: %s\n", zcpack_last_error());
    return 1;
  }
  zcpack_tensor t;
  if (zcpack_tensor_at(model, 0, &t) == ZCPACK_OK) {
    printf("%zu tensors; first: %s (%llu bytes)\n", zcpack_tensor_count(model), t.name,
           (unsigned long long)t.nbytes);
  }
  const int32_t prompt[] = {1, 2, 3};
  int32_t out[8];
  size_t count = 0;
  zcpack_generate_options options = zcpack_default_generate_options();
  options.max_tokens = 8;
  if (zcpack_generate(model, prompt, 3, &options, out, &count) != ZCPACK_OK) {
    fprintf(stderr, "hello_c: %s\n", zcpack_last_error());
    zcpack_close(model);
    return 1;
  }
  printf("generated:");
  for (size_t i = 0; i < count; ++i) printf(" %d", out[i]);
  printf("\n");
  zcpack_close(model);
  return 0;
}
