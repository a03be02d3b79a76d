"""Checks pipec-run --sample --tokenizer's output against the tokenizers library (tokenizer.test)."""
import sys

from tokenizers import Tokenizer

tok = Tokenizer.from_file(sys.argv[1])
lines = open(sys.argv[2], encoding="utf-8").read().split("\n")
ids = [int(x) for x in lines[1].split()]
assert lines[2].startswith("prompt tokens: "), lines[2]
prompt = [int(x) for x in lines[2][len("prompt tokens: "):].split()]
want = tok.encode(sys.argv[3]).ids
if prompt != want:
    sys.exit(f"prompt tokens {prompt}, tokenizers {want}")
decoded = "\n".join(lines[4:]).rstrip("\n")
if decoded != tok.decode(ids).rstrip("\n"):
    sys.exit(f"decoded {decoded!r}, tokenizers {tok.decode(ids)!r}")
print(f"prompt tokens as tokenizers encodes them; {len(ids)} tokens decoded as tokenizers decodes them")
