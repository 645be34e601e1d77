#include "tests/testing/json_schema.h"

#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace zcpack::testing {
namespace {

using nlohmann::json;

const std::set<std::string>& Keywords() {
  static const std::set<std::string> keywords = {
      "$schema", "$id", "title", "description", "type", "properties", "required",
      "additionalProperties", "items", "enum", "const", "minimum", "oneOf", "$defs", "$ref"};
  return keywords;
}

const std::set<std::string>& TypeNames() {
  static const std::set<std::string> names = {"object", "array",   "string", "integer",
                                              "number", "boolean", "null"};
  return names;
}

constexpr const char* kRefPrefix = "#/$defs/";

// Whether `instance` is of the JSON Schema type `name` (an integer is a
// number; a number with no fraction is an integer, as the spec says).
bool IsType(const json& instance, const std::string& name) {
  if (name == "object") return instance.is_object();
  if (name == "array") return instance.is_array();
  if (name == "string") return instance.is_string();
  if (name == "boolean") return instance.is_boolean();
  if (name == "null") return instance.is_null();
  if (name == "number") return instance.is_number();
  if (name == "integer") {
    if (instance.is_number_integer()) return true;
    if (!instance.is_number_float()) return false;
    const double v = instance.get<double>();
    return v == static_cast<double>(static_cast<long long>(v));
  }
  return false;
}

// Checks the schema's own shape; the first problem, or "".
std::string CheckSchema(const json& schema, const json& root, const std::string& where) {
  if (!schema.is_object()) return absl::StrCat(where, ": a schema must be an object");
  for (auto it = schema.begin(); it != schema.end(); ++it) {
    const std::string& key = it.key();
    const json& value = it.value();
    const std::string at = absl::StrCat(where, "/", key);
    if (!Keywords().count(key)) return absl::StrCat(at, ": keyword not supported");
    if (key == "type") {
      const json names = value.is_array() ? value : json::array({value});
      for (const json& n : names) {
        if (!n.is_string() || !TypeNames().count(n.get<std::string>())) {
          return absl::StrCat(at, ": not a type name: ", n.dump());
        }
      }
    } else if (key == "properties" || key == "$defs") {
      if (!value.is_object()) return absl::StrCat(at, ": must be an object");
      for (auto p = value.begin(); p != value.end(); ++p) {
        if (std::string e = CheckSchema(p.value(), root, absl::StrCat(at, "/", p.key())); !e.empty()) {
          return e;
        }
      }
    } else if (key == "required") {
      if (!value.is_array()) return absl::StrCat(at, ": must be an array");
      for (const json& n : value) {
        if (!n.is_string()) return absl::StrCat(at, ": names must be strings");
        if (!schema.contains("properties") || !schema["properties"].contains(n.get<std::string>())) {
          return absl::StrCat(at, ": '", n.get<std::string>(), "' is required but not a property");
        }
      }
    } else if (key == "additionalProperties") {
      if (value.is_boolean()) continue;
      if (std::string e = CheckSchema(value, root, at); !e.empty()) return e;
    } else if (key == "items") {
      if (std::string e = CheckSchema(value, root, at); !e.empty()) return e;
    } else if (key == "oneOf") {
      if (!value.is_array() || value.empty()) return absl::StrCat(at, ": must be a non-empty array");
      for (size_t i = 0; i < value.size(); ++i) {
        if (std::string e = CheckSchema(value[i], root, absl::StrCat(at, "/", i)); !e.empty()) return e;
      }
    } else if (key == "enum") {
      if (!value.is_array() || value.empty()) return absl::StrCat(at, ": must be a non-empty array");
    } else if (key == "minimum") {
      if (!value.is_number()) return absl::StrCat(at, ": must be a number");
    } else if (key == "$ref") {
      if (!value.is_string() || !absl::StartsWith(value.get<std::string>(), kRefPrefix)) {
        return absl::StrCat(at, ": only \"", kRefPrefix, "NAME\" references are supported");
      }
      const std::string name = value.get<std::string>().substr(std::string(kRefPrefix).size());
      if (!root.contains("$defs") || !root["$defs"].contains(name)) {
        return absl::StrCat(at, ": '", value.get<std::string>(), "' resolves to nothing");
      }
    }
  }
  return "";
}

}  // namespace

absl::StatusOr<JsonSchema> JsonSchema::Parse(json schema) {
  if (std::string e = CheckSchema(schema, schema, "#"); !e.empty()) {
    return absl::InvalidArgumentError(e);
  }
  return JsonSchema(std::move(schema));
}

const json& JsonSchema::Resolve(const std::string& ref) const {
  return schema_["$defs"][ref.substr(std::string(kRefPrefix).size())];
}

std::vector<std::string> JsonSchema::Validate(const json& instance,
                                              const std::string& definition) const {
  std::vector<std::string> errors;
  Check(definition.empty() ? schema_ : Resolve(kRefPrefix + definition), instance, "", errors);
  return errors;
}

void JsonSchema::Check(const json& schema, const json& instance, const std::string& where,
                       std::vector<std::string>& errors) const {
  const std::string at = where.empty() ? "/" : where;
  if (schema.contains("$ref")) Check(Resolve(schema["$ref"].get<std::string>()), instance, where, errors);
  if (schema.contains("type")) {
    const json names = schema["type"].is_array() ? schema["type"] : json::array({schema["type"]});
    bool any = false;
    for (const json& n : names) any = any || IsType(instance, n.get<std::string>());
    if (!any) {
      errors.push_back(absl::StrCat(at, ": ", instance.dump(), " is not of type ", schema["type"].dump()));
      return;  // the other keywords would only repeat it
    }
  }
  if (schema.contains("const") && instance != schema["const"]) {
    errors.push_back(absl::StrCat(at, ": ", instance.dump(), " is not ", schema["const"].dump()));
  }
  if (schema.contains("enum")) {
    bool found = false;
    for (const json& v : schema["enum"]) found = found || v == instance;
    if (!found) {
      errors.push_back(absl::StrCat(at, ": ", instance.dump(), " is not one of ", schema["enum"].dump()));
    }
  }
  if (schema.contains("minimum") && instance.is_number() &&
      instance.get<double>() < schema["minimum"].get<double>()) {
    errors.push_back(absl::StrCat(at, ": ", instance.dump(), " is below the minimum ",
                                  schema["minimum"].dump()));
  }
  if (instance.is_object()) {
    const json empty = json::object();
    const json& properties = schema.contains("properties") ? schema["properties"] : empty;
    if (schema.contains("required")) {
      for (const json& name : schema["required"]) {
        if (!instance.contains(name.get<std::string>())) {
          errors.push_back(absl::StrCat(at, ": required key '", name.get<std::string>(), "' is missing"));
        }
      }
    }
    for (auto it = instance.begin(); it != instance.end(); ++it) {
      const std::string child = absl::StrCat(where, "/", it.key());
      if (properties.contains(it.key())) {
        Check(properties[it.key()], it.value(), child, errors);
      } else if (schema.contains("additionalProperties")) {
        const json& extra = schema["additionalProperties"];
        if (extra.is_boolean()) {
          if (!extra.get<bool>()) errors.push_back(absl::StrCat(child, ": key not in the schema"));
        } else {
          Check(extra, it.value(), child, errors);
        }
      }
    }
  }
  if (instance.is_array() && schema.contains("items")) {
    for (size_t i = 0; i < instance.size(); ++i) {
      Check(schema["items"], instance[i], absl::StrCat(where, "/", i), errors);
    }
  }
  if (schema.contains("oneOf")) {
    std::vector<std::vector<std::string>> branches;
    size_t matches = 0, closest = 0;
    for (const json& branch : schema["oneOf"]) {
      branches.emplace_back();
      Check(branch, instance, where, branches.back());
      if (branches.back().empty()) ++matches;
      if (branches.back().size() < branches[closest].size()) closest = branches.size() - 1;
    }
    if (matches == 0) {
      errors.push_back(absl::StrCat(at, ": matches none of oneOf; the closest (#", closest,
                                    ") says: ", absl::StrJoin(branches[closest], "; ")));
    } else if (matches > 1) {
      errors.push_back(absl::StrCat(at, ": matches ", matches, " of oneOf's schemas, not one"));
    }
  }
}

}  // namespace zcpack::testing
