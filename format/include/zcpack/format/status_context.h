// What an error is about, carried in the status itself: the file and the
// tensor a failure concerns, as absl::Status payloads, so that a caller
// (`zcpack --json`'s error object) reads them without parsing the message.
//
// The message stays the one a person reads and still names both; the
// payloads are an addition. They are set where the status is made: by
// ErrnoError() (the path), ProblemStatus() (the container and the tensor),
// Container::Open() (the container, when no deeper code named a file) and
// the converter's and validator's per-tensor failures. A status rebuilt from
// another's message (absl::XxxError(StrCat(..., s.message()))) loses them
// (WithMessage() keeps them);
// callers then know less, never something wrong.
#ifndef ZCPACK_FORMAT_STATUS_CONTEXT_H_
#define ZCPACK_FORMAT_STATUS_CONTEXT_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace zcpack::format {

// The payload type URLs (absl::Status::SetPayload keys).
inline constexpr absl::string_view kFilePayloadUrl = "type.zcpack.dev/zcpack.status.file";
inline constexpr absl::string_view kTensorPayloadUrl = "type.zcpack.dev/zcpack.status.tensor";

// WithFile(): `status` naming `file` as the file it is about, unless it is
// OK or already names one (the innermost code that named a file knew best).
absl::Status WithFile(absl::Status status, absl::string_view file);

// WithTensor(): `status` naming `tensor` as the tensor it is about, unless
// it is OK, already names one, or `tensor` is empty.
absl::Status WithTensor(absl::Status status, absl::string_view tensor);

// AboutTensor(): WithTensor(WithFile(status, file), tensor): a failure about
// one tensor of one file.
absl::Status AboutTensor(absl::Status status, absl::string_view file, absl::string_view tensor);

// WithMessage(): `status` (its code and payloads) with `message` instead of
// its own: for a caller that adds context to a message without losing what
// the status names.
absl::Status WithMessage(const absl::Status& status, absl::string_view message);

// StatusFile(), StatusTensor(): what WithFile()/WithTensor() attached, as
// given (bytes: a path or a tensor name need not be UTF-8); nullopt when none.
std::optional<std::string> StatusFile(const absl::Status& status);
std::optional<std::string> StatusTensor(const absl::Status& status);

}  // namespace zcpack::format

#endif  // ZCPACK_FORMAT_STATUS_CONTEXT_H_
