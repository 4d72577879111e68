#!/usr/bin/env bash
# Runs the fuzz targets for SECONDS each, or for N executions each (--runs N), all of
# them or those named, one after the other, from the committed seeds
# (tests/fuzz/corpus/) plus what earlier runs found (build/fuzz/corpus/), and prints one
# line per target: executions, coverage (edges), features, corpus size, wall seconds,
# findings. A finding (crash, sanitizer report, leak, timeout) is saved in
# build/fuzz/artifacts/ and fails the run.
#
#   tests/fuzz/run.sh SECONDS [TARGET...]       (after make fuzz-build)
#   tests/fuzz/run.sh --runs N [TARGET...]      a campaign of N executions per target
set -uo pipefail
cd "$(dirname "$0")/../.."
usage="usage: tests/fuzz/run.sh SECONDS|--runs N [TARGET...]"
if [[ ${1:-} == --runs ]]; then
    limit=(-runs="${2:?$usage}")
    shift 2
else
    limit=(-max_total_time="${1:?$usage}")
    shift
fi
# target:harness (the two tokenizer targets run one harness from different seeds)
all="checkpoint:checkpoint qrz:qrz tokenizer:tokenizer sentencepiece:tokenizer tokenizer_json:tokenizer_json
     safetensors:safetensors hf_config:hf_config eval_text:eval_text cli:cli"
targets=("$@")
# libFuzzer's limit on one input is wall-clock time: under `nice -n 19` on a busy shared
# machine a harness was starved for up to 57 s inside inputs that replay in 3 to 8 ms,
# which is no hang of ours. FUZZ_UNIT_SECONDS sets another.
unit_seconds=${FUZZ_UNIT_SECONDS:-300}
status=0
for run in $all; do
    target=${run%%:*} harness=${run#*:}
    if ((${#targets[@]})) && [[ ! " ${targets[*]} " == *" $target "* ]]; then continue; fi
    mkdir -p "build/fuzz/corpus/$target" build/fuzz/artifacts build/fuzz/logs
    log="build/fuzz/logs/$target.log"
    start=$SECONDS
    "build/fuzz/fuzz_$harness" "${limit[@]}" -timeout="$unit_seconds" -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="build/fuzz/artifacts/$target-" \
        "build/fuzz/corpus/$target" "tests/fuzz/corpus/$target" >"$log" 2>&1
    rc=$?
    wall=$((SECONDS - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    edges=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    features=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    corpus=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    if ((rc == 0)); then
        findings=0
    else
        findings=1
        status=1
    fi
    printf '%-14s %12s executions %6s edges %7s features %6s corpus %7s s  %d findings%s\n' "$target" \
        "${execs:-?}" "${edges:-?}" "${features:-?}" "${corpus:-?}" "$wall" "$findings" \
        "$( ((rc)) && echo "  (see $log)")"
done
exit $status
