// Input of pipe-recompute.test: a recomputed range beyond its chunk.
pipe.chunk @c0 rank = 0 costs = [1.0, 1.0, 1.0] attributes {pipe.op_ids = array<i64: 0, 3>, pipe.recompute_ops = array<i64: 0, 5>}
