//===- Safetensors.h - reads and writes safetensors files -------*- C++ -*-===//
//
// The format (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON (name -> {dtype, shape,
// data_offsets}, plus an optional "__metadata__" object of strings), then
// the tensors' bytes. Every entry is checked the way the Python reader of
// test/reference/safetensors.py checks it, so both sides reject the same
// files with a message that names the file and the tensor.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_SAFETENSORS_H
#define PIPERT_SAFETENSORS_H

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace pipert {

/// One tensor: its name, safetensors dtype ("F32", "F64", "I32", ...),
/// shape and little-endian bytes.
struct Tensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
  /// Its bytes were left in the file (a reader's TensorFilter passed it
  /// over): `data` is empty, name, dtype and shape are the header's, all
  /// checked as for a tensor read.
  bool skipped = false;

  /// The product of the shape.
  int64_t elementCount() const;
};

/// The contents of a file, tensors in the order of its header.
struct SafetensorsFile {
  std::vector<Tensor> tensors;
  std::map<std::string, std::string> metadata;

  /// The tensor called `name`, or null.
  const Tensor *find(const std::string &name) const;
};

/// Bytes per element of a safetensors dtype; 0 for an unknown name.
int64_t dtypeSize(const std::string &dtype);

/// Which tensors a reader copies out (by name); the others are checked in
/// the header alone and left `skipped`. Empty: all. A process of one rank
/// of a plan reads its own parameters' tensors, not the whole model's.
using TensorFilter = std::function<bool(const std::string &name)>;

/// Reads `path` into `out`. On failure returns false and sets `error` to
/// "PATH: what is wrong" (naming the tensor where there is one).
bool readSafetensors(const std::string &path, SafetensorsFile &out,
                     std::string &error, const TensorFilter &want = {});

/// Parses the bytes of a whole file; `path` is used in messages only.
/// A checkpoint as Hugging Face stores one: a .safetensors file, a sharded
/// checkpoint's model.safetensors.index.json (its weight_map names each
/// tensor's shard, read from beside it), or a directory holding either
/// (model.safetensors.index.json first). Every tensor the index lists must
/// be in its shard, once; the tensors of all shards end up in `out`.
bool readCheckpoint(const std::string &path, SafetensorsFile &out,
                    std::string &error, const TensorFilter &want = {});

bool parseSafetensors(const std::vector<uint8_t> &bytes,
                      const std::string &path, SafetensorsFile &out,
                      std::string &error);

/// Writes `tensors` to `path` in the given order (the data 8-byte aligned).
/// Fails on a duplicate name, a size that does not match dtype and shape, or
/// an I/O error.
bool writeSafetensors(const std::string &path,
                      const std::vector<Tensor> &tensors,
                      const std::map<std::string, std::string> &metadata,
                      std::string &error);

/// A floating-point tensor of `count` values as "F32" or "F64" bytes.
template <typename T>
Tensor makeFloatTensor(const std::string &name, std::vector<int64_t> shape,
                       const T *values);

/// Converts an F32, F64, BF16 or F16 tensor to T (rounding F64 to float
/// once; the half formats widen exactly). Fails for any other dtype.
template <typename T>
bool readFloatTensor(const Tensor &tensor, std::vector<T> &out,
                     std::string &error);

/// Fails when a loaded tensor holds NaN or an infinity: `error` =
/// "PATH: tensor 'NAME' holds NaN at element I: refusing to train from
/// weights that are not finite".
template <typename T>
bool checkFinite(const std::string &path, const std::string &name,
                 const std::vector<T> &values, std::string &error);

} // namespace pipert

#endif // PIPERT_SAFETENSORS_H
