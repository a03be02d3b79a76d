//===- JsonReaderTest.cpp - positions, paths and limits of the JSON reader ===//

#include "compiler/import/JsonReader.h"

#include <gtest/gtest.h>

#include <string>

using namespace pipec::json;

namespace {

/// The line:column of a value's first character.
std::string at(llvm::StringRef text, const Value &v) {
  LineCol lc = LineTable(text).lookup(v.offset);
  return std::to_string(lc.line) + ":" + std::to_string(lc.column);
}

std::string errorAt(llvm::StringRef text, const ReadError &e) {
  LineCol lc = LineTable(text).lookup(e.offset);
  return std::to_string(lc.line) + ":" + std::to_string(lc.column);
}

TEST(JsonReader, PositionsOfEveryKind) {
  std::string text = "{\n"
                     "  \"a\": [1, -2.5e3, \"x\\\"y\", true],\n"
                     "\t\"b\" :{\"c\":null,\"d\":false},\n"
                     "  \"e\": 18446744073709551615\n"
                     "}\n";
  Value root;
  ReadError err;
  ASSERT_TRUE(read(text, root, err)) << err.message;
  ASSERT_EQ(root.kind, Value::Kind::Object);
  EXPECT_EQ(at(text, root), "1:1");
  const Value *a = root.find("a");
  ASSERT_TRUE(a && a->kind == Value::Kind::Array && a->elements.size() == 4);
  EXPECT_EQ(at(text, *a), "2:8");
  EXPECT_EQ(at(text, *a->elements[0]), "2:9");
  EXPECT_EQ(a->elements[0]->integer, 1);
  EXPECT_EQ(at(text, *a->elements[1]), "2:12");
  EXPECT_EQ(a->elements[1]->kind, Value::Kind::Float);
  EXPECT_DOUBLE_EQ(a->elements[1]->number, -2500.0);
  // The escaped quote must not end the string early for the cursor.
  EXPECT_EQ(at(text, *a->elements[2]), "2:20");
  EXPECT_EQ(a->elements[2]->string, "x\"y");
  EXPECT_EQ(at(text, *a->elements[3]), "2:28");
  EXPECT_TRUE(a->elements[3]->boolean);

  const Value::Member *b = root.findMember("b");
  ASSERT_TRUE(b);
  EXPECT_EQ(LineTable(text).lookup(b->keyOffset).column, 2u);
  EXPECT_EQ(at(text, *b->value), "3:7");
  EXPECT_EQ(at(text, *b->value->find("c")), "3:12");
  EXPECT_EQ(at(text, *b->value->find("d")), "3:21");
  EXPECT_EQ(b->value->find("d")->kind, Value::Kind::Bool);

  const Value *e = root.find("e");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->kind, Value::Kind::Unsigned);
  EXPECT_EQ(e->unsignedValue, 18446744073709551615ull);
  EXPECT_EQ(at(text, *e), "4:8");
}

TEST(JsonReader, KeepsMemberOrder) {
  std::string text = R"({"z": 1, "a": 2, "m": 3})";
  Value root;
  ReadError err;
  ASSERT_TRUE(read(text, root, err));
  ASSERT_EQ(root.members.size(), 3u);
  EXPECT_EQ(root.members[0].key, "z");
  EXPECT_EQ(root.members[1].key, "a");
  EXPECT_EQ(root.members[2].key, "m");
  EXPECT_EQ(root.members[2].value->integer, 3);
}

TEST(JsonReader, SkipsByteOrderMark) {
  std::string text = "\xEF\xBB\xBF[7, \"\\u00e9\"]";
  Value root;
  ReadError err;
  ASSERT_TRUE(read(text, root, err)) << err.message;
  EXPECT_EQ(at(text, *root.elements[0]), "1:5");
  EXPECT_EQ(root.elements[1]->string, "\xC3\xA9");
  EXPECT_EQ(at(text, *root.elements[1]), "1:8");
}

TEST(JsonReader, SyntaxErrorHasPathAndPosition) {
  std::string text = "{\"graph\": [\n  {\"op\": \"add\"},\n  {\"op\": tru}\n]}";
  Value root;
  ReadError err;
  EXPECT_FALSE(read(text, root, err));
  EXPECT_EQ(err.path, "graph[1].op");
  EXPECT_EQ(errorAt(text, err), "3:10");
  EXPECT_NE(err.message.find("invalid literal"), std::string::npos)
      << err.message;
  EXPECT_EQ(err.message.find("json.exception"), std::string::npos);
}

TEST(JsonReader, TruncatedInput) {
  std::string text = "{\"a\": [1, 2";
  Value root;
  ReadError err;
  EXPECT_FALSE(read(text, root, err));
  EXPECT_EQ(err.path, "a[2]");
  EXPECT_NE(err.message.find("unexpected end of input"), std::string::npos)
      << err.message;
}

TEST(JsonReader, DuplicateKeyIsAnError) {
  std::string text = "{\"params\": {\"w\": 1,\n \"w\": 2}}";
  Value root;
  ReadError err;
  EXPECT_FALSE(read(text, root, err));
  EXPECT_EQ(err.path, "params.w");
  EXPECT_EQ(errorAt(text, err), "2:2");
  EXPECT_NE(err.message.find("duplicate key 'w'"), std::string::npos);
}

TEST(JsonReader, DepthAndSizeLimits) {
  std::string deep(100000, '[');
  Value root;
  ReadError err;
  EXPECT_FALSE(read(deep, root, err));
  EXPECT_NE(err.message.find("nesting deeper than 128"), std::string::npos)
      << err.message;

  ReadLimits limits;
  limits.maxValues = 5;
  EXPECT_FALSE(read("[1,2,3,4,5,6]", root, err, limits));
  EXPECT_NE(err.message.find("too many values"), std::string::npos);
  EXPECT_EQ(err.path, "[4]");
}

TEST(JsonReader, NumberOverflowIsAnError) {
  Value root;
  ReadError err;
  EXPECT_FALSE(read("[1e999]", root, err));
  EXPECT_FALSE(err.message.empty());
}

TEST(JsonReader, PathsQuoteKeysThatAreNotIdentifiers) {
  EXPECT_EQ(appendKey("params", "wte.weight"), "params['wte.weight']");
  EXPECT_EQ(appendKey("p", "it's"), "p['it\\'s']");
  EXPECT_EQ(appendKey("", "graph"), "graph");
  EXPECT_EQ(appendKey("a", "b_1"), "a.b_1");
  EXPECT_EQ(appendIndex("graph", 3), "graph[3]");
}

} // namespace
