#!/usr/bin/env bash
# docs/mca.sh - static estimates of the kernels' inner loops for docs/PERFORMANCE.md, on ARM
# and on x86: ours (kernels/arm/, kernels/x86/) beside llama.cpp's q4_0 kernels for the
# same instruction sets, each compiled as its project builds it, its loop bodies found in
# the assembly and given to llvm-mca, which predicts their steady-state cycles from LLVM's
# scheduling model of a core. No ARM hardware is involved: these are estimates of the loops
# alone (no memory stalls, no call or row overhead), for comparing instruction mixes, not
# measurements. The x86 part runs one loop natively where the machine can (docs/peak.c's
# vpdpbusd loop), to set the model beside the core.
#
#   LLAMA_CPP=/path/to/llama.cpp docs/mca.sh [arm] [x86]     (both when neither is named)
#
# writes the sections "## ARM: static estimates" and "## x86: static estimates" of
# docs/PERFORMANCE.md (make bench and docs/bench_hf.sh, which write the others, keep them).
#
# Needs llvm-mca 19 (Debian: llvm-19); for ARM aarch64-linux-gnu-gcc/g++ (Debian:
# gcc-aarch64-linux-gnu, g++-aarch64-linux-gnu), for x86 x86_64-linux-gnu-gcc/g++ (Debian's
# gcc and g++ on x86-64; gcc-x86-64-linux-gnu elsewhere). Nothing of llama.cpp is in this
# repository; without LLAMA_CPP the tables have our rows only.
#
# A row is cycles per 1024 multiply-adds (one weight times one activation). Our 4-bit
# kernel (neon.h; r4_block in avx2.c and avx512.c) runs a loop over 8-column steps inside a
# loop over groups; a group of G = 16 (the default) is 2 steps and the group's own work
# (the shift of its sums, the next group's set-up), all counted: the step loop's body twice
# plus the rest of the group loop's body, as one block. Our GEMMs of dotprod.c and
# avx512.c have one loop over units of 16 columns whose body includes each unit's
# activation shift, whatever G; avx2.c's runs steps of 4 columns (2 of each unit) inside a
# loop over pairs of units (U = 16 columns each at G = 16), counted as U / 2 = 8 steps plus
# the rest of the pair's loop (the shifts' vpmaddwd). llama.cpp's loops over blocks of 32 contain their
# per-block work (the scales' float products) already; its x86 GEMM (q4_0 8x8) has a loop
# over 4 pairs of activation rows inside its loop over blocks, which unpacks the weights:
# counted as 4 passes of the first and the rest of the second. Not counted: our packing of
# a panel (once per 512 columns of a 16-row block, for a whole batch of vectors) and the
# quantization of the activations, in either engine.
set -euo pipefail
cd "$(dirname "$0")/.."

MCA=${MCA:-$(command -v llvm-mca-19 || echo /usr/lib/llvm-19/bin/llvm-mca)}
CC_ARM=${CC_ARM:-aarch64-linux-gnu-gcc}
CXX_ARM=${CXX_ARM:-aarch64-linux-gnu-g++}
CC_X86=${CC_X86:-x86_64-linux-gnu-gcc}
CXX_X86=${CXX_X86:-x86_64-linux-gnu-g++}
OUT=docs/PERFORMANCE.md
PARTS=("$@")
[ ${#PARTS[@]} -gt 0 ] || PARTS=(arm x86)
for part in "${PARTS[@]}"; do
    case $part in
    arm) cc=$CC_ARM ;;
    x86) cc=$CC_X86 ;;
    *) echo "error: unknown part '$part' (arm or x86)" >&2; exit 1 ;;
    esac
    for tool in "$MCA" "$cc"; do
        command -v "$tool" >/dev/null || { echo "error: $tool not found (see the head of $0)" >&2; exit 1; }
    done
done
LLAMA_COMMIT=${LLAMA_CPP:+$(git -C "$LLAMA_CPP" rev-parse --short HEAD 2>/dev/null || echo unknown)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# loop FILE FUNCTION MACS [STEPS [CODE_BYTES]]: the instructions of the innermost loop of
# FUNCTION that does MACS multiply-adds per pass; with STEPS, that loop's body that many
# times and the rest of the smallest loop around it (one pass of it: our group, the pair
# of units of avx2.c's GEMM, llama.cpp's x86 block). With CODE_BYTES (ARM's neon.h), the
# inner loop is the one that shifts no bytes (sshl: the column-shift path) and loads
# CODE_BYTES of weights (16-byte registers: 64 for a whole block, 32 for a half).
# Multiply-adds: sdot 16, smmla 32, an 8-bit smull/smlal (8 lanes) 8; vpdpbusd 4 per 32-bit
# lane and vpmaddubsw 1 per byte (its products summed in pairs): 64 on zmm, 32 on ymm.
# ARCH (aarch64 or x86_64) says which assembly it reads (its comments and branches).
loop() {
    awk -v arch="$ARCH" -v fn="$2" -v want="$3" -v steps="${4:-0}" -v bytes="${5:-0}" '
    function strip(s) { sub(arch == "x86_64" ? "#.*" : "//.*", "", s); gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
    function out(s) { sub(/[ \t][0-9]+[bf]$/, " .Lback", s); print s } # llvm-mca takes no "3b" labels
    function branch(op) { return arch == "x86_64" ? op ~ /^j[a-z]+$/ : op ~ /^(b|b\..*|b[a-z][a-z]|cbn?z|tbn?z)$/ }
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
        if (branch(op)) {
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
                nf = split(line[k], f, /[ \t,]+/)
                if (f[1] ~ /^ld[rp]$/ && f[2] ~ /^q[0-9]+$/) loads += f[1] == "ldp" ? 32 : 16
                if (f[1] == "sdot") macs += 16
                if (f[1] == "smmla") macs += 32
                if (f[1] ~ /^(smull|smull2|smlal|smlal2)$/ && f[2] ~ /\.8h$/) macs += 8
                if (f[1] == "sshl" && f[2] ~ /\.16b$/) shifts++
                if (f[1] ~ /^(vpdpbusds?|vpmaddubsw)$/) macs += f[nf] ~ /zmm/ ? 64 : f[nf] ~ /ymm/ ? 32 : 16 # AT&T: destination last
            }
            if (macs != want || (bytes && (shifts || loads != bytes))) continue
            if (!steps) { for (k = lo[i]; k <= hi[i]; k++) out(line[k]); exit }
            best = 0 # the smallest loop around it
            for (j = 1; j <= loops; j++)
                if (lo[j] <= lo[i] && hi[j] >= hi[i] && j != i && (!best || hi[j] - lo[j] < hi[best] - lo[best])) best = j
            for (r = 0; r < steps; r++) for (k = lo[i]; k <= hi[i]; k++) out(line[k])
            for (k = lo[best]; k <= hi[best]; k++) if (k < lo[i] || k > hi[i]) out(line[k])
            exit
        }
    }' "$1"
}

# The cycles per 1024 multiply-adds of a block of MACS multiply-adds on each core of CPUS
# (for ARCH; ATTR: the features to add to the core's, e.g. +dotprod).
row() {
    local name=$1 file=$2 macs=$3 attr=${4:-} cells="" cpu cycles
    if [ ! -s "$file" ]; then echo "error: no loop found for: $name" >&2; exit 1; fi
    for cpu in "${CPUS[@]}"; do
        cycles=$("$MCA" -mtriple="$ARCH" -mcpu="$cpu" ${attr:+-mattr="$attr"} -iterations=1000 "$file" 2>"$tmp/mca.err" |
            awk '/^Total Cycles:/ { print $3 }') && [ -n "$cycles" ] ||
            { echo "error: llvm-mca -mcpu=$cpu could not read the loop of: $name" >&2; head -n 5 "$tmp/mca.err" >&2; exit 1; }
        cells+=" | $(awk -v c="$cycles" -v m="$macs" 'BEGIN { printf "%.1f", c / 1000 * 1024 / m }')"
    done
    echo "| $name$cells |"
}

# place HEADING SECTION: OUT with the section SECTION (a file, starting with HEADING)
# anew where it is (a heading that starts as HEADING does before its parenthesis), or, the
# first time, after the other static estimates (this script's sections stay together),
# else at the end; the rest of the file as it is (the sections of make bench and of
# docs/bench_hf.sh).
place() {
    : >"$tmp/before.md"
    : >"$tmp/after.md"
    awk -v h="${1%% (*}" -v b="$tmp/before.md" -v a="$tmp/after.md" '
    FNR == NR { # first pass: where the section starts and ends, or where the last static estimates end
        if (index($0, h) == 1) { start = FNR; next }
        if (/^## /) {
            if (start && !end) end = FNR
            if (estimates) { estimates_end = FNR; estimates = 0 }
            if ($0 ~ /^## .*static estimates/) { estimates = 1; estimates_end = 0 }
        }
        next
    }
    FNR == 1 { if (start) { cut = start; resume = end } else cut = resume = estimates_end } # 0: none
    !cut || FNR < cut { print > b; next }
    resume && FNR >= resume { print > a }' "$OUT" "$OUT"
    while [ -s "$tmp/before.md" ] && [ -z "$(tail -n 1 "$tmp/before.md")" ]; do sed -i '$d' "$tmp/before.md"; done
    {
        cat "$tmp/before.md"; echo; cat "$2"
        if [ -s "$tmp/after.md" ]; then echo; cat "$tmp/after.md"; fi
    } >"$tmp/page.md"
    cat "$tmp/page.md" >"$OUT"
    echo "wrote ${1#\#\# } in $OUT" >&2
}

arm() {
    ARCH=aarch64
    # LLVM 19 models the Cortex-A76 and the A72 with its Cortex-A57 model (one column for both),
    # and the Apple M1 with its Cyclone (Apple A7) model: both are approximations; Neoverse N1
    # (a server Cortex-A76) has a model of its own. The i8mm level's cores (which have the int8
    # matrix multiply) get a table of their own: the M2 (Cyclone model again), Neoverse N2 and
    # Neoverse V1 (Graviton 3), both with models of their own.
    CPUS=(apple-m1 neoverse-n1 cortex-a76)
    local CPUS_I8MM=(apple-m2 neoverse-n2 neoverse-v1)

    # Our kernels as the Makefile builds them (-O2, and dotprod.c and i8mm.c with their -march).
    local flags=(-std=c11 -O2 -ffp-contract=off -I. -D_POSIX_C_SOURCE=200809L -S)
    "$CC_ARM" "${flags[@]}" kernels/arm/neon.c -o "$tmp/neon.s"
    "$CC_ARM" "${flags[@]}" -march=armv8.2-a+dotprod kernels/arm/dotprod.c -o "$tmp/dotprod.s"
    "$CC_ARM" "${flags[@]}" -march=armv8.2-a+dotprod+i8mm kernels/arm/i8mm.c -o "$tmp/i8mm.s"
    if [ -n "${LLAMA_CPP:-}" ]; then # as llama.cpp's CMake builds them (-O3)
        local inc=(-I"$LLAMA_CPP/ggml/include" -I"$LLAMA_CPP/ggml/src" -I"$LLAMA_CPP/ggml/src/ggml-cpu" -D_GNU_SOURCE -O3 -S)
        local src=$LLAMA_CPP/ggml/src/ggml-cpu
        "$CC_ARM" "${inc[@]}" -march=armv8-a -std=c11 "$src/ggml-cpu-quants.c" -o "$tmp/llama-neon.s"
        "$CC_ARM" "${inc[@]}" -march=armv8.2-a+dotprod -std=c11 "$src/ggml-cpu-quants.c" -o "$tmp/llama-dotprod.s"
        "$CXX_ARM" "${inc[@]}" -march=armv8.2-a+dotprod -std=c++17 "$src/ggml-cpu-aarch64.cpp" \
            -o "$tmp/llama-aarch64.s" 2>/dev/null
        "$CXX_ARM" "${inc[@]}" -march=armv8.2-a+dotprod+i8mm -std=c++17 "$src/ggml-cpu-aarch64.cpp" \
            -o "$tmp/llama-aarch64-i8mm.s" 2>/dev/null
    fi

    local HEADING="## ARM: static estimates (llvm-mca, not measured)"
    {
        cat <<EOF
$HEADING

No ARM hardware was used. These are llvm-mca's predictions (LLVM 19's scheduling models)
of the kernels' inner loops in steady state, with the data in L1: what the instruction
mix costs on each core, not what a model decodes per second. llvm-mca 19 has no model of
its own for the Cortex-A76 and A72 (it uses its Cortex-A57 one) nor for the M1 (it uses
Apple's A7, Cyclone): only the Neoverse N1 column models the core it names. Ours at
the default G = 16 (a group's shift and set-up included), compiled as the Makefile builds
them; llama.cpp${LLAMA_COMMIT:+ (commit $LLAMA_COMMIT)} as its
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
    } >"$tmp/arm.md"
    place "$HEADING" "$tmp/arm.md"
}

x86() {
    ARCH=x86_64
    # LLVM 19 knows znver5 (Zen 5) but schedules it with its Zen 4 model: one column for both.
    CPUS=(znver4 icelake-server)

    # Our kernels as the Makefile builds them (-O2, each level's file with its -m flags), and
    # docs/peak.c as make bench builds it.
    local flags=(-std=c11 -O2 -ffp-contract=off -I. -D_POSIX_C_SOURCE=200809L -S)
    "$CC_X86" "${flags[@]}" -mavx2 -mfma kernels/x86/avx2.c -o "$tmp/avx2.s"
    "$CC_X86" "${flags[@]}" -mavx2 -mfma -mavx512f -mavx512cd -mavx512bw -mavx512dq -mavx512vl -mavx512vnni \
        kernels/x86/avx512.c -o "$tmp/avx512.s"
    "$CC_X86" -O2 -S docs/peak.c -o "$tmp/peak.s"
    if [ -n "${LLAMA_CPP:-}" ]; then
        # As llama.cpp's CMake builds them (-O3) without GGML_NATIVE: for an AVX2 CPU
        # (GGML_AVX2, GGML_FMA, GGML_F16C), and for an AVX-512 one (GGML_AVX512 and
        # GGML_AVX512_VNNI added).
        local inc=(-I"$LLAMA_CPP/ggml/include" -I"$LLAMA_CPP/ggml/src" -I"$LLAMA_CPP/ggml/src/ggml-cpu" -D_GNU_SOURCE -O3 -S)
        local src=$LLAMA_CPP/ggml/src/ggml-cpu
        local avx2=(-msse4.2 -mf16c -mfma -mavx -mavx2)
        local avx512=("${avx2[@]}" -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw -mavx512vnni)
        "$CC_X86" "${inc[@]}" "${avx2[@]}" -std=c11 "$src/ggml-cpu-quants.c" -o "$tmp/llama-avx2.s"
        "$CC_X86" "${inc[@]}" "${avx512[@]}" -std=c11 "$src/ggml-cpu-quants.c" -o "$tmp/llama-avx512.s"
        "$CXX_X86" "${inc[@]}" "${avx2[@]}" -std=c++17 "$src/ggml-cpu-aarch64.cpp" -o "$tmp/llama-x8-avx2.s" 2>/dev/null
        "$CXX_X86" "${inc[@]}" "${avx512[@]}" -std=c++17 "$src/ggml-cpu-aarch64.cpp" -o "$tmp/llama-x8-avx512.s" 2>/dev/null
    fi

    # The one native figure: docs/peak.c's loop on this machine, if it has AVX-512 VNNI.
    local measured=""
    if [ "$(uname -m)" = x86_64 ] && "$CC_X86" -O2 docs/peak.c -o "$tmp/peak" 2>/dev/null; then
        local clock_ghz peak_gmacs per_cycle instruction cpu_name
        read -r clock_ghz peak_gmacs per_cycle instruction < <("$tmp/peak") || true # no line: no AVX2 either
        cpu_name=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
        [ "$instruction" = vpdpbusd ] && measured=$(awk -v c="$clock_ghz" -v g="$peak_gmacs" -v p="$per_cycle" -v n="${cpu_name:-this machine}" \
            'BEGIN { printf "On the machine this page was made on (%s), docs/peak.c measured %.2f vpdpbusd a cycle at %.2f GHz (%.0f G multiply-adds per second): **%.1f cycles per 1024 multiply-adds**.", n, p, c, g, 1024 / (64 * p) }' | fmt -w 90)
    fi

    local HEADING="## x86: static estimates (llvm-mca)"
    {
        cat <<EOF
$HEADING

The same for the x86 levels: llvm-mca's predictions (LLVM 19) of the inner loops in steady
state, with the data in L1, first on cores with AVX-512 VNNI: Zen 4 (\`znver4\`; LLVM 19
knows \`znver5\` but schedules Zen 5 with this same model) and Ice Lake server
(\`icelake-server\`). Ours at the default G = 16, compiled as the Makefile builds them
(avx2.c with \`-mavx2 -mfma\`, avx512.c with AVX-512 F/CD/BW/DQ/VL and VNNI);
llama.cpp${LLAMA_COMMIT:+ (commit $LLAMA_COMMIT)} as its CMake builds them (-O3) for an AVX-512 VNNI CPU and
for an AVX2 one: the repacked q4_0 8x8 kernels its CPU backend uses for q4_0 weights on
every AVX2 CPU (gemm for prefill, gemv for decode), and \`ggml_vec_dot_q4_0_q8_0\`, for
weights not repacked. Not counted: our packing of a GEMM's panels (once per 512 columns
of a 16-row block, for a whole batch of vectors) and the quantization of activations, in
either engine; the head of docs/mca.sh says which loops each row is. Made by
\`LLAMA_CPP=/path/to/llama.cpp docs/mca.sh x86\`.

The first row is the ceiling: docs/peak.c's loop of twelve independent vpdpbusd on zmm
(with the register copies gcc puts between them), with which make bench measures the
peak. LLVM 19's Zen 4 model takes 2 cycles for every vpdpbusd, on ymm or zmm, and 0.5 for
a vpmaddubsw on ymm: in its column a loop of vpmaddubsw (32 multiply-adds) beats one of
vpdpbusd (64), and no VNNI loop goes below 32 cycles per 1024 multiply-adds. Its Ice Lake
model takes 0.5 cycles for a vpdpbusd, and puts register copies on the same ports.
${measured:-The machine this page was made on could not run that loop (no AVX-512 VNNI).}
What a whole prefill reaches, against the same peak, is make bench's "How near the hardware".

EOF
        echo "| loop: cycles per 1024 multiply-adds (llvm-mca 19) | Zen 4, Zen 5 (Zen 4 model) | Ice Lake server |"
        echo "| --- | ---: | ---: |"
        # docs/peak.c: 12 vpdpbusd a pass (768). Ours: an 8-column step of the 16-row block
        # for 1 vector (avx512 decode: 128, 2 a group), of a half block (avx2: 64); the avx512
        # GEMM, a unit of 16 columns for a tile of 8 vectors (2048); the avx2 GEMM, a step of 4
        # columns for a tile of 3 (192, 8 steps a pair of units).
        loop "$tmp/peak.s" vpdpbusd_per_second 768 >"$tmp/peak-loop.s"
        loop "$tmp/avx512.s" r4_block_avx512 128 2 >"$tmp/our-avx512-decode.s"
        loop "$tmp/avx512.s" r4_gemm_avx512 2048 >"$tmp/our-avx512-gemm.s"
        loop "$tmp/avx2.s" r4_block_avx2 64 2 >"$tmp/our-avx2-decode.s"
        loop "$tmp/avx2.s" r4_gemm_avx2 192 8 >"$tmp/our-avx2-gemm.s"
        row "docs/peak.c: 12 independent vpdpbusd (zmm)" "$tmp/peak-loop.s" 768
        row "ours, avx512, decode (1 vector, G = 16)" "$tmp/our-avx512-decode.s" 256
        row "ours, avx512, prefill: GEMM (16 rows x 8 vectors, any G)" "$tmp/our-avx512-gemm.s" 2048
        row "ours, avx2, decode (1 vector, G = 16)" "$tmp/our-avx2-decode.s" 128
        row "ours, avx2, prefill: GEMM (16 rows x 3 vectors, G = 16)" "$tmp/our-avx2-gemm.s" 1536
        if [ -n "${LLAMA_CPP:-}" ]; then
            # ggml_vec_dot_q4_0_q8_0: 1 block of 32 per pass (32); the repacked q4_0_8x8 kernels:
            # 8 rows x 1 block (gemv: 256), and 4 vectors x 16 rows (AVX-512: 2048) or x 8 rows
            # (AVX2: 1024) x 1 block, 4 times a pass of the block loop (gemm).
            local build
            for build in avx512 avx2; do
                loop "$tmp/llama-$build.s" ggml_vec_dot_q4_0_q8_0 32 >"$tmp/l-dot-$build.s"
                loop "$tmp/llama-x8-$build.s" _ZL23ggml_gemv_q4_0_8x8_q8_0iPfmPKvS1_ii 256 >"$tmp/l-gemv-$build.s"
            done
            loop "$tmp/llama-x8-avx512.s" _ZL23ggml_gemm_q4_0_8x8_q8_0iPfmPKvS1_ii 2048 4 >"$tmp/l-gemm-avx512.s"
            loop "$tmp/llama-x8-avx2.s" _ZL23ggml_gemm_q4_0_8x8_q8_0iPfmPKvS1_ii 1024 4 >"$tmp/l-gemm-avx2.s"
            row "llama.cpp, AVX-512 VNNI build, ggml_vec_dot_q4_0_q8_0" "$tmp/l-dot-avx512.s" 32
            row "llama.cpp, AVX-512 VNNI build, ggml_gemv_q4_0_8x8_q8_0 (repacked)" "$tmp/l-gemv-avx512.s" 256
            row "llama.cpp, AVX-512 VNNI build, ggml_gemm_q4_0_8x8_q8_0 (repacked)" "$tmp/l-gemm-avx512.s" 8192
        fi
        cat <<EOF

The AVX2 loops again on cores without AVX-512, where our avx2 level and llama.cpp's AVX2
build run: Zen 3 (\`znver3\`) and Skylake (\`skylake\`, the client core).

EOF
        echo "| loop: cycles per 1024 multiply-adds (llvm-mca 19) | Zen 3 | Skylake |"
        echo "| --- | ---: | ---: |"
        CPUS=(znver3 skylake)
        row "ours, avx2, decode (1 vector, G = 16)" "$tmp/our-avx2-decode.s" 128
        row "ours, avx2, prefill: GEMM (16 rows x 3 vectors, G = 16)" "$tmp/our-avx2-gemm.s" 1536
        if [ -n "${LLAMA_CPP:-}" ]; then
            row "llama.cpp, AVX2 build, ggml_vec_dot_q4_0_q8_0" "$tmp/l-dot-avx2.s" 32
            row "llama.cpp, AVX2 build, ggml_gemv_q4_0_8x8_q8_0 (repacked)" "$tmp/l-gemv-avx2.s" 256
            row "llama.cpp, AVX2 build, ggml_gemm_q4_0_8x8_q8_0 (repacked)" "$tmp/l-gemm-avx2.s" 4096
        fi
    } >"$tmp/x86.md"
    place "$HEADING" "$tmp/x86.md"
}

for part in "${PARTS[@]}"; do "$part"; done
