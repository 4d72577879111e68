#!/usr/bin/env bash
# docs/mca.sh - static estimates of the ARM kernels' inner loops for docs/PERFORMANCE.md:
# ours (kernels/arm/) beside llama.cpp's NEON q4_0 kernels, each compiled for AArch64 as
# its project builds it, its loop bodies found in the assembly and given to llvm-mca, which
# predicts their steady-state cycles from LLVM's scheduling model of a core. No ARM
# hardware is involved: these are estimates of the loops alone (no memory stalls, no
# call or row overhead), for comparing instruction mixes, not measurements.
#
#   LLAMA_CPP=/path/to/llama.cpp docs/mca.sh
#
# writes the section "## ARM: static estimates" of docs/PERFORMANCE.md (make bench and
# docs/bench_hf.sh, which write the others, keep it).
#
# Needs aarch64-linux-gnu-gcc/g++ (Debian: gcc-aarch64-linux-gnu, g++-aarch64-linux-gnu)
# and llvm-mca 19 (Debian: llvm-19). Nothing of llama.cpp is in this repository; without
# LLAMA_CPP the table has our rows only.
#
# A row is cycles per 1024 multiply-adds (one weight times one activation). Our 4-bit
# kernel (neon.h) runs a loop over 8-column steps inside a loop over groups; a group of
# G = 16 (the default) is 2 steps and the group's own work (the shift of its sums, the
# next group's set-up), all counted: the step loop's body twice plus the rest of the group
# loop's body, as one block. Our GEMM (dotprod.c) has one loop over units of 16 columns
# whose body includes each unit's activation shift, whatever G. llama.cpp's loops over
# blocks of 32 contain their per-block work (the scales' float products) already.
set -euo pipefail
cd "$(dirname "$0")/.."

MCA=${MCA:-$(command -v llvm-mca-19 || echo /usr/lib/llvm-19/bin/llvm-mca)}
CC_ARM=${CC_ARM:-aarch64-linux-gnu-gcc}
CXX_ARM=${CXX_ARM:-aarch64-linux-gnu-g++}
# LLVM 19 models the Cortex-A76 and the A72 with its Cortex-A57 model (one column for both),
# and the Apple M1 with its Cyclone (Apple A7) model: both are approximations; Neoverse N1
# (a server Cortex-A76) has a model of its own. The i8mm level's cores (which have the int8
# matrix multiply) get a table of their own: the M2 (Cyclone model again), Neoverse N2 and
# Neoverse V1 (Graviton 3), both with models of their own.
CPUS=(apple-m1 neoverse-n1 cortex-a76)
CPUS_I8MM=(apple-m2 neoverse-n2 neoverse-v1)
for tool in "$MCA" "$CC_ARM"; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found (see the head of $0)" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Our kernels as the Makefile builds them (-O2, and dotprod.c and i8mm.c with their -march).
flags=(-std=c11 -O2 -ffp-contract=off -I. -D_POSIX_C_SOURCE=200809L -S)
"$CC_ARM" "${flags[@]}" kernels/arm/neon.c -o "$tmp/neon.s"
"$CC_ARM" "${flags[@]}" -march=armv8.2-a+dotprod kernels/arm/dotprod.c -o "$tmp/dotprod.s"
"$CC_ARM" "${flags[@]}" -march=armv8.2-a+dotprod+i8mm kernels/arm/i8mm.c -o "$tmp/i8mm.s"
if [ -n "${LLAMA_CPP:-}" ]; then # as llama.cpp's CMake builds them (-O3)
    inc=(-I"$LLAMA_CPP/ggml/include" -I"$LLAMA_CPP/ggml/src" -I"$LLAMA_CPP/ggml/src/ggml-cpu" -D_GNU_SOURCE -O3 -S)
    src=$LLAMA_CPP/ggml/src/ggml-cpu
    "$CC_ARM" "${inc[@]}" -march=armv8-a -std=c11 "$src/ggml-cpu-quants.c" -o "$tmp/llama-neon.s"
    "$CC_ARM" "${inc[@]}" -march=armv8.2-a+dotprod -std=c11 "$src/ggml-cpu-quants.c" -o "$tmp/llama-dotprod.s"
    "$CXX_ARM" "${inc[@]}" -march=armv8.2-a+dotprod -std=c++17 "$src/ggml-cpu-aarch64.cpp" \
        -o "$tmp/llama-aarch64.s" 2>/dev/null
    "$CXX_ARM" "${inc[@]}" -march=armv8.2-a+dotprod+i8mm -std=c++17 "$src/ggml-cpu-aarch64.cpp" \
        -o "$tmp/llama-aarch64-i8mm.s" 2>/dev/null
fi

# loop FILE FUNCTION MACS [GROUP_STEPS CODE_BYTES]: the instructions of the innermost loop
# of FUNCTION that does MACS multiply-adds per pass; with GROUP_STEPS (ours), the one that
# shifts no bytes (sshl: the column-shift path) and loads CODE_BYTES of weights (16-byte
# registers: 64 for a whole block, 32 for a half), its body that many times and the rest
# of the loop around it.
# Multiply-adds: sdot 16, smmla 32, an 8-bit smull/smlal (8 lanes) 8.
loop() {
    awk -v fn="$2" -v want="$3" -v steps="${4:-0}" -v bytes="${5:-0}" '
    function strip(s) { sub(/\/\/.*/, "", s); gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
    function out(s) { sub(/[ \t][0-9]+[bf]$/, " .Lback", s); print s } # llvm-mca takes no "3b" labels
    $0 ~ "^" fn "(\\.[a-z0-9.]+)?:" { on = 1; next } # the function, or a clone of it (.constprop.0)
    on && /^\t\.size/ { on = 0 }
    !on { next }
    {
        s = $0
        if (s ~ /^[ \t]*\.inst[ \t]+0x[0-9a-f]+[ \t]*\/\//) sub(/^[^\/]*\/\/[ \t]*/, "", s) # an encoded sdot: its text
        s = strip(s)
        while (match(s, /^(\.L[A-Za-z0-9_]+|[0-9]+):/)) { # labels, maybe before an instruction
            name = substr(s, 1, RLENGTH - 1); s = strip(substr(s, RLENGTH + 1))
            at[name] = n; if (name ~ /^[0-9]+$/) last[name] = n
        }
        if (s == "" || s ~ /^\./) next
        line[n] = s
        split(s, f, /[ \t,]+/); op = f[1]; target = f[split(s, g, /[ \t,]+/)]
        if (op ~ /^(b|b\..*|b[a-z][a-z]|cbn?z|tbn?z)$/) {
            t = target; sub(/b$/, "", t)
            if (target ~ /^[0-9]+b$/ && (t in last)) { lo[++loops] = last[t]; hi[loops] = n }
            else if ((target in at) && at[target] <= n) { lo[++loops] = at[target]; hi[loops] = n }
        }
        n++
    }
    END {
        for (i = 1; i <= loops; i++) {
            inner = 1
            for (j = 1; j <= loops; j++)
                if (j != i && lo[j] >= lo[i] && hi[j] <= hi[i] && (lo[j] != lo[i] || hi[j] != hi[i])) inner = 0
            if (!inner) continue
            macs = 0; shifts = 0; loads = 0
            for (k = lo[i]; k <= hi[i]; k++) {
                split(line[k], f, /[ \t,]+/)
                if (f[1] ~ /^ld[rp]$/ && f[2] ~ /^q[0-9]+$/) loads += f[1] == "ldp" ? 32 : 16
                if (f[1] == "sdot") macs += 16
                if (f[1] == "smmla") macs += 32
                if (f[1] ~ /^(smull|smull2|smlal|smlal2)$/ && f[2] ~ /\.8h$/) macs += 8
                if (f[1] == "sshl" && f[2] ~ /\.16b$/) shifts++
            }
            if (macs != want || (steps && (shifts || loads != bytes))) continue
            if (!steps) { for (k = lo[i]; k <= hi[i]; k++) out(line[k]); exit }
            best = 0 # the smallest loop around it: the group loop
            for (j = 1; j <= loops; j++)
                if (lo[j] <= lo[i] && hi[j] >= hi[i] && j != i && (!best || hi[j] - lo[j] < hi[best] - lo[best])) best = j
            for (r = 0; r < steps; r++) for (k = lo[i]; k <= hi[i]; k++) out(line[k])
            for (k = lo[best]; k <= hi[best]; k++) if (k < lo[i] || k > hi[i]) out(line[k])
            exit
        }
    }' "$1"
}

# The cycles per 1024 multiply-adds of a block of MACS multiply-adds on each core.
row() {
    local name=$1 file=$2 macs=$3 attr=$4 cells="" cpu cycles
    if [ ! -s "$file" ]; then echo "error: no loop found for: $name" >&2; exit 1; fi
    for cpu in "${CPUS[@]}"; do
        cycles=$("$MCA" -mtriple=aarch64 -mcpu="$cpu" -mattr="$attr" -iterations=1000 "$file" 2>/dev/null |
            awk '/^Total Cycles:/ { print $3 }')
        cells+=" | $(awk -v c="$cycles" -v m="$macs" 'BEGIN { printf "%.1f", c / 1000 * 1024 / m }')"
    done
    echo "| $name$cells |"
}

OUT=docs/PERFORMANCE.md
HEADING="## ARM: static estimates (llvm-mca, not measured)"
{
    cat <<EOF
$HEADING

No ARM hardware was used. These are llvm-mca's predictions (LLVM 19's scheduling models)
of the kernels' inner loops in steady state, with the data in L1: what the instruction
mix costs on each core, not what a model decodes per second. llvm-mca 19 has no model of
its own for the Cortex-A76 and A72 (it uses its Cortex-A57 one) nor for the M1 (it uses
Apple's A7, Cyclone): only the Neoverse N1 column models the core it names. Ours at
the default G = 16 (a group's shift and set-up included), compiled as the Makefile builds
them; llama.cpp${LLAMA_CPP:+ (commit $(git -C "$LLAMA_CPP" rev-parse --short HEAD 2>/dev/null || echo unknown))} as its
CMake builds them (-O3), its q4_0 kernels, whose loops include their blocks' float
scaling. Made by \`LLAMA_CPP=/path/to/llama.cpp docs/mca.sh\` (gcc-aarch64-linux-gnu, llvm-19).

EOF
    echo "| loop: cycles per 1024 multiply-adds (llvm-mca 19) | Apple M1 (Cyclone model) | Neoverse N1 | Cortex-A76, A72 (A57 model) |"
    echo "| --- | ---: | ---: | ---: |"
    # Ours: an 8-column step of the 16-row block for 1 vector (decode: 128 multiply-adds), or
    # of a half block for a tile of 4 (neon's prefill: 256); a group of 16 columns is 2
    # steps. The dotprod level's prefill is its GEMM: a unit of 16 columns of the 16-row
    # panel for 2 vectors (512).
    loop "$tmp/neon.s" r4_block_level 128 2 64 >"$tmp/our-neon-decode.s"
    loop "$tmp/neon.s" r4_block_level 256 2 32 >"$tmp/our-neon-prefill.s"
    loop "$tmp/dotprod.s" r4_block_level 128 2 64 >"$tmp/our-dot-decode.s"
    loop "$tmp/dotprod.s" r4_gemm_level 512 >"$tmp/our-dot-gemm.s"
    loop "$tmp/i8mm.s" r4_gemm_level 512 >"$tmp/our-i8mm-gemm.s"
    row "ours, neon, decode (1 vector, G = 16)" "$tmp/our-neon-decode.s" 256 +neon
    row "ours, neon, prefill (4 vectors, G = 16)" "$tmp/our-neon-prefill.s" 512 +neon
    row "ours, dotprod, decode (1 vector, G = 16)" "$tmp/our-dot-decode.s" 256 +dotprod
    row "ours, dotprod, prefill: GEMM (16 rows x 2 vectors, any G)" "$tmp/our-dot-gemm.s" 512 +dotprod
    if [ -n "${LLAMA_CPP:-}" ]; then
        # ggml_vec_dot_q4_0_q8_0: 2 blocks of 32 per pass (the ARMv8.0 build emulates sdot with
        # smull); the repacked q4_0_4x4 kernels: 4 rows x 1 block (gemv), 4 rows x 16 vectors x
        # 1 block (gemm, assembly: its main loop) per pass.
        loop "$tmp/llama-neon.s" ggml_vec_dot_q4_0_q8_0 64 >"$tmp/l-neon.s"
        loop "$tmp/llama-dotprod.s" ggml_vec_dot_q4_0_q8_0 64 >"$tmp/l-dot.s"
        loop "$tmp/llama-aarch64.s" _ZL23ggml_gemv_q4_0_4x4_q8_0iPfmPKvS1_ii 128 >"$tmp/l-gemv.s"
        loop "$tmp/llama-aarch64.s" _ZL23ggml_gemm_q4_0_4x4_q8_0iPfmPKvS1_ii 2048 >"$tmp/l-gemm.s"
        row "llama.cpp, ARMv8.0, ggml_vec_dot_q4_0_q8_0" "$tmp/l-neon.s" 64 +neon
        row "llama.cpp, dotprod, ggml_vec_dot_q4_0_q8_0" "$tmp/l-dot.s" 64 +dotprod
        row "llama.cpp, dotprod, ggml_gemv_q4_0_4x4_q8_0 (repacked)" "$tmp/l-gemv.s" 128 +dotprod
        row "llama.cpp, dotprod, ggml_gemm_q4_0_4x4_q8_0 (repacked)" "$tmp/l-gemm.s" 2048 +dotprod
    fi
    cat <<EOF

The prefill loops again on cores with the int8 matrix multiply (smmla), where the i8mm
level runs: Apple M2 and later (LLVM's Cyclone model again), Neoverse N2, Neoverse V1
(Graviton 3). llama.cpp's q4_0_4x8 GEMM is its smmla one.

EOF
    echo "| loop: cycles per 1024 multiply-adds (llvm-mca 19) | Apple M2 (Cyclone model) | Neoverse N2 | Neoverse V1 |"
    echo "| --- | ---: | ---: | ---: |"
    CPUS=("${CPUS_I8MM[@]}")
    row "ours, dotprod, prefill: GEMM (16 rows x 2 vectors, any G)" "$tmp/our-dot-gemm.s" 512 +dotprod
    row "ours, i8mm, prefill: GEMM (16 rows x 2 vectors, any G)" "$tmp/our-i8mm-gemm.s" 512 +dotprod,+i8mm
    if [ -n "${LLAMA_CPP:-}" ]; then
        # The q4_0_4x8 GEMM (assembly): 4 rows x 16 vectors x 1 block per pass of its main loop.
        loop "$tmp/llama-aarch64-i8mm.s" _ZL23ggml_gemm_q4_0_4x8_q8_0iPfmPKvS1_ii 2048 >"$tmp/l-gemm-i8mm.s"
        row "llama.cpp, dotprod, ggml_gemm_q4_0_4x4_q8_0 (repacked)" "$tmp/l-gemm.s" 2048 +dotprod
        row "llama.cpp, i8mm, ggml_gemm_q4_0_4x8_q8_0 (repacked)" "$tmp/l-gemm-i8mm.s" 2048 +dotprod,+i8mm
    fi
} >"$tmp/section.md"
# The rest of the file as it is (the sections before this one, make bench's, and after it,
# docs/bench_hf.sh's), with this section anew in its place, or at the end the first time.
awk -v h="$HEADING" '$0 == h { exit } { print }' "$OUT" >"$tmp/before.md"
awk -v h="$HEADING" '$0 == h { on = 1; next } on && /^## / { after = 1 } after' "$OUT" >"$tmp/after.md"
while [ -s "$tmp/before.md" ] && [ -z "$(tail -n 1 "$tmp/before.md")" ]; do sed -i '$d' "$tmp/before.md"; done
{
    cat "$tmp/before.md"; echo; cat "$tmp/section.md"
    if [ -s "$tmp/after.md" ]; then echo; cat "$tmp/after.md"; fi
} >"$OUT"
echo "wrote $OUT" >&2
