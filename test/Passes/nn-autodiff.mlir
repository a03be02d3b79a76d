// RUN: pipec-opt %s --split-input-file --nn-autodiff | FileCheck %s

// Tests that a matmul whose x is an input (no gradient) gets only its W op,
// which adds x^T dy into the weight's and the bias's accumulators in one
// call, and that the head's matmul gets both B and W.
// CHECK-LABEL: func.func @train_step
// CHECK-SAME: (%[[X:.+]]: tensor<2x4x8xf32>, %[[T:.+]]: tensor<2x4xi32>, %[[S:.+]]: tensor<f64> {nn.name = "loss_scale"}) -> (tensor<f32> {nn.name = "loss"})
// CHECK: %[[W:.+]] = nn.param @w {nn.op_id = 0 : i64, nn.role = "F"}
// CHECK: %[[B:.+]] = nn.param @b {nn.op_id = 1 : i64, nn.role = "F"}
// CHECK: %[[HEAD:.+]] = nn.param @head {nn.op_id = 2 : i64, nn.role = "F"}
// CHECK: %[[H:.+]] = nn.matmul %[[X]], %[[W]], %[[B]] {nn.op_id = 3 : i64, nn.role = "F"}
// CHECK: %[[L:.+]] = nn.matmul %[[H]], %[[HEAD]] {nn.op_id = 4 : i64, nn.role = "F"}
// CHECK: %[[LOSS:.+]], %[[DL:.+]] = nn.softmax_cross_entropy %[[L]], %[[T]], %[[S]] {nn.op_id = 5 : i64, nn.role = "F"}
// CHECK: %[[DH:.+]] = nn.matmul_grad_b %[[DL]], %[[HEAD]] {nn.op_id = 4 : i64, nn.role = "B"} : (tensor<2x4x16xf32>, tensor<8x16xf32>) -> tensor<2x4x8xf32>
// CHECK: nn.matmul_grad_w %[[H]], %[[DL]] into @head[0] {nn.op_id = 4 : i64, nn.role = "W"}
// CHECK-NOT: nn.matmul_grad_b
// CHECK: nn.matmul_grad_w %[[X]], %[[DH]] into @w[0], @b[0] {nn.op_id = 3 : i64, nn.role = "W"}
// CHECK-NEXT: return %[[LOSS]] : tensor<f32>
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @w : tensor<8x8xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @b : tensor<8xf32> <{init = "zeros"}>
  nn.parameter @head : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %w = nn.param @w : tensor<8x8xf32>
    %b = nn.param @b : tensor<8xf32>
    %head = nn.param @head : tensor<8x16xf32>
    %h = nn.matmul %x, %w, %b : (tensor<2x4x8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %l = nn.matmul %h, %head : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests the tied embedding and LM head: one accumulator per use (use 0 the
// embedding, use 1 the head), nothing built for the token ids, and an
// optimizer step that adds the two uses once, counts the parameter once in
// the norm (declaration order), and decays only 2-D weights.
// CHECK-LABEL: func.func @train_step
// CHECK-SAME: (%[[IDS:.+]]: tensor<2x4xi32>, %[[T:.+]]: tensor<2x4xi32>, %[[S:.+]]: tensor<f64>
// CHECK: %[[WTE:.+]] = nn.param @wte
// CHECK: %[[H:.+]] = nn.embedding %[[WTE]], %[[IDS]]
// CHECK: %[[N:.+]] = nn.mul %[[H]], %[[G:[^ ]+]] {nn.op_id
// CHECK: %[[L:.+]] = nn.matmul %[[N]], %[[WTE]] transpose_rhs
// CHECK: %{{.+}}, %[[DL:.+]] = nn.softmax_cross_entropy %[[L]]
// CHECK: %[[DN:.+]] = nn.matmul_grad_b %[[DL]], %[[WTE]] transpose_rhs {nn.op_id = 4 : i64, nn.role = "B"}
// CHECK: nn.matmul_grad_w %[[N]], %[[DL]] transpose_rhs into @wte[1] {nn.op_id = 4 : i64, nn.role = "W"}
// CHECK: %[[DH:.+]] = nn.mul_grad_lhs %[[DN]], %[[G]] {nn.op_id = 3 : i64, nn.role = "B"}
// CHECK: nn.mul_grad_w %[[DN]], %[[H]] into @gain[0] {nn.op_id = 3 : i64, nn.role = "W"}
// CHECK: nn.embedding_grad_w %[[DH]], %[[IDS]] into @wte[0] {nn.op_id = 2 : i64, nn.role = "W"}
// CHECK-NOT: %[[IDS]]
// CHECK: return
// CHECK-LABEL: func.func @optimizer_step
// CHECK-SAME: (%[[STEP:.+]]: tensor<i64> {nn.name = "step"}) -> (tensor<f64> {nn.name = "grad_norm"}, tensor<f64> {nn.name = "lr"})
// CHECK: %[[GG:.+]] = nn.sum_uses @gain uses = 1 : tensor<8xf32>
// CHECK: %[[SG:.+]] = nn.sum_squares %[[GG]] : tensor<8xf32>
// CHECK: %[[GW:.+]] = nn.sum_uses @wte uses = 2 : tensor<16x8xf32>
// CHECK: %[[SW:.+]] = nn.sum_squares %[[GW]] : tensor<16x8xf32>
// CHECK: %[[NORM:.+]] = nn.grad_norm %[[SG]], %[[SW]]{{$}}
// CHECK: %[[CLIP:.+]] = nn.clip_scale %[[NORM]] max_norm = 5.000000e-01
// CHECK: %[[LR:.+]] = nn.lr_schedule %[[STEP]] lr = 1.000000e-03 warmup_steps = 2 decay = "constant" decay_steps = 10 min_lr = 1.000000e-04
// CHECK: nn.adamw @gain, %[[GG]], %[[LR]], %[[CLIP]], %[[STEP]] beta1 = 9.000000e-01 beta2 = 0.94999999999999996 eps = 1.000000e-08 weight_decay = 0.000000e+00 : tensor<8xf32>
// CHECK: nn.adamw @wte, %[[GW]], %[[LR]], %[[CLIP]], %[[STEP]] beta1 = 9.000000e-01 beta2 = 0.94999999999999996 eps = 1.000000e-08 weight_decay = 1.000000e-01 : tensor<16x8xf32>
// CHECK: return %[[NORM]], %[[LR]] : tensor<f64>, tensor<f64>
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "constant", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 0.5 : f64}} {
  nn.parameter @gain : tensor<8xf32> <{init = "ones"}>
  nn.parameter @wte : tensor<16x8xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%ids: tensor<2x4xi32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %wte = nn.param @wte : tensor<16x8xf32>
    %g = nn.param @gain : tensor<8xf32>
    %h = nn.embedding %wte, %ids : (tensor<16x8xf32>, tensor<2x4xi32>) -> tensor<2x4x8xf32>
    %n = nn.mul %h, %g : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %l = nn.matmul %n, %wte transpose_rhs : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests position embeddings added with broadcast: the broadcast operand's
// gradient is a column-sum B op feeding the table's W op, the full-shape
// operand's gradient is dy itself.
// CHECK-LABEL: func.func @train_step
// CHECK: %[[TOK:.+]] = nn.embedding
// CHECK: %[[POS:.+]] = nn.position_embedding
// CHECK: %{{.+}}, %[[DL:.+]] = nn.softmax_cross_entropy
// CHECK: %[[DX:.+]] = nn.matmul_grad_b %[[DL]]
// CHECK: %[[DP:.+]] = nn.add_grad_rhs %[[DX]] {nn.op_id = 4 : i64, nn.role = "B"} : (tensor<2x4x8xf32>) -> tensor<4x8xf32>
// CHECK: nn.position_embedding_grad_w %[[DP]] into @wpe[0] {nn.op_id = 3 : i64, nn.role = "W"} : tensor<4x8xf32>
// CHECK: nn.embedding_grad_w %[[DX]], %{{.+}} into @wte[0] {nn.op_id = 2 : i64, nn.role = "W"}
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @wte : tensor<16x8xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @wpe : tensor<6x8xf32> <{init = "normal", std = 1.0e-02 : f64}>
  nn.parameter @head : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%ids: tensor<2x4xi32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %wte = nn.param @wte : tensor<16x8xf32>
    %wpe = nn.param @wpe : tensor<6x8xf32>
    %tok = nn.embedding %wte, %ids : (tensor<16x8xf32>, tensor<2x4xi32>) -> tensor<2x4x8xf32>
    %pos = nn.position_embedding %wpe : (tensor<6x8xf32>) -> tensor<4x8xf32>
    %x = nn.add %tok, %pos : (tensor<2x4x8xf32>, tensor<4x8xf32>) -> tensor<2x4x8xf32>
    %head = nn.param @head : tensor<8x16xf32>
    %l = nn.matmul %x, %head : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests add with a parameter operand (its gradient is a W op reducing dy)
// and with two activations (dy goes to both, and the two contributions to
// %h are summed, the earlier-produced sum on the left).
// CHECK-LABEL: func.func @train_step
// CHECK: %[[H:.+]] = nn.matmul %{{.+}}, %{{.+}} {nn.op_id = 3
// CHECK: %[[A:.+]] = nn.add %[[H]], %{{.+}} {nn.op_id = 4
// CHECK: %[[R:.+]] = nn.add %[[A]], %[[H]] {nn.op_id = 5
// CHECK: %{{.+}}, %[[DL:.+]] = nn.softmax_cross_entropy
// CHECK: %[[DR:.+]] = nn.matmul_grad_b %[[DL]]
// CHECK: %[[DH:.+]] = nn.grad_add %[[DR]], %[[DR]] {nn.op_id = 4 : i64, nn.role = "B"} : tensor<2x4x8xf32>
// CHECK: nn.add_grad_w %[[DR]] into @b[0] {nn.op_id = 4 : i64, nn.role = "W"} : tensor<2x4x8xf32>
// CHECK: nn.matmul_grad_w %{{.+}}, %[[DH]] into @w[0] {nn.op_id = 3
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @w : tensor<8x8xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @b : tensor<8xf32> <{init = "zeros"}>
  nn.parameter @head : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %w = nn.param @w : tensor<8x8xf32>
    %b = nn.param @b : tensor<8xf32>
    %head = nn.param @head : tensor<8x16xf32>
    %h = nn.matmul %x, %w : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
    %a = nn.add %h, %b : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %r = nn.add %a, %h : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    %l = nn.matmul %r, %head : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests Llama's gated MLP: mul of two activations (a B op per operand),
// SiLU's gradient from its input, and rmsnorm's training form keeping rstd
// for its B and W ops.
// CHECK-LABEL: func.func @train_step
// CHECK: %[[N:.+]], %[[RSTD:.+]] = nn.rmsnorm_train %[[X:.+]], %[[G:.+]] eps = 1.000000e-05 {nn.op_id = 4 : i64, nn.role = "F"} : (tensor<2x4x8xf32>, tensor<8xf32>) -> (tensor<2x4x8xf32>, tensor<2x4xf32>)
// CHECK: %[[GATE:.+]] = nn.matmul %[[N]]
// CHECK: %[[ACT:.+]] = nn.silu %[[GATE]]
// CHECK: %[[M:.+]] = nn.mul %[[ACT]], %[[N]]
// CHECK: %{{.+}}, %[[DL:.+]] = nn.softmax_cross_entropy
// CHECK: %[[DM:.+]] = nn.matmul_grad_b %[[DL]]
// CHECK: %[[DACT:.+]] = nn.mul_grad_lhs %[[DM]], %[[N]] {nn.op_id = 7 : i64, nn.role = "B"}
// CHECK: %[[DN1:.+]] = nn.mul_grad_rhs %[[DM]], %[[ACT]] {nn.op_id = 7 : i64, nn.role = "B"}
// CHECK: %[[DGATE:.+]] = nn.silu_grad %[[DACT]], %[[GATE]] {nn.op_id = 6 : i64, nn.role = "B"}
// CHECK: %[[DN2:.+]] = nn.matmul_grad_b %[[DGATE]]
// CHECK: %[[DN:.+]] = nn.grad_add %[[DN1]], %[[DN2]]
// CHECK: nn.matmul_grad_w %[[N]], %[[DGATE]] into @up[0]
// CHECK-NOT: nn.rmsnorm_grad_b
// CHECK: nn.rmsnorm_grad_w %[[DN]], %[[X]], %[[RSTD]] into @norm[0] {nn.op_id = 4 : i64, nn.role = "W"}
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @norm : tensor<8xf32> <{init = "ones"}>
  nn.parameter @up : tensor<8x8xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @head : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %g = nn.param @norm : tensor<8xf32>
    %w = nn.param @up : tensor<8x8xf32>
    %head = nn.param @head : tensor<8x16xf32>
    %n0 = nn.reshape %x : (tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    %n = nn.rmsnorm %n0, %g eps = 1.0e-05 : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %gate = nn.matmul %n, %w : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
    %act = nn.silu %gate : tensor<2x4x8xf32>
    %m = nn.mul %act, %n : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    %l = nn.matmul %m, %head : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests layernorm and GELU: layernorm runs as nn.layernorm_train and its B
// and W ops read the kept mean and rstd; GELU's gradient reads its input;
// the matmul's W reads the kept GELU output.
// CHECK-LABEL: func.func @train_step
// CHECK: %[[Y:.+]], %[[MEAN:.+]], %[[RSTD:.+]] = nn.layernorm_train %[[X:.+]], %[[G:.+]], %[[B:.+]] eps = 1.000000e-05 {nn.op_id = 5 : i64, nn.role = "F"} : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> (tensor<2x4x8xf32>, tensor<2x4xf32>, tensor<2x4xf32>)
// CHECK: %[[A:.+]] = nn.gelu %[[Y]] {nn.op_id = 6 : i64, nn.role = "F"}
// CHECK: %{{.+}}, %[[DL:.+]] = nn.softmax_cross_entropy
// CHECK: %[[DA:.+]] = nn.matmul_grad_b %[[DL]]
// CHECK: nn.matmul_grad_w %[[A]], %[[DL]] into @head[0]
// CHECK: %[[DY:.+]] = nn.gelu_grad %[[DA]], %[[Y]] {nn.op_id = 6 : i64, nn.role = "B"} : tensor<2x4x8xf32>
// CHECK: %[[DX:.+]] = nn.layernorm_grad_b %[[DY]], %[[X]], %[[MEAN]], %[[RSTD]], %[[G]] {nn.op_id = 5 : i64, nn.role = "B"}
// CHECK: nn.layernorm_grad_w %[[DY]], %[[X]], %[[MEAN]], %[[RSTD]] into @ln.weight[0], @ln.bias[0] {nn.op_id = 5 : i64, nn.role = "W"}
// CHECK: nn.matmul_grad_w %{{.+}}, %[[DX]] into @w[0]
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @w : tensor<8x8xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @ln.weight : tensor<8xf32> <{init = "ones"}>
  nn.parameter @ln.bias : tensor<8xf32> <{init = "zeros"}>
  nn.parameter @head : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %w = nn.param @w : tensor<8x8xf32>
    %g = nn.param @ln.weight : tensor<8xf32>
    %b = nn.param @ln.bias : tensor<8xf32>
    %head = nn.param @head : tensor<8x16xf32>
    %h = nn.matmul %x, %w : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
    %y = nn.layernorm %h, %g, %b eps = 1.0e-05 : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %a = nn.gelu %y : tensor<2x4x8xf32>
    %l = nn.matmul %a, %head : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests softmax (its gradient reads its output), transpose (the inverse
// permutation), reshape (back to the input's shape) and slice (zero-padded
// into the input's shape).
// CHECK-LABEL: func.func @train_step
// CHECK: %[[H:.+]] = nn.matmul
// CHECK: %[[SL:.+]] = nn.slice %[[H]] axis = 2 offset = 4 size = 8
// CHECK: %[[TR:.+]] = nn.transpose %[[SL]] perm = [1, 2, 0]
// CHECK: %[[RS:.+]] = nn.reshape %[[TR]]
// CHECK: %[[SM:.+]] = nn.softmax %[[RS]]
// CHECK: %{{.+}}, %[[DL:.+]] = nn.softmax_cross_entropy
// CHECK: %[[DSM:.+]] = nn.matmul_grad_b %[[DL]]
// CHECK: %[[DRS:.+]] = nn.softmax_grad %[[DSM]], %[[SM]] {nn.op_id = 6 : i64, nn.role = "B"} : tensor<2x4x8xf32>
// CHECK: %[[DTR:.+]] = nn.reshape %[[DRS]] {nn.op_id = 5 : i64, nn.role = "B"} : (tensor<2x4x8xf32>) -> tensor<4x8x2xf32>
// CHECK: %[[DSL:.+]] = nn.transpose %[[DTR]] perm = [2, 0, 1] {nn.op_id = 4 : i64, nn.role = "B"} : (tensor<4x8x2xf32>) -> tensor<2x4x8xf32>
// CHECK: %[[DH:.+]] = nn.slice_grad %[[DSL]] axis = 2 offset = 4 {nn.op_id = 3 : i64, nn.role = "B"} : (tensor<2x4x8xf32>) -> tensor<2x4x16xf32>
// CHECK: nn.matmul_grad_w %{{.+}}, %[[DH]] into @w[0]
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @w : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @head : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %w = nn.param @w : tensor<8x16xf32>
    %head = nn.param @head : tensor<8x16xf32>
    %h = nn.matmul %x, %w : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %s = nn.slice %h axis = 2 offset = 4 size = 8 : (tensor<2x4x16xf32>) -> tensor<2x4x8xf32>
    %tr = nn.transpose %s perm = [1, 2, 0] : (tensor<2x4x8xf32>) -> tensor<4x8x2xf32>
    %rs = nn.reshape %tr : (tensor<4x8x2xf32>) -> tensor<2x4x8xf32>
    %sm = nn.softmax %rs : tensor<2x4x8xf32>
    %l = nn.matmul %sm, %head : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests grouped-query attention with rope: attention runs as
// nn.attention_train keeping the log-sum-exp, nn.attention_grad reads q, k,
// v, the output and lse, and each rope gets the transposed rotation.
// CHECK-LABEL: func.func @train_step
// CHECK: %[[Q:.+]] = nn.matmul %{{.+}}, %{{.+}} {nn.op_id = 3
// CHECK: %[[KV:.+]] = nn.matmul %{{.+}}, %{{.+}} {nn.op_id = 4
// CHECK: %[[QR:.+]] = nn.rope %[[Q]] heads = 4 theta = 1.000000e+04
// CHECK: %[[KR:.+]] = nn.rope %[[KV]] heads = 2 theta = 1.000000e+04
// CHECK: %[[O:.+]], %[[LSE:.+]] = nn.attention_train %[[QR]], %[[KR]], %[[KV]] heads = 4 kv_heads = 2 causal scale = 5.000000e-01 {nn.op_id = 7 : i64, nn.role = "F"} : (tensor<2x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> (tensor<2x4x16xf32>, tensor<2x4x4xf32>)
// CHECK: %{{.+}}, %[[DL:.+]] = nn.softmax_cross_entropy
// CHECK: %[[DO:.+]] = nn.matmul_grad_b %[[DL]]
// CHECK: nn.matmul_grad_w %[[O]], %[[DL]] into @head[0]
// CHECK: %[[DQ:.+]], %[[DK:.+]], %[[DV:.+]] = nn.attention_grad %[[DO]], %[[QR]], %[[KR]], %[[KV]], %[[O]], %[[LSE]] heads = 4 kv_heads = 2 causal scale = 5.000000e-01 {nn.op_id = 7 : i64, nn.role = "B"}
// CHECK: %[[DKR:.+]] = nn.rope_grad %[[DK]] heads = 2 theta = 1.000000e+04 {nn.op_id = 6 : i64, nn.role = "B"} : tensor<2x4x8xf32>
// CHECK: %[[DKV:.+]] = nn.grad_add %[[DV]], %[[DKR]] {nn.op_id = 6 : i64, nn.role = "B"}
// CHECK: %[[DQR:.+]] = nn.rope_grad %[[DQ]] heads = 4 theta = 1.000000e+04 {nn.op_id = 5 : i64, nn.role = "B"} : tensor<2x4x16xf32>
// CHECK: nn.matmul_grad_w %{{.+}}, %[[DKV]] into @wkv[0]
// CHECK: nn.matmul_grad_w %{{.+}}, %[[DQR]] into @wq[0]
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @wq : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @wkv : tensor<8x8xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @head : tensor<16x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %wq = nn.param @wq : tensor<8x16xf32>
    %wkv = nn.param @wkv : tensor<8x8xf32>
    %head = nn.param @head : tensor<16x16xf32>
    %q = nn.matmul %x, %wq : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %kv = nn.matmul %x, %wkv : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
    %qr = nn.rope %q heads = 4 theta = 1.0e+04 : (tensor<2x4x16xf32>) -> tensor<2x4x16xf32>
    %kr = nn.rope %kv heads = 2 theta = 1.0e+04 : (tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    %o = nn.attention %qr, %kr, %kv heads = 4 kv_heads = 2 causal scale = 0.5 : (tensor<2x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x16xf32>
    %l = nn.matmul %o, %head : (tensor<2x4x16xf32>, tensor<16x16xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests a parameter used through an op with no W op of its own (a reshape):
// its gradient is a B value handed to nn.accumulate_grad (W), and a
// parameter nothing reads still gets its optimizer step (uses = 0).
// CHECK-LABEL: func.func @train_step
// CHECK: %{{.+}}, %[[DL:.+]] = nn.softmax_cross_entropy
// CHECK: %[[DX:.+]] = nn.matmul_grad_b %[[DL]]
// CHECK: %[[DS:.+]] = nn.add_grad_rhs %[[DX]] {nn.op_id = 4 : i64, nn.role = "B"} : (tensor<2x4x8xf32>) -> tensor<8xf32>
// CHECK: %[[DP:.+]] = nn.reshape %[[DS]] {nn.op_id = 3 : i64, nn.role = "B"} : (tensor<8xf32>) -> tensor<2x4xf32>
// CHECK: nn.accumulate_grad %[[DP]] into @p[0] {nn.op_id = 3 : i64, nn.role = "W"} : tensor<2x4xf32>
// CHECK-LABEL: func.func @optimizer_step
// CHECK: nn.sum_uses @unused uses = 0 : tensor<4xf32>
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @p : tensor<2x4xf32> <{init = "zeros"}>
  nn.parameter @head : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @unused : tensor<4xf32> <{init = "zeros"}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %p = nn.param @p : tensor<2x4xf32>
    %head = nn.param @head : tensor<8x16xf32>
    %u = nn.param @unused : tensor<4xf32>
    %s = nn.reshape %p : (tensor<2x4xf32>) -> tensor<8xf32>
    %a = nn.add %x, %s : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %l = nn.matmul %a, %head : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}
