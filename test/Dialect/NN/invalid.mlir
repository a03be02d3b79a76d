// RUN: pipec-opt %s --split-input-file --verify-diagnostics

// Tests that a bias whose shape is not a trailing part of the input is refused.
func.func @add_bad_broadcast(%x: tensor<2x8x64xf32>, %b: tensor<32xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{rhs shape [32] is not a trailing part of lhs shape [2, 8, 64]}}
  %s = nn.add %x, %b : (tensor<2x8x64xf32>, tensor<32xf32>) -> tensor<2x8x64xf32>
  return %s : tensor<2x8x64xf32>
}

// -----

// Tests that reading an undeclared parameter is refused.
func.func @param_missing() -> tensor<4xf32> {
  // expected-error @+1 {{no nn.parameter named @w}}
  %w = nn.param @w : tensor<4xf32>
  return %w : tensor<4xf32>
}

// -----

// Tests that an unknown initialiser is refused.
// expected-error @+1 {{init must be normal, zeros or ones, got 'uniform'}}
nn.parameter @w_uniform : tensor<4xf32> <{init = "uniform"}>

// -----

// Tests that a normal initialiser without a positive std is refused.
// expected-error @+1 {{normal init needs a positive std}}
nn.parameter @w_no_std : tensor<4xf32> <{init = "normal"}>

// -----

// Tests that a parameter with a dynamic dim is refused.
// expected-error @+1 {{parameter shape must be static}}
nn.parameter @w_dynamic : tensor<?x4xf32> <{init = "zeros"}>

// -----

// Tests that reading a parameter with another type than declared is refused.
nn.parameter @w : tensor<4xf32> <{init = "zeros"}>
func.func @param_wrong_type() -> tensor<8xf32> {
  // expected-error @+1 {{type 'tensor<8xf32>' differs from the parameter's 'tensor<4xf32>'}}
  %w = nn.param @w : tensor<8xf32>
  return %w : tensor<8xf32>
}

// -----

// Tests that an elementwise op on two element types is refused.
func.func @mul_mixed_element_types(%x: tensor<2x8xf32>, %y: tensor<2x8xbf16>) -> tensor<2x8xf32> {
  // expected-error @+1 {{operand element types differ: 'f32' and 'bf16'}}
  %m = nn.mul %x, %y : (tensor<2x8xf32>, tensor<2x8xbf16>) -> tensor<2x8xf32>
  return %m : tensor<2x8xf32>
}

// -----

// Tests that an elementwise result with another shape than lhs is refused.
func.func @add_wrong_result(%x: tensor<2x8xf32>, %b: tensor<8xf32>) -> tensor<8xf32> {
  // expected-error @+1 {{result type 'tensor<8xf32>' must equal lhs type 'tensor<2x8xf32>'}}
  %s = nn.add %x, %b : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<8xf32>
  return %s : tensor<8xf32>
}

// -----

// Tests that a softmax over a scalar is refused.
func.func @softmax_scalar(%x: tensor<f32>) -> tensor<f32> {
  // expected-error @+1 {{input must have at least one dim, got a scalar}}
  %s = nn.softmax %x : tensor<f32>
  return %s : tensor<f32>
}

// -----

// Tests that a unary op whose result type differs from its input is refused.
func.func @silu_changes_type(%x: tensor<2x8xf32>) -> tensor<2x8xbf16> {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %s = "nn.silu"(%x) : (tensor<2x8xf32>) -> tensor<2x8xbf16>
  return %s : tensor<2x8xbf16>
}

// -----

// Tests that an embedding table that is not 2-D is refused.
func.func @embedding_table_3d(%t: tensor<4x256x64xf32>, %ids: tensor<2x8xi32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{table must be 2-D [V, D], got [4, 256, 64]}}
  %h = nn.embedding %t, %ids : (tensor<4x256x64xf32>, tensor<2x8xi32>) -> tensor<2x8x64xf32>
  return %h : tensor<2x8x64xf32>
}

// -----

// Tests that an embedding result whose width is not the table's is refused.
func.func @embedding_wrong_width(%t: tensor<256x64xf32>, %ids: tensor<2x8xi32>) -> tensor<2x8x32xf32> {
  // expected-error @+1 {{result shape [2, 8, 32] must be [2, 8, 64] (ids [2, 8] followed by the width of table [256, 64])}}
  %h = nn.embedding %t, %ids : (tensor<256x64xf32>, tensor<2x8xi32>) -> tensor<2x8x32xf32>
  return %h : tensor<2x8x32xf32>
}

// -----

// Tests that an embedding result of another element type than the table is refused.
func.func @embedding_wrong_element_type(%t: tensor<256x64xf32>, %ids: tensor<2x8xi32>) -> tensor<2x8x64xbf16> {
  // expected-error @+1 {{result element type 'bf16' must be 'f32'}}
  %h = nn.embedding %t, %ids : (tensor<256x64xf32>, tensor<2x8xi32>) -> tensor<2x8x64xbf16>
  return %h : tensor<2x8x64xbf16>
}

// -----

// Tests that token ids that are not i32 are refused.
func.func @embedding_float_ids(%t: tensor<256x64xf32>, %ids: tensor<2x8xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{operand #1 must be statically shaped tensor of 32-bit signless integer values, but got 'tensor<2x8xf32>'}}
  %h = nn.embedding %t, %ids : (tensor<256x64xf32>, tensor<2x8xf32>) -> tensor<2x8x64xf32>
  return %h : tensor<2x8x64xf32>
}

// -----

// Tests that a position table that is not 2-D is refused.
func.func @position_embedding_table_1d(%t: tensor<1024xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{table must be 2-D [Tmax, D], got [1024]}}
  %p = nn.position_embedding %t : (tensor<1024xf32>) -> tensor<8x64xf32>
  return %p : tensor<8x64xf32>
}

// -----

// Tests that a position embedding result that is not 2-D is refused.
func.func @position_embedding_result_3d(%t: tensor<1024x64xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{result must be 2-D [T, D], got [2, 8, 64]}}
  %p = nn.position_embedding %t : (tensor<1024x64xf32>) -> tensor<2x8x64xf32>
  return %p : tensor<2x8x64xf32>
}

// -----

// Tests that a position embedding result narrower than the table is refused.
func.func @position_embedding_wrong_width(%t: tensor<1024x64xf32>) -> tensor<8x32xf32> {
  // expected-error @+1 {{result width 32 does not match table width 64 (table [1024, 64], result [8, 32])}}
  %p = nn.position_embedding %t : (tensor<1024x64xf32>) -> tensor<8x32xf32>
  return %p : tensor<8x32xf32>
}

// -----

// Tests that more positions than the table holds are refused.
func.func @position_embedding_too_long(%t: tensor<16x64xf32>) -> tensor<32x64xf32> {
  // expected-error @+1 {{result length 32 exceeds the table's 16 rows (table [16, 64], result [32, 64])}}
  %p = nn.position_embedding %t : (tensor<16x64xf32>) -> tensor<32x64xf32>
  return %p : tensor<32x64xf32>
}

// -----

// Tests that a position embedding of another element type than its table is refused.
func.func @position_embedding_wrong_element_type(%t: tensor<16x64xf32>) -> tensor<8x64xf64> {
  // expected-error @+1 {{result element type 'f64' must be 'f32'}}
  %p = nn.position_embedding %t : (tensor<16x64xf32>) -> tensor<8x64xf64>
  return %p : tensor<8x64xf64>
}

// -----

// Tests that a matmul of a scalar is refused.
func.func @matmul_scalar_lhs(%x: tensor<f32>, %w: tensor<1x4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{lhs must have at least one dim, got a scalar}}
  %y = nn.matmul %x, %w : (tensor<f32>, tensor<1x4xf32>) -> tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

// Tests that a matmul weight that is not 2-D is refused.
func.func @matmul_rhs_3d(%x: tensor<2x8x64xf32>, %w: tensor<2x64x96xf32>) -> tensor<2x8x96xf32> {
  // expected-error @+1 {{rhs must be 2-D, got [2, 64, 96]}}
  %y = nn.matmul %x, %w : (tensor<2x8x64xf32>, tensor<2x64x96xf32>) -> tensor<2x8x96xf32>
  return %y : tensor<2x8x96xf32>
}

// -----

// Tests that a contraction dim that does not match lhs is refused.
func.func @matmul_contraction_mismatch(%x: tensor<2x8x64xf32>, %w: tensor<32x96xf32>) -> tensor<2x8x96xf32> {
  // expected-error @+1 {{'nn.matmul' op rhs contraction dim 32 does not match lhs's last dim 64 (lhs [2, 8, 64], rhs [32, 96])}}
  %y = nn.matmul %x, %w : (tensor<2x8x64xf32>, tensor<32x96xf32>) -> tensor<2x8x96xf32>
  return %y : tensor<2x8x96xf32>
}

// -----

// Tests that transpose_rhs contracts over the weight's second dim.
func.func @matmul_transposed_contraction_mismatch(%x: tensor<2x8x64xf32>, %w: tensor<64x256xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{rhs contraction dim 256 does not match lhs's last dim 64 (lhs [2, 8, 64], rhs [64, 256], transpose_rhs)}}
  %y = nn.matmul %x, %w transpose_rhs : (tensor<2x8x64xf32>, tensor<64x256xf32>) -> tensor<2x8x64xf32>
  return %y : tensor<2x8x64xf32>
}

// -----

// Tests that a bias that is not the output width is refused.
func.func @matmul_bias_wrong_width(%x: tensor<2x8x64xf32>, %w: tensor<64x96xf32>, %b: tensor<64xf32>) -> tensor<2x8x96xf32> {
  // expected-error @+1 {{bias shape [64] must be [96], the output width (lhs [2, 8, 64], rhs [64, 96])}}
  %y = nn.matmul %x, %w, %b : (tensor<2x8x64xf32>, tensor<64x96xf32>, tensor<64xf32>) -> tensor<2x8x96xf32>
  return %y : tensor<2x8x96xf32>
}

// -----

// Tests that a weight of another element type than the activation is refused.
func.func @matmul_mixed_element_types(%x: tensor<2x8x64xf32>, %w: tensor<64x96xbf16>) -> tensor<2x8x96xf32> {
  // expected-error @+1 {{rhs element type 'bf16' differs from lhs element type 'f32'}}
  %y = nn.matmul %x, %w : (tensor<2x8x64xf32>, tensor<64x96xbf16>) -> tensor<2x8x96xf32>
  return %y : tensor<2x8x96xf32>
}

// -----

// Tests that a matmul result of the wrong shape is refused.
func.func @matmul_wrong_result(%x: tensor<2x8x64xf32>, %w: tensor<64x96xf32>) -> tensor<16x96xf32> {
  // expected-error @+1 {{result shape [16, 96] must be [2, 8, 96] (lhs [2, 8, 64], rhs [64, 96])}}
  %y = nn.matmul %x, %w : (tensor<2x8x64xf32>, tensor<64x96xf32>) -> tensor<16x96xf32>
  return %y : tensor<16x96xf32>
}

// -----

// Tests that a layernorm of a scalar is refused.
func.func @layernorm_scalar(%x: tensor<f32>, %g: tensor<1xf32>) -> tensor<f32> {
  // expected-error @+1 {{x must have at least one dim, got a scalar}}
  %y = nn.layernorm %x, %g, %g eps = 1.0e-05 : (tensor<f32>, tensor<1xf32>, tensor<1xf32>) -> tensor<f32>
  return %y : tensor<f32>
}

// -----

// Tests that a gamma that is not [D] is refused.
func.func @layernorm_gamma_wrong_width(%x: tensor<2x8x64xf32>, %g: tensor<32xf32>, %b: tensor<64xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{gamma shape [32] must be [64], the last dim of x [2, 8, 64]}}
  %y = nn.layernorm %x, %g, %b eps = 1.0e-05 : (tensor<2x8x64xf32>, tensor<32xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  return %y : tensor<2x8x64xf32>
}

// -----

// Tests that a beta that is not [D] is refused.
func.func @layernorm_beta_2d(%x: tensor<2x8x64xf32>, %g: tensor<64xf32>, %b: tensor<1x64xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{beta shape [1, 64] must be [64], the last dim of x [2, 8, 64]}}
  %y = nn.layernorm %x, %g, %b eps = 1.0e-05 : (tensor<2x8x64xf32>, tensor<64xf32>, tensor<1x64xf32>) -> tensor<2x8x64xf32>
  return %y : tensor<2x8x64xf32>
}

// -----

// Tests that a gamma of another element type than x is refused.
func.func @layernorm_mixed_element_types(%x: tensor<2x8x64xbf16>, %g: tensor<64xf32>) -> tensor<2x8x64xbf16> {
  // expected-error @+1 {{gamma element type 'f32' differs from x element type 'bf16'}}
  %y = nn.layernorm %x, %g, %g eps = 1.0e-05 : (tensor<2x8x64xbf16>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x8x64xbf16>
  return %y : tensor<2x8x64xbf16>
}

// -----

// Tests that a non-positive eps is refused.
func.func @layernorm_zero_eps(%x: tensor<2x8x64xf32>, %g: tensor<64xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{eps must be positive and finite, got 0.000000e+00}}
  %y = nn.layernorm %x, %g, %g eps = 0.0 : (tensor<2x8x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  return %y : tensor<2x8x64xf32>
}

// -----

// Tests that a layernorm result of another shape than x is refused.
func.func @layernorm_wrong_result(%x: tensor<2x8x64xf32>, %g: tensor<64xf32>) -> tensor<16x64xf32> {
  // expected-error @+1 {{result shape [16, 64] must be [2, 8, 64] (x [2, 8, 64])}}
  %y = nn.layernorm %x, %g, %g eps = 1.0e-05 : (tensor<2x8x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<16x64xf32>
  return %y : tensor<16x64xf32>
}

// -----

// Tests that an RMSNorm gamma that is not [D] is refused.
func.func @rmsnorm_gamma_wrong_width(%x: tensor<2x8x64xf32>, %g: tensor<128xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{gamma shape [128] must be [64], the last dim of x [2, 8, 64]}}
  %y = nn.rmsnorm %x, %g eps = 1.0e-05 : (tensor<2x8x64xf32>, tensor<128xf32>) -> tensor<2x8x64xf32>
  return %y : tensor<2x8x64xf32>
}

// -----

// Tests that a negative RMSNorm eps is refused.
func.func @rmsnorm_negative_eps(%x: tensor<2x8x64xf32>, %g: tensor<64xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{eps must be positive and finite, got -1.000000e-05}}
  %y = nn.rmsnorm %x, %g eps = -1.0e-05 : (tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  return %y : tensor<2x8x64xf32>
}

// -----

// Tests that a slice axis beyond the rank is refused.
func.func @slice_axis_out_of_range(%x: tensor<2x8x192xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{axis 3 is out of range for input [2, 8, 192]}}
  %y = nn.slice %x axis = 3 offset = 0 size = 64 : (tensor<2x8x192xf32>) -> tensor<2x8x64xf32>
  return %y : tensor<2x8x64xf32>
}

// -----

// Tests that a negative slice offset is refused.
func.func @slice_negative_offset(%x: tensor<2x8x192xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{offset must not be negative, got -64}}
  %y = nn.slice %x axis = 2 offset = -64 size = 64 : (tensor<2x8x192xf32>) -> tensor<2x8x64xf32>
  return %y : tensor<2x8x64xf32>
}

// -----

// Tests that an empty slice is refused.
func.func @slice_zero_size(%x: tensor<2x8x192xf32>) -> tensor<2x8x0xf32> {
  // expected-error @+1 {{size must be positive, got 0}}
  %y = nn.slice %x axis = 2 offset = 0 size = 0 : (tensor<2x8x192xf32>) -> tensor<2x8x0xf32>
  return %y : tensor<2x8x0xf32>
}

// -----

// Tests that a slice past the end of its axis is refused.
func.func @slice_past_end(%x: tensor<2x8x192xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{range [160, 224) exceeds axis 2 of size 192 (input [2, 8, 192])}}
  %y = nn.slice %x axis = 2 offset = 160 size = 64 : (tensor<2x8x192xf32>) -> tensor<2x8x64xf32>
  return %y : tensor<2x8x64xf32>
}

// -----

// Tests that a slice result that does not have size at axis is refused.
func.func @slice_wrong_result(%x: tensor<2x8x192xf32>) -> tensor<2x8x32xf32> {
  // expected-error @+1 {{result shape [2, 8, 32] must be [2, 8, 64] (input [2, 8, 192] with size 64 at axis 2)}}
  %y = nn.slice %x axis = 2 offset = 0 size = 64 : (tensor<2x8x192xf32>) -> tensor<2x8x32xf32>
  return %y : tensor<2x8x32xf32>
}

// -----

// Tests that a reshape that changes the element count is refused.
func.func @reshape_wrong_count(%x: tensor<2x8x64xf32>) -> tensor<2x8x4x8xf32> {
  // expected-error @+1 {{result shape [2, 8, 4, 8] holds 512 elements, input [2, 8, 64] holds 1024}}
  %y = nn.reshape %x : (tensor<2x8x64xf32>) -> tensor<2x8x4x8xf32>
  return %y : tensor<2x8x4x8xf32>
}

// -----

// Tests that a reshape that changes the element type is refused.
func.func @reshape_changes_element_type(%x: tensor<2x8x64xf32>) -> tensor<16x64xf64> {
  // expected-error @+1 {{result element type 'f64' must be 'f32'}}
  %y = nn.reshape %x : (tensor<2x8x64xf32>) -> tensor<16x64xf64>
  return %y : tensor<16x64xf64>
}

// -----

// Tests that a perm with another length than the rank is refused.
func.func @transpose_short_perm(%x: tensor<2x8x64xf32>) -> tensor<8x2x64xf32> {
  // expected-error @+1 {{perm has 2 entries for input [2, 8, 64] of rank 3}}
  %y = nn.transpose %x perm = [1, 0] : (tensor<2x8x64xf32>) -> tensor<8x2x64xf32>
  return %y : tensor<8x2x64xf32>
}

// -----

// Tests that a perm that repeats an axis is refused.
func.func @transpose_repeated_axis(%x: tensor<2x8x64xf32>) -> tensor<8x8x64xf32> {
  // expected-error @+1 {{perm [1, 1, 2] is not a permutation of 0..2}}
  %y = nn.transpose %x perm = [1, 1, 2] : (tensor<2x8x64xf32>) -> tensor<8x8x64xf32>
  return %y : tensor<8x8x64xf32>
}

// -----

// Tests that a transpose result that is not the permuted shape is refused.
func.func @transpose_wrong_result(%x: tensor<2x8x64xf32>) -> tensor<2x64x8xf32> {
  // expected-error @+1 {{result shape [2, 64, 8] must be [8, 2, 64] (input [2, 8, 64] permuted by [1, 0, 2])}}
  %y = nn.transpose %x perm = [1, 0, 2] : (tensor<2x8x64xf32>) -> tensor<2x64x8xf32>
  return %y : tensor<2x64x8xf32>
}

// -----

// Tests that RoPE on an input that is not [B, T, H*Dh] is refused.
func.func @rope_rank_2(%x: tensor<8x64xf32>) -> tensor<8x64xf32> {
  // expected-error @+1 {{input must be 3-D [B, T, H*Dh], got [8, 64]}}
  %y = nn.rope %x heads = 4 theta = 1.0e+04 : (tensor<8x64xf32>) -> tensor<8x64xf32>
  return %y : tensor<8x64xf32>
}

// -----

// Tests that RoPE with zero heads is refused.
func.func @rope_zero_heads(%x: tensor<2x8x64xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{heads must be positive, got 0}}
  %y = nn.rope %x heads = 0 theta = 1.0e+04 : (tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  return %y : tensor<2x8x64xf32>
}

// -----

// Tests that RoPE with a non-positive theta is refused.
func.func @rope_negative_theta(%x: tensor<2x8x64xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{theta must be positive and finite, got -1.000000e+04}}
  %y = nn.rope %x heads = 4 theta = -1.0e+04 : (tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  return %y : tensor<2x8x64xf32>
}

// -----

// Tests that a width that does not split into the heads is refused.
func.func @rope_width_not_divisible(%x: tensor<2x8x64xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{input width 64 is not divisible by heads = 3 (input [2, 8, 64])}}
  %y = nn.rope %x heads = 3 theta = 1.0e+04 : (tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  return %y : tensor<2x8x64xf32>
}

// -----

// Tests that an odd head width, which has no halves to rotate, is refused.
func.func @rope_odd_head_width(%x: tensor<2x8x60xf32>) -> tensor<2x8x60xf32> {
  // expected-error @+1 {{head width 15 must be even to rotate halves (input [2, 8, 60], heads = 4)}}
  %y = nn.rope %x heads = 4 theta = 1.0e+04 : (tensor<2x8x60xf32>) -> tensor<2x8x60xf32>
  return %y : tensor<2x8x60xf32>
}

// -----

// Tests that a RoPE result of another shape than its input is refused.
func.func @rope_wrong_result(%x: tensor<2x8x64xf32>) -> tensor<2x8x4x16xf32> {
  // expected-error @+1 {{result shape [2, 8, 4, 16] must be [2, 8, 64] (input [2, 8, 64])}}
  %y = nn.rope %x heads = 4 theta = 1.0e+04 : (tensor<2x8x64xf32>) -> tensor<2x8x4x16xf32>
  return %y : tensor<2x8x4x16xf32>
}

// -----

// Tests that queries that are not [B, T, Hq*Dh] are refused.
func.func @attention_q_rank_4(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x64xf32>) -> tensor<2x8x4x16xf32> {
  // expected-error @+1 {{q must be 3-D [B, T, Hq*Dh], got [2, 8, 4, 16]}}
  %o = nn.attention %q, %k, %k heads = 4 kv_heads = 4 causal scale = 0.25 : (tensor<2x8x4x16xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<2x8x4x16xf32>
  return %o : tensor<2x8x4x16xf32>
}

// -----

// Tests that keys that are not [B, S, Hkv*Dh] are refused.
func.func @attention_k_rank_2(%q: tensor<2x8x64xf32>, %k: tensor<16x64xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{k must be 3-D [B, S, Hkv*Dh], got [16, 64]}}
  %o = nn.attention %q, %k, %k heads = 4 kv_heads = 4 causal scale = 0.25 : (tensor<2x8x64xf32>, tensor<16x64xf32>, tensor<16x64xf32>) -> tensor<2x8x64xf32>
  return %o : tensor<2x8x64xf32>
}

// -----

// Tests that values of another shape than the keys are refused.
func.func @attention_v_shape_mismatch(%q: tensor<2x8x64xf32>, %k: tensor<2x8x64xf32>, %v: tensor<2x8x32xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{v shape [2, 8, 32] must equal k shape [2, 8, 64]}}
  %o = nn.attention %q, %k, %v heads = 4 kv_heads = 4 causal scale = 0.25 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x32xf32>) -> tensor<2x8x64xf32>
  return %o : tensor<2x8x64xf32>
}

// -----

// Tests that a negative head count is refused.
func.func @attention_negative_heads(%q: tensor<2x8x64xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{heads must be positive, got -4}}
  %o = nn.attention %q, %q, %q heads = -4 kv_heads = 4 causal scale = 0.25 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  return %o : tensor<2x8x64xf32>
}

// -----

// Tests that zero key/value heads are refused.
func.func @attention_zero_kv_heads(%q: tensor<2x8x64xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{kv_heads must be positive, got 0}}
  %o = nn.attention %q, %q, %q heads = 4 kv_heads = 0 causal scale = 0.25 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  return %o : tensor<2x8x64xf32>
}

// -----

// Tests that a zero scale is refused.
func.func @attention_zero_scale(%q: tensor<2x8x64xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{scale must be positive and finite, got 0.000000e+00}}
  %o = nn.attention %q, %q, %q heads = 4 kv_heads = 4 causal scale = 0.0 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  return %o : tensor<2x8x64xf32>
}

// -----

// Tests that query heads that do not group evenly over the kv heads are refused.
func.func @attention_heads_not_grouped(%q: tensor<2x8x64xf32>, %k: tensor<2x8x48xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{heads = 4 is not a multiple of kv_heads = 3}}
  %o = nn.attention %q, %k, %k heads = 4 kv_heads = 3 causal scale = 0.25 : (tensor<2x8x64xf32>, tensor<2x8x48xf32>, tensor<2x8x48xf32>) -> tensor<2x8x64xf32>
  return %o : tensor<2x8x64xf32>
}

// -----

// Tests that a query width that does not split into the heads is refused.
func.func @attention_q_width_not_divisible(%q: tensor<2x8x60xf32>) -> tensor<2x8x60xf32> {
  // expected-error @+1 {{q width 60 is not divisible by heads = 8 (q [2, 8, 60], k [2, 8, 60])}}
  %o = nn.attention %q, %q, %q heads = 8 kv_heads = 8 causal scale = 0.25 : (tensor<2x8x60xf32>, tensor<2x8x60xf32>, tensor<2x8x60xf32>) -> tensor<2x8x60xf32>
  return %o : tensor<2x8x60xf32>
}

// -----

// Tests that keys of another batch size than the queries are refused.
func.func @attention_batch_mismatch(%q: tensor<2x8x64xf32>, %k: tensor<4x8x64xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{k batch 4 does not match q batch 2 (q [2, 8, 64], k [4, 8, 64])}}
  %o = nn.attention %q, %k, %k heads = 4 kv_heads = 4 causal scale = 0.25 : (tensor<2x8x64xf32>, tensor<4x8x64xf32>, tensor<4x8x64xf32>) -> tensor<2x8x64xf32>
  return %o : tensor<2x8x64xf32>
}

// -----

// Tests that a key width other than kv_heads head widths is refused.
func.func @attention_k_width_mismatch(%q: tensor<2x8x64xf32>, %k: tensor<2x8x64xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{k width 64 must be kv_heads * Dh = 2 * 16 = 32 (q [2, 8, 64], k [2, 8, 64])}}
  %o = nn.attention %q, %k, %k heads = 4 kv_heads = 2 causal scale = 0.25 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  return %o : tensor<2x8x64xf32>
}

// -----

// Tests that causal attention over another number of keys than queries is refused.
func.func @attention_causal_length_mismatch(%q: tensor<2x8x64xf32>, %k: tensor<2x16x64xf32>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{causal attention needs as many keys as queries, got T = 8 and S = 16 (q [2, 8, 64], k [2, 16, 64])}}
  %o = nn.attention %q, %k, %k heads = 4 kv_heads = 4 causal scale = 0.25 : (tensor<2x8x64xf32>, tensor<2x16x64xf32>, tensor<2x16x64xf32>) -> tensor<2x8x64xf32>
  return %o : tensor<2x8x64xf32>
}

// -----

// Tests that values of another element type than the queries are refused.
func.func @attention_mixed_element_types(%q: tensor<2x8x64xf32>, %k: tensor<2x8x64xf32>, %v: tensor<2x8x64xbf16>) -> tensor<2x8x64xf32> {
  // expected-error @+1 {{v element type 'bf16' differs from q element type 'f32'}}
  %o = nn.attention %q, %k, %v heads = 4 kv_heads = 4 causal scale = 0.25 : (tensor<2x8x64xf32>, tensor<2x8x64xf32>, tensor<2x8x64xbf16>) -> tensor<2x8x64xf32>
  return %o : tensor<2x8x64xf32>
}

// -----

// Tests that an attention result of another shape than q is refused.
func.func @attention_wrong_result(%q: tensor<2x8x64xf32>, %k: tensor<2x12x64xf32>) -> tensor<2x12x64xf32> {
  // expected-error @+1 {{result shape [2, 12, 64] must be [2, 8, 64] (q [2, 8, 64])}}
  %o = nn.attention %q, %k, %k heads = 4 kv_heads = 4 scale = 0.25 : (tensor<2x8x64xf32>, tensor<2x12x64xf32>, tensor<2x12x64xf32>) -> tensor<2x12x64xf32>
  return %o : tensor<2x12x64xf32>
}

// -----

// Tests that a loss over scalar logits is refused.
func.func @cross_entropy_scalar_logits(%l: tensor<f32>, %t: tensor<i32>) -> tensor<f32> {
  // expected-error @+1 {{logits must have a vocabulary dim, got a scalar}}
  %loss = nn.cross_entropy %l, %t : (tensor<f32>, tensor<i32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// Tests that targets that do not match the logits' tokens are refused.
func.func @cross_entropy_targets_mismatch(%l: tensor<2x8x256xf32>, %t: tensor<2x16xi32>) -> tensor<f32> {
  // expected-error @+1 {{targets shape [2, 16] must be logits shape without its last dim [2, 8] (logits [2, 8, 256])}}
  %loss = nn.cross_entropy %l, %t : (tensor<2x8x256xf32>, tensor<2x16xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

// Tests that a loss that is not an f32 scalar is refused.
func.func @cross_entropy_per_token_loss(%l: tensor<2x8x256xf32>, %t: tensor<2x8xi32>) -> tensor<2x8xf32> {
  // expected-error @+1 {{result #0 must be 0D tensor of 32-bit float values}}
  %loss = nn.cross_entropy %l, %t : (tensor<2x8x256xf32>, tensor<2x8xi32>) -> tensor<2x8xf32>
  return %loss : tensor<2x8xf32>
}

// -----

// Tests that a value with a dynamic dim is refused: every shape is static.
func.func @gelu_dynamic_shape(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{operand #0 must be statically shaped tensor of 32-bit float or 64-bit float or bfloat16 type values, but got 'tensor<?x64xf32>'}}
  %y = nn.gelu %x : tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
