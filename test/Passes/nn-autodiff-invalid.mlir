// RUN: pipec-opt %s --split-input-file --verify-diagnostics --nn-autodiff

// Tests that a module without @forward is refused.
// expected-error @+1 {{nn-autodiff: no func.func @forward with a body to differentiate}}
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  func.func @other() {
    return
  }
}

// -----

// Tests that a train section without grad_clip is refused, naming the key.
// expected-error @+1 {{nn-autodiff: nn.train needs a number 'grad_clip'}}
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64}} {
  func.func @forward(%l: tensor<2x4x16xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests that a module without a train section is refused.
// expected-error @+1 {{nn-autodiff: the module has no nn.train dictionary (the model's train section)}}
module {
  func.func @forward(%l: tensor<2x4x16xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests that an unknown decay is refused.
// expected-error @+1 {{nn-autodiff: nn.train needs 'decay' = "cosine" or "constant"}}
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "linear", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  func.func @forward(%l: tensor<2x4x16xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests that a loss that is not an nn.cross_entropy is refused.
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  func.func @forward(%l: tensor<f32>) -> tensor<f32> {
    // expected-error @+1 {{nn-autodiff: the returned loss must be the result of nn.cross_entropy}}
    return %l : tensor<f32>
  }
}

// -----

// Tests that a loss read by another op is refused.
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  func.func @forward(%l: tensor<2x4x16xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    // expected-error @+1 {{nn-autodiff: the loss may only be returned; another op reads it}}
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    %twice = nn.add %loss, %loss : (tensor<f32>, tensor<f32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests that a second cross-entropy is refused.
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  func.func @forward(%l: tensor<2x4x16xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    // expected-error @+1 {{nn-autodiff: only the returned loss may be an nn.cross_entropy}}
    %other = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests that an op without a gradient is refused by name.
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  func.func private @helper(tensor<2x4x16xf32>) -> tensor<2x4x16xf32>
  func.func @forward(%l: tensor<2x4x16xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    // expected-error @+1 {{nn-autodiff: cannot differentiate 'func.call': it has no gradient (GradOpInterface)}}
    %h = func.call @helper(%l) : (tensor<2x4x16xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %h, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests that an existing @train_step is not overwritten.
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  func.func @forward(%l: tensor<2x4x16xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
  // expected-error @+1 {{nn-autodiff: @train_step exists already; the pass builds it from @forward}}
  func.func @train_step() {
    return
  }
}

// -----

// Tests that a matmul whose weight is computed (not read from nn.param) is
// refused: its gradient would be an activation-activation product.
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @w : tensor<8x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%x: tensor<2x4x8xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %w = nn.param @w : tensor<8x16xf32>
    %w2 = nn.add %w, %w : (tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
    // expected-error @+1 {{'nn.matmul' op cannot differentiate: the weight (rhs) must be read straight from nn.param}}
    %l = nn.matmul %x, %w2 : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}

// -----

// Tests that a layernorm gain that is computed is refused.
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @g : tensor<16xf32> <{init = "ones"}>
  nn.parameter @b : tensor<16xf32> <{init = "zeros"}>
  func.func @forward(%x: tensor<2x4x16xf32>, %t: tensor<2x4xi32>) -> tensor<f32> {
    %g = nn.param @g : tensor<16xf32>
    %b = nn.param @b : tensor<16xf32>
    %g2 = nn.gelu %g : tensor<16xf32>
    // expected-error @+1 {{'nn.layernorm' op cannot differentiate: gamma must be read straight from nn.param}}
    %y = nn.layernorm %x, %g2, %b eps = 1.0e-05 : (tensor<2x4x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x4x16xf32>
    %loss = nn.cross_entropy %y, %t : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}
