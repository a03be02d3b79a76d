//===- Mutator.cpp - seeded mutations of JSON model files -------*- C++ -*-===//
//
// Built without exceptions: nlohmann's throwing paths abort, so every tree
// edit below checks the kind of a node before it touches it, parsing never
// throws (`allow_exceptions = false`) and dumping replaces invalid UTF-8.
//
//===----------------------------------------------------------------------===//

#include "test/fuzz/Mutator.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cassert>
#include <climits>
#include <cstring>
#include <functional>
#include <random>
#include <set>

using namespace pipec::fuzz;

/// Ordered, so that a dumped mutant keeps the file's key order and looks like
/// a model a person could have written.
using Json = nlohmann::ordered_json;

namespace {

/// A small deterministic generator; `below` avoids the implementation-defined
/// std distributions so that a seed means the same mutants everywhere.
class Rng {
public:
  explicit Rng(uint64_t seed) : gen(seed) {}
  uint64_t next() { return gen(); }
  size_t below(size_t n) { return n ? static_cast<size_t>(gen() % n) : 0; }
  bool chance(unsigned percent) { return below(100) < percent; }
  /// A random element; every caller checks that `v` is not empty.
  template <typename T> const T &pick(const std::vector<T> &v) {
    assert(!v.empty());
    return v[below(v.size())];
  }

private:
  std::mt19937_64 gen;
};

/// A node of the tree being mutated, with the JSON path that names it.
struct NodeRef {
  Json *node;
  Json *parent; ///< null for the root
  std::string path;
};

} // namespace

/// Mixes two numbers into one well-spread seed (splitmix64's finaliser).
static uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9e3779b97f4a7c15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Every node of `root` in pre-order.
static void collect(Json &node, Json *parent, const std::string &path,
                    std::vector<NodeRef> &out) {
  out.push_back({&node, parent, path});
  if (node.is_object()) {
    for (auto &[key, value] : node.items())
      collect(value, &node, path + "." + key, out);
  } else if (node.is_array()) {
    for (size_t i = 0; i < node.size(); ++i)
      collect(node[i], &node, path + "[" + std::to_string(i) + "]", out);
  }
}

static std::vector<NodeRef>
nodesWhere(Json &root, const std::function<bool(const Json &)> &pred) {
  std::vector<NodeRef> all, out;
  collect(root, nullptr, "$", all);
  for (NodeRef &r : all)
    if (pred(*r.node))
      out.push_back(r);
  return out;
}

static std::string dumpJson(const Json &j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

//===----------------------------------------------------------------------===//
// Values a mutation puts in
//===----------------------------------------------------------------------===//

/// Numbers at and beyond every limit an importer might assume.
static Json absurdNumber(Rng &rng) {
  switch (rng.below(22)) {
  case 0:
    return 0;
  case 1:
    return -1;
  case 2:
    return INT64_MIN;
  case 3:
    return INT64_MAX;
  case 4:
    return uint64_t(1) << 63;
  case 5:
    return UINT64_MAX;
  case 6:
    return 1e300;
  case 7:
    return -1e300;
  case 8:
    return 1e-300;
  case 9:
    return 0.5;
  case 10:
    return -0.0;
  case 11:
    return int64_t(1) << 31;
  case 12:
    return (int64_t(1) << 32) + 1;
  case 13:
    return int64_t(1) << 40;
  case 14:
    return int64_t(1) << 62;
  case 15:
    return 3;
  case 16:
    return 65537;
  case 17:
    return 1000000;
  case 18:
    return -2147483648LL;
  case 19:
    return 2.5e9;
  case 20:
    return 7;
  default:
    return static_cast<int64_t>(rng.next() >> rng.below(64));
  }
}

/// A short printable string, sometimes with the characters names use.
static std::string randomString(Rng &rng) {
  static const char alphabet[] = "abcxyz_.{}i0123456789 -\"\\/";
  std::string s;
  size_t n = rng.below(12);
  for (size_t i = 0; i < n; ++i)
    s += alphabet[rng.below(sizeof(alphabet) - 1)];
  return s;
}

/// A variant of an existing name that is likely to be close but wrong.
static std::string varyString(Rng &rng, std::string s) {
  switch (rng.below(10)) {
  case 0:
    return "";
  case 1:
    return s + "_";
  case 2:
    return s.empty() ? "x" : s.substr(0, rng.below(s.size()));
  case 3:
    return s + "{i}";
  case 4:
    return "{i}" + s + "{i}{i}";
  case 5:
    return std::string(rng.chance(50) ? 5000 : 300, 'w');
  case 6:
    return s + "\xc3\xa9"; // a non-ASCII letter, valid UTF-8
  case 7:
    return s + std::string(1, '\0') + "tail";
  case 8: {
    auto pos = s.find("{i}");
    return pos == std::string::npos ? "{j}" + s : s.replace(pos, 3, "{");
  }
  default:
    return randomString(rng);
  }
}

/// A random value of any JSON kind; containers are small and shallow.
static Json randomValue(Rng &rng, const std::vector<std::string> &dict,
                        int depth = 0) {
  switch (rng.below(depth > 1 ? 6 : 8)) {
  case 0:
    return nullptr;
  case 1:
    return rng.chance(50);
  case 2:
    return absurdNumber(rng);
  case 3:
    return rng.pick(dict);
  case 4:
    return randomString(rng);
  case 5:
    return static_cast<int64_t>(rng.below(300)) - 2;
  case 6: {
    Json a = Json::array();
    for (size_t i = rng.below(4); i > 0; --i)
      a.push_back(randomValue(rng, dict, depth + 1));
    return a;
  }
  default: {
    Json o = Json::object();
    for (size_t i = rng.below(4); i > 0; --i)
      o[rng.pick(dict)] = randomValue(rng, dict, depth + 1);
    return o;
  }
  }
}

/// A value of another kind than `old`: number <-> string <-> array <-> null
/// <-> object <-> bool, sometimes wrapping the old value.
static Json retyped(Rng &rng, const Json &old,
                    const std::vector<std::string> &dict) {
  for (;;) {
    Json v;
    switch (rng.below(9)) {
    case 0:
      v = nullptr;
      break;
    case 1:
      v = rng.chance(50);
      break;
    case 2:
      v = absurdNumber(rng);
      break;
    case 3:
      v = old.is_string() ? Json(old.get<std::string>().size())
                          : Json(dumpJson(old, -1));
      break;
    case 4:
      v = Json::array({old});
      break;
    case 5:
      v = Json::array();
      break;
    case 6:
      v = Json::object({{"value", old}});
      break;
    case 7:
      v = Json::object();
      break;
    default:
      v = rng.pick(dict);
      break;
    }
    if (v.type() != old.type() && !(v.is_number() && old.is_number()))
      return v;
  }
}

//===----------------------------------------------------------------------===//
// Tree mutations
//===----------------------------------------------------------------------===//

/// The op names and the attribute keys of docs/MODEL_FORMAT.md, so that new
/// op nodes reach the op-specific checks.
static const std::vector<std::string> kOps = {"embedding", "position_embedding",
                                              "matmul",    "add",
                                              "mul",       "layernorm",
                                              "rmsnorm",   "gelu",
                                              "silu",      "softmax",
                                              "slice",     "reshape",
                                              "transpose", "rope",
                                              "attention", "cross_entropy",
                                              "conv2d",    ""};

static const std::vector<std::string> kFormatWords = {"name",
                                                      "description",
                                                      "config",
                                                      "train",
                                                      "inputs",
                                                      "params",
                                                      "graph",
                                                      "loss",
                                                      "shape",
                                                      "dtype",
                                                      "i32",
                                                      "f32",
                                                      "bf16",
                                                      "init",
                                                      "std",
                                                      "normal",
                                                      "scaled_normal",
                                                      "zeros",
                                                      "ones",
                                                      "op",
                                                      "output",
                                                      "repeat",
                                                      "index",
                                                      "carry",
                                                      "ops",
                                                      "yield",
                                                      "transpose_rhs",
                                                      "eps",
                                                      "axis",
                                                      "offset",
                                                      "size",
                                                      "perm",
                                                      "heads",
                                                      "kv_heads",
                                                      "causal",
                                                      "scale",
                                                      "theta",
                                                      "length",
                                                      "seed",
                                                      "lr",
                                                      "warmup_steps",
                                                      "decay",
                                                      "cosine",
                                                      "constant",
                                                      "decay_steps",
                                                      "min_lr",
                                                      "beta1",
                                                      "beta2",
                                                      "weight_decay",
                                                      "grad_clip",
                                                      "{i}",
                                                      "i",
                                                      "x"};

struct Mutator::Impl {
  struct Seed {
    std::string name, text;
    Json tree;
  };
  std::vector<Seed> seeds;
  /// Every string and key of every seed, and the format's own words.
  std::vector<std::string> dict;

  Mutant make(uint64_t seed, uint64_t index) const;
  bool mutateTree(Rng &rng, Json &root, std::string &recipe,
                  std::vector<std::pair<std::string, std::string>> &deep) const;
  void mutateText(Rng &rng, std::string &text, std::string &recipe) const;
};

Mutator::Mutator() : impl(std::make_unique<Impl>()) {
  impl->dict = kFormatWords;
  impl->dict.insert(impl->dict.end(), kOps.begin(), kOps.end());
}
Mutator::~Mutator() = default;
size_t Mutator::numSeeds() const { return impl->seeds.size(); }

bool Mutator::addSeed(const std::string &name, const std::string &text,
                      std::string &error) {
  Json tree = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (tree.is_discarded()) {
    error = name + ": not valid JSON";
    return false;
  }
  std::set<std::string> known(impl->dict.begin(), impl->dict.end());
  std::vector<NodeRef> all;
  collect(tree, nullptr, "$", all);
  for (NodeRef &r : all) {
    if (r.node->is_string() && known.insert(r.node->get<std::string>()).second)
      impl->dict.push_back(r.node->get<std::string>());
    if (r.node->is_object())
      for (auto &[key, value] : r.node->items())
        if (known.insert(key).second)
          impl->dict.push_back(key);
  }
  impl->seeds.push_back({name, text, std::move(tree)});
  return true;
}

Mutant Mutator::make(uint64_t seed, uint64_t index) const {
  return impl->make(seed, index);
}

/// Builds a plausible op node from names the model already uses, so that a
/// mutant reaches the checks of ops no seed model contains.
static Json randomOp(Rng &rng, const std::vector<std::string> &dict) {
  Json op = Json::object();
  op["op"] = rng.pick(kOps);
  Json inputs = Json::array();
  for (size_t i = rng.below(4); i > 0; --i)
    inputs.push_back(rng.pick(dict));
  op["inputs"] = inputs;
  op["output"] = rng.chance(70) ? rng.pick(dict) : randomString(rng);
  static const std::vector<std::string> attrs = {
      "axis",  "offset",   "size",         "shape", "perm",
      "heads", "kv_heads", "causal",       "scale", "theta",
      "eps",   "length",   "transpose_rhs"};
  for (size_t i = rng.below(4); i > 0; --i) {
    const std::string &key = rng.pick(attrs);
    if (key == "shape" || key == "perm") {
      Json dims = Json::array();
      for (size_t d = rng.below(5); d > 0; --d)
        dims.push_back(rng.chance(60) ? Json(int64_t(rng.below(5)) - 1)
                                      : Json(rng.pick(dict)));
      op[key] = dims;
    } else {
      op[key] = rng.chance(50) ? Json(int64_t(rng.below(70)) - 2)
                               : randomValue(rng, dict);
    }
  }
  return op;
}

/// Rebuilds `obj` with member `key` renamed to `to` in the same place.
static void renameMember(Json &obj, const std::string &key,
                         const std::string &to) {
  Json out = Json::object();
  for (auto &[k, v] : obj.items())
    out[k == key ? to : k] = v;
  obj = std::move(out);
}

bool Mutator::Impl::mutateTree(
    Rng &rng, Json &root, std::string &recipe,
    std::vector<std::pair<std::string, std::string>> &deep) const {
  auto isObject = [](const Json &j) { return j.is_object() && !j.empty(); };
  auto isArray = [](const Json &j) { return j.is_array() && !j.empty(); };
  auto isString = [](const Json &j) { return j.is_string(); };
  auto any = [](const Json &) { return true; };
  auto note = [&](const char *what, const std::string &path) {
    recipe += std::string(recipe.empty() ? "" : "; ") + what + " " + path;
    return true;
  };

  switch (rng.below(13)) {
  case 0: { // delete a key
    auto objs = nodesWhere(root, isObject);
    if (objs.empty())
      return false;
    NodeRef r = rng.pick(objs);
    auto it = r.node->begin();
    std::advance(it, rng.below(r.node->size()));
    std::string key = it.key();
    r.node->erase(key);
    return note("delete-key", r.path + "." + key);
  }
  case 1: { // change a value's kind
    auto all = nodesWhere(root, any);
    NodeRef r = rng.pick(all);
    *r.node = retyped(rng, *r.node, dict);
    return note("retype", r.path);
  }
  case 2: { // an absurd number, mostly where numbers are
    auto nums = nodesWhere(root, [](const Json &j) { return j.is_number(); });
    std::vector<NodeRef> cfg;
    if (root.is_object() && root.contains("config") &&
        root["config"].is_object())
      for (NodeRef &r : nodesWhere(root["config"], any))
        if (r.parent)
          cfg.push_back({r.node, r.parent, "$.config" + r.path.substr(1)});
    std::vector<NodeRef> pool = !cfg.empty() && rng.chance(40) ? cfg
                                : !nums.empty() && rng.chance(80)
                                    ? nums
                                    : nodesWhere(root, any);
    NodeRef r = rng.pick(pool);
    *r.node = absurdNumber(rng);
    return note("absurd-number", r.path);
  }
  case 3: { // make a name collide with another
    auto strs = nodesWhere(root, isString);
    if (strs.size() < 2)
      return false;
    NodeRef a = rng.pick(strs), b = rng.pick(strs);
    *a.node = *b.node;
    return note("duplicate-name", a.path);
  }
  case 4: { // rename a string value
    auto strs = nodesWhere(root, isString);
    if (strs.empty())
      return false;
    NodeRef r = rng.pick(strs);
    *r.node = rng.chance(50)
                  ? Json(rng.pick(dict))
                  : Json(varyString(rng, r.node->get<std::string>()));
    return note("rename", r.path);
  }
  case 5: { // rename a key: unknown field, or a collision with a sibling
    auto objs = nodesWhere(root, isObject);
    if (objs.empty())
      return false;
    NodeRef r = rng.pick(objs);
    auto it = r.node->begin();
    std::advance(it, rng.below(r.node->size()));
    std::string key = it.key();
    std::string to = rng.chance(60) ? rng.pick(dict) : varyString(rng, key);
    renameMember(*r.node, key, to);
    return note("rename-key", r.path + "." + key);
  }
  case 6: { // reorder an array (the graph's program order above all)
    auto arrs = nodesWhere(
        root, [](const Json &j) { return j.is_array() && j.size() > 1; });
    if (arrs.empty())
      return false;
    NodeRef r = rng.pick(arrs);
    Json &a = *r.node;
    if (rng.chance(50)) {
      std::swap(a[rng.below(a.size())], a[rng.below(a.size())]);
    } else {
      for (size_t i = a.size() - 1; i > 0; --i)
        std::swap(a[i], a[rng.below(i + 1)]);
    }
    return note("shuffle", r.path);
  }
  case 7: { // remove, duplicate or insert an array element
    auto arrs = nodesWhere(root, isArray);
    if (arrs.empty())
      return false;
    NodeRef r = rng.pick(arrs);
    Json &a = *r.node;
    size_t i = rng.below(a.size());
    switch (rng.below(3)) {
    case 0:
      a.erase(a.begin() + i);
      return note("remove-element", r.path);
    case 1: {
      Json copy = a[i];
      a.insert(a.begin() + rng.below(a.size() + 1), copy);
      return note("duplicate-element", r.path);
    }
    default:
      a.insert(a.begin() + rng.below(a.size() + 1), randomValue(rng, dict));
      return note("insert-element", r.path);
    }
  }
  case 8: { // splice a subtree of any seed into a random place
    Json donor = seeds[rng.below(seeds.size())].tree;
    std::vector<NodeRef> from;
    collect(donor, nullptr, "$", from);
    Json piece = *rng.pick(from).node;
    auto all = nodesWhere(root, any);
    NodeRef r = rng.pick(all);
    if (!r.parent)
      return false; // replacing the root would discard the whole model
    *r.node = std::move(piece);
    return note("splice", r.path);
  }
  case 9: { // a new op node in a graph or a repeat block
    auto graphs = nodesWhere(root, [](const Json &j) {
      return j.is_object() && ((j.contains("graph") && j["graph"].is_array()) ||
                               (j.contains("ops") && j["ops"].is_array()));
    });
    if (graphs.empty())
      return false;
    NodeRef r = rng.pick(graphs);
    Json &list = r.node->contains("ops") && (*r.node)["ops"].is_array()
                     ? (*r.node)["ops"]
                     : (*r.node)["graph"];
    list.insert(list.begin() + rng.below(list.size() + 1), randomOp(rng, dict));
    return note("insert-op", r.path);
  }
  case 10: { // an extra field
    auto objs = nodesWhere(root, [](const Json &j) { return j.is_object(); });
    if (objs.empty())
      return false; // an earlier edit replaced the root
    NodeRef r = rng.pick(objs);
    (*r.node)[rng.chance(50) ? rng.pick(dict) : randomString(rng)] =
        randomValue(rng, dict);
    return note("add-field", r.path);
  }
  case 11: { // deep nesting, put in after dumping (the tree stays shallow)
    auto all = nodesWhere(root, any);
    NodeRef r = rng.pick(all);
    if (!r.parent)
      return false;
    static const size_t depths[] = {64, 127, 128, 129, 300, 5000, 100000};
    size_t depth = depths[rng.below(7)];
    bool arrays = rng.chance(50);
    std::string open = arrays ? "[" : "{\"a\":", close = arrays ? "]" : "}";
    std::string text;
    text.reserve(depth * (open.size() + 1) + 8);
    for (size_t i = 0; i < depth; ++i)
      text += open;
    text += "1";
    for (size_t i = 0; i < depth; ++i)
      text += close;
    std::string marker = "@@deep" + std::to_string(deep.size()) + "@@";
    *r.node = marker;
    deep.push_back({"\"" + marker + "\"", std::move(text)});
    return note(("nest-" + std::to_string(depth)).c_str(), r.path);
  }
  default: { // reorder an object's members
    auto objs = nodesWhere(
        root, [](const Json &j) { return j.is_object() && j.size() > 1; });
    if (objs.empty())
      return false;
    NodeRef r = rng.pick(objs);
    std::vector<std::pair<std::string, Json>> members;
    for (auto &[k, v] : r.node->items())
      members.push_back({k, v});
    for (size_t i = members.size() - 1; i > 0; --i)
      std::swap(members[i], members[rng.below(i + 1)]);
    Json out = Json::object();
    for (auto &[k, v] : members)
      out[k] = std::move(v);
    *r.node = std::move(out);
    return note("reorder-keys", r.path);
  }
  }
}

//===----------------------------------------------------------------------===//
// Text mutations
//===----------------------------------------------------------------------===//

void Mutator::Impl::mutateText(Rng &rng, std::string &text,
                               std::string &recipe) const {
  auto note = [&](const std::string &what) {
    recipe += std::string(recipe.empty() ? "" : "; ") + what;
  };
  size_t n = text.size();
  size_t at = rng.below(n + 1);
  switch (rng.below(9)) {
  case 0:
    text.resize(at);
    note("truncate@" + std::to_string(at));
    return;
  case 1: { // overwrite bytes with anything, NUL and invalid UTF-8 included
    size_t k = 1 + rng.below(8);
    for (size_t i = 0; i < k && n; ++i)
      text[rng.below(n)] = static_cast<char>(rng.below(256));
    note("flip-bytes x" + std::to_string(k));
    return;
  }
  case 2: { // a run of garbage bytes
    std::string junk;
    for (size_t i = 1 + rng.below(32); i > 0; --i)
      junk += static_cast<char>(rng.below(256));
    text.insert(at, junk);
    note("garbage@" + std::to_string(at));
    return;
  }
  case 3: { // JSON-looking tokens where they do not belong
    static const std::vector<std::string> tokens = {
        "{",           "}",           "[",   "]",         ",",
        ":",           "\"",          "\\u", "\\ud800",   "1e999",
        "-",           "tru",         "nul", "\"x\":",    ",,",
        "\"\\u0000\"", "0x10",        "NaN", "-Infinity", "\xef\xbb\xbf",
        "/* c */",     "\"\xff\xfe\""};
    text.insert(at, rng.pick(tokens));
    note("token@" + std::to_string(at));
    return;
  }
  case 4: { // delete a range
    size_t len = std::min(n - std::min(at, n), rng.below(200) + 1);
    text.erase(at, len);
    note("delete-range@" + std::to_string(at));
    return;
  }
  case 5: { // duplicate a range elsewhere
    size_t from = rng.below(n + 1);
    std::string piece = text.substr(from, rng.below(300) + 1);
    text.insert(at, piece);
    note("duplicate-range@" + std::to_string(at));
    return;
  }
  case 6: { // a number literal no double or integer holds
    static const std::vector<std::string> numbers = {
        "1e999",
        "-1e999",
        "1e-999",
        "123456789012345678901234567890",
        "-9223372036854775809",
        "18446744073709551616",
        "-0",
        "0.0e0",
        "4294967296",
        "1.0000000000000002"};
    size_t pos = text.find_first_of("0123456789", at);
    if (pos == std::string::npos)
      pos = text.find_first_of("0123456789");
    if (pos == std::string::npos)
      return;
    size_t end = text.find_first_not_of("0123456789.eE+-", pos);
    text.replace(pos, (end == std::string::npos ? n : end) - pos,
                 rng.pick(numbers));
    note("number-literal@" + std::to_string(pos));
    return;
  }
  case 7: { // a duplicate key in the first object after `at`
    size_t pos = text.find('{', at);
    if (pos == std::string::npos)
      pos = text.find('{');
    if (pos == std::string::npos)
      return;
    text.insert(pos + 1, "\"" + rng.pick(dict) + "\": 1, ");
    note("duplicate-key@" + std::to_string(pos));
    return;
  }
  default: { // degenerate whole texts
    static const std::vector<std::string> whole = {"",
                                                   " ",
                                                   "\n\n",
                                                   "null",
                                                   "0",
                                                   "[]",
                                                   "{}",
                                                   "\"model\"",
                                                   "[{}]",
                                                   std::string("\0", 1),
                                                   "\xef\xbb\xbf{}",
                                                   "{\"name\": \"m\"}"};
    if (rng.chance(50))
      text = rng.pick(whole);
    else
      text = "\xef\xbb\xbf" + text; // a byte order mark before a good file
    note("whole-text");
    return;
  }
  }
}

Mutant Mutator::Impl::make(uint64_t seed, uint64_t index) const {
  Rng rng(mix(seed, index));
  const Seed &base = seeds[rng.below(seeds.size())];
  Mutant m;
  m.seedName = base.name;

  unsigned plan = rng.below(100);
  if (plan < 10) { // text mutations of the file exactly as written
    m.text = base.text;
    for (size_t i = 1 + rng.below(2); i > 0; --i)
      mutateText(rng, m.text, m.recipe);
    return m;
  }
  Json tree = base.tree;
  std::vector<std::pair<std::string, std::string>> deep;
  // Mostly one or two edits, so that most mutants are wrong in one place and
  // get past the checks that come before it.
  size_t edits = rng.chance(60) ? 1 : 2 + rng.below(4);
  for (size_t i = 0, tries = 0; i < edits && tries < 20; ++tries)
    if (mutateTree(rng, tree, m.recipe, deep))
      ++i;
  m.text = dumpJson(tree, rng.chance(50) ? 2 : -1);
  for (auto &[marker, nested] : deep) {
    size_t pos = m.text.find(marker);
    if (pos != std::string::npos)
      m.text.replace(pos, marker.size(), nested);
  }
  if (plan >= 80)
    mutateText(rng, m.text, m.recipe);
  return m;
}
