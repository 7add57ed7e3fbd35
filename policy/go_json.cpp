#include "policy/go_json.hpp"

#include <limits>

namespace berth::policy::go {

namespace {

using json = nlohmann::json;

// The client's document as written: objects keep every member in order, duplicates included
// (nlohmann's DOM would silently keep only the last).
struct Node {
  json scalar;  // null, boolean, number or string
  enum class Kind { scalar, array, object } kind = Kind::scalar;
  std::vector<Node> items;
  // Object members in order, duplicates kept; two vectors because a pair of an incomplete
  // type is not allowed in a vector (std::vector<Node> alone is, since C++17).
  std::vector<std::string> keys;
  std::vector<Node> values;
};

Node leaf(json v) {
  Node n;
  n.scalar = std::move(v);
  return n;
}

class TreeBuilder : public nlohmann::json_sax<json> {
 public:
  bool null() override { return put(leaf(nullptr)); }
  bool boolean(bool v) override { return put(leaf(v)); }
  bool number_integer(number_integer_t v) override { return put(leaf(v)); }
  bool number_unsigned(number_unsigned_t v) override { return put(leaf(v)); }
  bool number_float(number_float_t v, const string_t&) override { return put(leaf(v)); }
  bool string(string_t& v) override { return put(leaf(v)); }
  bool binary(binary_t&) override { return false; }
  bool start_object(std::size_t) override {
    Node n;
    n.kind = Node::Kind::object;
    stack_.push_back(std::move(n));
    return stack_.size() < max_depth;
  }
  bool key(string_t& k) override {
    keys_.push_back(k);
    return true;
  }
  bool end_object() override { return finish(); }
  bool start_array(std::size_t) override {
    Node n;
    n.kind = Node::Kind::array;
    stack_.push_back(std::move(n));
    return stack_.size() < max_depth;
  }
  bool end_array() override { return finish(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    error_ = "invalid JSON at byte " + std::to_string(position) + ": " + e.what();
    return false;
  }

  std::optional<Node> root;
  const std::string& error() const { return error_; }

 private:
  // Deep nesting is refused well before Go's own limit of 10000.
  static constexpr std::size_t max_depth = 128;

  bool put(Node n) {
    if (stack_.empty()) {
      root = std::move(n);
      return true;
    }
    Node& top = stack_.back();
    if (top.kind == Node::Kind::array) {
      top.items.push_back(std::move(n));
    } else {
      top.keys.push_back(std::move(keys_.back()));
      top.values.push_back(std::move(n));
      keys_.pop_back();
    }
    return true;
  }

  bool finish() {
    Node n = std::move(stack_.back());
    stack_.pop_back();
    return put(std::move(n));
  }

  std::vector<Node> stack_;
  std::vector<std::string> keys_;
  std::string error_;
};

const char* describe(const Node& n) {
  if (n.kind == Node::Kind::array) {
    return "array";
  }
  if (n.kind == Node::Kind::object) {
    return "object";
  }
  switch (n.scalar.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::string:
      return "string";
    case json::value_t::number_float:
      return "non-integer number";
    default:
      return "number";
  }
}

std::string at(const std::string& path) { return path.empty() ? "the body" : path; }

std::string mismatch(const std::string& path, const char* expected, const Node& n) {
  return at(path) + ": expected " + expected + ", got " + describe(n);
}

std::string join(const std::string& path, std::string_view name) {
  return path.empty() ? std::string(name) : path + "." + std::string(name);
}

json to_json(const Node& n) {
  switch (n.kind) {
    case Node::Kind::scalar:
      return n.scalar;
    case Node::Kind::array: {
      json a = json::array();
      for (const auto& i : n.items) {
        a.push_back(to_json(i));
      }
      return a;
    }
    case Node::Kind::object: {
      json o = json::object();
      for (std::size_t i = 0; i < n.keys.size(); ++i) {
        o[n.keys[i]] = to_json(n.values[i]);  // interface{} maps: the last duplicate wins
      }
      return o;
    }
  }
  return nullptr;
}

json zero_value(const Type& t);

// Decodes `n` into the Go value held in `slot` (null = zero value/absent). Sets `erase` when
// the result is a nil pointer, slice or map, which the canonical document omits.
std::expected<void, std::string> apply(const Node& n, const Type& t, json& slot, bool& erase,
                                       const std::string& path) {
  using K = Type::Kind;
  erase = false;
  const bool is_null = n.kind == Node::Kind::scalar && n.scalar.is_null();
  if (is_null) {
    // Go: null sets pointers, slices, maps and interfaces to nil, and is a no-op otherwise.
    if (t.pointer || t.kind == K::array || t.kind == K::map || t.kind == K::any ||
        t.kind == K::str_slice) {
      slot = nullptr;
      erase = true;
    }
    return {};
  }
  switch (t.kind) {
    case K::any:
      slot = to_json(n);
      return {};
    case K::boolean:
      if (!n.scalar.is_boolean() || n.kind != Node::Kind::scalar) {
        return std::unexpected(mismatch(path, "a boolean", n));
      }
      slot = n.scalar;
      return {};
    case K::integer: {
      if (n.kind != Node::Kind::scalar ||
          !(n.scalar.is_number_integer() || n.scalar.is_number_unsigned())) {
        return std::unexpected(mismatch(path, "an integer", n));
      }
      if (n.scalar.is_number_unsigned()) {
        const auto v = n.scalar.get<unsigned long long>();
        if (v > static_cast<unsigned long long>(t.max)) {
          return std::unexpected(at(path) + ": integer out of range");
        }
        slot = static_cast<long long>(v);
      } else {
        const auto v = n.scalar.get<long long>();
        if (v < t.min || (v > 0 && static_cast<unsigned long long>(v) > t.max)) {
          return std::unexpected(at(path) + ": integer out of range");
        }
        slot = v;
      }
      return {};
    }
    case K::unsigned_: {
      if (n.kind != Node::Kind::scalar ||
          !(n.scalar.is_number_integer() || n.scalar.is_number_unsigned())) {
        return std::unexpected(mismatch(path, "a non-negative integer", n));
      }
      if (n.scalar.is_number_integer() && !n.scalar.is_number_unsigned() &&
          n.scalar.get<long long>() < 0) {
        return std::unexpected(at(path) + ": expected a non-negative integer");
      }
      const auto v = n.scalar.get<unsigned long long>();
      if (v > t.max) {
        return std::unexpected(at(path) + ": integer out of range");
      }
      slot = v;
      return {};
    }
    case K::number:
      if (n.kind != Node::Kind::scalar || !n.scalar.is_number()) {
        return std::unexpected(mismatch(path, "a number", n));
      }
      slot = n.scalar;
      return {};
    case K::string:
      if (n.kind != Node::Kind::scalar || !n.scalar.is_string()) {
        return std::unexpected(mismatch(path, "a string", n));
      }
      slot = n.scalar;
      return {};
    case K::str_slice:
      // strslice.StrSlice accepts "cmd" as well as ["cmd", "arg"].
      if (n.kind == Node::Kind::scalar && n.scalar.is_string()) {
        slot = json::array({n.scalar});
        return {};
      }
      [[fallthrough]];
    case K::array: {
      if (n.kind != Node::Kind::array) {
        return std::unexpected(mismatch(path, "an array", n));
      }
      const Type& element = t.kind == K::array ? *t.element : *string();
      json out = json::array();
      for (std::size_t i = 0; i < n.items.size(); ++i) {
        json item;
        bool item_erase = false;
        auto r = apply(n.items[i], element, item, item_erase,
                       path + "[" + std::to_string(i) + "]");
        if (!r) {
          return r;
        }
        if (item.is_null()) {
          item = zero_value(element);  // Go: null into an element leaves its zero value
        }
        out.push_back(std::move(item));
      }
      slot = std::move(out);
      return {};
    }
    case K::map: {
      if (n.kind != Node::Kind::object) {
        return std::unexpected(mismatch(path, "an object", n));
      }
      if (!slot.is_object()) {
        slot = json::object();
      }
      for (std::size_t m = 0; m < n.keys.size(); ++m) {
        const std::string& key = n.keys[m];
        const Node& value = n.values[m];
        // Go decodes every map value into a fresh zero value: a repeated key replaces the
        // earlier value whole, objects included (unlike struct fields, which merge).
        json entry;
        bool entry_erase = false;
        auto r = apply(value, *t.element, entry, entry_erase, join(path, key));
        if (!r) {
          return r;
        }
        slot[key] = entry.is_null() ? zero_value(*t.element) : std::move(entry);
      }
      return {};
    }
    case K::struct_: {
      if (n.kind != Node::Kind::object) {
        return std::unexpected(mismatch(path, "an object", n));
      }
      if (!slot.is_object()) {
        slot = json::object();
      }
      for (std::size_t m = 0; m < n.keys.size(); ++m) {
        const std::string& key = n.keys[m];
        const Node& value = n.values[m];
        const std::pair<std::string, TypePtr>* field = nullptr;
        for (const auto& f : t.fields) {
          if (f.first == key) {
            field = &f;
            break;
          }
        }
        if (!field) {
          for (const auto& f : t.fields) {
            if (fold_equal(key, f.first)) {
              field = &f;
              break;
            }
          }
        }
        if (!field) {
          continue;  // Go ignores unknown fields; so does the canonical document
        }
        json& target = slot[field->first];
        bool field_erase = false;
        auto r = apply(value, *field->second, target, field_erase, join(path, field->first));
        if (!r) {
          return r;
        }
        if (field_erase || target.is_null()) {
          slot.erase(field->first);
        }
      }
      return {};
    }
  }
  return {};
}

// The Go zero value of a type, as the canonical document writes it: what a JSON null leaves
// in a slice element or a map value of a non-pointer type.
json zero_value(const Type& t) {
  using K = Type::Kind;
  if (t.pointer) {
    return nullptr;
  }
  switch (t.kind) {
    case K::boolean:
      return false;
    case K::integer:
    case K::unsigned_:
    case K::number:
      return 0;
    case K::string:
      return "";
    case K::struct_:
      return json::object();
    default:
      return nullptr;  // nil slice, map or interface
  }
}

TypePtr make(Type::Kind kind, long long min = 0, unsigned long long max = 0) {
  auto t = std::make_shared<Type>();
  t->kind = kind;
  t->min = min;
  t->max = max;
  return t;
}

}  // namespace

bool fold_equal(std::string_view key, std::string_view field_name) {
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < key.size() && j < field_name.size()) {
    char c = key[i];
    const auto u = static_cast<unsigned char>(c);
    if (u == 0xC5 && i + 1 < key.size() && static_cast<unsigned char>(key[i + 1]) == 0xBF) {
      c = 's';  // U+017F LATIN SMALL LETTER LONG S
      i += 2;
    } else if (u == 0xE2 && i + 2 < key.size() &&
               static_cast<unsigned char>(key[i + 1]) == 0x84 &&
               static_cast<unsigned char>(key[i + 2]) == 0xAA) {
      c = 'k';  // U+212A KELVIN SIGN
      i += 3;
    } else {
      ++i;
    }
    char f = field_name[j++];
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
    if (f >= 'A' && f <= 'Z') {
      f = static_cast<char>(f - 'A' + 'a');
    }
    if (c != f) {
      return false;
    }
  }
  return i == key.size() && j == field_name.size();
}

TypePtr any() { return make(Type::Kind::any); }
TypePtr boolean() { return make(Type::Kind::boolean); }
TypePtr int64() {
  return make(Type::Kind::integer, std::numeric_limits<long long>::min(),
              static_cast<unsigned long long>(std::numeric_limits<long long>::max()));
}
TypePtr int32() {
  return make(Type::Kind::integer, std::numeric_limits<int>::min(),
              static_cast<unsigned long long>(std::numeric_limits<int>::max()));
}
TypePtr uint16() { return make(Type::Kind::unsigned_, 0, 65535); }
TypePtr uint64() {
  return make(Type::Kind::unsigned_, 0, std::numeric_limits<unsigned long long>::max());
}
TypePtr float64() { return make(Type::Kind::number); }
TypePtr string() {
  static const TypePtr s = make(Type::Kind::string);
  return s;
}
TypePtr str_slice() { return make(Type::Kind::str_slice); }

TypePtr array_of(TypePtr element) {
  auto t = std::make_shared<Type>();
  t->kind = Type::Kind::array;
  t->element = std::move(element);
  return t;
}

TypePtr map_of(TypePtr value) {
  auto t = std::make_shared<Type>();
  t->kind = Type::Kind::map;
  t->element = std::move(value);
  return t;
}

TypePtr struct_of(std::initializer_list<std::pair<std::string, TypePtr>> fields) {
  return struct_with({}, fields);
}

TypePtr struct_with(std::initializer_list<TypePtr> embedded,
                    std::initializer_list<std::pair<std::string, TypePtr>> fields) {
  auto t = std::make_shared<Type>();
  t->kind = Type::Kind::struct_;
  // Go promotes embedded fields after the struct's own (field order decides fold ties).
  for (const auto& f : fields) {
    t->fields.push_back(f);
  }
  for (const auto& e : embedded) {
    for (const auto& f : e->fields) {
      t->fields.push_back(f);
    }
  }
  return t;
}

TypePtr pointer(TypePtr inner) {
  auto t = std::make_shared<Type>(*inner);
  t->pointer = true;
  return t;
}

std::expected<nlohmann::json, std::string> decode(std::string_view body, const Type& type) {
  const auto first = body.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) {
    return nlohmann::json::object();
  }
  TreeBuilder builder;
  const bool ok = nlohmann::json::sax_parse(body, &builder, nlohmann::json::input_format_t::json,
                                            true, false);
  if (!ok || !builder.root) {
    return std::unexpected(builder.error().empty() ? std::string("invalid JSON")
                                                   : builder.error());
  }
  nlohmann::json out;
  bool erase = false;
  auto r = apply(*builder.root, type, out, erase, "");
  if (!r) {
    return std::unexpected(r.error());
  }
  if (out.is_null()) {
    out = nlohmann::json::object();
  }
  return out;
}

}  // namespace berth::policy::go
