// RUN: pipec-opt %s --nn-autodiff | FileCheck %s --check-prefix=KEEP
// RUN: pipec-opt %s --nn-autodiff=recompute=gelu,layernorm,attention | FileCheck %s --check-prefix=RECOMPUTE
// RUN: pipec-opt %s --nn-autodiff=recompute=gelu,layernorm,attention | FileCheck %s --check-prefix=DROPPED
// RUN: pipec-opt %s --nn-autodiff=recompute=all | FileCheck %s --check-prefix=DROPPED

// Tests a whole GPT-2 transformer block between embeddings and the tied LM
// head: which B and W ops the pass builds, in which order, what they read
// (kept layernorm statistics, the attention log-sum-exp, forward
// activations for W), and, with recompute, that layernorm, attention and
// GELU run plain in the forward pass and are recomputed right before the
// first backward op that reads them.

// KEEP-LABEL: func.func @train_step
// KEEP-SAME: (%[[TOK:.+]]: tensor<2x8xi32> {nn.name = "tokens"}, %[[TGT:.+]]: tensor<2x8xi32> {nn.name = "targets"}, %[[S:.+]]: tensor<f64> {nn.name = "loss_scale"})
// KEEP: %[[WTE:.+]] = nn.param @wte
// KEEP: %[[X:.+]] = nn.add %{{.+}}, %{{.+}} {nn.op_id = 4 : i64, nn.role = "F"}
// KEEP: %[[G1:.+]] = nn.param @ln_1.weight
// KEEP: %[[LN1:.+]], %[[MEAN1:.+]], %[[RSTD1:.+]] = nn.layernorm_train %[[X]], %[[G1]], %{{.+}} eps = 1.000000e-05 {nn.op_id = 7 : i64, nn.role = "F"}
// KEEP: %[[WA:.+]] = nn.param @c_attn.weight
// KEEP: %[[QKV:.+]] = nn.matmul %[[LN1]]
// KEEP: %[[Q:.+]] = nn.slice %[[QKV]] axis = 2 offset = 0
// KEEP: %[[K:.+]] = nn.slice %[[QKV]] axis = 2 offset = 16
// KEEP: %[[V:.+]] = nn.slice %[[QKV]] axis = 2 offset = 32
// KEEP: %[[ATT:.+]], %[[LSE:.+]] = nn.attention_train %[[Q]], %[[K]], %[[V]] heads = 2 kv_heads = 2 causal {{.+}} {nn.op_id = 14 : i64, nn.role = "F"} : {{.+}} -> (tensor<2x8x16xf32>, tensor<2x2x8xf32>)
// KEEP: %[[WP:.+]] = nn.param @attn.c_proj.weight
// KEEP: %[[AO:.+]] = nn.matmul %[[ATT]], %[[WP]]
// KEEP: %[[X1:.+]] = nn.add %[[X]], %[[AO]]
// KEEP: %[[G2:.+]] = nn.param @ln_2.weight
// KEEP: %[[LN2:.+]], %[[MEAN2:.+]], %[[RSTD2:.+]] = nn.layernorm_train %[[X1]], %[[G2]]
// KEEP: %[[WF:.+]] = nn.param @c_fc.weight
// KEEP: %[[FC:.+]] = nn.matmul %[[LN2]], %[[WF]]
// KEEP: %[[ACT:.+]] = nn.gelu %[[FC]]
// KEEP: %[[WM:.+]] = nn.param @mlp.c_proj.weight
// KEEP: %[[MO:.+]] = nn.matmul %[[ACT]], %[[WM]]
// KEEP: %[[X2:.+]] = nn.add %[[X1]], %[[MO]]
// KEEP: %[[LOGITS:.+]] = nn.matmul %[[X2]], %[[WTE]] transpose_rhs
// KEEP: %[[LOSS:.+]], %[[DL:.+]] = nn.softmax_cross_entropy %[[LOGITS]], %[[TGT]], %[[S]] {nn.op_id = 31 : i64, nn.role = "F"}
// KEEP: %[[DX2:.+]] = nn.matmul_grad_b %[[DL]], %[[WTE]] transpose_rhs {nn.op_id = 30 : i64, nn.role = "B"}
// KEEP: nn.matmul_grad_w %[[X2]], %[[DL]] transpose_rhs into @wte[1] {nn.op_id = 30 : i64, nn.role = "W"}
// KEEP: %[[DACT:.+]] = nn.matmul_grad_b %[[DX2]], %[[WM]] {nn.op_id = 28 : i64, nn.role = "B"}
// KEEP: nn.matmul_grad_w %[[ACT]], %[[DX2]] into @mlp.c_proj.weight[0], @mlp.c_proj.bias[0] {nn.op_id = 28 : i64, nn.role = "W"}
// KEEP: %[[DFC:.+]] = nn.gelu_grad %[[DACT]], %[[FC]] {nn.op_id = 25 : i64, nn.role = "B"}
// KEEP: %[[DLN2:.+]] = nn.matmul_grad_b %[[DFC]], %[[WF]] {nn.op_id = 24 : i64, nn.role = "B"}
// KEEP: nn.matmul_grad_w %[[LN2]], %[[DFC]] into @c_fc.weight[0], @c_fc.bias[0] {nn.op_id = 24 : i64, nn.role = "W"}
// KEEP: %[[DX1A:.+]] = nn.layernorm_grad_b %[[DLN2]], %[[X1]], %[[MEAN2]], %[[RSTD2]], %[[G2]] {nn.op_id = 21 : i64, nn.role = "B"}
// KEEP: %[[DX1:.+]] = nn.grad_add %[[DX2]], %[[DX1A]] {nn.op_id = 21 : i64, nn.role = "B"}
// KEEP: nn.layernorm_grad_w %[[DLN2]], %[[X1]], %[[MEAN2]], %[[RSTD2]] into @ln_2.weight[0], @ln_2.bias[0] {nn.op_id = 21 : i64, nn.role = "W"}
// KEEP: %[[DATT:.+]] = nn.matmul_grad_b %[[DX1]], %[[WP]] {nn.op_id = 17 : i64, nn.role = "B"}
// KEEP: nn.matmul_grad_w %[[ATT]], %[[DX1]] into @attn.c_proj.weight[0], @attn.c_proj.bias[0] {nn.op_id = 17 : i64, nn.role = "W"}
// KEEP: %[[DQ:.+]], %[[DK:.+]], %[[DV:.+]] = nn.attention_grad %[[DATT]], %[[Q]], %[[K]], %[[V]], %[[ATT]], %[[LSE]] {{.+}} {nn.op_id = 14 : i64, nn.role = "B"}
// KEEP: %[[SV:.+]] = nn.slice_grad %[[DV]] axis = 2 offset = 32 {nn.op_id = 13 : i64, nn.role = "B"}
// KEEP: %[[SK:.+]] = nn.slice_grad %[[DK]] axis = 2 offset = 16 {nn.op_id = 12 : i64, nn.role = "B"}
// KEEP: %[[SVK:.+]] = nn.grad_add %[[SV]], %[[SK]] {nn.op_id = 12 : i64, nn.role = "B"}
// KEEP: %[[SQ:.+]] = nn.slice_grad %[[DQ]] axis = 2 offset = 0 {nn.op_id = 11 : i64, nn.role = "B"}
// KEEP: %[[DQKV:.+]] = nn.grad_add %[[SVK]], %[[SQ]] {nn.op_id = 11 : i64, nn.role = "B"}
// KEEP: %[[DLN1:.+]] = nn.matmul_grad_b %[[DQKV]], %[[WA]] {nn.op_id = 10 : i64, nn.role = "B"}
// KEEP: nn.matmul_grad_w %[[LN1]], %[[DQKV]] into @c_attn.weight[0], @c_attn.bias[0] {nn.op_id = 10 : i64, nn.role = "W"}
// KEEP: %[[DXA:.+]] = nn.layernorm_grad_b %[[DLN1]], %[[X]], %[[MEAN1]], %[[RSTD1]], %[[G1]] {nn.op_id = 7 : i64, nn.role = "B"}
// KEEP: %[[DX:.+]] = nn.grad_add %[[DX1]], %[[DXA]] {nn.op_id = 7 : i64, nn.role = "B"}
// KEEP: nn.layernorm_grad_w %[[DLN1]], %[[X]], %[[MEAN1]], %[[RSTD1]] into @ln_1.weight[0], @ln_1.bias[0] {nn.op_id = 7 : i64, nn.role = "W"}
// KEEP: %[[DPOS:.+]] = nn.add_grad_rhs %[[DX]] {nn.op_id = 4 : i64, nn.role = "B"}
// KEEP: nn.position_embedding_grad_w %[[DPOS]] into @wpe[0] {nn.op_id = 3 : i64, nn.role = "W"}
// KEEP: nn.embedding_grad_w %[[DX]], %[[TOK]] into @wte[0] {nn.op_id = 2 : i64, nn.role = "W"}
// KEEP-NEXT: return %[[LOSS]] : tensor<f32>
// KEEP-LABEL: func.func @optimizer_step
// KEEP: nn.sum_uses @wte uses = 2 : tensor<32x16xf32>
// KEEP: nn.sum_uses @wpe uses = 1 : tensor<8x16xf32>

// RECOMPUTE-LABEL: func.func @train_step
// RECOMPUTE: %[[X:.+]] = nn.add %{{.+}}, %{{.+}} {nn.op_id = 4 : i64, nn.role = "F"}
// RECOMPUTE: %[[G1:.+]] = nn.param @ln_1.weight
// RECOMPUTE: %[[B1:.+]] = nn.param @ln_1.bias
// RECOMPUTE: %{{.+}} = nn.layernorm %[[X]], %[[G1]], %[[B1]] eps = 1.000000e-05 {nn.op_id = 7 : i64, nn.role = "F"}
// RECOMPUTE: %[[Q:.+]] = nn.slice %{{.+}} axis = 2 offset = 0
// RECOMPUTE: %[[K:.+]] = nn.slice %{{.+}} axis = 2 offset = 16
// RECOMPUTE: %[[V:.+]] = nn.slice %{{.+}} axis = 2 offset = 32
// RECOMPUTE: %{{.+}} = nn.attention %[[Q]], %[[K]], %[[V]] {{.+}} {nn.op_id = 14 : i64, nn.role = "F"}
// RECOMPUTE: %[[X1:.+]] = nn.add %[[X]], %{{.+}} {nn.op_id = 18
// RECOMPUTE: %[[G2:.+]] = nn.param @ln_2.weight
// RECOMPUTE: %[[B2:.+]] = nn.param @ln_2.bias
// RECOMPUTE: %{{.+}} = nn.layernorm %[[X1]], %[[G2]], %[[B2]] {{.+}} {nn.op_id = 21 : i64, nn.role = "F"}
// RECOMPUTE: %[[FC:.+]] = nn.matmul %{{.+}} {nn.op_id = 24
// RECOMPUTE: %{{.+}} = nn.gelu %[[FC]] {nn.op_id = 25 : i64, nn.role = "F"}
// RECOMPUTE: nn.softmax_cross_entropy
// RECOMPUTE: %[[DX2:.+]] = nn.matmul_grad_b %{{.+}} {nn.op_id = 30
// RECOMPUTE: %[[DACT:.+]] = nn.matmul_grad_b %[[DX2]], %{{.+}} {nn.op_id = 28
// RECOMPUTE-NEXT: %[[ACT:.+]] = nn.gelu %[[FC]] {nn.op_id = 25 : i64, nn.recompute, nn.role = "B"}
// RECOMPUTE-NEXT: nn.matmul_grad_w %[[ACT]], %[[DX2]] into @mlp.c_proj.weight[0]
// RECOMPUTE-NEXT: %[[DFC:.+]] = nn.gelu_grad %[[DACT]], %[[FC]] {nn.op_id = 25 : i64, nn.role = "B"}
// RECOMPUTE-NEXT: %[[DLN2:.+]] = nn.matmul_grad_b %[[DFC]]
// RECOMPUTE-NEXT: %[[LN2:.+]], %[[MEAN2:.+]], %[[RSTD2:.+]] = nn.layernorm_train %[[X1]], %[[G2]], %[[B2]] {{.+}} {nn.op_id = 21 : i64, nn.recompute, nn.role = "B"}
// RECOMPUTE-NEXT: nn.matmul_grad_w %[[LN2]], %[[DFC]] into @c_fc.weight[0]
// RECOMPUTE-NEXT: nn.layernorm_grad_b %[[DLN2]], %[[X1]], %[[MEAN2]], %[[RSTD2]], %[[G2]]
// RECOMPUTE: nn.layernorm_grad_w %[[DLN2]], %[[X1]], %[[MEAN2]], %[[RSTD2]] into @ln_2.weight[0]
// RECOMPUTE: %[[DATT:.+]] = nn.matmul_grad_b %{{.+}} {nn.op_id = 17
// RECOMPUTE-NEXT: %[[ATT:.+]], %[[LSE:.+]] = nn.attention_train %[[Q]], %[[K]], %[[V]] {{.+}} {nn.op_id = 14 : i64, nn.recompute, nn.role = "B"}
// RECOMPUTE-NEXT: nn.matmul_grad_w %[[ATT]], %{{.+}} into @attn.c_proj.weight[0]
// RECOMPUTE-NEXT: nn.attention_grad %[[DATT]], %[[Q]], %[[K]], %[[V]], %[[ATT]], %[[LSE]]
// RECOMPUTE: %[[DLN1:.+]] = nn.matmul_grad_b %{{.+}} {nn.op_id = 10
// RECOMPUTE-NEXT: %[[LN1:.+]], %[[MEAN1:.+]], %[[RSTD1:.+]] = nn.layernorm_train %[[X]], %[[G1]], %[[B1]] {{.+}} {nn.op_id = 7 : i64, nn.recompute, nn.role = "B"}
// RECOMPUTE-NEXT: nn.matmul_grad_w %[[LN1]], %{{.+}} into @c_attn.weight[0]
// RECOMPUTE-NEXT: nn.layernorm_grad_b %[[DLN1]], %[[X]], %[[MEAN1]], %[[RSTD1]], %[[G1]]

// No backward op reads the forward results of the recomputed ops, so they
// need not be kept.
// DROPPED-LABEL: func.func @train_step
// DROPPED-NOT: nn.layernorm_train {{.+}}nn.role = "F"
// DROPPED-NOT: nn.attention_train {{.+}}nn.role = "F"
// DROPPED: %[[LN1:.+]] = nn.layernorm {{.+}} {nn.op_id = 7 : i64, nn.role = "F"}
// DROPPED: %[[ATT:.+]] = nn.attention {{.+}} {nn.op_id = 14 : i64, nn.role = "F"}
// DROPPED: %[[LN2:.+]] = nn.layernorm {{.+}} {nn.op_id = 21 : i64, nn.role = "F"}
// DROPPED: %[[ACT:.+]] = nn.gelu {{.+}} {nn.op_id = 25 : i64, nn.role = "F"}
// DROPPED: nn.softmax_cross_entropy
// DROPPED-NOT: %[[LN1]]{{[,: ]}}
// DROPPED-NOT: %[[ATT]]{{[,: ]}}
// DROPPED-NOT: %[[LN2]]{{[,: ]}}
// DROPPED-NOT: %[[ACT]]{{[,: ]}}
// DROPPED: return
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @wte : tensor<32x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @wpe : tensor<8x16xf32> <{init = "normal", std = 1.0e-02 : f64}>
  nn.parameter @ln_1.weight : tensor<16xf32> <{init = "ones"}>
  nn.parameter @ln_1.bias : tensor<16xf32> <{init = "zeros"}>
  nn.parameter @c_attn.weight : tensor<16x48xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @c_attn.bias : tensor<48xf32> <{init = "zeros"}>
  nn.parameter @attn.c_proj.weight : tensor<16x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @attn.c_proj.bias : tensor<16xf32> <{init = "zeros"}>
  nn.parameter @ln_2.weight : tensor<16xf32> <{init = "ones"}>
  nn.parameter @ln_2.bias : tensor<16xf32> <{init = "zeros"}>
  nn.parameter @c_fc.weight : tensor<16x64xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @c_fc.bias : tensor<64xf32> <{init = "zeros"}>
  nn.parameter @mlp.c_proj.weight : tensor<64x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @mlp.c_proj.bias : tensor<16xf32> <{init = "zeros"}>
  func.func @forward(%tokens: tensor<2x8xi32> {nn.name = "tokens"}, %targets: tensor<2x8xi32> {nn.name = "targets"}) -> tensor<f32> {
    %wte = nn.param @wte : tensor<32x16xf32>
    %wpe = nn.param @wpe : tensor<8x16xf32>
    %tok = nn.embedding %wte, %tokens : (tensor<32x16xf32>, tensor<2x8xi32>) -> tensor<2x8x16xf32>
    %pos = nn.position_embedding %wpe : (tensor<8x16xf32>) -> tensor<8x16xf32>
    %x = nn.add %tok, %pos : (tensor<2x8x16xf32>, tensor<8x16xf32>) -> tensor<2x8x16xf32>
    %g1 = nn.param @ln_1.weight : tensor<16xf32>
    %b1 = nn.param @ln_1.bias : tensor<16xf32>
    %ln1 = nn.layernorm %x, %g1, %b1 eps = 1.0e-05 : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
    %wa = nn.param @c_attn.weight : tensor<16x48xf32>
    %ba = nn.param @c_attn.bias : tensor<48xf32>
    %qkv = nn.matmul %ln1, %wa, %ba : (tensor<2x8x16xf32>, tensor<16x48xf32>, tensor<48xf32>) -> tensor<2x8x48xf32>
    %q = nn.slice %qkv axis = 2 offset = 0 size = 16 : (tensor<2x8x48xf32>) -> tensor<2x8x16xf32>
    %k = nn.slice %qkv axis = 2 offset = 16 size = 16 : (tensor<2x8x48xf32>) -> tensor<2x8x16xf32>
    %v = nn.slice %qkv axis = 2 offset = 32 size = 16 : (tensor<2x8x48xf32>) -> tensor<2x8x16xf32>
    %att = nn.attention %q, %k, %v heads = 2 kv_heads = 2 causal scale = 0.35355339059327373 : (tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
    %wp = nn.param @attn.c_proj.weight : tensor<16x16xf32>
    %bp = nn.param @attn.c_proj.bias : tensor<16xf32>
    %ao = nn.matmul %att, %wp, %bp : (tensor<2x8x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
    %x1 = nn.add %x, %ao : (tensor<2x8x16xf32>, tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
    %g2 = nn.param @ln_2.weight : tensor<16xf32>
    %b2 = nn.param @ln_2.bias : tensor<16xf32>
    %ln2 = nn.layernorm %x1, %g2, %b2 eps = 1.0e-05 : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
    %wf = nn.param @c_fc.weight : tensor<16x64xf32>
    %bf = nn.param @c_fc.bias : tensor<64xf32>
    %fc = nn.matmul %ln2, %wf, %bf : (tensor<2x8x16xf32>, tensor<16x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
    %act = nn.gelu %fc : tensor<2x8x64xf32>
    %wm = nn.param @mlp.c_proj.weight : tensor<64x16xf32>
    %bm = nn.param @mlp.c_proj.bias : tensor<16xf32>
    %mo = nn.matmul %act, %wm, %bm : (tensor<2x8x64xf32>, tensor<64x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
    %x2 = nn.add %x1, %mo : (tensor<2x8x16xf32>, tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
    %logits = nn.matmul %x2, %wte transpose_rhs : (tensor<2x8x16xf32>, tensor<32x16xf32>) -> tensor<2x8x32xf32>
    %loss = nn.cross_entropy %logits, %targets : (tensor<2x8x32xf32>, tensor<2x8xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}
