// RUN: pipec-opt %s --split-input-file | pipec-opt --split-input-file | FileCheck %s
// RUN: pipec-opt %s --split-input-file --mlir-print-op-generic | pipec-opt --split-input-file | FileCheck %s

// Tests that parameters, their reads and elementwise ops round-trip.
// CHECK: nn.parameter @b : tensor<64xf32> <{init = "zeros"}>
// CHECK-LABEL: func.func @elementwise
// CHECK: %[[B:.+]] = nn.param @b : tensor<64xf32>
// CHECK: %[[S:.+]] = nn.add %{{.+}}, %[[B]] : (tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
// CHECK: %[[G:.+]] = nn.gelu %[[S]] : tensor<2x8x64xf32>
// CHECK: nn.mul %[[G]], %[[S]]
nn.parameter @b : tensor<64xf32> <{init = "zeros"}>
func.func @elementwise(%x: tensor<2x8x64xf32>) -> tensor<2x8x64xf32> {
  %b = nn.param @b : tensor<64xf32>
  %s = nn.add %x, %b : (tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  %g = nn.gelu %s : tensor<2x8x64xf32>
  %m = nn.mul %g, %s : (tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  return %m : tensor<2x8x64xf32>
}

// -----

// Tests that the ops of a GPT-2 block round-trip: embeddings, layernorm, a
// fused QKV projection split by slices, causal multi-head attention, GELU and
// the tied LM head with its fused loss.
// CHECK-LABEL: func.func @gpt2_block_ops
// CHECK-SAME: (%[[IDS:.+]]: tensor<2x8xi32>, %[[TGT:.+]]: tensor<2x8xi32>)
// CHECK: %[[WTE:.+]] = nn.param @wte : tensor<256x64xf32>
// CHECK: %[[WPE:.+]] = nn.param @wpe : tensor<16x64xf32>
// CHECK: %[[H:.+]] = nn.embedding %[[WTE]], %[[IDS]] : (tensor<256x64xf32>, tensor<2x8xi32>) -> tensor<2x8x64xf32>
// CHECK: %[[P:.+]] = nn.position_embedding %[[WPE]] : (tensor<16x64xf32>) -> tensor<8x64xf32>
// CHECK: %[[X:.+]] = nn.add %[[H]], %[[P]]
// CHECK: %[[N:.+]] = nn.layernorm %[[X]], %[[G:.+]], %[[B:.+]] eps = 1.000000e-05 : (tensor<2x8x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
// CHECK: %[[QKV:.+]] = nn.matmul %[[N]], %{{.+}}, %{{.+}} : (tensor<2x8x64xf32>, tensor<64x192xf32>, tensor<192xf32>) -> tensor<2x8x192xf32>
// CHECK: %[[Q:.+]] = nn.slice %[[QKV]] axis = 2 offset = 0 size = 64 : (tensor<2x8x192xf32>) -> tensor<2x8x64xf32>
// CHECK: %[[K:.+]] = nn.slice %[[QKV]] axis = 2 offset = 64 size = 64
// CHECK: %[[V:.+]] = nn.slice %[[QKV]] axis = 2 offset = 128 size = 64
// CHECK: %[[O:.+]] = nn.attention %[[Q]], %[[K]], %[[V]] heads = 4 kv_heads = 4 causal scale = 2.500000e-01 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
// CHECK: %[[A:.+]] = nn.gelu %[[O]] : tensor<2x8x64xf32>
// CHECK: %[[L:.+]] = nn.matmul %[[A]], %[[WTE]] transpose_rhs : (tensor<2x8x64xf32>, tensor<256x64xf32>) -> tensor<2x8x256xf32>
// CHECK: %[[LOSS:.+]] = nn.cross_entropy %[[L]], %[[TGT]] : (tensor<2x8x256xf32>, tensor<2x8xi32>) -> tensor<f32>
// CHECK: return %[[LOSS]]
nn.parameter @wte : tensor<256x64xf32> <{init = "normal", std = 2.0e-02 : f64}>
nn.parameter @wpe : tensor<16x64xf32> <{init = "normal", std = 1.0e-02 : f64}>
nn.parameter @ln.weight : tensor<64xf32> <{init = "ones"}>
nn.parameter @ln.bias : tensor<64xf32> <{init = "zeros"}>
nn.parameter @attn.weight : tensor<64x192xf32> <{init = "normal", std = 2.0e-02 : f64}>
nn.parameter @attn.bias : tensor<192xf32> <{init = "zeros"}>
func.func @gpt2_block_ops(%ids: tensor<2x8xi32>, %targets: tensor<2x8xi32>) -> tensor<f32> {
  %wte = nn.param @wte : tensor<256x64xf32>
  %wpe = nn.param @wpe : tensor<16x64xf32>
  %g = nn.param @ln.weight : tensor<64xf32>
  %b = nn.param @ln.bias : tensor<64xf32>
  %w = nn.param @attn.weight : tensor<64x192xf32>
  %wb = nn.param @attn.bias : tensor<192xf32>
  %h = nn.embedding %wte, %ids : (tensor<256x64xf32>, tensor<2x8xi32>) -> tensor<2x8x64xf32>
  %p = nn.position_embedding %wpe : (tensor<16x64xf32>) -> tensor<8x64xf32>
  %x = nn.add %h, %p : (tensor<2x8x64xf32>, tensor<8x64xf32>) -> tensor<2x8x64xf32>
  %n = nn.layernorm %x, %g, %b eps = 1.0e-05 : (tensor<2x8x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  %qkv = nn.matmul %n, %w, %wb : (tensor<2x8x64xf32>, tensor<64x192xf32>, tensor<192xf32>) -> tensor<2x8x192xf32>
  %q = nn.slice %qkv axis = 2 offset = 0 size = 64 : (tensor<2x8x192xf32>) -> tensor<2x8x64xf32>
  %k = nn.slice %qkv axis = 2 offset = 64 size = 64 : (tensor<2x8x192xf32>) -> tensor<2x8x64xf32>
  %v = nn.slice %qkv axis = 2 offset = 128 size = 64 : (tensor<2x8x192xf32>) -> tensor<2x8x64xf32>
  %o = nn.attention %q, %k, %v heads = 4 kv_heads = 4 causal scale = 0.25 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  %a = nn.gelu %o : tensor<2x8x64xf32>
  %logits = nn.matmul %a, %wte transpose_rhs : (tensor<2x8x64xf32>, tensor<256x64xf32>) -> tensor<2x8x256xf32>
  %loss = nn.cross_entropy %logits, %targets : (tensor<2x8x256xf32>, tensor<2x8xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// Tests that the ops of a Llama block round-trip in bf16: RMSNorm, bias-free
// projections in the [N, K] layout, RoPE, grouped-query attention and the
// SiLU-gated MLP.
// CHECK-LABEL: func.func @llama_block_ops
// CHECK-SAME: (%[[X:.+]]: tensor<2x8x64xbf16>, %[[G:.+]]: tensor<64xbf16>, %[[WQ:.+]]: tensor<64x64xbf16>, %[[WKV:.+]]: tensor<16x64xbf16>, %[[WUP:.+]]: tensor<64x96xbf16>)
// CHECK: %[[N:.+]] = nn.rmsnorm %[[X]], %[[G]] eps = 1.000000e-05 : (tensor<2x8x64xbf16>, tensor<64xbf16>) -> tensor<2x8x64xbf16>
// CHECK: %[[Q:.+]] = nn.matmul %[[N]], %[[WQ]] transpose_rhs : (tensor<2x8x64xbf16>, tensor<64x64xbf16>) -> tensor<2x8x64xbf16>
// CHECK: %[[K:.+]] = nn.matmul %[[N]], %[[WKV]] transpose_rhs : (tensor<2x8x64xbf16>, tensor<16x64xbf16>) -> tensor<2x8x16xbf16>
// CHECK: %[[V:.+]] = nn.matmul %[[N]], %[[WKV]] transpose_rhs
// CHECK: %[[QR:.+]] = nn.rope %[[Q]] heads = 8 theta = 5.000000e+05 : (tensor<2x8x64xbf16>) -> tensor<2x8x64xbf16>
// CHECK: %[[KR:.+]] = nn.rope %[[K]] heads = 2 theta = 5.000000e+05 : (tensor<2x8x16xbf16>) -> tensor<2x8x16xbf16>
// CHECK: %[[O:.+]] = nn.attention %[[QR]], %[[KR]], %[[V]] heads = 8 kv_heads = 2 causal scale = 3.535530e-01 : (tensor<2x8x64xbf16>, tensor<2x8x16xbf16>, tensor<2x8x16xbf16>) -> tensor<2x8x64xbf16>
// CHECK: %[[UP:.+]] = nn.matmul %[[O]], %[[WUP]] : (tensor<2x8x64xbf16>, tensor<64x96xbf16>) -> tensor<2x8x96xbf16>
// CHECK: %[[S:.+]] = nn.silu %[[UP]] : tensor<2x8x96xbf16>
// CHECK: %[[M:.+]] = nn.mul %[[S]], %[[UP]]
// CHECK: return %[[M]]
func.func @llama_block_ops(%x: tensor<2x8x64xbf16>, %g: tensor<64xbf16>, %wq: tensor<64x64xbf16>, %wkv: tensor<16x64xbf16>, %wup: tensor<64x96xbf16>) -> tensor<2x8x96xbf16> {
  %n = nn.rmsnorm %x, %g eps = 1.0e-05 : (tensor<2x8x64xbf16>, tensor<64xbf16>) -> tensor<2x8x64xbf16>
  %q = nn.matmul %n, %wq transpose_rhs : (tensor<2x8x64xbf16>, tensor<64x64xbf16>) -> tensor<2x8x64xbf16>
  %k = nn.matmul %n, %wkv transpose_rhs : (tensor<2x8x64xbf16>, tensor<16x64xbf16>) -> tensor<2x8x16xbf16>
  %v = nn.matmul %n, %wkv transpose_rhs : (tensor<2x8x64xbf16>, tensor<16x64xbf16>) -> tensor<2x8x16xbf16>
  %qr = nn.rope %q heads = 8 theta = 5.0e+05 : (tensor<2x8x64xbf16>) -> tensor<2x8x64xbf16>
  %kr = nn.rope %k heads = 2 theta = 5.0e+05 : (tensor<2x8x16xbf16>) -> tensor<2x8x16xbf16>
  %o = nn.attention %qr, %kr, %v heads = 8 kv_heads = 2 causal scale = 0.353553 : (tensor<2x8x64xbf16>, tensor<2x8x16xbf16>, tensor<2x8x16xbf16>) -> tensor<2x8x64xbf16>
  %up = nn.matmul %o, %wup : (tensor<2x8x64xbf16>, tensor<64x96xbf16>) -> tensor<2x8x96xbf16>
  %s = nn.silu %up : tensor<2x8x96xbf16>
  %m = nn.mul %s, %up : (tensor<2x8x96xbf16>, tensor<2x8x96xbf16>) -> tensor<2x8x96xbf16>
  return %m : tensor<2x8x96xbf16>
}

// -----

// Tests that the layout ops and non-causal attention over a different number
// of keys round-trip.
// CHECK-LABEL: func.func @layout_and_cross_attention_ops
// CHECK-SAME: (%[[X:.+]]: tensor<2x8x64xf64>, %[[M:.+]]: tensor<2x12x32xf64>)
// CHECK: %[[T:.+]] = nn.transpose %[[X]] perm = [1, 0, 2] : (tensor<2x8x64xf64>) -> tensor<8x2x64xf64>
// CHECK: %[[R:.+]] = nn.reshape %[[T]] : (tensor<8x2x64xf64>) -> tensor<2x8x64xf64>
// CHECK: %[[O:.+]] = nn.attention %[[R]], %[[M]], %[[M]] heads = 4 kv_heads = 2 scale = 1.000000e+00 : (tensor<2x8x64xf64>, tensor<2x12x32xf64>, tensor<2x12x32xf64>) -> tensor<2x8x64xf64>
// CHECK: %[[S:.+]] = nn.softmax %[[O]] : tensor<2x8x64xf64>
// CHECK: return %[[S]]
func.func @layout_and_cross_attention_ops(%x: tensor<2x8x64xf64>, %mem: tensor<2x12x32xf64>) -> tensor<2x8x64xf64> {
  %t = nn.transpose %x perm = [1, 0, 2] : (tensor<2x8x64xf64>) -> tensor<8x2x64xf64>
  %r = nn.reshape %t : (tensor<8x2x64xf64>) -> tensor<2x8x64xf64>
  %o = nn.attention %r, %mem, %mem heads = 4 kv_heads = 2 scale = 1.0 : (tensor<2x8x64xf64>, tensor<2x12x32xf64>, tensor<2x12x32xf64>) -> tensor<2x8x64xf64>
  %s = nn.softmax %o : tensor<2x8x64xf64>
  return %s : tensor<2x8x64xf64>
}
