//===- Safetensors.cpp - reads and writes safetensors files ---------------===//

#include "pipert/Safetensors.h"

#include "pipert/AtomicFile.h"
#include "pipert/InputFile.h"

#include "kernels/cuda/Bf16.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <tuple>
#include <type_traits>

namespace pipert {

/// A larger header is a corrupt file, not a model (the reference crate's
/// limit, and test/reference/safetensors.py's).
static constexpr uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;

int64_t Tensor::elementCount() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

const Tensor *SafetensorsFile::find(const std::string &name) const {
  for (const Tensor &t : tensors)
    if (t.name == name)
      return &t;
  return nullptr;
}

int64_t dtypeSize(const std::string &dtype) {
  static const std::pair<const char *, int64_t> sizes[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U64", 8},  {"U32", 4},
      {"U16", 2}, {"U8", 1},  {"BOOL", 1}};
  for (const auto &[name, size] : sizes)
    if (dtype == name)
      return size;
  return 0;
}

namespace {
/// The bytes of a file, mapped or in memory.
struct Bytes {
  const uint8_t *p;
  size_t n;
  size_t size() const { return n; }
  const uint8_t *begin() const { return p; }
  uint8_t operator[](size_t i) const { return p[i]; }
};
} // namespace

static bool parseBytes(const Bytes &bytes, const std::string &path,
                       SafetensorsFile &out, std::string &error,
                       const TensorFilter &want = {});

bool readSafetensors(const std::string &path, SafetensorsFile &out,
                     std::string &error, const TensorFilter &want) {
  // Mapped, not read: the tensors are copied out once, straight from the
  // page cache.
  MappedFile file;
  if (Status s = file.open(path, "file"); !s.ok()) {
    error = s.message();
    return false;
  }
  return parseBytes({file.data(), file.size()}, path, out, error, want);
}

bool readCheckpoint(const std::string &path, SafetensorsFile &out,
                    std::string &error, const TensorFilter &want) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string index = path;
  if (fs::is_directory(path, ec)) {
    index = path + "/model.safetensors.index.json";
    if (!fs::is_regular_file(index, ec)) {
      std::string single = path + "/model.safetensors";
      if (!fs::is_regular_file(single, ec)) {
        error = path + ": a directory without model.safetensors or "
                       "model.safetensors.index.json";
        return false;
      }
      return readSafetensors(single, out, error, want);
    }
  }
  if (index.size() < 11 || index.compare(index.size() - 11, 11, ".index.json"))
    return readSafetensors(path, out, error, want);

  out = SafetensorsFile();
  std::ifstream in(index, std::ios::binary);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (!in.good() && !in.eof()) {
    error = index + ": cannot read the file";
    return false;
  }
  if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") ||
      !j["weight_map"].is_object()) {
    error = index + ": not a sharded checkpoint's index (a JSON object with "
                    "a weight_map)";
    return false;
  }
  // Shard file -> the tensors the index puts in it.
  std::map<std::string, std::vector<std::string>> shards;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it->is_string() || it->get<std::string>().empty() ||
        it->get<std::string>().find('/') != std::string::npos) {
      error = index + ": weight_map['" + it.key() +
              "'] is not a file name beside the index";
      return false;
    }
    shards[it->get<std::string>()].push_back(it.key());
  }
  std::string dir = fs::path(index).parent_path().string();
  if (dir.empty())
    dir = ".";
  for (const auto &[shard, names] : shards) {
    SafetensorsFile part;
    if (!readSafetensors(dir + "/" + shard, part, error, want))
      return false;
    for (const std::string &name : names) {
      const Tensor *t = part.find(name);
      if (!t) {
        error = index + ": weight_map puts '" + name + "' in " + shard +
                ", which does not hold it";
        return false;
      }
      out.tensors.push_back(*t);
    }
  }
  return true;
}

bool parseSafetensors(const std::vector<uint8_t> &bytes,
                      const std::string &path, SafetensorsFile &out,
                      std::string &error) {
  return parseBytes({bytes.data(), bytes.size()}, path, out, error);
}

/// Checks one header entry and copies its bytes; false with `error` set.
static bool parseEntry(const std::string &name, const nlohmann::json &entry,
                       const Bytes &bytes, uint64_t dataStart,
                       const std::string &where, bool copy, Tensor &tensor,
                       std::pair<uint64_t, uint64_t> &span,
                       std::string &error) {
  if (!entry.is_object() || entry.size() != 3 || !entry.contains("dtype") ||
      !entry.contains("shape") || !entry.contains("data_offsets")) {
    error = where + ": an entry needs exactly dtype, shape and data_offsets";
    return false;
  }
  const nlohmann::json &dtype = entry["dtype"];
  if (!dtype.is_string() || dtypeSize(dtype.get<std::string>()) == 0) {
    error = where + ": unknown dtype " + dtype.dump();
    return false;
  }
  tensor.name = name;
  tensor.dtype = dtype.get<std::string>();
  const nlohmann::json &shape = entry["shape"];
  if (!shape.is_array()) {
    error = where + ": shape is not an array";
    return false;
  }
  // The element count saturates instead of wrapping, so a huge shape cannot
  // pass for a small one; a zero dimension still makes it zero.
  uint64_t count = 1, dataBytes = bytes.size() - dataStart;
  for (const nlohmann::json &d : shape) {
    if (!d.is_number_unsigned() ||
        d.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
      error = where + ": bad shape " + shape.dump();
      return false;
    }
    uint64_t dim = d.get<uint64_t>();
    count = dim != 0 && count > std::numeric_limits<uint64_t>::max() / dim
                ? std::numeric_limits<uint64_t>::max()
                : count * dim;
    tensor.shape.push_back(static_cast<int64_t>(dim));
  }
  if (count > dataBytes) {
    error = where + ": shape " + shape.dump() + " is larger than the file";
    return false;
  }
  const nlohmann::json &offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 ||
      !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) {
    error = where + ": data_offsets must be two non-negative integers";
    return false;
  }
  uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
  uint64_t size = static_cast<uint64_t>(dtypeSize(tensor.dtype));
  if (begin > end || end > dataBytes || end - begin != count * size) {
    error = where + ": data_offsets [" + std::to_string(begin) + ", " +
            std::to_string(end) + "] do not hold " + shape.dump() + " " +
            tensor.dtype + " in " + std::to_string(dataBytes) + " data bytes";
    return false;
  }
  // A mapped file's pages passed over are never read.
  if (copy)
    tensor.data.assign(bytes.begin() + dataStart + begin,
                       bytes.begin() + dataStart + end);
  tensor.skipped = !copy;
  span = {begin, end};
  return true;
}

static bool parseBytes(const Bytes &bytes, const std::string &path,
                       SafetensorsFile &out, std::string &error,
                       const TensorFilter &want) {
  out = SafetensorsFile();
  if (bytes.size() < 8) {
    error = path + ": " + std::to_string(bytes.size()) +
            " bytes, too short for a safetensors header";
    return false;
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | bytes[i];
  if (n > kMaxHeaderBytes || n > bytes.size() - 8) {
    error = path + ": header length " + std::to_string(n) +
            " does not fit in a file of " + std::to_string(bytes.size()) +
            " bytes";
    return false;
  }
  // ordered_json keeps the header's order, which is the order of the tensors.
  nlohmann::ordered_json header;
  try {
    header =
        nlohmann::ordered_json::parse(bytes.begin() + 8, bytes.begin() + 8 + n);
  } catch (const nlohmann::json::exception &e) {
    error = path + ": header is not JSON: " + e.what();
    return false;
  }
  if (!header.is_object()) {
    error = path + ": header is not a JSON object";
    return false;
  }
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) {
        error = path + ": __metadata__ is not an object";
        return false;
      }
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string()) {
          error =
              path + ": __metadata__ entry '" + m.key() + "' is not a string";
          return false;
        }
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    Tensor tensor;
    std::pair<uint64_t, uint64_t> span;
    // Convert to the unordered json type the entry parser takes.
    nlohmann::json entry = nlohmann::json::parse(it.value().dump());
    if (!parseEntry(it.key(), entry, bytes, 8 + n,
                    path + ": tensor '" + it.key() + "'",
                    !want || want(it.key()), tensor, span, error))
      return false;
    spans.emplace_back(span.first, span.second, it.key());
    out.tensors.push_back(std::move(tensor));
  }
  std::sort(spans.begin(), spans.end());
  uint64_t pos = 0;
  for (const auto &[begin, end, name] : spans) {
    if (begin != pos) {
      error = path + ": tensor '" + name + "' starts at " +
              std::to_string(begin) + ", expected " + std::to_string(pos) +
              " (gap or overlap)";
      return false;
    }
    pos = end;
  }
  uint64_t dataBytes = bytes.size() - 8 - n;
  if (pos != dataBytes) {
    error = path + ": " + std::to_string(dataBytes - pos) +
            " trailing bytes after the last tensor";
    return false;
  }
  return true;
}

bool writeSafetensors(const std::string &path,
                      const std::vector<Tensor> &tensors,
                      const std::map<std::string, std::string> &metadata,
                      std::string &error) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto &[k, v] : metadata)
      meta[k] = v;
    header["__metadata__"] = meta;
  }
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const Tensor &t : tensors) {
    if (t.name == "__metadata__" || !seen.insert(t.name).second) {
      error = path + ": tensor name '" + t.name + "' is reserved or repeated";
      return false;
    }
    int64_t size = dtypeSize(t.dtype);
    if (size == 0 ||
        static_cast<int64_t>(t.data.size()) != t.elementCount() * size) {
      error = path + ": tensor '" + t.name + "' has " +
              std::to_string(t.data.size()) + " bytes, not a " + t.dtype +
              " tensor of its shape";
      return false;
    }
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text = header.dump();
  // Pad with spaces so the data starts 8-byte aligned (as the Rust writer).
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t len[8];
  for (int i = 0; i < 8; ++i)
    len[i] = static_cast<uint8_t>(uint64_t(text.size()) >> (8 * i));
  AtomicFile f;
  Status st = f.open(path);
  if (st.ok())
    st = f.write(len, 8);
  if (st.ok())
    st = f.write(text);
  for (const Tensor &t : tensors)
    if (st.ok())
      st = f.write(t.data.data(), t.data.size());
  if (st.ok())
    st = f.commit();
  if (!st.ok()) {
    error = st.message();
    return false;
  }
  return true;
}

// The hosts this runs on are little-endian, as the format is, so the bytes
// are copied as they are.
template <typename T>
Tensor makeFloatTensor(const std::string &name, std::vector<int64_t> shape,
                       const T *values) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  Tensor t;
  t.name = name;
  t.dtype = std::is_same_v<T, float> ? "F32" : "F64";
  t.shape = std::move(shape);
  t.data.resize(t.elementCount() * sizeof(T));
  std::memcpy(t.data.data(), values, t.data.size());
  return t;
}

/// IEEE half to float, exactly (subnormals, infinities and NaN kept).
static float f16ToFloat(uint16_t h) {
  const uint32_t sign = uint32_t(h >> 15) << 31;
  const uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else { // subnormal: man * 2^-24, exact in float
    float f = std::ldexp(float(man), -24);
    std::memcpy(&bits, &f, 4);
    bits |= sign;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <typename T>
bool readFloatTensor(const Tensor &tensor, std::vector<T> &out,
                     std::string &error) {
  int64_t n = tensor.elementCount();
  // A tensor whose bytes a filter left in the file, or one built by hand
  // with too few: never read past its data.
  const int64_t size = dtypeSize(tensor.dtype);
  if (tensor.skipped || size == 0 ||
      int64_t(tensor.data.size()) != n * size) {
    error = "tensor '" + tensor.name + "': " +
            (tensor.skipped ? std::string("its values were not read")
                            : std::to_string(tensor.data.size()) +
                                  " bytes for " + std::to_string(n) + " " +
                                  tensor.dtype + " values");
    return false;
  }
  out.resize(n);
  if (tensor.dtype == "F32") {
    for (int64_t i = 0; i < n; ++i) {
      float v;
      std::memcpy(&v, tensor.data.data() + 4 * i, 4);
      out[i] = static_cast<T>(v);
    }
    return true;
  }
  if (tensor.dtype == "F64") {
    for (int64_t i = 0; i < n; ++i) {
      double v;
      std::memcpy(&v, tensor.data.data() + 8 * i, 8);
      out[i] = static_cast<T>(v);
    }
    return true;
  }
  if (tensor.dtype == "BF16" || tensor.dtype == "F16") {
    const bool brain = tensor.dtype == "BF16";
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, tensor.data.data() + 2 * i, 2);
      out[i] = static_cast<T>(brain ? bf16::toFloat(h) : f16ToFloat(h));
    }
    return true;
  }
  error = "tensor '" + tensor.name + "' has dtype " + tensor.dtype +
          ", expected F32, F64, BF16 or F16";
  return false;
}

template <typename T>
bool checkFinite(const std::string &path, const std::string &name,
                 const std::vector<T> &values, std::string &error) {
  for (size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i])) {
      error = path + ": tensor '" + name + "' holds " +
              (std::isnan(values[i]) ? "NaN" : "an infinity") +
              " at element " + std::to_string(i) +
              ": refusing to train from weights that are not finite";
      return false;
    }
  return true;
}

template bool checkFinite<float>(const std::string &, const std::string &,
                                 const std::vector<float> &, std::string &);
template bool checkFinite<double>(const std::string &, const std::string &,
                                  const std::vector<double> &, std::string &);
template Tensor makeFloatTensor<float>(const std::string &,
                                       std::vector<int64_t>, const float *);
template Tensor makeFloatTensor<double>(const std::string &,
                                        std::vector<int64_t>, const double *);
template bool readFloatTensor<float>(const Tensor &, std::vector<float> &,
                                     std::string &);
template bool readFloatTensor<double>(const Tensor &, std::vector<double> &,
                                      std::string &);

} // namespace pipert
