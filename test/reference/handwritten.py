"""Picks the hand-written model (gpt2.py or llama.py) that fits a parameter set, with the hyperparameters that
the parameter shapes do not give (heads, eps, rope theta) read from the model description's ops."""

import gpt2
import llama


def family(param_names) -> str:
    """'gpt2' or 'llama', from the Hugging Face parameter names."""
    names = set(param_names)
    if "wte.weight" in names or "transformer.wte.weight" in names:
        return "gpt2"
    if "embed_tokens.weight" in names or "model.embed_tokens.weight" in names:
        return "llama"
    raise ValueError("the parameters are neither GPT-2 (wte.weight) nor Llama (model.embed_tokens.weight) by "
                     "their Hugging Face names: no hand-written model to compare with")


def _linear_in_out(model) -> bool:
    """Whether the model file multiplies by q_proj.weight without transpose_rhs, i.e. stores it [in, out]."""
    def walk(ops):
        for node in ops:
            if "repeat" in node:
                found = walk(node["ops"])
                if found is not None:
                    return found
            elif node.get("op") == "matmul" and str(node["inputs"][1]).endswith("q_proj.weight"):
                return not node.get("transpose_rhs", False)
        return None
    return bool(walk(model.spec["graph"]))


def _ops(graph) -> set:
    """The op names a model description's graph uses (repeat blocks included)."""
    found = set()
    for node in graph:
        if "repeat" in node:
            found |= _ops(node["ops"])
        elif "op" in node:
            found.add(node["op"])
    return found


# What each hand-written model computes: a model file that uses an op the family does not (or lacks one it
# needs) is another architecture under the family's parameter names, and is not compared with it.
_FAMILY_OPS = {"gpt2": {"needs": {"layernorm", "gelu", "attention"}, "never": {"rmsnorm", "silu", "rope"}},
               "llama": {"needs": {"rmsnorm", "silu", "rope", "attention"}, "never": {"layernorm", "gelu"}}}


def loss_fn_for(model):
    """(family, loss function params -> loss, note) of the hand-written model matching `model` (a
    model_json.Model); `note` says where the model file departs from Hugging Face's conventions, or is None."""
    fam = family(model.params)
    ops = _ops(model.spec["graph"])
    rule = _FAMILY_OPS[fam]
    uses, lacks = sorted(rule["never"] & ops), sorted(rule["needs"] - ops)
    if uses or lacks:
        why = "; ".join(([f"uses {', '.join(uses)}"] if uses else []) + ([f"lacks {', '.join(lacks)}"] if lacks else []))
        raise ValueError(f"{model.source} has {fam}'s parameter names but not the architecture of {fam}.py ({why}): "
                         "no hand-written model to compare with")
    att = model.first_attrs("attention")
    if att is None:
        raise ValueError(f"{model.source}: no attention op to read the head count from")
    if fam == "gpt2":
        ln = model.first_attrs("layernorm") or {"eps": 1e-5}
        return fam, gpt2.make_loss(gpt2.GPT2Config(n_head=att["heads"], layer_norm_epsilon=ln["eps"])), None
    norm = model.first_attrs("rmsnorm") or {"eps": 1e-5}
    rope = model.first_attrs("rope") or {"theta": 10000.0}
    in_out = _linear_in_out(model)
    cfg = llama.LlamaConfig(num_attention_heads=att["heads"], num_key_value_heads=att["kv_heads"] or att["heads"],
                            rope_theta=rope["theta"], rms_norm_eps=norm["eps"], weights_in_out=in_out)
    note = None
    if in_out:
        note = (f"{model.source} stores the Llama projection weights [in, out] (matmul without transpose_rhs); "
                "Hugging Face stores nn.Linear weights [out, in], so its checkpoints would not load unchanged. "
                "llama.py reads them [in, out] for this comparison.")
    return fam, llama.make_loss(cfg), note
