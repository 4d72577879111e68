#!/usr/bin/env bash
# Makes docs/ACCURACY.md (`make accuracy`; with --check, as `make check-accuracy` runs
# it, compares it with the committed one instead): every mode and knob of the engine
# evaluated on the TinyStories dev text with the two real models in the repository. The
# figures are deterministic (no timing is quoted), so the same code makes the same page.
set -euo pipefail
cd "$(dirname "$0")/.."
source docs/generated.sh
[ "${1:-}" = --check ] && CHECK=1

RUN=./run
TEXT=tests/data/tinystories-dev.txt
MODELS=(models/stories260K.bin tests/data/llama2xs.bin)
OUT=docs/ACCURACY.md
THREADS=${THREADS:-}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The two methods with a float32 classifier, and stories260K in windows of 256 too (the
# closing section's table).
METHODS=rtn4,quarot,qrazor,qrazor/rot
METHODS_CLS_FP32=rtn4/cls=fp32,quarot/cls=fp32,qrazor/cls=fp32,qrazor/rot/cls=fp32
for m in "${MODELS[@]}"; do
    name=$(basename "$m" .bin)
    echo "evaluating $name ..." >&2
    $RUN "$m" --eval "$TEXT" --eval-modes all --json ${THREADS:+-j "$THREADS"} > "$tmp/$name.json"
    $RUN "$m" --eval "$TEXT" --eval-modes "$METHODS_CLS_FP32" --json ${THREADS:+-j "$THREADS"} > "$tmp/$name-clsf.json"
done
$RUN models/stories260K.bin --eval "$TEXT" --eval-modes "$METHODS" -c 256 --json ${THREADS:+-j "$THREADS"} \
    > "$tmp/stories260K-c256.json"

# Our JSON has one mode per line: {"mode": "qrazor", "nll": 2.4985, ...}
field() { sed -n "s/.*\"$2\": \\([-0-9.e+]*\\).*/\\1/p" <<< "$1"; }
mode_line() { grep "\"mode\": \"$2\"" "$tmp/$1.json"; }
value() { field "$(mode_line "$1" "$2")" "$3"; }
header() { head -1 "$tmp/$1.json"; }

table() { # model
    local fp32 line mode nll
    fp32=$(value "$1" fp32 nll)
    echo "| mode | what it quantizes | KV bits | NLL | PPL | ΔNLL vs fp32 | mean KL | max KL | top-1 |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    grep '"mode"' "$tmp/$1.json" | while read -r line; do
        mode=$(sed -n 's/.*"mode": "\([^"]*\)".*/\1/p' <<< "$line")
        nll=$(field "$line" nll)
        awk -v mode="$mode" -v what="$(describe "$mode")" -v nll="$nll" -v fp32="$fp32" \
            -v ppl="$(field "$line" ppl)" -v kl="$(field "$line" mean_kl)" \
            -v klmax="$(field "$line" max_kl)" -v top1="$(field "$line" top1)" \
            -v kvbits="$(field "$line" kv_bits)" \
            'BEGIN { printf "| `%s` | %s | %.2f | %.4f | %.3f | %+.4f | %.4f | %.3f | %.2f%% |\n",
                     mode, what, kvbits, nll, ppl, nll - fp32, kl, klmax, top1 }'
    done
}

describe() {
    case "$1" in
    fp32) echo "nothing: the reference" ;;
    w8a16) echo "stage 1 only: INT8 weights and KV, INT16 activations" ;;
    qrazor) echo "W4A4KV4, G = 16, rounding; classifier razored too" ;;
    qrazor/k5) echo "as qrazor, keys razored to 5-bit codes (-ctk r5)" ;;
    qrazor/k5/v5) echo "as qrazor, keys and values razored to 5-bit codes" ;;
    qrazor/k8) echo "as qrazor, keys INT8, not razored (-ctk i8)" ;;
    qrazor/k8/v8) echo "as qrazor, keys and values INT8, not razored" ;;
    qrazor/g32 | qrazor/g64 | qrazor/g128) echo "as qrazor, groups of ${1#qrazor/g}" ;;
    qrazor/trunc) echo "as qrazor, razoring truncates instead of rounding" ;;
    qrazor/cls=fp32) echo "as qrazor, classifier float32" ;;
    qrazor/cls=int8) echo "as qrazor, classifier INT8 (stage 1 only)" ;;
    rtn4) echo "4-bit absmax everywhere, no razoring: the naive baseline" ;;
    sdr-w) echo "w8a16 + razored weights only" ;;
    sdr-a) echo "w8a16 + razored activations (linear inputs, queries) only" ;;
    sdr-kv) echo "w8a16 + razored KV cache only" ;;
    sdr-p) echo "w8a16 + razored attention probabilities only" ;;
    fp32/rot) echo "fp32 on the rotated model (SPEC section 7): fp32 but for float rounding" ;;
    quarot) echo "QuaRot-RTN: rtn4 on the rotated model (rtn4/rot)" ;;
    qrazor/rot) echo "as qrazor, on the rotated model" ;;
    *) echo "" ;;
    esac
}

# The reading: numbers pulled from the results, so it stays true when they change.
reading() { # model
    awk -v fp32="$(value "$1" fp32 nll)" -v w8="$(value "$1" w8a16 nll)" \
        -v qr="$(value "$1" qrazor nll)" -v qrf="$(value "$1" qrazor/cls=fp32 nll)" \
        -v rtn="$(value "$1" rtn4 nll)" -v trunc="$(value "$1" qrazor/trunc nll)" \
        -v g128="$(value "$1" qrazor/g128 nll)" \
        -v sw="$(value "$1" sdr-w nll)" -v sa="$(value "$1" sdr-a nll)" \
        -v skv="$(value "$1" sdr-kv nll)" -v sp="$(value "$1" sdr-p nll)" \
        -v top1="$(value "$1" qrazor top1)" -v top1r="$(value "$1" rtn4 top1)" \
        -v k5="$(value "$1" qrazor/k5 nll)" -v k5v5="$(value "$1" qrazor/k5/v5 nll)" \
        -v k8="$(value "$1" qrazor/k8 nll)" -v k8v8="$(value "$1" qrazor/k8/v8 nll)" \
        -v bits="$(value "$1" qrazor kv_bits)" -v bits_k5="$(value "$1" qrazor/k5 kv_bits)" \
        -v ppl="$(value "$1" qrazor ppl)" -v ppl_k5="$(value "$1" qrazor/k5 ppl)" \
        -v bits_k8="$(value "$1" qrazor/k8 kv_bits)" \
        -v rot32="$(value "$1" fp32/rot nll)" -v rot32kl="$(value "$1" fp32/rot max_kl)" \
        -v quarot="$(value "$1" quarot nll)" -v qrot="$(value "$1" qrazor/rot nll)" \
        -v ppl_quarot="$(value "$1" quarot ppl)" -v ppl_qrot="$(value "$1" qrazor/rot ppl)" \
        -v ppl_rtn="$(value "$1" rtn4 ppl)" -v top1q="$(value "$1" quarot top1)" '
    BEGIN {
        printf "- Stage 1 alone (w8a16) costs %+.4f nats per token: INT8/INT16 absmax scaling is close to lossless here.\n", w8 - fp32
        printf "- QRazor (W4A4KV4) costs %+.4f nats per token against fp32 (perplexity x%.2f); the naive 4-bit baseline rtn4 costs %+.4f (x%.2f). ", qr - fp32, exp(qr - fp32), rtn - fp32, exp(rtn - fp32)
        if (qr < rtn) printf "Razoring recovers %.0f%% of the loss of naive rounding, and its argmax agrees with fp32 at %.1f%% of positions against %.1f%% for rtn4.\n", 100 * (rtn - qr) / (rtn - fp32), top1, top1r
        else printf "Here razoring does not beat naive rounding.\n"
        printf "- Keeping the classifier in float32 (as the paper does) moves QRazor by %+.4f.\n", qrf - qr
        printf "- Truncating instead of rounding in the razor costs %+.4f more; groups of 128 instead of 16 cost %+.4f more.\n", trunc - qr, g128 - qr
        n = split("weights:" sw ",activations:" sa ",KV cache:" skv ",probabilities:" sp, parts, ",")
        worst = ""; worst_d = -1
        for (i = 1; i <= n; i++) { split(parts[i], kv, ":"); d = kv[2] - w8; if (d > worst_d) { worst_d = d; worst = kv[1] } }
        printf "- Razoring one site at a time on top of w8a16: weights %+.4f, activations %+.4f, KV cache %+.4f, probabilities %+.4f. Razoring the %s hurts most.\n", sw - w8, sa - w8, skv - w8, sp - w8, worst
        printf "- Cache types (\`-ctk\`, \`-ctv\`, docs/SPEC.md section 6), against qrazor: 5-bit keys %+.4f, 5-bit keys and values %+.4f, INT8 keys %+.4f, INT8 keys and values %+.4f. ", k5 - qr, k5v5 - qr, k8 - qr, k8v8 - qr
        printf "5-bit keys take perplexity from %.2f to %.2f, at %.2f bits per KV element instead of %.2f. ", ppl, ppl_k5, bits_k5, bits
        if (k8 < k5 && bits_k8 <= bits_k5)
            printf "INT8 keys (-ctk i8) recover more, for the same memory: this engine stores a 5-bit code in a byte (unpacking 5-bit fields would cost decode time), so r5 saves nothing over i8 and i8 is the choice when the cache has room; "
        else
            printf "5-bit keys (-ctk r5) are the choice when the cache has room; "
        printf "the values matter less: 5-bit values on top of 5-bit keys move it by %+.4f.\n", k5v5 - k5
        printf "- Rotations (SPEC section 7): fp32/rot moves the NLL by %+.4f (largest KL %.1g): in float32 the rotated model is the same model. ", rot32 - fp32, rot32kl
        printf "They take naive rounding from perplexity %.2f (rtn4) to %.2f (quarot, %.1f%% top-1), recovering %.0f%% of its loss; ", ppl_rtn, ppl_quarot, top1q, 100 * (rtn - quarot) / (rtn - fp32)
        printf "on the razor they %s %.4f nats (qrazor/rot %.2f against qrazor %.2f). ", (qrot > qr) ? "cost" : "save", (qrot > qr) ? qrot - qr : qr - qrot, ppl_qrot, ppl
        if (quarot < qr) printf "QuaRot-RTN beats QRazor here, by %.4f nats.\n", qr - quarot
        else printf "QRazor beats QuaRot-RTN here, by %.4f nats.\n", quarot - qr
    }'
}

# The closing section: QRazor against QuaRot-RTN on both models, with the classifier
# quantized (the rows above) and float32 (as the papers evaluate), and stories260K in
# windows of 256 as well as its own 512; then why.
cmp_row() { # label json-stem classifier-suffix
    awk -v label="$1" -v rtn="$(value "$2" "rtn4$3" ppl)" -v quarot="$(value "$2" "quarot$3" ppl)" \
        -v qr="$(value "$2" "qrazor$3" ppl)" -v qrot="$(value "$2" "qrazor/rot$3" ppl)" \
        'BEGIN { printf "| %s | %.3f | %.3f | %.3f | %.3f | %s |\n", label, rtn, quarot, qr, qrot,
                 (quarot < qr) ? "QuaRot-RTN" : "QRazor" }'
}

comparison() {
    local rows summary
    rows=$(cmp_row "stories260K, 512, quantized" stories260K ""
           cmp_row "stories260K, 512, float32" stories260K-clsf /cls=fp32
           cmp_row "stories260K, 256, quantized" stories260K-c256 ""
           cmp_row "llama2xs, 256, quantized" llama2xs ""
           cmp_row "llama2xs, 256, float32" llama2xs-clsf /cls=fp32)
    # What holds in every row, said only when it does.
    summary=$(awk -F'|' '
        { n++; rescue += $4 < $3; helps += $6 < $5
          label = $2; gsub(/^ +| +$/, "", label)
          if ($4 < $5) { wins++; quarot_rows = quarot_rows (wins > 1 ? "; " : "") label }
          else { losses++; qrazor_rows = qrazor_rows (losses > 1 ? "; " : "") label }
          gap = $4 - $5; gap = gap < 0 ? -gap : gap; if (gap > max_gap) max_gap = gap
          best = $4 < $5 ? $4 : $5; if (n == 1 || $3 - best < min_gain) min_gain = $3 - best }
        END { printf "Rotating rescues naive rounding in %s of these %d runs, and helps the razor in %s. ",
                     (rescue == n) ? "every one" : rescue "", n, (helps == 0) ? "none" : (helps == n) ? "all" : helps ""
              if (wins == 0) printf "QRazor beats QuaRot-RTN in every run"
              else if (wins == n) printf "QuaRot-RTN beats QRazor in every run"
              else printf "QuaRot-RTN beats QRazor in %d of them (%s) and QRazor wins the other %d (%s): the winner changes with the setting", wins, quarot_rows, losses, qrazor_rows
              printf ", by at most %.2f of perplexity, where the better of them is at least %.2f below rtn4.", max_gap, min_gain }' <<< "$rows")
    cat <<EOF
## QRazor and QuaRot

The QRazor paper compares itself with QuaRot (arXiv 2404.00456) in its RTN variant:
rotate the model by Hadamard matrices, which leaves a float model's function unchanged
(the fp32/rot rows above), then round to 4 bits with one absmax scale per row or vector.
Here \`-q quarot\` is that method (rtn4 on a model rotated as docs/SPEC.md section 7
says) and \`-q qrazor/rot\` razors the rotated model. Perplexity, on the same text:

| model, window, classifier | rtn4 | quarot | qrazor | qrazor/rot | better of the two methods |
|---|---:|---:|---:|---:|---|
$rows

$summary

Why rotation moves the two in opposite directions: it spreads a large value over its
whole block, so the largest value of a vector falls towards its RMS (\`./run MODEL
--explain\` shows one vector before and after, its section 7). Absmax rounding sets its
one step per vector from that largest value, so every other value gains resolution:
rotation is what makes RTN usable. The razor already adapts: each group of 16 gets a
shift of its own, so an outlier costs only its own group, and rotation has little to
give it; what it takes, it takes by mixing the groups, carrying the loud group's energy
into the quiet ones, whose shifts grow with it. Where the rotated blocks are small the
rotation spreads less: stories260K's hidden size is 172 = 4 x 43, so Q_hidden works in
blocks of 4, where QuaRot's own non-power-of-two Hadamard matrices would mix all 172.
These models are tiny (dim 64); the papers compare on LLaMA models of 7B parameters and
more.
EOF
}

{
    cat <<EOF
# What the bits cost

Generated by \`make accuracy\` at $(made_at).
Every row is one run of the engine over \`$TEXT\` (the first 100 stories of the
TinyStories validation set), with the commands:

EOF
    for m in "${MODELS[@]}"; do
        echo "    $RUN $m --eval $TEXT --eval-modes all --json"
    done
    echo
    echo "and, for the last section,"
    echo
    for m in "${MODELS[@]}"; do
        echo "    $RUN $m --eval $TEXT --eval-modes $METHODS_CLS_FP32 --json"
    done
    echo "    $RUN models/stories260K.bin --eval $TEXT --eval-modes $METHODS -c 256 --json"
    cat <<EOF

How to read the columns: the text is cut into windows of the model's context (documents
joined with BOS, as in training); each window's second half is scored, so every scored
token has at least half a window of context (as llama.cpp's perplexity tool does). NLL
is the mean negative log-likelihood of the next token in nats, PPL = exp(NLL). Mean and
max KL are KL(fp32 || mode) of the next-token distributions, averaged over and maximal
among the scored positions; top-1 is how often the mode's most likely token is fp32's.
"all" is every mode and knob: G in {16, 32, 64, 128}, rounding or truncating razor,
classifier fp32 / INT8 / razored, the key and value cache types (5-bit razored codes or
INT8, \`-ctk\` / \`-ctv\`; "KV bits" is what the cache stores per key or value element at
the model's full context, scales and shifts included), the ablation that razors one
site at a time on top of w8a16 (stage 1 only) to show where the error comes from, and
the rotations of docs/SPEC.md section 7 (QuaRot-style: \`fp32/rot\`, \`quarot\`,
\`qrazor/rot\`; the last section compares the two methods).

These are tiny models (dim 64, head size 8): a weight row is four razoring groups and a
head of keys or values is a single group, so one large value sets the shift for
everything beside it. Their KV bits are high for the same reason: each token's head of 8
keys carries a float32 scale (4 bits per element), and the values' V^T is padded to
blocks of 16 rows; at head size 64 (\`./run MODEL -v\` on a stories110M-shaped model)
the 4-bit cache takes 4.77 bits per element, 5-bit or INT8 keys 6.64, both 8.52. The paper evaluates LLaMA models of 7B parameters and more; these
figures are not comparable with its results, only with each other.

EOF
    for m in "${MODELS[@]}"; do
        name=$(basename "$m" .bin)
        h=$(header "$name")
        echo "## $name"
        echo
        echo "$(field "$h" documents) documents, $(field "$h" tokens) tokens, $(field "$h" windows) windows of $(field "$h" window), $(field "$h" scored) scored tokens."
        echo
        table "$name"
        echo
        reading "$name"
        echo
    done
    comparison
} > "$tmp/page.md"
finish "$OUT" "$tmp/page.md" "make accuracy"
