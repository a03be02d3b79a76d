//===- NNBase.td - the nn dialect and its op base class ---*- tablegen -*-===//

#ifndef PIPEC_NN_BASE
#define PIPEC_NN_BASE

include "mlir/IR/OpBase.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "dialects/nn/NNInterfaces.td"

def NN_Dialect : Dialect {
  let name = "nn";
  let cppNamespace = "::pipec::nn";
  let summary = "The model graph: tensors with static shapes and the ops of a transformer";
  let description = [{
    `nn` holds one training step of a model as a graph of ops on ranked
    tensors with static shapes. Parameters are module-level symbols
    (`nn.parameter`) read inside functions with `nn.param`, so that a
    parameter used twice (a tied embedding and LM head) is visible as two
    uses of one symbol. Every compute op states its cost (FLOPs, bytes moved,
    activation bytes kept for backward) through `CostOpInterface`.
  }];
}

/// Base class of every nn op: appends the traits all of them share.
class NN_Op<string mnemonic, list<Trait> traits = []>
    : Op<NN_Dialect, mnemonic, !listconcat(traits, [Pure])>;

/// Base class of compute ops: they also state their cost.
class NN_ComputeOp<string mnemonic, list<Trait> traits = []>
    : NN_Op<mnemonic, !listconcat(traits, [
        DeclareOpInterfaceMethods<NN_CostOpInterface>])> {
  let hasVerifier = 1;
}

/// Every value of the graph has a static shape, so costs and memory plans
/// are exact numbers; the verifiers rely on it.
def NN_FloatTensor : StaticShapeTensorOf<[F32, F64, BF16]>;
def NN_IndexTensor : StaticShapeTensorOf<[I32]>;
/// A parameter's declared type, before its own verifier explains that the
/// shape must be static.
def NN_AnyShapeFloatTensor : RankedTensorOf<[F32, F64, BF16]>;

#endif // PIPEC_NN_BASE
