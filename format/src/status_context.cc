#include "zcpack/format/status_context.h"

#include <utility>

#include "absl/strings/cord.h"

namespace zcpack::format {
namespace {

absl::Status WithPayload(absl::Status status, absl::string_view url, absl::string_view value) {
  if (status.ok() || value.empty() || status.GetPayload(url).has_value()) return status;
  status.SetPayload(url, absl::Cord(value));
  return status;
}

std::optional<std::string> Payload(const absl::Status& status, absl::string_view url) {
  const auto value = status.GetPayload(url);  // absl::optional in this Abseil
  if (!value.has_value()) return std::nullopt;
  return std::string(*value);
}

}  // namespace

absl::Status WithFile(absl::Status status, absl::string_view file) {
  return WithPayload(std::move(status), kFilePayloadUrl, file);
}

absl::Status WithTensor(absl::Status status, absl::string_view tensor) {
  return WithPayload(std::move(status), kTensorPayloadUrl, tensor);
}

absl::Status AboutTensor(absl::Status status, absl::string_view file, absl::string_view tensor) {
  return WithTensor(WithFile(std::move(status), file), tensor);
}

absl::Status WithMessage(const absl::Status& status, absl::string_view message) {
  if (status.ok()) return status;
  absl::Status rewritten(status.code(), message);
  status.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { rewritten.SetPayload(url, payload); });
  return rewritten;
}

std::optional<std::string> StatusFile(const absl::Status& status) {
  return Payload(status, kFilePayloadUrl);
}

std::optional<std::string> StatusTensor(const absl::Status& status) {
  return Payload(status, kTensorPayloadUrl);
}

}  // namespace zcpack::format
