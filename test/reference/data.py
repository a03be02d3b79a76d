"""The data batching of docs/TRAINING.md: contiguous micro-batches of a token file, wrapping at its end."""

import numpy as np

LLMC_MAGIC = 20240520  # first int32 of an llm.c token shard of uint16 tokens (version 1)
LLMC_MAGIC32 = 20240801  # ... of uint32 tokens (version 7)


def load_tokens(path) -> np.ndarray:
    """The tokens of `path`: an llm.c shard (uint16 or uint32 tokens after a 256-int32 header) or else its bytes."""
    raw = open(path, "rb").read()
    if len(raw) >= 1024:
        header = np.frombuffer(raw[:1024], dtype="<i4")
        if header[0] in (LLMC_MAGIC, LLMC_MAGIC32):
            width, dtype = (4, "<u4") if header[0] == LLMC_MAGIC32 else (2, "<u2")
            n = int(header[2])
            if 1024 + width * n > len(raw):
                raise ValueError(f"{path}: llm.c shard claims {n} tokens but holds {(len(raw) - 1024) // width}")
            return np.frombuffer(raw[1024:1024 + width * n], dtype=dtype).astype(np.int64)
    return np.frombuffer(raw, dtype=np.uint8).astype(np.int32)


class Batches:
    """Micro-batch j of step s is global micro-batch g = s*M + j, taken from file position (g mod per_epoch)*B*T."""

    def __init__(self, tokens: np.ndarray, batch: int, seq: int, microbatches: int):
        self.tokens = tokens
        self.B, self.T, self.M = batch, seq, microbatches
        self.per_epoch = (len(tokens) - 1) // (batch * seq)
        if self.per_epoch < 1:
            raise ValueError(f"the data holds {len(tokens)} tokens, fewer than one micro-batch of "
                             f"{batch}x{seq} plus one target")

    def global_batch(self, g: int):
        """(tokens, targets) of global micro-batch g, both int32 [B, T]."""
        n = self.B * self.T
        start = (g % self.per_epoch) * n
        x = self.tokens[start:start + n].reshape(self.B, self.T)
        y = self.tokens[start + 1:start + n + 1].reshape(self.B, self.T)
        return x.astype(np.int32), y.astype(np.int32)

    def micro_batch(self, step: int, j: int):
        """(tokens, targets) of micro-batch j of step `step` (both 0-based)."""
        return self.global_batch(step * self.M + j)
