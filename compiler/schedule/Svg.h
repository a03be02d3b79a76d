//===- Svg.h - per-rank timeline pictures of a schedule ---------*- C++ -*-===//
//
// Draws the machine's timing like the figures of the Zero Bubble and
// DualPipe papers: one row per rank, F, B and W blocks labelled with their
// micro-batch, idle time left visible, a legend and a time axis.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_SCHEDULE_SVG_H
#define PIPEC_COMPILER_SCHEDULE_SVG_H

#include "compiler/schedule/Machine.h"
#include "compiler/schedule/Schedule.h"

#include <string>

namespace pipec::schedule {

/// Renders a standalone SVG document; `result` must hold recorded spans.
/// `caption` replaces the default line under the title (step time, bubble).
/// `unit` names the costs' unit: "s" shows seconds as s, ms or us with
/// ticks that never repeat; anything else (default: cost units) as is.
std::string renderSvg(const Schedule &schedule, const MachineResult &result,
                      const std::string &caption = "",
                      const std::string &unit = "");

} // namespace pipec::schedule

#endif // PIPEC_COMPILER_SCHEDULE_SVG_H
