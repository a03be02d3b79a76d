//===- JsonReader.h - JSON with the source position of every value -*- C++
//-*-===//
//
// nlohmann-json 3.11 records no positions, and under -fno-exceptions its
// throwing accessors abort. This reader runs nlohmann's SAX parser (which
// never throws) and builds its own small tree in which every value and every
// object key carries its byte offset, so the importer can point at the line
// and column of whatever it rejects.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_IMPORT_JSONREADER_H
#define PIPEC_COMPILER_IMPORT_JSONREADER_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pipec::json {

/// A 1-based line and column (the column counts bytes).
struct LineCol {
  unsigned line = 1;
  unsigned column = 1;
};

/// Maps byte offsets of one text to lines and columns.
class LineTable {
public:
  explicit LineTable(llvm::StringRef text);
  LineCol lookup(size_t offset) const;

private:
  std::vector<size_t> lineStarts;
};

/// One JSON value with the byte offset of its first character.
struct Value {
  enum class Kind {
    Null,
    Bool,
    Integer,
    Unsigned,
    Float,
    String,
    Array,
    Object
  };

  /// One member of an object, in file order; `keyOffset` locates the key.
  struct Member {
    std::string key;
    size_t keyOffset = 0;
    std::unique_ptr<Value> value;
  };

  Kind kind = Kind::Null;
  size_t offset = 0;
  bool boolean = false;
  int64_t integer = 0;        ///< Kind::Integer
  uint64_t unsignedValue = 0; ///< Kind::Unsigned: integers above INT64_MAX
  double number = 0.0; ///< Kind::Float, and every numeric kind as a double
  std::string string;  ///< Kind::String
  std::vector<std::unique_ptr<Value>> elements; ///< Kind::Array
  std::vector<Member> members;                  ///< Kind::Object

  bool isNumber() const {
    return kind == Kind::Integer || kind == Kind::Unsigned ||
           kind == Kind::Float;
  }
  /// The member named `key`, or null (the first one if a key repeats).
  const Value *find(llvm::StringRef key) const;
  const Member *findMember(llvm::StringRef key) const;
};

/// Names a kind for messages: "a string", "an object", ...
const char *describe(Value::Kind kind);

/// Limits that bound the work on hostile input.
struct ReadLimits {
  unsigned maxDepth = 128;
  size_t maxValues = 10'000'000;
};

/// Why a text could not be read: where, the JSON path of the innermost open
/// value, and what went wrong.
struct ReadError {
  size_t offset = 0;
  std::string path;
  std::string message;
};

/// Parses `text` into `out`. On failure returns false and fills `err`.
/// Duplicate keys in one object are an error (the model format relies on
/// names being unique).
bool read(llvm::StringRef text, Value &out, ReadError &err,
          const ReadLimits &limits = {});

/// Appends a path step: `.key`, or `['key']` when the key is not a plain
/// identifier, or `[index]`.
std::string appendKey(llvm::StringRef path, llvm::StringRef key);
std::string appendIndex(llvm::StringRef path, size_t index);

} // namespace pipec::json

#endif // PIPEC_COMPILER_IMPORT_JSONREADER_H
