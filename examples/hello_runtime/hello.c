/* hello_c: the same through the C API, then text in and text out when the
 * container carries a tokenizer. */
#include <stdio.h>
#include <string.h>

#include "zcpack/zcpack.h"

/* Streams each generated piece to stdout as it comes. */
static int print_piece(int32_t id, const char* piece, size_t piece_len, void* user_data) {
  (void)id;
  (void)user_data;
  fwrite(piece, 1, piece_len, stdout);
  fflush(stdout);
  return 0; /* go on */
}

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

  const char* text = "Once upon a time";
  zcpack_stop_reason reason = ZCPACK_STOP_MAX_TOKENS;
  printf("%s", text);
  const zcpack_status status =
      zcpack_generate_text(model, text, strlen(text), 0, &options, print_piece, NULL, &reason);
  if (status == ZCPACK_OK) {
    printf("\n(stopped: %s)\n",
           reason == ZCPACK_STOP_END_OF_GENERATION ? "end of generation" : "max tokens");
  } else if (status == ZCPACK_NOT_FOUND) {
    printf("\n(no tokenizer in this container: %s)\n", zcpack_last_error());
  } else {
    fprintf(stderr, "\nhello_c: %s\n", zcpack_last_error());
    zcpack_close(model);
    return 1;
  }
  zcpack_close(model);
  return 0;
}
