#!/usr/bin/env bash
# Runs the fuzz targets for SECONDS each (all of them, or those named), one after the
# other, from the committed seeds (tests/fuzz/corpus/) plus what earlier runs found
# (build/fuzz/corpus/), and
# prints one line per target: executions, coverage (edges), findings. A finding (crash,
# sanitizer report, leak, timeout) is saved in build/fuzz/artifacts/ and fails the run.
#
#   tests/fuzz/run.sh SECONDS [TARGET...]      (after make fuzz-build)
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:?usage: tests/fuzz/run.sh SECONDS [TARGET...]}
shift
# target:harness (the two tokenizer targets run one harness from different seeds)
all="checkpoint:checkpoint qrz:qrz tokenizer:tokenizer sentencepiece:tokenizer tokenizer_json:tokenizer_json
     safetensors:safetensors hf_config:hf_config eval_text:eval_text cli:cli"
targets=("$@")
status=0
for run in $all; do
    target=${run%%:*} harness=${run#*:}
    if ((${#targets[@]})) && [[ ! " ${targets[*]} " == *" $target "* ]]; then continue; fi
    mkdir -p "build/fuzz/corpus/$target" build/fuzz/artifacts build/fuzz/logs
    log="build/fuzz/logs/$target.log"
    "build/fuzz/fuzz_$harness" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="build/fuzz/artifacts/$target-" \
        "build/fuzz/corpus/$target" "tests/fuzz/corpus/$target" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    edges=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    if ((rc == 0)); then
        findings=0
    else
        findings=1
        status=1
    fi
    printf '%-14s %12s executions %6s edges  %d findings%s\n' "$target" "${execs:-?}" "${edges:-?}" \
        "$findings" "$( ((rc)) && echo "  (see $log)")"
done
exit $status
