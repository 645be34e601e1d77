// A JSON Schema validator for the subset of JSON Schema (draft 2020-12) that
// docs/zcpack.schema.json uses, over nlohmann::json. No Debian package does
// this, and the subset is small: annotations ($schema, $id, title,
// description), type (a name or a list of names), properties, required,
// additionalProperties (false or a schema), items, enum, const, minimum,
// oneOf, $defs and $ref to "#/$defs/NAME". A schema with any other keyword
// is refused when parsed, so the schema cannot silently rely on a keyword
// this validator would ignore.
//
// Test-only code (tests/tools/cli_json_schema_test.cc). Not thread-safe to
// build; Validate() is const and reentrant.
#ifndef ZCPACK_TESTS_TESTING_JSON_SCHEMA_H_
#define ZCPACK_TESTS_TESTING_JSON_SCHEMA_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace zcpack::testing {

class JsonSchema {
 public:
  // Parse(): the schema, checked: every keyword in the subset above, every
  // $ref resolving, every keyword's value of the right kind.
  // InvalidArgument naming the JSON pointer of the first one that is not.
  static absl::StatusOr<JsonSchema> Parse(nlohmann::json schema);

  // Validate(): every way `instance` breaks the schema (the root, or
  // "#/$defs/NAME" when `definition` is NAME), each "POINTER: what"; empty
  // when it is valid.
  std::vector<std::string> Validate(const nlohmann::json& instance,
                                    const std::string& definition = "") const;

 private:
  explicit JsonSchema(nlohmann::json schema) : schema_(std::move(schema)) {}
  void Check(const nlohmann::json& schema, const nlohmann::json& instance, const std::string& where,
             std::vector<std::string>& errors) const;
  const nlohmann::json& Resolve(const std::string& ref) const;

  nlohmann::json schema_;
};

}  // namespace zcpack::testing

#endif  // ZCPACK_TESTS_TESTING_JSON_SCHEMA_H_
