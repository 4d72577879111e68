#!/usr/bin/env python3
"""Writes a Hugging Face directory of a real model's exact shape with seeded random weights,
for measuring import, memory and speed at that size without downloading the model.

    python3 docs/synth_hf.py SHAPE OUT_DIR [--seed N]      (needs numpy: apt install python3-numpy)

SHAPE is smollm2-135m or llama3.2-1b. The directory is what the model's repository holds, but
for the weights: config.json as the repository writes it (Llama 3.2's rope_scaling and
eos_token_id list included), one BF16 model.safetensors (tied embeddings: no lm_head), the
real tokenizer.json (tests/data/tokenizers/) and a tokenizer_config.json with the model's
chat template (tests/data/chat/). Weights ~ N(0, 0.02), norms 1: the text it generates is
noise, so never use it for accuracy. transformers' names, and q/k rows in its rotate_half
order (as the real files), so the importer undoes the permutation as for a real model.
"""
import argparse
import gzip
import json
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data")

SHAPES = {
    "smollm2-135m": {
        "config": {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
                   "num_key_value_heads": 3, "head_dim": 64, "vocab_size": 49152, "max_position_embeddings": 8192,
                   "rms_norm_eps": 1e-5, "rope_theta": 100000, "rope_scaling": None, "tie_word_embeddings": True,
                   "bos_token_id": 1, "eos_token_id": 2},
        "tokenizer": "smollm2", "template": "smollm2-instruct.jinja",
        "tokens": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
    },
    "llama3.2-1b": {
        "config": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
                   "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 128256, "max_position_embeddings": 131072,
                   "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
                   "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                    "original_max_position_embeddings": 8192, "rope_type": "llama3"},
                   "tie_word_embeddings": True, "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]},
        "tokenizer": "llama3", "template": "llama3.2-instruct.jinja",
        "tokens": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    },
}


def tensors(c):
    """(name, shape) of every tensor, in the order transformers' checkpoints list them."""
    d, hid, hs = c["hidden_size"], c["intermediate_size"], c["head_dim"]
    q, kv = c["num_attention_heads"] * hs, c["num_key_value_heads"] * hs
    out = [("model.embed_tokens.weight", (c["vocab_size"], d))]
    for i in range(c["num_hidden_layers"]):
        p = "model.layers.%d." % i
        out += [(p + "input_layernorm.weight", (d,)), (p + "self_attn.q_proj.weight", (q, d)),
                (p + "self_attn.k_proj.weight", (kv, d)), (p + "self_attn.v_proj.weight", (kv, d)),
                (p + "self_attn.o_proj.weight", (d, q)), (p + "post_attention_layernorm.weight", (d,)),
                (p + "mlp.gate_proj.weight", (hid, d)), (p + "mlp.up_proj.weight", (hid, d)),
                (p + "mlp.down_proj.weight", (d, hid))]
    return out + [("model.norm.weight", (d,))]


def bf16(x):
    """float32 -> bfloat16 bits, round to nearest even (as torch does)."""
    u = x.view("<u4")
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shape", choices=sorted(SHAPES))
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    s = SHAPES[a.shape]
    c = dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu", attention_bias=False,
             mlp_bias=False, torch_dtype="bfloat16", **s["config"])
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    header, off = {}, 0
    for name, shape in tensors(c):
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for name, shape in tensors(c):
            if len(shape) == 1:
                f.write(bf16(np.ones(shape, "<f4")).tobytes())
                continue
            for r in range(0, shape[0], 4096):  # a block of rows at a time: bounded memory
                rows = min(4096, shape[0] - r)
                f.write(bf16(rng.standard_normal((rows, shape[1]), dtype=np.float32) * np.float32(0.02)).tobytes())
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    with gzip.open(os.path.join(DATA, "tokenizers", s["tokenizer"] + ".tokenizer.json.gz"), "rb") as src:
        open(os.path.join(a.out, "tokenizer.json"), "wb").write(src.read())
    template = open(os.path.join(DATA, "chat", s["template"]), encoding="utf-8").read()
    with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
        json.dump(dict(chat_template=template, tokenizer_class="PreTrainedTokenizerFast", **s["tokens"]), f, indent=2)
    print("%s: %s, %.1f MB of BF16 weights" % (a.out, a.shape, off / 1e6))


if __name__ == "__main__":
    main()
