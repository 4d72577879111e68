#!/usr/bin/env bash
# Prints the map of the forward pass for docs/HOW_IT_WORKS.md: each step, and the lines
# that compute it in the reference path (engine/reference.c, one token, plain loops) and
# in the fast path (engine/forward.c and the files it calls). Line numbers are read from
# the sources each time, so the page moves with the code (CI regenerates the page and
# fails when the committed one differs).
set -euo pipefail
cd "$(dirname "$0")/.."
# The helpers below run inside $(...), where a failure cannot stop this script: each
# failure is also written to $failed, and the script fails at the end if it holds any.
failed=$(mktemp)
trap 'rm -f "$failed"' EXIT
fail() { echo "docs/forward_map.sh: $*" | tee -a "$failed" >&2; exit 1; }

# where FILE PATTERN: "FILE:LINE" of the first line matching PATTERN (fixed string).
where() {
    local n
    n=$(grep -n -F -m1 -- "$2" "$1" | cut -d: -f1)
    [ -n "$n" ] || fail "'$2' not found in $1"
    echo "$1:$n"
}

# fn FILE NAME: "FILE:FIRST-LAST", the lines of the definition of function NAME (from its
# signature to the closing brace at the start of a line).
fn() {
    local range
    range=$(awk -v name="$2" '
        !start && $0 ~ "^[a-zA-Z].*[ *]" name "\\(" && $0 !~ ";$" { start = NR }
        start && /^}/ { print start "-" NR; exit }' "$1")
    [ -n "$range" ] || fail "function $2 not found in $1"
    echo "$1:$range"
}

# span FILE FROM TO: "FILE:A-B" from the first line matching FROM to the first line after
# it matching TO.
span() {
    local a b
    a=$(where "$1" "$2"); a=${a#*:}
    b=$(tail -n "+$a" "$1" | grep -n -F -m1 -- "$3" | cut -d: -f1)
    [ -n "$b" ] || fail "'$3' not found after line $a of $1"
    echo "$1:$a-$((a + b - 1))"
}

link() { # a markdown link to FILE:LINES, relative to docs/
    local file=${1%%:*} lines=${1#*:}
    echo "[\`${file}:${lines}\`](../${file}#L${lines%%-*})"
}

R=engine/reference.c
F=engine/forward.c
row() { echo "| $1 | $2 | $3 |"; }

cat <<'HEADER'
| step | reference path (one token, plain loops) | fast path (a chunk of tokens, threads, SIMD) |
|---|---|---|
HEADER
row "**a layer: x += attention block, then x += feed-forward block**" "$(link "$(span $R '/* Attention: x += wo' '/* The classifier')")" "$(link "$(fn $F run_layers)")"
row "embedding row of the token" "$(link "$(where $R "the token's embedding")")" "$(link "$(where $F 'model_embed(t->w, tokens[i]')")"
row "xb = rmsnorm(x)" "$(link "$(where $R 'rmsnorm(r, r->xb, x, L->rms_att')"), $(link "$(fn $R rmsnorm)")" "$(link "$(where $F 'rmsnorm_rows(t, s->xb, s->x, L->rms_att')"), $(link "$(fn kernels/floatops.c rmsnorm)")"
row "quantize the input: stage 1, razor (SPEC 1-2)" "$(link "$(fn $R quantize)"), $(link "$(fn $R razor)")" "$(link "$(fn engine/linear.c qacts_set)"), $(link "$(fn kernels/quant.c r4_acts_quantize_scalar)") and its SIMD twins"
row "q, k, v = wq xb, wk xb, wv xb" "$(link "$(where $R 'linear(r, r->q_, &L->wq')"), $(link "$(fn $R linear)"), $(link "$(fn $R weight_row)")" "$(link "$(where $F '(const Linear *[]){&L->wq, &L->wk, &L->wv}')"), $(link "$(fn kernels/matmul.c matmul_shared)")"
row "integer product of codes (SPEC 3)" "$(link "$(fn kernels/quant.c qr_dot)")" "$(link "$(fn kernels/kernels_scalar.c r4_block_scalar)") and its SIMD twins"
row "RoPE on q and k" "$(link "$(where $R 'rope(r->q_')"), $(link "$(fn $R rope)")" "$(link "$(fn $F rope_and_cache_heads)"), $(link "$(fn kernels/floatops.c rope_angles)")"
row "with rot (SPEC 7): each q and k head by Q_hs; later w2's input by Q_hidden" "$(link "$(where $R 'hadamard(r->q_')"), $(link "$(where $R 'hadamard(r->hb')"), $(link "$(fn $R hadamard)")" "$(link "$(where $F 'hadamard(q, rep, hs)')"), $(link "$(fn $F hadamard_range)"), $(link "$(fn kernels/hadamard.c hadamard_scalar)") and its SIMD twins"
row "k, v into the cache (SPEC 4)" "$(link "$(where $R 'quantize(&r->keys[at]')")" "$(link "$(fn engine/kv_cache.c kv_cache_store)")"
row "scores q . k / sqrt(hs), softmax" "$(link "$(fn $R attention_head)")" "$(link "$(span engine/attention.c '/* Scores:' 'qacts_quantize(&sc->p')")"
row "weighted values V^T p' (SPEC 4)" "$(link "$(span $R '/* Weighted values' 'out[d] = (float)acc')")" "$(link "$(span engine/attention.c '/* Weighted values' 'linear_apply_rows(sc->out')")"
row "x += wo attention" "$(link "$(span $R 'linear(r, r->xb2, &L->wo' 'x[i] += r->xb2[i]')")" "$(link "$(fn $F attention_block)"), $(link "$(where $F 'residual_add(t, attention_block')")"
row "xb = rmsnorm(x); x += w2 (silu(w1 xb) * (w3 xb))" "$(link "$(span $R '/* Feed-forward:' 'x[i] += r->xb2[i]')"), $(link "$(fn $R swiglu)")" "$(link "$(fn $F ffn_block)"), $(link "$(where $F 'residual_add(t, ffn_block')")"
row "logits = classifier(rmsnorm(x))" "$(link "$(where $R 'linear(r, r->logits, &w->cls')")" "$(link "$(fn $F classify)")"
[ ! -s "$failed" ] # the map is wrong if any step was not found
