#!/usr/bin/env python3
"""Writes the seed corpora of four fuzz targets (tests/fuzz/corpus/) from the real files.

    tests/fuzz/make_seeds.py            (from the repository root, after `make`)

A fuzzer mutates its seeds, so they must be small (a few KB) and valid: every real model
is cut down to a few rows and columns of its own tensors (the shapes of the format, the
values of a trained model), then quantized by ./run in every mode for the .qrz target.
Tokenizers: tok512.bin and tok512.model as they are, and the Llama-2 tokenizer.bin cut to
its first 300 pieces; the tokenizer.json of SmolLM2, Llama 3 and Mistral cut to their
first 400 pieces (the merges among them, the added tokens renumbered after them). Standard library only. The *-format1.qrz seeds were written by an
older build (format 1, before the RoPE base, norm epsilon and tokenizer were stored) and are
kept as they are.

Format 2's own fields come from `./run import` of small Hugging Face directories made of
the same cut-down tensors (config.json, model.safetensors, and tok512.bin cut to the
vocabulary as tokenizer.model): hf-*.qrz seeds store a tokenizer, an INT8 or float32
embedding, a chat template name or none, a RoPE base and an epsilon of their own.
"""
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys

SEEDS = "tests/fuzz/corpus"


def read_checkpoint(path):
    data = open(path, "rb").read()
    dim, hid, layers, heads, kv_heads, vocab, seq = struct.unpack("<7i", data[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    floats = struct.unpack("<%df" % ((len(data) - 28) // 4), data[28:])
    hs = dim // heads
    kv = hs * kv_heads
    shapes = [("emb", (vocab, dim)), ("rms_att", (layers, dim)), ("wq", (layers, dim, dim)),
              ("wk", (layers, kv, dim)), ("wv", (layers, kv, dim)), ("wo", (layers, dim, dim)),
              ("rms_ffn", (layers, dim)), ("w1", (layers, hid, dim)), ("w2", (layers, dim, hid)),
              ("w3", (layers, hid, dim)), ("rms_final", (dim,)), ("freq", (seq, hs))]
    if not shared:
        shapes.append(("wcls", (vocab, dim)))
    tensors, at = {}, 0
    for name, shape in shapes:
        n = 1
        for s in shape:
            n *= s
        tensors[name] = (shape, floats[at:at + n])
        at += n
    return tensors


def cut(tensor, shape):
    """The leading block of `shape` of a row-major tensor (every index from 0)."""
    full, values = tensor
    out = []

    def walk(depth, offset):
        if depth == len(shape):
            out.append(values[offset])
            return
        stride = 1
        for s in full[depth + 1:]:
            stride *= s
        for i in range(shape[depth]):
            walk(depth + 1, offset + i * stride)

    walk(0, 0)
    return out


def write_checkpoint(path, t, dim, hid, layers, heads, kv_heads, vocab, seq, shared):
    hs = dim // heads
    kv = hs * kv_heads
    parts = [cut(t["emb"], (vocab, dim)), cut(t["rms_att"], (layers, dim)),
             cut(t["wq"], (layers, dim, dim)), cut(t["wk"], (layers, kv, dim)),
             cut(t["wv"], (layers, kv, dim)), cut(t["wo"], (layers, dim, dim)),
             cut(t["rms_ffn"], (layers, dim)), cut(t["w1"], (layers, hid, dim)),
             cut(t["w2"], (layers, dim, hid)), cut(t["w3"], (layers, hid, dim)),
             cut(t["rms_final"], (dim,)), [0.0] * (seq * hs)]
    if not shared:
        parts.append(cut(t.get("wcls", t["emb"]), (vocab, dim)))
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", dim, hid, layers, heads, kv_heads, vocab if shared else -vocab, seq))
        for p in parts:
            f.write(struct.pack("<%df" % len(p), *p))


def cut_tokenizer_bin(src, dst, pieces):
    data = open(src, "rb").read()
    at = 4
    for _ in range(pieces):
        (n,) = struct.unpack("<i", data[at + 4:at + 8])
        at += 8 + n
    open(dst, "wb").write(data[:at])


def cut_tokenizer_json(src, dst, pieces):
    """The first `pieces` of the vocabulary, the merges that stay within them, and the first
    8 added tokens numbered after them: a small file with the real file's structure."""
    t = json.load(gzip.open(src, "rt", encoding="utf-8"))
    model = t["model"]
    model["vocab"] = vocab = {k: i for k, i in model["vocab"].items() if i < pieces}
    new_id = {}  # an added token's content -> its id in the cut file
    for a in t["added_tokens"][:8]:
        a["id"] = new_id[a["content"]] = vocab.get(a["content"], pieces + sum(c not in vocab for c in new_id))
    t["added_tokens"] = t["added_tokens"][:8]
    pair = lambda m: m.split(" ") if isinstance(m, str) else m
    model["merges"] = [m for m in model["merges"] if all(p in vocab for p in pair(m)) and "".join(pair(m)) in vocab]
    post = t.get("post_processor") or {}
    for p in post.get("processors", [post]):
        for tok in (p.get("special_tokens") or {}).values():
            tok["ids"] = [new_id.get(tok["id"], 0)]
    json.dump(t, open(dst, "w", encoding="utf-8"), ensure_ascii=False, separators=(",", ":"))


HF_NAMES = [("emb", "model.embed_tokens.weight"), ("rms_final", "model.norm.weight"),
            ("wcls", "lm_head.weight")]
HF_LAYER_NAMES = [("rms_att", "input_layernorm"), ("wq", "self_attn.q_proj"), ("wk", "self_attn.k_proj"),
                  ("wv", "self_attn.v_proj"), ("wo", "self_attn.o_proj"), ("rms_ffn", "post_attention_layernorm"),
                  ("w1", "mlp.gate_proj"), ("w2", "mlp.down_proj"), ("w3", "mlp.up_proj")]


def write_hf_dir(path, t, dim, hid, layers, heads, kv_heads, vocab, seq, shared, theta, eps):
    """A Hugging Face directory of the cut-down tensors (float32; which rows are which does
    not matter to a fuzzer), with tok512.bin's first `vocab` pieces as its tokenizer."""
    os.makedirs(path)
    kv = dim // heads * kv_heads
    config = {"architectures": ["LlamaForCausalLM"], "hidden_size": dim, "intermediate_size": hid,
              "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
              "vocab_size": vocab, "max_position_embeddings": seq, "rope_theta": theta, "rms_norm_eps": eps,
              "tie_word_embeddings": shared}
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)
    shapes = {"emb": (vocab, dim), "rms_final": (dim,), "wcls": (vocab, dim), "rms_att": (dim,), "rms_ffn": (dim,),
              "wq": (dim, dim), "wk": (kv, dim), "wv": (kv, dim), "wo": (dim, dim), "w1": (hid, dim),
              "w2": (dim, hid), "w3": (hid, dim)}
    tensors = []
    for key, name in HF_NAMES:
        if key != "wcls" or not shared:
            tensors.append((name, shapes[key], cut(t.get(key, t["emb"]), shapes[key])))
    for layer in range(layers):
        for key, name in HF_LAYER_NAMES:
            full_shape, values = t[key]
            n = len(values) // full_shape[0]  # one layer's
            per_layer = (full_shape[1:], values[layer * n:(layer + 1) * n])
            tensors.append(("model.layers.%d.%s.weight" % (layer, name), shapes[key], cut(per_layer, shapes[key])))
    header, data = {}, b""
    for name, shape, values in tensors:
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [len(data), len(data) + 4 * len(values)]}
        data += struct.pack("<%df" % len(values), *values)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(os.path.join(path, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)
    cut_tokenizer_bin("tests/data/tok512.bin", os.path.join(path, "tokenizer.model"), vocab)


def main():
    if not os.path.exists("run"):
        sys.exit("error: run `make` first (the .qrz seeds are written by ./run quantize)")
    for target in ("checkpoint", "qrz", "tokenizer", "sentencepiece", "tokenizer_json"):
        shutil.rmtree(os.path.join(SEEDS, target), ignore_errors=True)
        os.makedirs(os.path.join(SEEDS, target))
        # A *-format1.qrz seed was written by a build before format 2 and cannot be made
        # again: it stays (from git), so the fuzzer keeps reaching format 1's path.
        if target == "qrz":
            subprocess.run(["git", "checkout", "--", os.path.join(SEEDS, target)], capture_output=True)
            for name in os.listdir(os.path.join(SEEDS, target)):
                if not name.endswith("-format1.qrz"):
                    os.remove(os.path.join(SEEDS, target, name))
    shapes = [  # dim, hidden, layers, heads, kv_heads, vocab, seq, shared classifier
        (8, 16, 1, 2, 1, 16, 4, True),
        (16, 16, 2, 4, 2, 16, 8, True),
        (16, 20, 1, 2, 2, 24, 3, False),
        (16, 12, 1, 4, 4, 8, 2, True),
    ]
    models = [("stories260K", "models/stories260K.bin"), ("llama2xs", "tests/data/llama2xs.bin")]
    checkpoints = []
    for name, path in models:
        t = read_checkpoint(path)
        for s in shapes:
            out = os.path.join(SEEDS, "checkpoint", "%s-d%d-h%d-l%d-%dx%d-v%d-s%d%s.bin" % (
                (name,) + s[:7] + ("" if s[7] else "-cls",)))
            write_checkpoint(out, t, *s)
            checkpoints.append(out)
    modes = ["qrazor", "qrazor/g32/trunc", "w8a16", "rtn4", "fp32", "sdr-w", "sdr-a",
             "qrazor/cls=fp32", "fp32/cls=qrazor", "rtn4/cls=int8"]
    for i, ck in enumerate(checkpoints):
        for mode in modes[i % 2::2]:  # half the modes per checkpoint, every mode twice
            out = os.path.join(SEEDS, "qrz", os.path.basename(ck)[:-4] + "-" + mode.replace("/", "_") + ".qrz")
            subprocess.run(["./run", "quantize", ck, out, "-q", mode], check=True, capture_output=True)
    imports = [  # shape (as above), import flags, RoPE base, epsilon
        (shapes[0], ["--chat-template", "zephyr"], 10000.0, 1e-5),
        (shapes[2], ["-q", "fp32", "--embedding", "int8", "--chat-template", "chatml"], 500000.0, 1e-6),
        (shapes[1], ["-q", "w8a16", "--embedding", "fp32", "--chat-template", "llama2"], 1e6, 1e-5),
        (shapes[3], ["-q", "rtn4", "--embedding", "int8"], 10000.0, 1e-6),
    ]
    t = read_checkpoint("tests/data/llama2xs.bin")
    hf_dir = os.path.join(SEEDS, "hf-tmp")
    for s, flags, theta, eps in imports:
        shutil.rmtree(hf_dir, ignore_errors=True)
        write_hf_dir(hf_dir, t, *s, theta, eps)
        given = dict(zip(flags[::2], flags[1::2]))
        name = "hf-d%d-h%d-l%d-%dx%d-v%d-s%d%s" % (s[:7] + ("" if s[7] else "-cls",)) + "-%s-emb_%s-%s.qrz" % (
            given.get("-q", "qrazor"), given.get("--embedding", "default"), given.get("--chat-template", "none"))
        subprocess.run(["./run", "import", hf_dir, os.path.join(SEEDS, "qrz", name)] + flags, check=True,
                       capture_output=True)
    shutil.rmtree(hf_dir)
    shutil.copy("tests/data/tok512.bin", os.path.join(SEEDS, "tokenizer", "tok512.bin"))
    cut_tokenizer_bin("tests/data/tokenizer.bin", os.path.join(SEEDS, "tokenizer", "llama2-300.bin"), 300)
    shutil.copy("models/tok512.model", os.path.join(SEEDS, "sentencepiece", "tok512.model"))
    for name in ("smollm2", "llama3", "mistral"):
        cut_tokenizer_json("tests/data/tokenizers/%s.tokenizer.json.gz" % name,
                           os.path.join(SEEDS, "tokenizer_json", "%s-400.json" % name), 400)


if __name__ == "__main__":
    main()
