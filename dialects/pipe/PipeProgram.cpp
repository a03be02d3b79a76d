//===- PipeProgram.cpp - syntax and checks of pipe.program ------*- C++ -*-===//
//
// A program prints one instruction per line:
//   fwd @c1 mb 3                          compute (also bwd_b, bwd_w)
//   post recv_act from 0 @c0 mb 3 req 7   asynchronous receive
//   post send_grad to 0 @c1 mb 3 req 8    asynchronous send
//   wait req 7                            blocks until request 7 completed
//   all_reduce @world bucket 0            collective over a pipe.group
//   opt_step                              the optimizer step
// and stores them as a flat table (PipeInstr.h).
//
//===----------------------------------------------------------------------===//

#include "dialects/pipe/PipeOps.h"

#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace pipec::pipe;

//===----------------------------------------------------------------------===//
// Opcodes
//===----------------------------------------------------------------------===//

static const char *const kOpNames[kNumInstrOps] = {
    "fwd",      "bwd_b",     "bwd_w", "recv_act",   "recv_grad",
    "send_act", "send_grad", "wait",  "all_reduce", "opt_step",
    "reduce_scatter", "all_gather"};

llvm::StringRef pipec::pipe::instrOpName(InstrOp op) {
  int32_t i = static_cast<int32_t>(op);
  return i >= 0 && i < kNumInstrOps ? kOpNames[i] : "<bad opcode>";
}

std::optional<InstrOp> pipec::pipe::parseInstrOp(llvm::StringRef name) {
  for (int32_t i = 0; i < kNumInstrOps; ++i)
    if (name == kOpNames[i])
      return static_cast<InstrOp>(i);
  return std::nullopt;
}

InstrFields pipec::pipe::fieldsOf(InstrOp op) {
  if (isComputeOp(op))
    return {false, true, true, false};
  if (isPostOp(op))
    return {true, true, true, true};
  switch (op) {
  case InstrOp::Wait:
    return {false, false, false, true};
  case InstrOp::AllReduce:
  case InstrOp::ReduceScatter:
  case InstrOp::AllGather:
    return {false, true, true, false};
  default:
    return {false, false, false, false};
  }
}

//===----------------------------------------------------------------------===//
// Printing
//===----------------------------------------------------------------------===//

/// Prints one instruction; `printSym` prints a symbol index.
static void printInstr(llvm::raw_ostream &os, const Instr &in,
                       llvm::function_ref<void(int32_t)> printSym) {
  if (isPostOp(in.op)) {
    os << "post " << instrOpName(in.op) << (isRecvOp(in.op) ? " from " : " to ")
       << in.peer << ' ';
    printSym(in.sym);
    os << " mb " << in.mb << " req " << in.req;
    return;
  }
  os << instrOpName(in.op);
  switch (in.op) {
  case InstrOp::Wait:
    os << " req " << in.req;
    break;
  case InstrOp::AllReduce:
  case InstrOp::ReduceScatter:
  case InstrOp::AllGather:
    os << ' ';
    printSym(in.sym);
    os << " bucket " << in.mb;
    break;
  case InstrOp::OptStep:
    break;
  default:
    os << ' ';
    printSym(in.sym);
    os << " mb " << in.mb;
    break;
  }
}

std::string ProgramOp::formatInstr(const Instr &in) {
  std::string text;
  llvm::raw_string_ostream os(text);
  ArrayAttr symbols = getSymbols();
  printInstr(os, in, [&](int32_t sym) {
    if (sym >= 0 && sym < int32_t(symbols.size()))
      os << cast<FlatSymbolRefAttr>(symbols[sym]);
    else
      os << "<symbol " << sym << ">";
  });
  return text;
}

void ProgramOp::print(OpAsmPrinter &p) {
  p << " rank = " << getRank();
  p.printOptionalAttrDictWithKeyword(
      (*this)->getDiscardableAttrDictionary().getValue());
  p << " {";
  p.increaseIndent();
  ArrayAttr symbols = getSymbols();
  llvm::raw_ostream &os = p.getStream();
  for (size_t i = 0, e = getNumInstrs(); i < e; ++i) {
    p.printNewline();
    printInstr(os, getInstr(i), [&](int32_t sym) {
      p.printSymbolName(cast<FlatSymbolRefAttr>(symbols[sym]).getValue());
    });
  }
  p.decreaseIndent();
  p.printNewline();
  p << "}";
}

//===----------------------------------------------------------------------===//
// Parsing
//===----------------------------------------------------------------------===//

namespace {
/// Parses the instruction lines of one program body.
class ProgramParser {
public:
  explicit ProgramParser(OpAsmParser &parser) : parser(parser) {}

  /// Parses instructions up to and including the closing brace.
  ParseResult parseBody() {
    while (failed(parser.parseOptionalRBrace()))
      if (failed(parseInstr()))
        return failure();
    return success();
  }

  SmallVector<int32_t> table;
  SmallVector<Attribute> symbols;

private:
  ParseResult parseInstr() {
    SMLoc loc = parser.getCurrentLocation();
    StringRef word;
    if (parser.parseKeyword(&word))
      return failure();
    bool posted = word == "post";
    if (posted) {
      loc = parser.getCurrentLocation();
      if (parser.parseKeyword(&word))
        return failure();
    }
    std::optional<InstrOp> op = parseInstrOp(word);
    if (!op)
      return parser.emitError(loc, "unknown instruction '")
             << word
             << "'; expected fwd, bwd_b, bwd_w, post, wait, all_reduce or "
                "opt_step";
    if (posted != isPostOp(*op))
      return parser.emitError(loc)
             << (posted ? "only recv_act, recv_grad, send_act and send_grad "
                          "are posted, not "
                        : "write 'post ")
             << word
             << (posted ? ""
                        : "': point-to-point transfers are "
                          "asynchronous posts");
    Instr in{*op};
    if (isPostOp(*op)) {
      if (parser.parseKeyword(isRecvOp(*op) ? "from" : "to") ||
          parser.parseInteger(in.peer) || parseSym(in.sym) ||
          parser.parseKeyword("mb") || parser.parseInteger(in.mb) ||
          parser.parseKeyword("req") || parser.parseInteger(in.req))
        return failure();
    } else if (*op == InstrOp::Wait) {
      if (parser.parseKeyword("req") || parser.parseInteger(in.req))
        return failure();
    } else if (*op == InstrOp::AllReduce) {
      if (parseSym(in.sym) || parser.parseKeyword("bucket") ||
          parser.parseInteger(in.mb))
        return failure();
    } else if (*op != InstrOp::OptStep) {
      if (parseSym(in.sym) || parser.parseKeyword("mb") ||
          parser.parseInteger(in.mb))
        return failure();
    }
    in.encode(table);
    return success();
  }

  /// Parses `@name` and returns its index in the program's symbol list,
  /// adding it on first use.
  ParseResult parseSym(int32_t &index) {
    StringAttr name;
    if (parser.parseSymbolName(name))
      return failure();
    auto [it, inserted] = indexOf.try_emplace(name, int32_t(symbols.size()));
    if (inserted)
      symbols.push_back(FlatSymbolRefAttr::get(name));
    index = it->second;
    return success();
  }

  OpAsmParser &parser;
  llvm::DenseMap<StringAttr, int32_t> indexOf;
};
} // namespace

ParseResult ProgramOp::parse(OpAsmParser &parser, OperationState &result) {
  int32_t rank;
  if (parser.parseKeyword("rank") || parser.parseEqual() ||
      parser.parseInteger(rank) ||
      parser.parseOptionalAttrDictWithKeyword(result.attributes) ||
      parser.parseLBrace())
    return failure();
  ProgramParser body(parser);
  if (body.parseBody())
    return failure();
  MLIRContext *ctx = parser.getContext();
  Properties &props = result.getOrAddProperties<Properties>();
  props.rank = rank;
  props.symbols = ArrayAttr::get(ctx, body.symbols);
  props.table = DenseI32ArrayAttr::get(ctx, body.table);
  return success();
}

//===----------------------------------------------------------------------===//
// Verification
//===----------------------------------------------------------------------===//

LogicalResult ProgramOp::verify() {
  if (getRank() < 0)
    return emitOpError("rank must be non-negative, got ") << getRank();
  ArrayRef<int32_t> table = getTable();
  if (table.size() % kInstrFields != 0)
    return emitOpError("table size ")
           << table.size() << " is not a multiple of " << kInstrFields
           << " (fields per instruction)";
  const int32_t numSyms = int32_t(getSymbols().size());
  // Request id -> index of its post, and whether it was waited.
  llvm::DenseMap<int32_t, std::pair<size_t, bool>> requests;
  std::optional<size_t> optStep;
  for (size_t i = 0, e = getNumInstrs(); i < e; ++i) {
    Instr in = getInstr(i);
    // The table's own value: decode maps one out of range to no opcode.
    int32_t code = table[i * kInstrFields];
    if (code < 0 || code >= kNumInstrOps)
      return emitOpError("instruction ") << i << " has opcode " << code
                                         << ", outside 0.." << kNumInstrOps - 1;
    auto fail = [&]() {
      return emitOpError("instruction ")
             << i << " (" << formatInstr(in) << "): ";
    };
    if (optStep)
      return fail() << "follows opt_step (instruction " << *optStep
                    << "), which must end the program";
    InstrFields use = fieldsOf(in.op);
    auto unused = [&](bool used, int32_t value,
                      StringRef name) -> std::optional<std::string> {
      if (!used && value != kNoField)
        return (name + " field must be -1 for " + instrOpName(in.op) +
                ", got " + llvm::itostr(value))
            .str();
      return std::nullopt;
    };
    for (auto msg :
         {unused(use.peer, in.peer, "peer"), unused(use.sym, in.sym, "symbol"),
          unused(use.mb, in.mb, "mb"), unused(use.req, in.req, "req")})
      if (msg)
        return fail() << *msg;
    if (use.peer && in.peer < 0)
      return fail() << "peer rank must be non-negative";
    if (use.peer && in.peer == getRank())
      return fail() << "peer is this program's own rank " << getRank();
    if (use.sym && (in.sym < 0 || in.sym >= numSyms))
      return fail() << "symbol index must be in 0.." << numSyms - 1;
    if (use.mb && in.mb < 0)
      return fail() << (in.op == InstrOp::AllReduce ? "bucket" : "mb")
                    << " must be non-negative";
    if (use.req && in.req < 0)
      return fail() << "request id must be non-negative";
    if (isPostOp(in.op)) {
      auto [it, inserted] = requests.try_emplace(in.req, i, false);
      if (!inserted)
        return fail() << "request " << in.req
                      << " was already posted by instruction "
                      << it->second.first;
    } else if (in.op == InstrOp::Wait) {
      auto it = requests.find(in.req);
      if (it == requests.end())
        return fail() << "request " << in.req << " was not posted before";
      if (it->second.second)
        return fail() << "request " << in.req << " is waited twice";
      it->second.second = true;
    } else if (in.op == InstrOp::OptStep) {
      optStep = i;
    }
  }
  // Report the earliest post left without a wait.
  std::optional<size_t> unwaited;
  for (auto &[req, state] : requests)
    if (!state.second && (!unwaited || state.first < *unwaited))
      unwaited = state.first;
  if (unwaited)
    return emitOpError("instruction ")
           << *unwaited << " (" << formatInstr(getInstr(*unwaited))
           << "): request is never waited";
  return success();
}

LogicalResult ProgramOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  ArrayAttr symbols = getSymbols();
  SmallVector<ChunkOp> chunks(symbols.size());
  SmallVector<GroupOp> groups(symbols.size());
  for (auto [i, attr] : llvm::enumerate(symbols)) {
    auto ref = cast<FlatSymbolRefAttr>(attr);
    Operation *target = symbolTable.lookupNearestSymbolFrom(*this, ref);
    chunks[i] = dyn_cast_or_null<ChunkOp>(target);
    groups[i] = dyn_cast_or_null<GroupOp>(target);
    if (!chunks[i] && !groups[i])
      return emitOpError("symbol ")
             << ref << " does not name a pipe.chunk or pipe.group";
  }
  // A schedule, where there is one, bounds ranks and micro-batches.
  ScheduleOp schedule;
  if (auto module = (*this)->getParentOfType<ModuleOp>())
    for (auto op : module.getOps<ScheduleOp>())
      schedule = op;
  if (schedule && getRank() >= schedule.getStages())
    return emitOpError("rank ") << getRank() << " is outside the schedule's "
                                << schedule.getStages() << " stages";
  const int32_t rank = getRank();
  for (size_t i = 0, e = getNumInstrs(); i < e; ++i) {
    Instr in = getInstr(i);
    auto fail = [&]() {
      return emitOpError("instruction ")
             << i << " (" << formatInstr(in) << "): ";
    };
    if (!fieldsOf(in.op).sym)
      continue;
    if (in.op == InstrOp::AllReduce) {
      GroupOp group = groups[in.sym];
      if (!group)
        return fail() << symbols[in.sym] << " is not a pipe.group";
      if (!llvm::is_contained(group.getRanks(), rank))
        return fail() << "rank " << rank << " is not a member of "
                      << symbols[in.sym];
      continue;
    }
    ChunkOp chunk = chunks[in.sym];
    if (!chunk)
      return fail() << symbols[in.sym] << " is not a pipe.chunk";
    if (schedule && in.mb >= schedule.getMicrobatches())
      return fail() << "mb must be below the schedule's "
                    << schedule.getMicrobatches() << " micro-batches";
    if (schedule && isPostOp(in.op) && in.peer >= schedule.getStages())
      return fail() << "peer " << in.peer << " is outside the schedule's "
                    << schedule.getStages() << " stages";
    // Compute and sends use this rank's chunks; a recv names the chunk on
    // the peer that produced the message.
    int32_t holder = isRecvOp(in.op) ? in.peer : rank;
    if (chunk.getRank() != holder)
      return fail() << symbols[in.sym] << " is placed on rank "
                    << chunk.getRank() << ", not "
                    << (isRecvOp(in.op) ? "on the sending peer " : "on ")
                    << holder;
  }
  return success();
}
