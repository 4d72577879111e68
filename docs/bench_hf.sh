#!/usr/bin/env bash
# Writes the section "Imported models at real shapes" of docs/PERFORMANCE.md (the end of
# the file, from that heading on; docs/bench.sh keeps it when it regenerates the rest):
# SmolLM2-135M and Llama-3.2-1B as synthetic Hugging Face directories of their exact shapes
# (docs/synth_hf.py: random BF16 weights, the real tokenizer.json and chat template), then
#   1. ./run import: wall time, peak resident memory (GNU time), the .qrz file's size;
#   2. qrazor's pp128 and tg128 against llama.cpp's Q4_0 of the same weights, at 1 and 2
#      threads, the two engines one after the other, ROUNDS rounds (default 3), each figure
#      the median of the rounds.
#
#   SYNTH_DIR=DIR LLAMA_BENCH=.../llama-bench GGUF_DIR=DIR docs/bench_hf.sh
#
# SYNTH_DIR holds (or gets) SmolLM2-135M-synth/ and Llama-3.2-1B-synth/; GGUF_DIR holds
# smollm2-q4_0.gguf and llama3.2-1b-q4_0.gguf, made from those directories as
# docs/PERFORMANCE.md says (llama.cpp's convert_hf_to_gguf.py needs torch).
set -euo pipefail
cd "$(dirname "$0")/.."
source docs/generated.sh

RUN=./run
OUT=docs/PERFORMANCE.md
ROUNDS=${ROUNDS:-3}
REPS=${REPS:-3}
: "${SYNTH_DIR:?set SYNTH_DIR}" "${LLAMA_BENCH:?set LLAMA_BENCH}" "${GGUF_DIR:?set GGUF_DIR}"
MODELS=("smollm2-135m SmolLM2-135M-synth smollm2" "llama3.2-1b Llama-3.2-1B-synth llama3.2-1b")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
field() { sed -n "s/.*\"$2\": \"\\{0,1\\}\\([^,\"}]*\\).*/\\1/p" <<< "$1"; }
ours_tps() { field "$(grep "\"test\": \"$2\"" "$1")" tokens_per_s; }
llama_tps() {
    awk -F, -v p="$2" -v g="$3" 'NR == 1 { for (i = 1; i <= NF; i++) { gsub(/"/, "", $i); col[$i] = i } next }
        { gsub(/"/, "") } $col["n_prompt"] == p && $col["n_gen"] == g { print $col["avg_ts"] }' "$1"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

made=$(made_at) # the code measured: what ./run was built from when this started
import_rows=() cmp_rows=()
for m in "${MODELS[@]}"; do
    read -r shape dir name <<< "$m"
    [ -d "$SYNTH_DIR/$dir" ] || python3 docs/synth_hf.py "$shape" "$SYNTH_DIR/$dir"
    echo "import $dir ..." >&2
    /usr/bin/time -f "%e %M" -o "$tmp/time" $RUN import "$SYNTH_DIR/$dir" "$tmp/$name.qrz" 2> "$tmp/import.log"
    read -r secs kb < "$tmp/time"
    in_mb=$(du -b "$SYNTH_DIR/$dir/model.safetensors" | awk '{ printf "%.0f", $1 / 1e6 }')
    out_mb=$(stat -c %s "$tmp/$name.qrz" | awk '{ printf "%.0f", $1 / 1e6 }')
    import_rows+=("| $dir | $in_mb MB | $out_mb MB | $secs s | $((kb / 1024)) MB |")
    for t in 1 2; do
        opp=() otg=() lpp=() ltg=()
        for r in $(seq "$ROUNDS"); do
            echo "compare $name, $t thread(s), round $r of $ROUNDS ..." >&2
            $RUN "$tmp/$name.qrz" --bench --pp 128 --tg 128 --reps "$REPS" -j "$t" --json > "$tmp/o.json"
            opp+=("$(ours_tps "$tmp/o.json" pp128)") otg+=("$(ours_tps "$tmp/o.json" tg128)")
            "$LLAMA_BENCH" -m "$GGUF_DIR/$name-q4_0.gguf" -p 128 -n 128 -r "$REPS" -t "$t" -o csv 2>/dev/null > "$tmp/l.csv"
            lpp+=("$(llama_tps "$tmp/l.csv" 128 0)") ltg+=("$(llama_tps "$tmp/l.csv" 0 128)")
        done
        a=$(median "${opp[@]}") b=$(median "${lpp[@]}") c=$(median "${otg[@]}") d=$(median "${ltg[@]}")
        row=$(awk -v n="$name" -v t="$t" -v a="$a" -v b="$b" -v c="$c" -v d="$d" 'BEGIN {
            printf "| %s | %d | %.1f | %.1f | %.2fx | %.1f | %.1f | %.2fx |", n, t, a, b, a / b, c, d, c / d }')
        echo "$row" >&2
        cmp_rows+=("$row")
    done
done

load=$(cut -d' ' -f1-3 /proc/loadavg)
section=$(
    cat <<EOF
## Imported models at real shapes: SmolLM2-135M and Llama-3.2-1B

Made by \`docs/bench_hf.sh\` at $made; the load average at the end was $load on $(nproc)
cores (the benchmark itself is one to two of it). The two engines ran alternately, so
whatever else ran on the machine slowed both: the ratios are the measurement. Where the
cores are busy, 2 threads wait at every synchronisation for one that was descheduled, and
the 2-thread figures measure the load more than the engines: the 1-thread rows are the
cleaner comparison.

The models are synthetic Hugging Face directories of the real shapes (\`docs/synth_hf.py\`:
random BF16 weights, N(0, 0.02); the real tokenizer.json, config.json fields and chat
template): SmolLM2-135M (dim 576, 30 layers, 9 heads, 3 KV heads, hidden 1536, vocab 49152,
tied) and Llama-3.2-1B (dim 2048, 16 layers, 32/8 heads, hidden 8192, vocab 128256, tied,
rope_scaling llama3 with factor 32). Speed does not depend on the weights' values.

    python3 docs/synth_hf.py smollm2-135m SYNTH_DIR/SmolLM2-135M-synth
    python3 docs/synth_hf.py llama3.2-1b SYNTH_DIR/Llama-3.2-1B-synth
    /usr/bin/time -f "%e s %M KB" ./run import SYNTH_DIR/MODEL-synth MODEL.qrz

| directory | BF16 safetensors | .qrz (qrazor, INT8 embedding) | import time | peak RSS |
|---|---:|---:|---:|---:|
$(printf '%s\n' "${import_rows[@]}")

llama.cpp's side: its \`convert_hf_to_gguf.py\` needs torch and transformers, which cannot be
installed here (no PyPI), so the same directories were written as F16 GGUF files with
llama.cpp's own \`gguf-py\` (its GGUFWriter, following convert_hf_to_gguf.py's LlamaModel:
tensor names, q/k rows permuted back, \`rope_freqs\` for Llama 3's scaling, the BPE
vocabulary and merges), then \`llama-quantize F16.gguf Q4_0.gguf Q4_0\`. Per round:

    ./run MODEL.qrz --bench --pp 128 --tg 128 --reps $REPS -j N --json
    llama-bench -m MODEL-q4_0.gguf -p 128 -n 128 -r $REPS -t N -o csv

| model | threads | qrazor pp128 | Q4_0 pp128 | pp ratio | qrazor tg128 | Q4_0 tg128 | tg ratio |
|---|---:|---:|---:|---:|---:|---:|---:|
$(printf '%s\n' "${cmp_rows[@]}")
EOF
)
head=$(sed '/^## Imported models at real shapes/,$d' "$OUT")
printf '%s\n\n%s\n' "$head" "$section" | cat -s > "$tmp/out.md"
mv "$tmp/out.md" "$OUT"
echo "wrote the last section of $OUT" >&2
