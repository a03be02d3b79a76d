//===- JsonReader.cpp - JSON with the source position of every value -----===//
//
// nlohmann's SAX callbacks say what was read but not where. The builder below
// keeps its own cursor into the text and, at each callback, steps over the
// separators and the token that nlohmann has just accepted; since nlohmann
// already validated the token, this re-scan is a few lines per token kind and
// always stays in step with the parser.
//
//===----------------------------------------------------------------------===//

#include "compiler/import/JsonReader.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"

#include <nlohmann/json.hpp>

#include <algorithm>

using namespace pipec::json;
using llvm::StringRef;

LineTable::LineTable(StringRef text) {
  lineStarts.push_back(0);
  for (size_t i = 0, e = text.size(); i < e; ++i)
    if (text[i] == '\n')
      lineStarts.push_back(i + 1);
}

LineCol LineTable::lookup(size_t offset) const {
  auto it = std::upper_bound(lineStarts.begin(), lineStarts.end(), offset);
  size_t line = it - lineStarts.begin(); // >= 1: lineStarts[0] == 0
  LineCol lc;
  lc.line = static_cast<unsigned>(line);
  lc.column = static_cast<unsigned>(offset - lineStarts[line - 1] + 1);
  return lc;
}

const Value::Member *Value::findMember(StringRef key) const {
  for (const Member &m : members)
    if (m.key == key)
      return &m;
  return nullptr;
}

const Value *Value::find(StringRef key) const {
  const Member *m = findMember(key);
  return m ? m->value.get() : nullptr;
}

const char *pipec::json::describe(Value::Kind kind) {
  switch (kind) {
  case Value::Kind::Null:
    return "null";
  case Value::Kind::Bool:
    return "a boolean";
  case Value::Kind::Integer:
  case Value::Kind::Unsigned:
  case Value::Kind::Float:
    return "a number";
  case Value::Kind::String:
    return "a string";
  case Value::Kind::Array:
    return "an array";
  case Value::Kind::Object:
    return "an object";
  }
  return "a value";
}

static bool isIdentifier(StringRef key) {
  if (key.empty() || llvm::isDigit(key[0]))
    return false;
  return llvm::all_of(key, [](char c) { return llvm::isAlnum(c) || c == '_'; });
}

std::string pipec::json::appendKey(StringRef path, StringRef key) {
  if (isIdentifier(key))
    return path.empty() ? key.str() : (path + "." + key).str();
  // Single quotes: the path also goes into MLIR name locations, which
  // would print a double quote as \22.
  std::string escaped;
  for (char c : key) {
    if (c == '\'' || c == '\\')
      escaped += '\\';
    escaped += c;
  }
  return (path + "['" + escaped + "']").str();
}

std::string pipec::json::appendIndex(StringRef path, size_t index) {
  return (path + "[" + llvm::Twine(index) + "]").str();
}

namespace {

using Json = nlohmann::json;

/// Builds a Value tree from nlohmann's SAX events, tracking positions.
class TreeBuilder final : public nlohmann::json_sax<Json> {
public:
  TreeBuilder(StringRef text, Value &root, ReadError &err,
              const ReadLimits &limits)
      : text(text), root(root), err(err), limits(limits) {
    // nlohmann skips a UTF-8 byte-order mark; so does the cursor.
    if (text.starts_with("\xEF\xBB\xBF"))
      cursor = 3;
  }

  bool null() override { return scalar(Value::Kind::Null, 4); }
  bool boolean(bool b) override {
    Value *v = scalar(Value::Kind::Bool, b ? 4 : 5);
    if (v)
      v->boolean = b;
    return v;
  }
  bool number_integer(number_integer_t n) override {
    Value *v = scalar(Value::Kind::Integer, numberLength());
    if (v) {
      v->integer = n;
      v->number = static_cast<double>(n);
    }
    return v;
  }
  bool number_unsigned(number_unsigned_t n) override {
    // nlohmann reports every non-negative integer here; keep the ones that
    // fit as ordinary integers so that callers check one kind.
    bool fits = n <= static_cast<uint64_t>(INT64_MAX);
    Value *v = scalar(fits ? Value::Kind::Integer : Value::Kind::Unsigned,
                      numberLength());
    if (v) {
      v->integer = fits ? static_cast<int64_t>(n) : 0;
      v->unsignedValue = n;
      v->number = static_cast<double>(n);
    }
    return v;
  }
  bool number_float(number_float_t d, const string_t &) override {
    Value *v = scalar(Value::Kind::Float, numberLength());
    if (v)
      v->number = d;
    return v;
  }
  bool string(string_t &s) override {
    Value *v = scalar(Value::Kind::String, stringLength());
    if (v)
      v->string = std::move(s);
    return v;
  }
  bool binary(binary_t &) override { return false; } // never sent for JSON

  bool start_object(std::size_t) override { return open(Value::Kind::Object); }
  bool key(string_t &k) override {
    size_t start = tokenStart();
    cursor = start + stringLength(start);
    Value *obj = stack.back();
    if (!keySets.back().insert(k).second) {
      fail(start, appendKey(currentPath(), k),
           "duplicate key '" + k + "' in one object");
      return false;
    }
    Value::Member m;
    m.key = std::move(k);
    m.keyOffset = start;
    obj->members.push_back(std::move(m));
    keyPending = true;
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(Value::Kind::Array); }
  bool end_array() override { return close(); }

  bool parse_error(std::size_t position, const std::string &,
                   const nlohmann::detail::exception &ex) override {
    // what() reads "[json.exception.parse_error.101] parse error at line 1,
    // column 5: syntax error ..."; positions come from our own table.
    std::string what = ex.what();
    size_t colon = what.find(": ");
    std::string msg =
        colon == std::string::npos ? what : what.substr(colon + 2);
    // "; last read: '...'" shows nlohmann's token buffer, which can span
    // several tokens; the line and column say where instead.
    size_t lastRead = msg.find("; last read: '");
    if (lastRead != std::string::npos) {
      size_t end = msg.find("'; expected", lastRead + 14);
      msg.erase(lastRead, end == std::string::npos ? std::string::npos
                                                   : end + 1 - lastRead);
    }
    // `position` counts the characters read, the bad token included; the
    // cursor still stands after the last good token, so the next token
    // start is where the bad one begins.
    size_t at = std::min(tokenStart(), position == 0 ? 0 : position - 1);
    fail(std::min(at, text.size()), currentPath(), msg);
    return false;
  }

  bool failed = false;

private:
  size_t tokenStart() {
    size_t i = cursor, e = text.size();
    while (i < e && StringRef(" \t\r\n,:").contains(text[i]))
      ++i;
    return i;
  }
  size_t numberLength(size_t start) const {
    size_t i = start;
    while (i < text.size() && StringRef("0123456789+-.eE").contains(text[i]))
      ++i;
    return i - start;
  }
  size_t stringLength(size_t start) const {
    size_t i = start + 1, e = text.size();
    while (i < e) {
      if (text[i] == '\\')
        i += 2;
      else if (text[i] == '"')
        return i + 1 - start;
      else
        ++i;
    }
    return e - start;
  }
  size_t numberLength() { return numberLength(tokenStart()); }
  size_t stringLength() { return stringLength(tokenStart()); }

  /// Creates a value at the current position in the open container.
  Value *place(Value::Kind kind, size_t start) {
    if (++count > limits.maxValues) {
      fail(start, currentPath(),
           "too many values (more than " + std::to_string(limits.maxValues) +
               ")");
      return nullptr;
    }
    Value *v;
    if (stack.empty()) {
      v = &root;
    } else if (stack.back()->kind == Value::Kind::Array) {
      stack.back()->elements.push_back(std::make_unique<Value>());
      v = stack.back()->elements.back().get();
    } else {
      stack.back()->members.back().value = std::make_unique<Value>();
      v = stack.back()->members.back().value.get();
      keyPending = false;
    }
    v->kind = kind;
    v->offset = start;
    return v;
  }

  Value *scalar(Value::Kind kind, size_t length) {
    size_t start = tokenStart();
    cursor = std::min(start + length, text.size());
    return place(kind, start);
  }

  bool open(Value::Kind kind) {
    size_t start = tokenStart();
    if (stack.size() >= limits.maxDepth) {
      fail(start, currentPath(),
           "nesting deeper than " + std::to_string(limits.maxDepth) +
               " levels");
      return false;
    }
    cursor = start + 1;
    Value *v = place(kind, start);
    if (!v)
      return false;
    stack.push_back(v);
    keySets.emplace_back();
    keyPending = false;
    return true;
  }

  bool close() {
    cursor = tokenStart() + 1;
    stack.pop_back();
    keySets.pop_back();
    return true;
  }

  /// The path of the value being read: every open container and the member
  /// or element inside it.
  std::string currentPath() const {
    std::string path;
    for (size_t i = 0; i < stack.size(); ++i) {
      const Value *c = stack[i];
      bool top = i + 1 == stack.size();
      if (c->kind == Value::Kind::Array) {
        size_t n = c->elements.size();
        path = appendIndex(path, top ? n : (n ? n - 1 : 0));
      } else if (!c->members.empty() && (!top || keyPending)) {
        path = appendKey(path, c->members.back().key);
      }
    }
    return path;
  }

  void fail(size_t offset, std::string path, std::string message) {
    failed = true;
    err.offset = offset;
    err.path = std::move(path);
    err.message = std::move(message);
  }

  StringRef text;
  size_t cursor = 0;
  Value &root;
  ReadError &err;
  const ReadLimits &limits;
  size_t count = 0;
  std::vector<Value *> stack;
  std::vector<llvm::StringSet<>> keySets;
  bool keyPending = false;
};

} // namespace

bool pipec::json::read(StringRef text, Value &out, ReadError &err,
                       const ReadLimits &limits) {
  out = Value();
  TreeBuilder builder(text, out, err, limits);
  bool ok = Json::sax_parse(text.begin(), text.end(), &builder);
  if (!ok && !builder.failed) {
    err.offset = 0;
    err.path.clear();
    err.message = "cannot parse the JSON text";
  }
  if (!ok)
    out = Value();
  return ok;
}
