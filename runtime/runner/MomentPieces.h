//===- MomentPieces.h - ZeRO-1's moments written a replica at a time -*- C++ -*-===//
//
// A checkpoint of a ZeRO-1 run with one process per rank: each replica's
// rank writes its own part of every AdamW moment it keeps, a piece, into
// its rank's part file, and no process gathers the others' (a world
// all-gather of them brought every process 8 bytes a parameter of the
// whole model: 1.4 TB for GPT-3 175B).
//
// A piece of moment "h.0.w.adam_m" holding the stored elements [first,
// first + count) is the 1-D F32 tensor "h.0.w.adam_m@first" of count
// elements. A part's metadata gives, for each parameter it has pieces of,
// its stored shape ("pipec.stored_shape.h.0.w": "50304,768"; the cuda
// target pads the vocabulary, and ZeRO's ranges are of the stored
// elements) and its model shape ("pipec.model_shape.h.0.w"). A reader
// assembles the pieces into whole moments in the model's shape before
// anything else looks at the state (assembleMomentPieces), so a checkpoint
// in pieces resumes under any layout, as one of whole moments does.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_RUNNER_MOMENTPIECES_H
#define PIPERT_RUNNER_MOMENTPIECES_H

#include "pipert/Safetensors.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pipecrun {

/// "MOMENT@FIRST": the piece of `moment` from stored element `first`.
std::string pieceName(const std::string &moment, int64_t first);

/// Whether `name` is a piece's ("P.adam_m@N" or "P.adam_v@N"); sets its
/// moment's name and first element.
bool splitPieceName(const std::string &name, std::string &moment,
                    int64_t &first);

/// The metadata keys of parameter `param`'s stored and model shapes, and a
/// shape as their text ("50304,768").
std::string storedShapeKey(const std::string &param);
std::string modelShapeKey(const std::string &param);
std::string shapeText(const std::vector<int64_t> &shape);

/// Replaces every moment's pieces in `file` by the whole moment in the
/// model's shape (skipped where its pieces were: a reader's filter left
/// them in the file), with the shapes from `file.metadata`. Fails, naming
/// `path` and the moment, on pieces that are not F32 and 1-D, overlap,
/// leave a gap or miss a shape; a file without pieces is left as it is.
bool assembleMomentPieces(pipert::SafetensorsFile &file,
                          const std::string &path, std::string &error);

} // namespace pipecrun

#endif // PIPERT_RUNNER_MOMENTPIECES_H
