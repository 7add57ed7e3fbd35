#pragma once
// go_json: decode a request body exactly as dockerd's Go encoding/json would decode it into
// its Go structs, and produce the canonical document berth judges and forwards.
//
// Go's decoder differs from nlohmann in ways a hostile client can use to make berth judge one
// document while dockerd executes another:
//   - struct field names match case-insensitively (with Unicode simple folding, so "ſ" U+017F
//     matches 's' and "K" U+212A matches 'k'), the exact spelling first;
//   - a key that appears twice (in any spelling) is decoded twice into the same field: the
//     last scalar or array wins, but objects (structs and maps) are merged;
//   - unknown fields are ignored; null leaves a non-pointer field unchanged;
//   - a JSON value of the wrong type is an error (400 from dockerd).
// The canonical document has exactly the Go field names, only known fields, no duplicates.
// Forwarding it instead of the client's bytes means dockerd decodes what berth judged.

#include <expected>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace berth::policy::go {

/// The Go type a JSON value decodes into.
struct Type {
  enum class Kind {
    any,         ///< json.RawMessage / interface{}: kept as is
    boolean,     ///< bool
    integer,     ///< int, int64 (and narrower signed types, range-checked)
    unsigned_,   ///< uint, uint16, uint64 (range-checked)
    number,      ///< float64
    string,      ///< string
    str_slice,   ///< strslice.StrSlice: a string or an array of strings
    array,       ///< []T
    map,         ///< map[string]T (keys exact, merged on repeat)
    struct_,     ///< struct (keys case-insensitive, merged on repeat)
  };
  Kind kind = Kind::any;
  bool pointer = false;  ///< *T: null resets it
  long long min = 0;     ///< integer range
  unsigned long long max = 0;
  std::shared_ptr<const Type> element;  ///< array element / map value
  std::vector<std::pair<std::string, std::shared_ptr<const Type>>> fields;  ///< struct fields
};

using TypePtr = std::shared_ptr<const Type>;

TypePtr any();
TypePtr boolean();
TypePtr int64();
TypePtr int32();
TypePtr uint16();
TypePtr uint64();
TypePtr float64();
TypePtr string();
TypePtr str_slice();
TypePtr array_of(TypePtr element);
TypePtr map_of(TypePtr value);
TypePtr struct_of(std::initializer_list<std::pair<std::string, TypePtr>> fields);
/// The same type behind a pointer (null resets it; absent stays absent).
TypePtr pointer(TypePtr t);
/// A struct that embeds others: their fields are promoted, as Go does.
TypePtr struct_with(std::initializer_list<TypePtr> embedded,
                    std::initializer_list<std::pair<std::string, TypePtr>> fields);

/// Decodes `body` as Go would into `type`. An empty body decodes to an empty object. Errors
/// name the field path ("HostConfig.Memory: expected an integer").
[[nodiscard]] std::expected<nlohmann::json, std::string> decode(std::string_view body,
                                                                const Type& type);

/// Go's field-name match: ASCII case folding plus U+017F (ſ) as 's' and U+212A (K) as 'k'.
bool fold_equal(std::string_view key, std::string_view field_name);

}  // namespace berth::policy::go
