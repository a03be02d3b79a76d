// RUN: pipec-opt %s --split-input-file --verify-diagnostics

// Tests that a negative chunk rank is refused.
// expected-error @+1 {{rank must be non-negative, got -1}}
pipe.chunk @c0 rank = -1 costs = [1.0, 1.0, 1.0]

// -----

// Tests that costs other than [F, B, W] are refused.
// expected-error @+1 {{costs must hold 3 values [F, B, W], got 2}}
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0]

// -----

// Tests that a negative cost is refused.
// expected-error @+1 {{cost of W must be finite and non-negative, got -2}}
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, -2.0]

// -----

// Tests that an empty group is refused.
// expected-error @+1 {{must hold at least one rank}}
pipe.group @g ranks = []

// -----

// Tests that a group's ranks must ascend.
// expected-error @+1 {{ranks must be strictly ascending, but 1 follows 2}}
pipe.group @g ranks = [0, 2, 1]

// -----

// Tests that a negative group rank is refused.
// expected-error @+1 {{rank -3 is negative}}
pipe.group @g ranks = [-3]

// -----

// Tests that an unknown schedule kind is refused.
// expected-error @+1 {{unknown schedule kind '2f2b'}}
pipe.schedule "2f2b" stages = 2 microbatches = 4 chunks_per_rank = 1 bubble = 0.2 step_time = 1.0

// -----

// Tests that a schedule needs a stage.
// expected-error @+1 {{stages must be at least 1, got 0}}
pipe.schedule "1f1b" stages = 0 microbatches = 4 chunks_per_rank = 1 bubble = 0.2 step_time = 1.0

// -----

// Tests that ZeRO-1 needs data-parallel replicas to split the optimizer
// state among.
// expected-error @+1 {{zero must be 0, or 1 with replicas of at least 2; got zero = 1 with 1 replicas}}
pipe.schedule "1f1b" stages = 2 microbatches = 4 chunks_per_rank = 1 zero = 1 bubble = 0.2 step_time = 1.0

// -----

// Tests that only ZeRO stage 1 exists.
// expected-error @+1 {{zero must be 0, or 1 with replicas of at least 2; got zero = 3 with 2 replicas}}
pipe.schedule "1f1b" stages = 2 microbatches = 4 chunks_per_rank = 1 replicas = 2 zero = 3 bubble = 0.2 step_time = 1.0

// -----

// Tests that a schedule needs a micro-batch.
// expected-error @+1 {{microbatches must be at least 1, got 0}}
pipe.schedule "1f1b" stages = 2 microbatches = 0 chunks_per_rank = 1 bubble = 0.2 step_time = 1.0

// -----

// Tests that a schedule needs a chunk per rank.
// expected-error @+1 {{chunks_per_rank must be at least 1, got 0}}
pipe.schedule "1f1b" stages = 2 microbatches = 4 chunks_per_rank = 0 bubble = 0.2 step_time = 1.0

// -----

// Tests that a bubble fraction above 1 is refused.
// expected-error @+1 {{bubble must be a fraction in [0, 1], got 1.5}}
pipe.schedule "1f1b" stages = 2 microbatches = 4 chunks_per_rank = 1 bubble = 1.5 step_time = 1.0

// -----

// Tests that a negative step time is refused.
// expected-error @+1 {{step_time must be finite and non-negative, got -1}}
pipe.schedule "1f1b" stages = 2 microbatches = 4 chunks_per_rank = 1 bubble = 0.5 step_time = -1.0

// -----

// Tests that pipe ops live at module level only.
func.func @nested() {
  // expected-error @+1 {{expects parent op 'builtin.module'}}
  pipe.group @g ranks = [0]
  return
}

// -----

// Tests that an unknown instruction is refused by the parser.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
pipe.program rank = 0 {
  // expected-error @+1 {{unknown instruction 'fwdd'; expected fwd, bwd_b, bwd_w, post, wait, all_reduce or opt_step}}
  fwdd @c0 mb 0
}

// -----

// Tests that a transfer must be written as a post.
pipe.chunk @c0 rank = 1 costs = [1.0, 1.0, 1.0]
pipe.program rank = 0 {
  // expected-error @+1 {{write 'post recv_act': point-to-point transfers are asynchronous posts}}
  recv_act from 1 @c0 mb 0 req 0
}

// -----

// Tests that compute is never posted.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
pipe.program rank = 0 {
  // expected-error @+1 {{only recv_act, recv_grad, send_act and send_grad are posted, not fwd}}
  post fwd @c0 mb 0
}

// -----

// Tests that a negative program rank is refused.
// expected-error @+1 {{rank must be non-negative, got -1}}
pipe.program rank = -1 {
}

// -----

// Tests that a table whose size is not a whole number of instructions is
// refused.
// expected-error @+1 {{table size 4 is not a multiple of 5 (fields per instruction)}}
"pipe.program"() <{rank = 0 : i32, symbols = [], table = array<i32: 9, -1, -1, -1>}> : () -> ()

// -----

// Tests that an unknown opcode is refused.
// expected-error @+1 {{instruction 0 has opcode 42, outside 0..11}}
"pipe.program"() <{rank = 0 : i32, symbols = [], table = array<i32: 42, -1, -1, -1, -1>}> : () -> ()

// -----

// Tests that a field an opcode does not use must hold -1.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
// expected-error @+1 {{instruction 0 (fwd @c0 mb 0): peer field must be -1 for fwd, got 3}}
"pipe.program"() <{rank = 0 : i32, symbols = [@c0], table = array<i32: 0, 3, 0, 0, -1>}> : () -> ()

// -----

// Tests that a symbol index outside the program's symbols is refused.
// expected-error @+1 {{instruction 0 (fwd <symbol 1> mb 0): symbol index must be in 0..0}}
"pipe.program"() <{rank = 0 : i32, symbols = [@c0], table = array<i32: 0, -1, 1, 0, -1>}> : () -> ()

// -----

// Tests that a negative micro-batch is refused.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
// expected-error @+1 {{instruction 0 (bwd_b @c0 mb -2): mb must be non-negative}}
pipe.program rank = 0 {
  bwd_b @c0 mb -2
}

// -----

// Tests that a negative all_reduce bucket is refused.
pipe.group @g ranks = [0]
// expected-error @+1 {{instruction 0 (all_reduce @g bucket -1): bucket must be non-negative}}
pipe.program rank = 0 {
  all_reduce @g bucket -1
}

// -----

// Tests that a negative peer is refused.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
// expected-error @+1 {{instruction 0 (post send_act to -1 @c0 mb 0 req 0): peer rank must be non-negative}}
pipe.program rank = 0 {
  post send_act to -1 @c0 mb 0 req 0
  wait req 0
}

// -----

// Tests that a rank never sends to itself.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
// expected-error @+1 {{instruction 0 (post send_act to 0 @c0 mb 0 req 0): peer is this program's own rank 0}}
pipe.program rank = 0 {
  post send_act to 0 @c0 mb 0 req 0
  wait req 0
}

// -----

// Tests that a negative request id is refused.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
// expected-error @+1 {{instruction 0 (post send_act to 1 @c0 mb 0 req -4): request id must be non-negative}}
pipe.program rank = 0 {
  post send_act to 1 @c0 mb 0 req -4
}

// -----

// Tests that a request id is posted once.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
// expected-error @+1 {{instruction 1 (post send_act to 1 @c0 mb 1 req 0): request 0 was already posted by instruction 0}}
pipe.program rank = 0 {
  post send_act to 1 @c0 mb 0 req 0
  post send_act to 1 @c0 mb 1 req 0
  wait req 0
}

// -----

// Tests that a wait names a request posted before it.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
// expected-error @+1 {{instruction 0 (wait req 0): request 0 was not posted before}}
pipe.program rank = 0 {
  wait req 0
  post send_act to 1 @c0 mb 0 req 0
}

// -----

// Tests that a request is waited once.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
// expected-error @+1 {{instruction 2 (wait req 0): request 0 is waited twice}}
pipe.program rank = 0 {
  post send_act to 1 @c0 mb 0 req 0
  wait req 0
  wait req 0
}

// -----

// Tests that every request is waited.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
// expected-error @+1 {{instruction 1 (post send_act to 1 @c0 mb 1 req 1): request is never waited}}
pipe.program rank = 0 {
  post send_act to 1 @c0 mb 0 req 0
  post send_act to 1 @c0 mb 1 req 1
  wait req 0
}

// -----

// Tests that opt_step ends the program.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
// expected-error @+1 {{instruction 1 (fwd @c0 mb 0): follows opt_step (instruction 0), which must end the program}}
pipe.program rank = 0 {
  opt_step
  fwd @c0 mb 0
}

// -----

// Tests that every symbol names a chunk or a group.
func.func private @f()
// expected-error @+1 {{symbol @f does not name a pipe.chunk or pipe.group}}
pipe.program rank = 0 {
  fwd @f mb 0
}

// -----

// Tests that a symbol that does not exist is refused.
// expected-error @+1 {{symbol @nowhere does not name a pipe.chunk or pipe.group}}
pipe.program rank = 0 {
  fwd @nowhere mb 0
}

// -----

// Tests that compute names a chunk, not a group.
pipe.group @g ranks = [0]
// expected-error @+1 {{instruction 0 (fwd @g mb 0): @g is not a pipe.chunk}}
pipe.program rank = 0 {
  fwd @g mb 0
}

// -----

// Tests that all_reduce names a group, not a chunk.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
// expected-error @+1 {{instruction 0 (all_reduce @c0 bucket 0): @c0 is not a pipe.group}}
pipe.program rank = 0 {
  all_reduce @c0 bucket 0
}

// -----

// Tests that a rank joins only the collectives of its groups.
pipe.group @g ranks = [0, 2]
// expected-error @+1 {{instruction 0 (all_reduce @g bucket 0): rank 1 is not a member of @g}}
pipe.program rank = 1 {
  all_reduce @g bucket 0
}

// -----

// Tests that a rank computes only its own chunks.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
// expected-error @+1 {{instruction 0 (fwd @c0 mb 0): @c0 is placed on rank 0, not on 1}}
pipe.program rank = 1 {
  fwd @c0 mb 0
}

// -----

// Tests that a recv names a chunk of the sending peer.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
pipe.chunk @c1 rank = 1 costs = [1.0, 1.0, 1.0]
pipe.chunk @c2 rank = 2 costs = [1.0, 1.0, 1.0]
// expected-error @+1 {{instruction 0 (post recv_act from 0 @c1 mb 0 req 0): @c1 is placed on rank 1, not on the sending peer 0}}
pipe.program rank = 2 {
  post recv_act from 0 @c1 mb 0 req 0
  wait req 0
}

// -----

// Tests that a micro-batch beyond the schedule's count is refused.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
pipe.schedule "1f1b" stages = 1 microbatches = 2 chunks_per_rank = 1 bubble = 0.0 step_time = 1.0
// expected-error @+1 {{instruction 0 (fwd @c0 mb 2): mb must be below the schedule's 2 micro-batches}}
pipe.program rank = 0 {
  fwd @c0 mb 2
}

// -----

// Tests that a peer beyond the schedule's ranks is refused.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0]
pipe.schedule "1f1b" stages = 2 microbatches = 2 chunks_per_rank = 1 bubble = 0.0 step_time = 1.0
// expected-error @+1 {{instruction 0 (post send_act to 5 @c0 mb 0 req 0): peer 5 is outside the schedule's 2 stages}}
pipe.program rank = 0 {
  post send_act to 5 @c0 mb 0 req 0
  wait req 0
}

// -----

// Tests that a program's rank must be one of the schedule's.
pipe.schedule "1f1b" stages = 2 microbatches = 2 chunks_per_rank = 1 bubble = 0.0 step_time = 1.0
// expected-error @+1 {{rank 2 is outside the schedule's 2 stages}}
pipe.program rank = 2 {
}
