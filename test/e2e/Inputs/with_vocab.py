#!/usr/bin/env python3
"""Writes a copy of a model description with another vocabulary size.

    with_vocab.py MODEL.json VOCAB OUT.json

Used by the vocabulary-padding tests: gpt-tiny and llama-tiny with 131
classes (odd, above every byte of the text, not a multiple of 128).
"""
import json
import sys

model = json.load(open(sys.argv[1]))
model["config"]["vocab"] = int(sys.argv[2])
json.dump(model, open(sys.argv[3], "w"), indent=1)
