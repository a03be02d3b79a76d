//===- Svg.cpp - per-rank timeline pictures of a schedule ---------------===//

#include "compiler/schedule/Svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace pipec::schedule {

namespace {
/// Fill colours: F blue, B green, W orange as in the Zero Bubble figures; a
/// rank's later chunks get lighter tints so both legs of a V read apart.
struct Palette {
  const char *fill[3][2] = {{"#3b6fb6", "#9cbce6"},
                            {"#3d9a4f", "#a3d9a9"},
                            {"#e8862a", "#f7c897"}};
  const char *text[2] = {"#ffffff", "#1b1b1b"};
};
} // namespace

static std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s(buf);
  while (s.back() == '0')
    s.pop_back();
  if (s.back() == '.')
    s.pop_back();
  return s;
}

/// How times read on the picture: cost units as they are; seconds scaled
/// to s, ms or us so that labels stay short numbers.
struct TimeUnit {
  double scale = 1;
  std::string name;
};
static TimeUnit timeUnit(double span, const std::string &unit) {
  if (unit != "s")
    return {1, unit.empty() ? "cost units" : unit};
  if (span < 1e-3)
    return {1e6, "us"};
  if (span < 1)
    return {1e3, "ms"};
  return {1, "s"};
}

/// `v` with as many decimals as a tick spacing of `step` needs, so that
/// neighbouring ticks never read alike ("0.002 0.004", not "0 0").
static std::string tickLabel(double v, double step) {
  int decimals = std::max(0, -int(std::floor(std::log10(step) + 1e-9)));
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

/// A time in `u` with four significant digits ("1.234 ms").
static std::string timeText(double v, const TimeUnit &u) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.4g", v * u.scale);
  return buf;
}

/// A tick spacing of 1, 2 or 5 times a power of ten giving about 10 ticks.
static double tickStep(double span) {
  double raw = span / 10, p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw)
      return m * p;
  return 10 * p;
}

std::string renderSvg(const Schedule &s, const MachineResult &res,
                      const std::string &caption, const std::string &unit) {
  Palette pal;
  const int32_t R = s.ranks();
  const double T = std::max(res.stepTime, 1e-12);
  const TimeUnit tu = timeUnit(T, unit);
  const double left = 70, top = 64, rowH = 30, gap = 6;
  const double plotW = std::clamp(T * 22.0, 600.0, 2400.0);
  const double scale = plotW / T;
  const double axisY = top + R * (rowH + gap) + 4;
  const double legendY = axisY + 44;
  const double width = left + plotW + 30;

  struct LegendItem {
    const char *fill, *name;
  };
  std::vector<LegendItem> legend = {{pal.fill[0][0], "F forward"},
                                    {pal.fill[1][0], "B input gradient"},
                                    {pal.fill[2][0], "W weight gradient"}};
  if (s.placement.chunks > R) {
    legend.push_back({pal.fill[0][1], "F, 2nd chunk of a rank"});
    legend.push_back({pal.fill[1][1], "B, 2nd chunk"});
    legend.push_back({pal.fill[2][1], "W, 2nd chunk"});
  }
  legend.push_back({"#7a7a7a", "optimizer step"});
  bool collectives = false;
  for (const Span &sp : res.spans)
    collectives = collectives || pipert::isCollectiveOp(sp.op);
  if (collectives)
    legend.push_back({"#8e5cb5", "collective"});
  legend.push_back({"#e4e4e4", "idle"});
  legend.push_back({nullptr, "numbers in blocks: micro-batch"});
  int legendLines = 1;
  {
    double x = left;
    for (const LegendItem &it : legend) {
      double w = 40 + 7.0 * std::string(it.name).size();
      if (x + w > width - 10 && x > left) {
        x = left;
        ++legendLines;
      }
      x += w;
    }
  }
  const double height = legendY + 24 * legendLines + 16;

  // Which local index (0 first chunk, 1 later ones) each chunk has.
  std::vector<int> localOf(s.placement.chunks, 0);
  for (int32_t r = 0; r < R; ++r) {
    auto mine = s.placement.chunksOf(s.stageOf(r));
    for (size_t i = 1; i < mine.size(); ++i)
      localOf[mine[i]] = 1;
  }

  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << fmt(width)
     << "\" height=\"" << fmt(height) << "\" font-family=\"Helvetica, Arial, "
     << "sans-serif\">\n";
  os << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  os << "<text x=\"" << fmt(left) << "\" y=\"24\" font-size=\"16\" "
     << "font-weight=\"bold\">" << kindName(s.kind) << ": " << R
     << " ranks, " << s.microbatches << " micro-batches, "
     << s.placement.chunks << " chunks</text>\n";
  os << "<text x=\"" << fmt(left) << "\" y=\"44\" font-size=\"13\" "
     << "fill=\"#444\">";
  if (caption.empty())
    os << "step time " << timeText(res.stepTime, tu)
       << (tu.name == "cost units" ? "" : " " + tu.name) << ", bubble "
       << fmt(100 * res.bubbleFraction)
       << "% (idle time of all ranks over ranks x step time); grey = idle";
  else
    os << caption;
  os << "</text>\n";

  // Rows: the grey background is idle time; blocks cover the busy part.
  for (int32_t r = 0; r < R; ++r) {
    double y = top + r * (rowH + gap);
    os << "<text x=\"" << fmt(left - 8) << "\" y=\"" << fmt(y + rowH / 2 + 5)
       << "\" font-size=\"13\" text-anchor=\"end\">rank " << r << "</text>\n";
    os << "<rect x=\"" << fmt(left) << "\" y=\"" << fmt(y) << "\" width=\""
       << fmt(plotW) << "\" height=\"" << fmt(rowH)
       << "\" fill=\"#e4e4e4\"/>\n";
  }
  for (const Span &sp : res.spans) {
    if (sp.end <= sp.start)
      continue;
    double y = top + sp.rank * (rowH + gap);
    double x = left + sp.start * scale, w = (sp.end - sp.start) * scale;
    if (pipert::isCollectiveOp(sp.op)) {
      os << "<rect x=\"" << fmt(x) << "\" y=\"" << fmt(y) << "\" width=\""
         << fmt(w) << "\" height=\"" << fmt(rowH)
         << "\" fill=\"#8e5cb5\"><title>"
         << (sp.op == Op::AllReduce       ? "all-reduce"
             : sp.op == Op::ReduceScatter ? "reduce-scatter"
                                          : "all-gather")
         << " group "
         << sp.chunk
         << " bucket " << sp.mb << "</title></rect>\n";
      continue;
    }
    if (sp.op == Op::OptStep) {
      os << "<rect x=\"" << fmt(x) << "\" y=\"" << fmt(y) << "\" width=\""
         << fmt(w) << "\" height=\"" << fmt(rowH)
         << "\" fill=\"#7a7a7a\"><title>opt_step</title></rect>\n";
      continue;
    }
    int phase = sp.op == Op::Fwd ? 0 : sp.op == Op::BwdB ? 1 : 2;
    int local = localOf[sp.chunk];
    os << "<rect x=\"" << fmt(x) << "\" y=\"" << fmt(y) << "\" width=\""
       << fmt(w) << "\" height=\"" << fmt(rowH) << "\" fill=\""
       << pal.fill[phase][local]
       << "\" stroke=\"#ffffff\" stroke-width=\"1\"><title>"
       << "FBW"[phase] << " chunk " << sp.chunk << " micro-batch " << sp.mb
       << ", " << timeText(sp.start, tu) << " to " << timeText(sp.end, tu)
       << (tu.name == "cost units" ? "" : " " + tu.name)
       << "</title></rect>\n";
    std::string label = std::to_string(sp.mb);
    double fs = std::min(13.0, w / (0.62 * label.size() + 0.4));
    if (fs >= 6)
      os << "<text x=\"" << fmt(x + w / 2) << "\" y=\""
         << fmt(y + rowH / 2 + fs * 0.36) << "\" font-size=\"" << fmt(fs)
         << "\" text-anchor=\"middle\" fill=\"" << pal.text[local] << "\">"
         << label << "</text>\n";
  }

  // Time axis.
  os << "<line x1=\"" << fmt(left) << "\" y1=\"" << fmt(axisY) << "\" x2=\""
     << fmt(left + plotW) << "\" y2=\"" << fmt(axisY)
     << "\" stroke=\"#333\"/>\n";
  // Ticks in the display unit, counted (not accumulated) so that no
  // rounding drift repeats or skips one.
  double step = tickStep(T * tu.scale);
  for (int64_t i = 0; i * step <= T * tu.scale * (1 + 1e-9); ++i) {
    double t = double(i) * step;
    double x = left + t / tu.scale * scale;
    os << "<line x1=\"" << fmt(x) << "\" y1=\"" << fmt(axisY) << "\" x2=\""
       << fmt(x) << "\" y2=\"" << fmt(axisY + 5) << "\" stroke=\"#333\"/>\n";
    os << "<text x=\"" << fmt(x) << "\" y=\"" << fmt(axisY + 18)
       << "\" font-size=\"11\" text-anchor=\"middle\">" << tickLabel(t, step)
       << "</text>\n";
  }
  os << "<text x=\"" << fmt(left + plotW) << "\" y=\"" << fmt(axisY + 32)
     << "\" font-size=\"11\" text-anchor=\"end\" fill=\"#444\">time ("
     << tu.name << ")</text>\n";

  // Legend, wrapped onto more lines when the plot is narrow.
  double x = left;
  double ly = legendY;
  for (const LegendItem &it : legend) {
    double w = 40 + 7.0 * std::string(it.name).size();
    if (x + w > width - 10 && x > left) {
      x = left;
      ly += 24;
    }
    if (it.fill)
      os << "<rect x=\"" << fmt(x) << "\" y=\"" << fmt(ly)
         << "\" width=\"16\" height=\"16\" fill=\"" << it.fill
         << "\" stroke=\"#999\" stroke-width=\"0.5\"/>\n";
    os << "<text x=\"" << fmt(it.fill ? x + 22 : x) << "\" y=\"" << fmt(ly + 13)
       << "\" font-size=\"12\"" << (it.fill ? "" : " fill=\"#444\"") << ">"
       << it.name << "</text>\n";
    x += w;
  }
  os << "</svg>\n";
  return os.str();
}

} // namespace pipec::schedule
