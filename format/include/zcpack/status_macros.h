// Small status-propagation macros. Debian's Abseil (20220623) predates
// ABSL_RETURN_IF_ERROR, so zcpack carries its own, prefixed ZCPACK_.
#ifndef ZCPACK_STATUS_MACROS_H_
#define ZCPACK_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define ZCPACK_STATUS_CONCAT_INNER_(a, b) a##b
#define ZCPACK_STATUS_CONCAT_(a, b) ZCPACK_STATUS_CONCAT_INNER_(a, b)

// ZCPACK_RETURN_IF_ERROR(expr): evaluates expr (an absl::Status) once and
// returns it from the enclosing function when it is not OK.
#define ZCPACK_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::absl::Status zcpack_status_ = (expr);          \
    if (!zcpack_status_.ok()) return zcpack_status_; \
  } while (0)

// ZCPACK_ASSIGN_OR_RETURN(lhs, expr): evaluates expr (an absl::StatusOr<T>);
// on success moves the value into lhs (which may be a declaration), otherwise
// returns the status from the enclosing function.
#define ZCPACK_ASSIGN_OR_RETURN(lhs, expr) \
  ZCPACK_ASSIGN_OR_RETURN_IMPL_(ZCPACK_STATUS_CONCAT_(zcpack_statusor_, __LINE__), lhs, expr)

#define ZCPACK_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // ZCPACK_STATUS_MACROS_H_
