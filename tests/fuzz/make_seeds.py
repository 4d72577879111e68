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
    shutil.copy("tests/data/tok512.bin", os.path.join(SEEDS, "tokenizer", "tok512.bin"))
    cut_tokenizer_bin("tests/data/tokenizer.bin", os.path.join(SEEDS, "tokenizer", "llama2-300.bin"), 300)
    shutil.copy("models/tok512.model", os.path.join(SEEDS, "sentencepiece", "tok512.model"))
    for name in ("smollm2", "llama3", "mistral"):
        cut_tokenizer_json("tests/data/tokenizers/%s.tokenizer.json.gz" % name,
                           os.path.join(SEEDS, "tokenizer_json", "%s-400.json" % name), 400)


if __name__ == "__main__":
    main()
