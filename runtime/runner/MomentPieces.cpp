//===- MomentPieces.cpp - ZeRO-1's moments written a replica at a time ----===//

#include "runtime/runner/MomentPieces.h"

#include "pipert/LogicalShape.h"
#include "pipert/ParseNumber.h"

#include <algorithm>
#include <cstring>

namespace pipecrun {

static const char *const kMoments[2] = {".adam_m", ".adam_v"};

std::string pieceName(const std::string &moment, int64_t first) {
  return moment + "@" + std::to_string(first);
}

bool splitPieceName(const std::string &name, std::string &moment,
                    int64_t &first) {
  const size_t at = name.rfind('@');
  if (at == std::string::npos || at + 1 >= name.size())
    return false;
  const std::string base = name.substr(0, at), digits = name.substr(at + 1);
  bool isMoment = false;
  for (const char *suffix : kMoments) {
    const size_t n = std::strlen(suffix);
    isMoment = isMoment ||
               (base.size() > n && base.compare(base.size() - n, n, suffix) == 0);
  }
  if (!isMoment || digits.size() > 18 ||
      !std::all_of(digits.begin(), digits.end(),
                   [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  moment = base;
  first = std::stoll(digits);
  return true;
}

std::string storedShapeKey(const std::string &param) {
  return "pipec.stored_shape." + param;
}

std::string modelShapeKey(const std::string &param) {
  return "pipec.model_shape." + param;
}

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? "," : "") + std::to_string(shape[i]);
  return s;
}

/// A shape from its text; false when it is not one.
static bool parseShape(const std::string &text, std::vector<int64_t> &out) {
  out.clear();
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(',', start), text.size());
    int64_t d = 0;
    std::string ignored;
    if (!pipert::parseInteger("dim", text.substr(start, end - start), 1,
                              int64_t(1) << 40, d, ignored))
      return false;
    out.push_back(d);
    start = end + 1;
  }
  return !out.empty() && out.size() <= 8;
}

bool assembleMomentPieces(pipert::SafetensorsFile &file,
                          const std::string &path, std::string &error) {
  // Each moment's pieces by their first element.
  std::map<std::string, std::map<int64_t, size_t>> pieces;
  for (size_t i = 0; i < file.tensors.size(); ++i) {
    std::string moment;
    int64_t first = 0;
    if (!splitPieceName(file.tensors[i].name, moment, first))
      continue;
    if (!pieces[moment].emplace(first, i).second) {
      error = path + ": two pieces of '" + moment + "' start at element " +
              std::to_string(first);
      return false;
    }
  }
  if (pieces.empty())
    return true;
  std::vector<bool> used(file.tensors.size(), false);
  std::vector<pipert::Tensor> whole;
  for (const auto &[moment, byFirst] : pieces) {
    const std::string param = moment.substr(0, moment.size() - 7);
    auto fail = [&](const std::string &why) {
      error = path + ": the pieces of '" + moment + "' " + why;
      return false;
    };
    std::vector<int64_t> stored, model;
    auto s = file.metadata.find(storedShapeKey(param));
    auto m = file.metadata.find(modelShapeKey(param));
    if (s == file.metadata.end() || m == file.metadata.end() ||
        !parseShape(s->second, stored) || !parseShape(m->second, model))
      return fail("have no valid " + storedShapeKey(param) + " and " +
                  modelShapeKey(param) + " in the metadata");
    const int64_t n = pipert::elementsOf(stored);
    bool fits = stored.size() == model.size();
    for (size_t d = 0; fits && d < model.size(); ++d)
      fits = model[d] <= stored[d];
    if (!fits)
      return fail("have a stored shape [" + s->second +
                  "] that does not hold the model's [" + m->second + "]");
    // Contiguous, from 0 to the stored elements; skipped alike.
    int64_t at = 0;
    const bool skipped = file.tensors[byFirst.begin()->second].skipped;
    for (const auto &[first, i] : byFirst) {
      const pipert::Tensor &t = file.tensors[i];
      if (t.dtype != "F32" || t.shape.size() != 1)
        return fail("must be 1-D F32 (" + t.name + " is not)");
      if (first != at)
        return fail(std::string(first > at ? "leave a gap" : "overlap") +
                    " at element " + std::to_string(std::min(first, at)) +
                    " of " + std::to_string(n));
      if (t.skipped != skipped)
        return fail("were read in part (internal error)");
      at += t.shape[0];
      used[i] = true;
    }
    if (at != n)
      return fail("end at element " + std::to_string(at) + ", not at the " +
                  std::to_string(n) + " of its stored shape [" + s->second +
                  "]");
    pipert::Tensor t;
    t.name = moment;
    t.dtype = "F32";
    t.shape = model;
    t.skipped = skipped;
    if (!skipped) {
      std::vector<float> values(static_cast<size_t>(n));
      for (const auto &[first, i] : byFirst)
        std::memcpy(values.data() + first, file.tensors[i].data.data(),
                    file.tensors[i].data.size());
      std::vector<float> shaped(size_t(pipert::elementsOf(model)));
      pipert::gatherLogical(values.data(), stored, shaped.data(), model);
      t.data.resize(shaped.size() * sizeof(float));
      std::memcpy(t.data.data(), shaped.data(), t.data.size());
    }
    whole.push_back(std::move(t));
  }
  for (const pipert::Tensor &t : whole)
    if (file.find(t.name)) {
      error = path + ": '" + t.name + "' is there whole and in pieces";
      return false;
    }
  std::vector<pipert::Tensor> kept;
  for (size_t i = 0; i < file.tensors.size(); ++i)
    if (!used[i])
      kept.push_back(std::move(file.tensors[i]));
  for (pipert::Tensor &t : whole)
    kept.push_back(std::move(t));
  file.tensors = std::move(kept);
  return true;
}

} // namespace pipecrun
