#!/usr/bin/env bash
# Regenerates docs/PERFORMANCE.md (run by `make bench`): tokens per second on stories260K
# and on checkpoints of the stories15M / 42M / 110M shapes with random weights (the speed
# of the integer kernels does not depend on weight values; those models cannot write
# text), at 1 and 2 threads:
#   1. fp32, w8a16 and qrazor, interleaved repetition by repetition in one run of ours;
#   2. qrazor against llama.cpp's Q4_0 on the same checkpoints, pp128, pp512 and tg128,
#      the two engines run one after the other, round after round (ROUNDS, default 3),
#      and each figure the median of the rounds; the ratio per row.
#
# llama.cpp is optional and nothing of it is in this repository. With
#   LLAMA_BENCH=/path/to/llama.cpp/build/bin/llama-bench
#   GGUF_DIR=/dir/holding/stories15M-q4_0.gguf,stories42M-q4_0.gguf,stories110M-q4_0.gguf
# the second table has its llama.cpp columns. To make them (llama.cpp's llama2.c
# converter reads our checkpoints; it refuses GQA ones, and these shapes have none):
#   git clone https://github.com/ggml-org/llama.cpp && cd llama.cpp
#   cmake -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON
#   cmake --build build -j --target llama-bench llama-quantize llama-convert-llama2c-to-ggml
#   for s in stories15M stories42M stories110M; do   # build/bench/*.bin: written by a first make bench
#     build/bin/llama-convert-llama2c-to-ggml --copy-vocab-from-model TOKENIZER.bin \
#       --llama2c-model QRAZOR/build/bench/$s.bin --llama2c-output-model $GGUF_DIR/$s-f32.gguf
#     build/bin/llama-quantize $GGUF_DIR/$s-f32.gguf $GGUF_DIR/$s-q4_0.gguf q4_0
#   done
# where TOKENIZER.bin is llama2.c's tokenizer.bin (the Llama 2 vocabulary of 32000).
# Also optional: llama2.c's run.c (fp32), LLAMA2C_RUN=/path/to/llama2.c/run with
# LLAMA2C_TOKENIZER=/path/to/tokenizer.bin.
set -euo pipefail
cd "$(dirname "$0")/.."
source docs/generated.sh

RUN=./run
SYNTH=build/synth_model
DIR=build/bench
OUT=docs/PERFORMANCE.md
# A section of the page as it is, from its heading to the next.
section() { awk -v h="$1" 'index($0, h) == 1 { on = 1; print; next } /^## / { on = 0 } on' "$OUT" 2>/dev/null || true; }
arm_section=$(section "## ARM: static estimates")
x86_section=$(section "## x86: static estimates")
hf_section=$(section "## Imported models at real shapes")
REPS=${REPS:-5}     # repetitions per run of each engine
ROUNDS=${ROUNDS:-3} # runs of each engine, alternating, for the comparison
TG=128
MODES=fp32,w8a16,qrazor
SHAPES=(stories15M stories42M stories110M)
THREADS=(1 2)

mkdir -p "$DIR"
for s in "${SHAPES[@]}"; do
    [ -f "$DIR/$s.bin" ] || { echo "writing $DIR/$s.bin" >&2; $SYNTH "$s" "$DIR/$s.bin"; }
done
MODELS=(models/stories260K.bin)
for s in "${SHAPES[@]}"; do MODELS+=("$DIR/$s.bin"); done
LLAMA=
if [ -n "${LLAMA_BENCH:-}" ]; then
    [ -x "$LLAMA_BENCH" ] || { echo "error: LLAMA_BENCH=$LLAMA_BENCH is not an executable" >&2; exit 1; }
    for s in "${SHAPES[@]}"; do
        [ -f "${GGUF_DIR:-}/$s-q4_0.gguf" ] || { echo "error: no ${GGUF_DIR:-GGUF_DIR unset}/$s-q4_0.gguf" >&2; exit 1; }
    done
    LLAMA=1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The core's clock and its peak of int8 multiply-adds (docs/peak.c).
${CC:-cc} -O2 docs/peak.c -o "$tmp/peak"
read -r clock_ghz peak_gmacs per_cycle peak_instruction < <("$tmp/peak")
[ "$peak_instruction" = vpdpbusd ] && peak_mults="64 (512 bits of bytes, multiplied and summed in fours)" ||
    peak_mults="32 (256 bits of bytes, multiplied and summed in pairs)"
echo "peak: $peak_gmacs G multiply-adds/s per core ($peak_instruction, $per_cycle a cycle at $clock_ghz GHz)" >&2

# A field of one result line of our JSON: {"mode": "qrazor", "test": "tg128", "tokens_per_s": ...}
field() { sed -n "s/.*\"$2\": \"\\{0,1\\}\\([^,\"}]*\\).*/\\1/p" <<< "$1"; }
# tokens_per_s of mode $2, test $3 in our JSON file $1
ours_tps() { field "$(grep "\"mode\": \"$2\", \"test\": \"$3\"" "$1")" tokens_per_s; }
# llama-bench's CSV: the avg_ts column of the row with these n_prompt and n_gen.
llama_tps() {
    awk -F, -v p="$2" -v g="$3" 'NR == 1 { for (i = 1; i <= NF; i++) { gsub(/"/, "", $i); col[$i] = i } next }
        { gsub(/"/, "") } $col["n_prompt"] == p && $col["n_gen"] == g { print $col["avg_ts"] }' "$1"
}
llama_column() { awk -F, -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) { gsub(/"/, "", $i); col[$i] = i } next }
        { gsub(/"/, ""); print $col[c]; exit }' "$1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# The context of a llama2.c checkpoint: the 7th int32 of its header.
seq_len() { od -An -t d4 -j 24 -N 4 "$1" | tr -d ' '; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "") print "-"; else printf "%.2fx", a / b }'; }
num() { awk -v v="$1" -v d="$2" 'BEGIN { if (v == "") print "-"; else printf "%.*f", d, v }'; }
# "G (percent)": tokens/s $1 times $2 multiply-adds a token, as G/s and as a share of the
# peak of $3 cores.
gmacs() { awk -v r="$1" -v m="$2" -v t="$3" -v p="$peak_gmacs" 'BEGIN { if (r == "" || m == "") print "-";
          else printf "%.0f (%.0f%%)", r * m / 1e9, 100 * r * m / 1e9 / (t * p) }'; }

# 1. Our modes, one run each.
ref_rows=()
for m in "${MODELS[@]}"; do
    name=$(basename "$m" .bin)
    for t in "${THREADS[@]}"; do
        echo "bench $name, $t thread(s): $MODES ..." >&2
        $RUN "$m" --bench --bench-modes "$MODES" --pp 128 --tg "$TG" --reps "$REPS" -j "$t" --json \
            > "$tmp/$name.$t.json"
        if [ -n "${LLAMA2C_RUN:-}" ] && [ "$name" != stories260K ]; then
            tps=$(OMP_NUM_THREADS=$t "$LLAMA2C_RUN" "$m" -z "$LLAMA2C_TOKENIZER" -n 256 -t 0 2>&1 >/dev/null |
                  sed -n 's/achieved tok\/s: \([0-9.]*\).*/\1/p')
            ref_rows+=("| $name | $t | $(num "$tps" 1) |")
        fi
    done
done

# 2. qrazor and llama.cpp Q4_0, alternating round by round.
cmp_rows=() mac_rows=()
llama_commit=
for s in "${SHAPES[@]}"; do
    m="$DIR/$s.bin"
    long=512
    [ "$(seq_len "$m")" -ge $((long + TG)) ] || long= # stories15M's context is 256
    for t in "${THREADS[@]}"; do
        o128=() o512=() otg=() l128=() l512=() ltg=() macs128= macs512=
        for r in $(seq "$ROUNDS"); do
            echo "compare $s, $t thread(s), round $r of $ROUNDS ..." >&2
            $RUN "$m" --bench --bench-modes qrazor --pp 128 --tg "$TG" --reps "$REPS" -j "$t" --json > "$tmp/o.json"
            o128+=("$(ours_tps "$tmp/o.json" qrazor pp128)") otg+=("$(ours_tps "$tmp/o.json" qrazor "tg$TG")")
            macs128=$(field "$(grep '"test": "pp128"' "$tmp/o.json")" macs) # the model's, whichever engine
            if [ -n "$long" ]; then
                $RUN "$m" --bench --bench-modes qrazor --pp "$long" --tg 0 --reps "$REPS" -j "$t" --json > "$tmp/o.json"
                o512+=("$(ours_tps "$tmp/o.json" qrazor "pp$long")")
                macs512=$(field "$(grep "\"test\": \"pp$long\"" "$tmp/o.json")" macs)
            fi
            if [ -n "$LLAMA" ]; then
                "$LLAMA_BENCH" -m "$GGUF_DIR/$s-q4_0.gguf" -p "128${long:+,$long}" -n "$TG" -r "$REPS" -t "$t" -o csv \
                    2>/dev/null > "$tmp/l.csv"
                l128+=("$(llama_tps "$tmp/l.csv" 128 0)") ltg+=("$(llama_tps "$tmp/l.csv" 0 "$TG")")
                llama_commit=$(llama_column "$tmp/l.csv" build_commit)
                [ -z "$long" ] || l512+=("$(llama_tps "$tmp/l.csv" "$long" 0)")
            fi
        done
        a=$(median "${o128[@]}") b=$([ -z "$LLAMA" ] || median "${l128[@]}")
        c=$([ -z "$long" ] || median "${o512[@]}") d=$([ -z "$LLAMA" ] || [ -z "$long" ] || median "${l512[@]}")
        e=$(median "${otg[@]}") f=$([ -z "$LLAMA" ] || median "${ltg[@]}")
        row="| $s | $t | $(num "$a" 0) | $(num "$b" 0) | $(ratio "$a" "$b") | $(num "$c" 0) | $(num "$d" 0) | $(ratio "$c" "$d") | $(num "$e" 1) | $(num "$f" 1) | $(ratio "$e" "$f") |"
        echo "$row" >&2
        cmp_rows+=("$row")
        per128=$(awk -v m="$macs128" 'BEGIN { print m / 128 }')
        per512=$([ -z "$long" ] || awk -v m="$macs512" -v n="$long" 'BEGIN { print m / n }')
        mac_rows+=("| $s | $t | $(gmacs "$a" "$per128" "$t") | $(gmacs "$b" "$per128" "$t") | $(gmacs "$c" "$per512" "$t") | $(gmacs "$d" "$per512" "$t") |")
    done
done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
simd=$(head -1 "$tmp/stories260K.1.json" | sed -n 's/.*"simd": "\([^"]*\)".*/\1/p')
{
    cat <<EOF
# Performance

Generated by \`make bench\` at $(made_at),
on $cpu ($(nproc) cores; kernels: $simd).

**The stories15M, stories42M and stories110M rows use checkpoints of those shapes with
random weights** (\`build/synth_model\`): the speed of the engine does not depend on
the weights' values, and the real models cannot be downloaded everywhere. stories260K is
the real, embedded model.

**pp128** processes a 128-token prompt in one batched pass (**pp512** a 512-token one);
**tg$TG** generates $TG tokens one at a time; all start from an empty context, feed fixed
pseudo-random tokens and time the model only (no tokenizer, no sampling). Each figure of
ours is the median of $REPS repetitions after a warm-up (with the fastest and slowest in
parentheses in the first table), as llama.cpp's llama-bench reports them. Weights and KV
cache are the bytes the mode needs at full context. Other programs running on this
machine slow every engine: compare ratios within a table rather than figures across runs.

## Our modes

The three modes run interleaved, repetition by repetition, in one run per model and
thread count:

EOF
    for m in "${MODELS[@]}"; do
        echo "    $RUN $m --bench --bench-modes $MODES --pp 128 --tg $TG --reps $REPS -j N --json"
    done
    echo
    echo "| model | threads | mode | weights | KV cache | pp128 tok/s | tg$TG tok/s | tg vs fp32 |"
    echo "|---|---:|---|---:|---:|---:|---:|---:|"
    for m in "${MODELS[@]}"; do
        name=$(basename "$m" .bin)
        for t in "${THREADS[@]}"; do
            f="$tmp/$name.$t.json"
            fp32_tg=$(ours_tps "$f" fp32 "tg$TG")
            for mode in ${MODES//,/ }; do
                pp_line=$(grep "\"mode\": \"$mode\", \"test\": \"pp" "$f")
                tg_line=$(grep "\"mode\": \"$mode\", \"test\": \"tg" "$f")
                awk -v name="$name" -v t="$t" -v mode="$mode" \
                    -v w="$(field "$pp_line" weight_bytes)" -v kv="$(field "$pp_line" kv_bytes)" \
                    -v pp="$(field "$pp_line" tokens_per_s)" -v ppmin="$(field "$pp_line" min)" -v ppmax="$(field "$pp_line" max)" \
                    -v tg="$(field "$tg_line" tokens_per_s)" -v tgmin="$(field "$tg_line" min)" -v tgmax="$(field "$tg_line" max)" \
                    -v fp="$fp32_tg" 'BEGIN {
                    printf "| %s | %d | %s | %.1f MB | %.1f MB | %.0f (%.0f-%.0f) | %.1f (%.1f-%.1f) | %.2fx |\n",
                           name, t, mode, w / 1e6, kv / 1e6, pp, ppmin, ppmax, tg, tgmin, tgmax, tg / fp }'
            done
        done
    done
    cat <<EOF

## qrazor and llama.cpp Q4_0

EOF
    if [ -n "$LLAMA" ]; then
        cat <<EOF
llama.cpp${llama_commit:+ $llama_commit} (CPU, built \`-DGGML_NATIVE=ON\`), its Q4_0 made from the same
checkpoints by its llama2.c converter and \`llama-quantize\` (see docs/bench.sh). For each
model and thread count the two engines ran one after the other, $ROUNDS rounds; each
figure is the median of the rounds (each round's figure itself a median or mean of $REPS
repetitions), and the ratio is ours over llama.cpp's. stories15M's context (256) has no
room for pp512. Commands, per round:

    $RUN build/bench/SHAPE.bin --bench --bench-modes qrazor --pp 128 --tg $TG --reps $REPS -j N --json
    $RUN build/bench/SHAPE.bin --bench --bench-modes qrazor --pp 512 --tg 0 --reps $REPS -j N --json
    llama-bench -m SHAPE-q4_0.gguf -p 128,512 -n $TG -r $REPS -t N -o csv

EOF
    else
        cat <<EOF
(llama.cpp was not given: set LLAMA_BENCH and GGUF_DIR, see docs/bench.sh, for its
columns.) stories15M's context (256) has no room for pp512. Commands:

    $RUN build/bench/SHAPE.bin --bench --bench-modes qrazor --pp 128 --tg $TG --reps $REPS -j N --json
    $RUN build/bench/SHAPE.bin --bench --bench-modes qrazor --pp 512 --tg 0 --reps $REPS -j N --json

EOF
    fi
    echo "| model | threads | qrazor pp128 | llama.cpp pp128 | ratio | qrazor pp512 | llama.cpp pp512 | ratio | qrazor tg$TG | llama.cpp tg$TG | ratio |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${cmp_rows[@]}"
    cat <<EOT

## How near the hardware

A prompt of n tokens is so many multiply-adds (the 7 linears of every token, attention
over the positions up to each, the last token's classifier: \`--bench\` prints them), the
same whichever engine computes them; here they are per second, from the medians above,
and as a share of the machine's peak. That peak, measured by docs/peak.c on one core: the
clock, $clock_ghz GHz (a chain of dependent additions, one a cycle), times $per_cycle
\`$peak_instruction\` a cycle (twelve independent chains of it), times the int8
multiply-adds of one: $peak_mults. **$peak_gmacs G int8 multiply-adds per second per
core**, twice that on two. Both engines spend part of each step outside multiply-adds
(quantizing activations, normalizing, softmax, SwiGLU), which a share of the peak counts
against them.

| model | threads | qrazor pp128 G/s | llama.cpp pp128 G/s | qrazor pp512 G/s | llama.cpp pp512 G/s |
|---|---:|---:|---:|---:|---:|
EOT
    printf '%s\n' "${mac_rows[@]}"
    if [ ${#ref_rows[@]} -gt 0 ]; then
        cat <<EOF

## llama2.c

llama2.c's run.c (float32, OpenMP), run right after ours on the same checkpoints; its
own "achieved tok/s" over 256 greedy steps, prompt included:

| model | threads | tok/s |
|---|---:|---:|
EOF
        printf '%s\n' "${ref_rows[@]}"
    fi
} > "$OUT"
# The sections measured apart (docs/mca.sh's static estimates of the ARM and x86 kernels,
# docs/bench_hf.sh's imported models at real shapes) are kept as they were.
for kept in "$arm_section" "$x86_section" "$hf_section"; do [ -z "$kept" ] || printf '\n%s\n' "$kept" >> "$OUT"; done
echo "wrote $OUT" >&2
