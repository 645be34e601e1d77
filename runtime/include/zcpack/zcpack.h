/* zcpack C API: open a zcpack container, look up tensors, generate tokens.
 *
 * A small, stable surface for other languages. Every function that can fail
 * returns a zcpack_status; on failure zcpack_last_error() gives a message
 * naming the file and, where there is one, the tensor. Nothing here throws or
 * aborts on bad input, on a request too large for the memory available
 * (ZCPACK_IO_ERROR), or when the file changes under the mapping (below).
 *
 * A file truncated while mapped: tensor data is read from a shared mapping
 * of the file, and reading pages that another process truncated away (or
 * that the disk cannot deliver) raises SIGBUS, which would end the process.
 * zcpack_open() installs, once per process, a SIGBUS handler with
 * sigaction(); the signal disposition is process-wide. A fault inside the
 * mapping of an open model is caught: the rest of that mapping is replaced
 * with zero-filled pages, the thread that faulted carries on, and the model
 * is marked failed. zcpack_generate() then returns ZCPACK_IO_ERROR with
 * "<file>: truncated or unreadable while mapped", as does
 * zcpack_check_mapping(), which code that reads zcpack_tensor.data itself
 * should call after reading (such reads see zeros from the failed page on).
 * A failed model stays failed: zcpack_close() it and open the file again.
 * Any other SIGBUS goes to the handler installed before zcpack_open() (or the
 * default action, which ends the process). Limits: a SIGBUS handler that the
 * application installs after zcpack_open() must chain to the previous one,
 * or such faults end the process again; at most 256 models are guarded at
 * once.
 *
 * Thread-safety: a zcpack_model may be used from several threads at once
 * (each zcpack_generate() call has its own session); zcpack_last_error() is
 * per thread.
 * Lifetime: tensor data pointers point into the model's read-only mapping
 * and are valid until zcpack_close().
 */
#ifndef ZCPACK_ZCPACK_H_
#define ZCPACK_ZCPACK_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum zcpack_status {
  ZCPACK_OK = 0,
  ZCPACK_INVALID_ARGUMENT = 1, /* bad argument, or not a zcpack container */
  ZCPACK_DATA_LOSS = 2,        /* corrupt or truncated container */
  ZCPACK_UNIMPLEMENTED = 3,    /* newer format version or unknown feature */
  ZCPACK_NOT_FOUND = 4,        /* no such file, or no such tensor */
  ZCPACK_OUT_OF_RANGE = 5,     /* e.g. the context is full */
  ZCPACK_IO_ERROR = 6,         /* any other OS or resource error */
} zcpack_status;

/* Element types, as in the manifest (format/SPEC.md, "Data types"). */
typedef enum zcpack_dtype {
  ZCPACK_F32 = 1,
  ZCPACK_F16 = 2,
  ZCPACK_BF16 = 3,
  ZCPACK_Q4_0 = 4,
  ZCPACK_Q4_K = 5,
  ZCPACK_Q8_0 = 6,
  ZCPACK_Q4_1 = 7,
  ZCPACK_Q5_0 = 8,
  ZCPACK_Q5_1 = 9,
  ZCPACK_Q5_K = 10,
  ZCPACK_Q6_K = 11,
} zcpack_dtype;

/* The order of a tensor's bytes (format/SPEC.md, "Row groups").
 * ZCPACK_LAYOUT_ROW_MAJOR: ggml's order, row after row, each row its blocks
 *   in order; row r is the row_bytes bytes at data + r * row_bytes.
 * ZCPACK_LAYOUT_ROW_GROUPS_16: a q4_0, q8_0 or q4_k matrix whose rows are
 *   stored in groups of 16 with their blocks interleaved (the order the
 *   runtime's kernels read), the last rows % 16 rows row-major. The same
 *   bytes as row-major, permuted: nbytes is the same, but row r is NOT at
 *   data + r * row_bytes. zcpack_copy_row() gives any row in ggml's order.
 * `zcpack convert` stores the quantized matrices the runtime multiplies by
 * (attention and FFN projections, the output head, a tied embedding) in row
 * groups unless given --layout row-major; norms, biases, float tensors and
 * an untied token embedding are always row-major. */
typedef enum zcpack_layout {
  ZCPACK_LAYOUT_ROW_MAJOR = 0,
  ZCPACK_LAYOUT_ROW_GROUPS_16 = 1,
} zcpack_layout;

typedef struct zcpack_model zcpack_model;

#define ZCPACK_MAX_RANK 8

/* A tensor as the container stores it. `data` holds the bytes in the
 * tensor's layout, which may be ZCPACK_LAYOUT_ROW_GROUPS_16 rather than
 * ggml's row-major order: ask zcpack_tensor_layout() before interpreting
 * them. (The layout is not a field of this struct: callers allocate it, so a
 * new field would change its size and break programs built against an older
 * header.) */
typedef struct zcpack_tensor {
  const char* name;     /* valid until zcpack_close() */
  const void* data;     /* the tensor's bytes inside the mapping, zero-copy,
                           in the tensor's layout (zcpack_tensor_layout()) */
  uint64_t nbytes;
  zcpack_dtype dtype;
  int32_t layer;        /* decoder layer, or -1 */
  uint32_t rank;
  uint64_t shape[ZCPACK_MAX_RANK]; /* row-major, outermost first */
} zcpack_tensor;

/* zcpack_open(): maps the container at `path` read-only and checks its
 * structure (cheap checks only; no tensor data is read). On success *out owns
 * the model; release it with zcpack_close(). */
zcpack_status zcpack_open(const char* path, zcpack_model** out);

/* zcpack_close(): unmaps and frees. NULL is allowed. */
void zcpack_close(zcpack_model* model);

/* Message of the calling thread's last failure ("" if none). Valid until the
 * thread's next zcpack call. */
const char* zcpack_last_error(void);

size_t zcpack_tensor_count(const zcpack_model* model);
/* zcpack_tensor_at(): tensor `index` in file order; ZCPACK_OUT_OF_RANGE past
 * the end. */
zcpack_status zcpack_tensor_at(const zcpack_model* model, size_t index, zcpack_tensor* out);
/* zcpack_find_tensor(): by name; ZCPACK_NOT_FOUND if absent. */
zcpack_status zcpack_find_tensor(const zcpack_model* model, const char* name, zcpack_tensor* out);

/* zcpack_tensor_layout(): the layout of the tensor named `name` into *out.
 * @return ZCPACK_INVALID_ARGUMENT for a null argument; ZCPACK_NOT_FOUND if
 *   there is no such tensor. */
zcpack_status zcpack_tensor_layout(const zcpack_model* model, const char* name,
                                   zcpack_layout* out);

/* zcpack_copy_row(): row `row` of the tensor named `name`, in ggml's
 * row-major block order whatever its layout, into out[0, row_bytes), where
 * row_bytes = nbytes / rows and rows is the product of every dimension but
 * the last (1 for a 1-D tensor). Reads the mapping (see zcpack_check_mapping()).
 * @return ZCPACK_INVALID_ARGUMENT for a null argument or out_size <
 *   row_bytes; ZCPACK_NOT_FOUND if there is no such tensor;
 *   ZCPACK_OUT_OF_RANGE for row >= rows. */
zcpack_status zcpack_copy_row(const zcpack_model* model, const char* name, uint64_t row,
                              void* out, size_t out_size);

/* Vocabulary size of the model (token ids are in [0, vocab)). */
uint32_t zcpack_vocab_size(const zcpack_model* model);

/* zcpack_check_mapping(): ZCPACK_OK, or ZCPACK_IO_ERROR once a read of the
 * model's mapping has faulted because the file was truncated or could not be
 * read (see the top of this file). Cheap; thread-safe. */
zcpack_status zcpack_check_mapping(const zcpack_model* model);

typedef struct zcpack_generate_options {
  int32_t max_tokens;  /* tokens to generate, >= 0 */
  float temperature;   /* 0: greedy; otherwise a finite number > 0 */
  int32_t top_k;       /* 0: off; >= 0 */
  float top_p;         /* in [0, 1]; 1: off */
  uint64_t seed;
  int32_t threads;     /* 0: one per available CPU; capped at that number */
} zcpack_generate_options;

/* Defaults: 16 tokens, greedy, top_k 40, top_p 0.95, seed 1, all threads. */
zcpack_generate_options zcpack_default_generate_options(void);

/* zcpack_generate(): evaluates the prompt and writes up to
 * options->max_tokens generated ids to out_tokens (room for max_tokens),
 * setting *out_count. A fresh session per call, whose KV cache holds
 * prompt_len + max_tokens positions.
 * @return ZCPACK_INVALID_ARGUMENT for a null argument, a negative max_tokens,
 *   a temperature that is NaN, infinite or negative, a negative top_k, a
 *   top_p outside [0, 1], a token id outside the
 *   vocabulary, or prompt_len + max_tokens beyond INT32_MAX or the model's
 *   context length (max_position_embeddings); ZCPACK_IO_ERROR when the KV
 *   cache would need more memory than is available, or the file was truncated
 *   or unreadable while mapped; ZCPACK_DATA_LOSS for non-finite logits. */
zcpack_status zcpack_generate(zcpack_model* model, const int32_t* prompt, size_t prompt_len,
                              const zcpack_generate_options* options, int32_t* out_tokens,
                              size_t* out_count);

/* Text.
 *
 * The tokenizer the container carries (a GGUF source's tokenizer.* metadata,
 * a Hugging Face tokenizer.json or tokenizer.model) is decoded on the first
 * call that needs it, never by zcpack_open(); the first such call pays for
 * it (a large vocabulary takes tens of milliseconds), later ones do not. A
 * container without a tokenizer gives ZCPACK_NOT_FOUND from each of these
 * functions; a tokenizer that does not decode gives its error (naming the
 * file and the tokenizer) every time.
 *
 * Sizes: the caller provides the buffers. Each function sets *out_count (or
 * *out_length) to the size the whole result needs, whether or not it fits;
 * when the buffer is smaller it writes nothing into it and returns
 * ZCPACK_OUT_OF_RANGE. Call once with a zero capacity (the buffer may then
 * be NULL) to learn the size. */

/* zcpack_tokenize(): the token ids of text[0, text_len) (bytes; invalid
 * UTF-8 is tokenized as llama.cpp does, never refused) into
 * out_tokens[0, *out_count). `add_special` non-zero adds BOS (and EOS) where
 * the vocabulary says to; `parse_special` non-zero matches special tokens
 * written in the text ("<|im_start|>", "<s>"), as for a prompt rendered by a
 * chat template.
 * @return ZCPACK_INVALID_ARGUMENT for a null model, text (unless text_len is
 *   0) or out_count, or a null out_tokens with a non-zero capacity;
 *   ZCPACK_OUT_OF_RANGE when capacity < *out_count; ZCPACK_NOT_FOUND when the
 *   container carries no tokenizer. */
zcpack_status zcpack_tokenize(zcpack_model* model, const char* text, size_t text_len,
                              int add_special, int parse_special, int32_t* out_tokens,
                              size_t capacity, size_t* out_count);

/* zcpack_detokenize(): the text of tokens[0, count), the bytes each token
 * stands for concatenated (with SentencePiece's leading space removed, as
 * llama.cpp's llama_detokenize() does), into out[0, *out_length) followed by
 * a NUL; so capacity must be at least *out_length + 1. The bytes are given
 * as the tokens hold them: a sequence cut inside a UTF-8 character is not
 * valid UTF-8, and a <0x00> byte token gives a NUL inside the text.
 * `special` non-zero writes control tokens' text ("<s>") too. An id outside
 * the vocabulary gives no text.
 * @return ZCPACK_INVALID_ARGUMENT for a null model or out_length, null
 *   tokens with a non-zero count, or a null out with a non-zero capacity;
 *   ZCPACK_OUT_OF_RANGE when capacity < *out_length + 1; ZCPACK_NOT_FOUND
 *   when the container carries no tokenizer. */
zcpack_status zcpack_detokenize(zcpack_model* model, const int32_t* tokens, size_t count,
                                int special, char* out, size_t capacity, size_t* out_length);

/* zcpack_token_callback: called by zcpack_generate_text() for each generated
 * token, in order, with its id and `piece`, the text that became complete
 * with it: piece[0, piece_len) is valid UTF-8 (not NUL-terminated; valid
 * until the callback returns). A character split across tokens arrives whole
 * with the token that completes it (earlier tokens get piece_len 0); bytes
 * that form no character are written as U+FFFD. The end-of-generation
 * token, too, is passed (with no text of its own). Return non-zero to stop
 * generating after this token. */
typedef int (*zcpack_token_callback)(int32_t id, const char* piece, size_t piece_len,
                                     void* user_data);

/* Why zcpack_generate_text() stopped: the first that applies. */
typedef enum zcpack_stop_reason {
  ZCPACK_STOP_END_OF_GENERATION = 0, /* the model produced EOS (or EOT, EOM, ...) */
  ZCPACK_STOP_CALLBACK = 1,          /* the callback returned non-zero */
  ZCPACK_STOP_MAX_TOKENS = 2,        /* options->max_tokens were generated */
} zcpack_stop_reason;

/* zcpack_generate_text(): tokenizes prompt[0, prompt_len) (adding BOS where
 * the vocabulary says to; `parse_special` non-zero as in zcpack_tokenize()),
 * evaluates it and generates up to options->max_tokens tokens as
 * zcpack_generate() does, stopping early at the vocabulary's
 * end-of-generation tokens. `callback` (may be NULL) receives each token and
 * its text as it is generated; `user_data` is passed to it untouched. A
 * fresh session per call, whose KV cache holds the prompt's tokens +
 * max_tokens positions. *out_reason (may be NULL) says why it stopped.
 * @return zcpack_generate()'s codes; ZCPACK_INVALID_ARGUMENT also for a null
 *   prompt (unless prompt_len is 0) or a prompt with no tokens;
 *   ZCPACK_NOT_FOUND when the container carries no tokenizer. */
zcpack_status zcpack_generate_text(zcpack_model* model, const char* prompt, size_t prompt_len,
                                   int parse_special, const zcpack_generate_options* options,
                                   zcpack_token_callback callback, void* user_data,
                                   zcpack_stop_reason* out_reason);

#ifdef __cplusplus
}
#endif

#endif /* ZCPACK_ZCPACK_H_ */
