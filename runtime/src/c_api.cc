#include "zcpack/zcpack.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "zcpack/format/row_groups.h"
#include "zcpack/runtime/model.h"
#include "zcpack/runtime/session.h"
#include "zcpack/runtime/tokenizer.h"

struct zcpack_model {
  std::unique_ptr<zcpack::runtime::Model> model;
};

namespace {

thread_local std::string last_error;

zcpack_status Fail(const absl::Status& status) {
  last_error = std::string(status.message());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition: return ZCPACK_INVALID_ARGUMENT;
    case absl::StatusCode::kDataLoss: return ZCPACK_DATA_LOSS;
    case absl::StatusCode::kUnimplemented: return ZCPACK_UNIMPLEMENTED;
    case absl::StatusCode::kNotFound: return ZCPACK_NOT_FOUND;
    case absl::StatusCode::kOutOfRange: return ZCPACK_OUT_OF_RANGE;
    default: return ZCPACK_IO_ERROR;
  }
}

zcpack_status Ok() {
  last_error.clear();
  return ZCPACK_OK;
}

// Runs `body` (which returns a zcpack_status) so that no exception leaves
// the C API: the runtime reports failures as statuses, but the standard
// library may still throw std::bad_alloc.
template <typename Body>
zcpack_status Guarded(const char* function, Body&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return Fail(absl::ResourceExhaustedError(absl::StrCat(function, ": out of memory")));
  } catch (const std::exception& e) {
    return Fail(absl::InternalError(absl::StrCat(function, ": ", e.what())));
  }
}

// The C enums are the manifest's values, passed through by a cast.
static_assert(ZCPACK_Q8_0 == static_cast<int>(zcpack::format::DTYPE_Q8_0));
static_assert(ZCPACK_LAYOUT_ROW_MAJOR == static_cast<int>(zcpack::format::LAYOUT_ROW_MAJOR));
static_assert(ZCPACK_LAYOUT_ROW_GROUPS_16 ==
              static_cast<int>(zcpack::format::LAYOUT_ROW_GROUPS_16));

void Fill(const zcpack::format::Container& c, size_t index, zcpack_tensor* out) {
  const auto& t = c.tensor(index);
  const auto data = c.TensorData(index);
  out->name = t.name().c_str();
  out->data = data.data();
  out->nbytes = data.size();
  out->dtype = static_cast<zcpack_dtype>(t.dtype());
  out->layer = t.layer();
  out->rank = static_cast<uint32_t>(t.shape_size());
  for (int d = 0; d < ZCPACK_MAX_RANK; ++d) out->shape[d] = d < t.shape_size() ? t.shape(d) : 0;
}

// The sampling options of `options` (checked by Generate()).
zcpack::runtime::SamplingOptions SamplingOf(const zcpack_generate_options& options) {
  zcpack::runtime::SamplingOptions sampling;
  sampling.temperature = options.temperature;
  sampling.top_k = options.top_k;
  sampling.top_p = options.top_p;
  sampling.seed = options.seed;
  return sampling;
}

// zcpack_generate() once its arguments are checked for null.
zcpack_status Generate(const zcpack::runtime::Model& model, std::span<const int32_t> prompt,
                       const zcpack_generate_options& options, int32_t* out_tokens,
                       size_t* out_count) {
  const auto context = zcpack::runtime::ContextForGeneration(prompt.size(), options.max_tokens);
  if (!context.ok()) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("zcpack_generate: ", context.status().message())));
  }
  zcpack::runtime::SessionOptions session_options;
  session_options.threads = options.threads;
  session_options.max_context = *context;
  auto session = zcpack::runtime::Session::Create(model, session_options);
  if (!session.ok()) return Fail(session.status());
  auto tokens = zcpack::runtime::Generate(**session, prompt, options.max_tokens,
                                          SamplingOf(options));
  if (!tokens.ok()) return Fail(tokens.status());
  std::copy(tokens->begin(), tokens->end(), out_tokens);
  *out_count = tokens->size();
  return Ok();
}

// The model's tokenizer, or Fail()'s status for its error, prefixed with the
// C function's name.
zcpack_status TokenizerOf(const zcpack_model& model, const char* function,
                          const zcpack::runtime::Tokenizer** out) {
  auto tokenizer = model.model->tokenizer();
  if (!tokenizer.ok()) {
    return Fail(absl::Status(tokenizer.status().code(),
                             absl::StrCat(function, ": ", tokenizer.status().message())));
  }
  *out = *tokenizer;
  return ZCPACK_OK;
}

// zcpack_generate_text() once its arguments are checked for null.
zcpack_status GenerateText(const zcpack::runtime::Model& model,
                           const zcpack::runtime::Tokenizer& tokenizer, absl::string_view prompt,
                           bool parse_special, const zcpack_generate_options& options,
                           zcpack_token_callback callback, void* user_data,
                           zcpack_stop_reason* out_reason) {
  zcpack::runtime::TokenizeOptions tokenize;
  tokenize.add_special = true;
  tokenize.parse_special = parse_special;
  const std::vector<int32_t> ids = tokenizer.Tokenize(prompt, tokenize);
  if (ids.empty()) {
    return Fail(absl::InvalidArgumentError("zcpack_generate_text: the prompt has no tokens"));
  }
  const auto context = zcpack::runtime::ContextForGeneration(ids.size(), options.max_tokens);
  if (!context.ok()) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("zcpack_generate_text: ", context.status().message())));
  }
  zcpack::runtime::SessionOptions session_options;
  session_options.threads = options.threads;
  session_options.max_context = *context;
  auto session = zcpack::runtime::Session::Create(model, session_options);
  if (!session.ok()) return Fail(session.status());
  zcpack::runtime::TextPieceCallback on_piece;
  if (callback != nullptr) {
    on_piece = [&](int32_t id, absl::string_view piece) {
      return callback(id, piece.data(), piece.size(), user_data) == 0;
    };
  }
  auto result = zcpack::runtime::GenerateText(**session, tokenizer, ids, options.max_tokens,
                                              SamplingOf(options), on_piece);
  if (!result.ok()) return Fail(result.status());
  if (out_reason != nullptr) {
    switch (result->stop_reason) {
      case zcpack::runtime::StopReason::kEndOfGeneration:
        *out_reason = ZCPACK_STOP_END_OF_GENERATION;
        break;
      case zcpack::runtime::StopReason::kCallback: *out_reason = ZCPACK_STOP_CALLBACK; break;
      case zcpack::runtime::StopReason::kMaxTokens: *out_reason = ZCPACK_STOP_MAX_TOKENS; break;
    }
  }
  return Ok();
}

}  // namespace

extern "C" {

zcpack_status zcpack_open(const char* path, zcpack_model** out) {
  if (path == nullptr || out == nullptr) {
    return Fail(absl::InvalidArgumentError("zcpack_open: null argument"));
  }
  *out = nullptr;
  return Guarded("zcpack_open", [&] {
    auto model = zcpack::runtime::Model::Open(path);
    if (!model.ok()) return Fail(model.status());
    *out = new zcpack_model{std::move(*model)};
    return Ok();
  });
}

void zcpack_close(zcpack_model* model) { delete model; }

const char* zcpack_last_error(void) { return last_error.c_str(); }

size_t zcpack_tensor_count(const zcpack_model* model) {
  return model == nullptr ? 0 : model->model->container().num_tensors();
}

zcpack_status zcpack_tensor_at(const zcpack_model* model, size_t index, zcpack_tensor* out) {
  if (model == nullptr || out == nullptr) {
    return Fail(absl::InvalidArgumentError("zcpack_tensor_at: null argument"));
  }
  const auto& c = model->model->container();
  if (index >= c.num_tensors()) {
    return Fail(absl::OutOfRangeError("zcpack_tensor_at: index " + std::to_string(index) +
                                      " of " + std::to_string(c.num_tensors())));
  }
  Fill(c, index, out);
  return Ok();
}

zcpack_status zcpack_find_tensor(const zcpack_model* model, const char* name, zcpack_tensor* out) {
  if (model == nullptr || name == nullptr || out == nullptr) {
    return Fail(absl::InvalidArgumentError("zcpack_find_tensor: null argument"));
  }
  const auto& c = model->model->container();
  const auto index = c.FindTensor(name);
  if (!index) return Fail(absl::NotFoundError(c.path() + ": no tensor named '" + name + "'"));
  Fill(c, *index, out);
  return Ok();
}

zcpack_status zcpack_tensor_layout(const zcpack_model* model, const char* name,
                                   zcpack_layout* out) {
  if (model == nullptr || name == nullptr || out == nullptr) {
    return Fail(absl::InvalidArgumentError("zcpack_tensor_layout: null argument"));
  }
  const auto& c = model->model->container();
  const auto index = c.FindTensor(name);
  if (!index) return Fail(absl::NotFoundError(c.path() + ": no tensor named '" + name + "'"));
  *out = static_cast<zcpack_layout>(c.tensor(*index).layout());
  return Ok();
}

zcpack_status zcpack_copy_row(const zcpack_model* model, const char* name, uint64_t row,
                              void* out, size_t out_size) {
  if (model == nullptr || name == nullptr || out == nullptr) {
    return Fail(absl::InvalidArgumentError("zcpack_copy_row: null argument"));
  }
  const auto& c = model->model->container();
  const auto index = c.FindTensor(name);
  if (!index) return Fail(absl::NotFoundError(c.path() + ": no tensor named '" + name + "'"));
  const auto& t = c.tensor(*index);
  // The reader checked the shape (no zero dimension) and nbytes.
  uint64_t rows = 1;
  for (int d = 0; d + 1 < t.shape_size(); ++d) rows *= t.shape(d);
  const uint64_t row_bytes = t.nbytes() / rows;
  if (row >= rows) {
    return Fail(absl::OutOfRangeError(absl::StrCat("zcpack_copy_row: ", c.path(), ": tensor '",
                                                   t.name(), "': row ", row, " of ", rows)));
  }
  if (out_size < row_bytes) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("zcpack_copy_row: ", c.path(), ": tensor '", t.name(), "': a row is ",
                     row_bytes, " bytes, the buffer ", out_size)));
  }
  zcpack::format::CopyRowMajorRow(t.dtype(), t.layout(), rows, row_bytes,
                                  c.TensorData(*index).data(), row, static_cast<uint8_t*>(out));
  return Ok();
}

uint32_t zcpack_vocab_size(const zcpack_model* model) {
  return model == nullptr ? 0 : model->model->info().vocab_size();
}

zcpack_status zcpack_check_mapping(const zcpack_model* model) {
  if (model == nullptr) return Fail(absl::InvalidArgumentError("zcpack_check_mapping: null argument"));
  const absl::Status status = model->model->CheckMapping();
  return status.ok() ? Ok() : Fail(status);
}

zcpack_generate_options zcpack_default_generate_options(void) {
  return zcpack_generate_options{16, 0.0f, 40, 0.95f, 1, 0};
}

zcpack_status zcpack_generate(zcpack_model* model, const int32_t* prompt, size_t prompt_len,
                              const zcpack_generate_options* options, int32_t* out_tokens,
                              size_t* out_count) {
  if (model == nullptr || prompt == nullptr || options == nullptr || out_tokens == nullptr ||
      out_count == nullptr) {
    return Fail(absl::InvalidArgumentError("zcpack_generate: null argument"));
  }
  *out_count = 0;
  if (options->max_tokens < 0) {
    return Fail(absl::InvalidArgumentError("zcpack_generate: negative max_tokens"));
  }
  return Guarded("zcpack_generate", [&] {
    return Generate(*model->model, std::span<const int32_t>(prompt, prompt_len), *options,
                    out_tokens, out_count);
  });
}

zcpack_status zcpack_tokenize(zcpack_model* model, const char* text, size_t text_len,
                              int add_special, int parse_special, int32_t* out_tokens,
                              size_t capacity, size_t* out_count) {
  if (model == nullptr || (text == nullptr && text_len > 0) || out_count == nullptr ||
      (out_tokens == nullptr && capacity > 0)) {
    return Fail(absl::InvalidArgumentError("zcpack_tokenize: null argument"));
  }
  *out_count = 0;
  return Guarded("zcpack_tokenize", [&] {
    const zcpack::runtime::Tokenizer* tokenizer = nullptr;
    if (zcpack_status s = TokenizerOf(*model, "zcpack_tokenize", &tokenizer); s != ZCPACK_OK) {
      return s;
    }
    zcpack::runtime::TokenizeOptions options;
    options.add_special = add_special != 0;
    options.parse_special = parse_special != 0;
    const std::vector<int32_t> ids =
        tokenizer->Tokenize(absl::string_view(text == nullptr ? "" : text, text_len), options);
    *out_count = ids.size();
    if (capacity < ids.size()) {
      return Fail(absl::OutOfRangeError(absl::StrCat(
          "zcpack_tokenize: the text is ", ids.size(), " tokens, the buffer holds ", capacity)));
    }
    std::copy(ids.begin(), ids.end(), out_tokens);
    return Ok();
  });
}

zcpack_status zcpack_detokenize(zcpack_model* model, const int32_t* tokens, size_t count,
                                int special, char* out, size_t capacity, size_t* out_length) {
  if (model == nullptr || (tokens == nullptr && count > 0) || out_length == nullptr ||
      (out == nullptr && capacity > 0)) {
    return Fail(absl::InvalidArgumentError("zcpack_detokenize: null argument"));
  }
  *out_length = 0;
  return Guarded("zcpack_detokenize", [&] {
    const zcpack::runtime::Tokenizer* tokenizer = nullptr;
    if (zcpack_status s = TokenizerOf(*model, "zcpack_detokenize", &tokenizer); s != ZCPACK_OK) {
      return s;
    }
    const std::string text =
        tokenizer->Detokenize(std::span<const int32_t>(tokens, count), special != 0);
    *out_length = text.size();
    if (capacity <= text.size()) {
      return Fail(absl::OutOfRangeError(absl::StrCat("zcpack_detokenize: the text is ",
                                                     text.size(), " bytes and a NUL, the buffer ",
                                                     capacity)));
    }
    std::copy(text.begin(), text.end(), out);
    out[text.size()] = '\0';
    return Ok();
  });
}

zcpack_status zcpack_generate_text(zcpack_model* model, const char* prompt, size_t prompt_len,
                                   int parse_special, const zcpack_generate_options* options,
                                   zcpack_token_callback callback, void* user_data,
                                   zcpack_stop_reason* out_reason) {
  if (model == nullptr || (prompt == nullptr && prompt_len > 0) || options == nullptr) {
    return Fail(absl::InvalidArgumentError("zcpack_generate_text: null argument"));
  }
  if (options->max_tokens < 0) {
    return Fail(absl::InvalidArgumentError("zcpack_generate_text: negative max_tokens"));
  }
  return Guarded("zcpack_generate_text", [&] {
    const zcpack::runtime::Tokenizer* tokenizer = nullptr;
    if (zcpack_status s = TokenizerOf(*model, "zcpack_generate_text", &tokenizer);
        s != ZCPACK_OK) {
      return s;
    }
    return GenerateText(*model->model, *tokenizer,
                        absl::string_view(prompt == nullptr ? "" : prompt, prompt_len),
                        parse_special != 0, *options, callback, user_data, out_reason);
  });
}

}  // extern "C"
