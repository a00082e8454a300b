#!/bin/sh
# tests/fuzz/run.sh: `make fuzz`. Makes a libFuzzer build of octet in $OCTET_BUILDDIR/fuzz-build
# (a dist tree of this source, configured with CC=clang --enable-fuzzing --without-cuda: every
# object instrumented, ASan and UBSan on, every report fatal), writes seed inputs from the test
# data (seeds.py), and runs each harness of $FUZZ_HARNESSES over a working corpus kept in
# fuzz-build/corpus/<harness> (it grows from run to run), with the JSON dictionary where the input
# is JSON. Each harness stops after $FUZZ_SECONDS seconds (30) or, when $FUZZ_RUNS is set,
# after that many executions, whichever comes first (FUZZ_RUNS alone: no time limit);
# $FUZZ_PARALLEL harnesses (1) run at a time. A crash, leak, timeout (10 s an input) or
# sanitizer report stops that harness; its input is kept as
# fuzz-build/crashes/<harness>-crash-<sha1> and the run fails; once the bug is fixed the input
# goes to tests/fuzz/regressions/<harness>/ (none so far), which every run reads as seeds.
# Prints one table row per harness: wall seconds, CPU seconds (user + system), executions,
# executions/s, corpus size, result.
#
# Exit status: 0 when every harness ran clean; 1 when one found something or the build failed;
# 77 (SKIP) when there is no clang with libFuzzer (Debian: clang, libclang-rt-14-dev).
set -u
src=${OCTET_SRCDIR:?}
build=${OCTET_BUILDDIR:?}
if [ -n "${FUZZ_RUNS:-}" ] && [ -z "${FUZZ_SECONDS:-}" ]; then seconds=0; else seconds=${FUZZ_SECONDS:-30}; fi
runs=${FUZZ_RUNS:--1}
parallel=${FUZZ_PARALLEL:-1}
harnesses=${FUZZ_HARNESSES:-fuzz_spec fuzz_safetensors fuzz_dataset fuzz_tokenizer fuzz_http fuzz_hfconfig fuzz_optim_state fuzz_sweep}
work=$build/fuzz-build

# One harness (run.sh --one <harness>, in fuzz-build/obj): runs it, writes its table row to
# logs/<harness>.row, and exits 0 when it ran clean.
if [ "${1:-}" = --one ]; then
    h=$2
    mkdir -p "$work/corpus/$h"
    dict=
    case $h in fuzz_spec | fuzz_http | fuzz_hfconfig | fuzz_sweep) dict=-dict="$src/tests/fuzz/json.dict" ;; esac
    # the optimizer-state harness writes its own valid seeds (saved states) before it starts
    [ "$h" = fuzz_optim_state ] && export OCTET_FUZZ_SEEDS="$work/seeds/$h" && mkdir -p "$work/seeds/$h"
    regressions=
    [ -d "$src/tests/fuzz/regressions/$h" ] && regressions="$src/tests/fuzz/regressions/$h"
    start=$(date +%s)
    # shellcheck disable=SC2086
    "./tests/fuzz/$h" -max_total_time="$seconds" -runs="$runs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/crashes/$h-" $dict "$work/corpus/$h" "$work/seeds/$h" $regressions \
        >"$work/logs/$h.log" 2>&1
    rc=$?
    wall=$(($(date +%s) - start))
    # the harness's CPU time: the second line of `times` (children), "XmY.Ys XmZ.Zs"
    times >"$work/logs/$h.times" # in this shell: a $(...) subshell has no children of its own
    cpu=$(sed -n 2p "$work/logs/$h.times" | awk '{ split($1, u, "m"); split($2, s, "m"); printf "%d", u[1] * 60 + u[2] + s[1] * 60 + s[2] }')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/logs/$h.log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/logs/$h.log" | tail -n 1)
    corpus=$(find "$work/corpus/$h" -type f | wc -l)
    result=clean
    [ $rc -eq 0 ] || result="FOUND (exit $rc): $(grep -m1 -E 'ERROR|SUMMARY|runtime error' "$work/logs/$h.log" | cut -c1-120)"
    echo "| $h | $wall | ${cpu:-?} | ${execs:-?} | ${rate:-?} | $corpus | $result |" >"$work/logs/$h.row"
    exit $rc
fi
cc=${FUZZ_CC:-clang}
command -v "$cc" >/dev/null || { echo "SKIP: no $cc (Debian: clang, libclang-rt-14-dev)"; exit 77; }
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }\n' >"${TMPDIR:-/tmp}/octet-fuzz-probe.c"
"$cc" -fsanitize=fuzzer "${TMPDIR:-/tmp}/octet-fuzz-probe.c" -o "${TMPDIR:-/tmp}/octet-fuzz-probe" 2>/dev/null ||
    { echo "SKIP: $cc cannot link libFuzzer (Debian: libclang-rt-14-dev)"; exit 77; }
rm -f "${TMPDIR:-/tmp}/octet-fuzz-probe.c" "${TMPDIR:-/tmp}/octet-fuzz-probe"

mkdir -p "$work" || exit 1
# The dist tree, remade when the source changed (make distdir is quick); the object tree kept.
(cd "$build" && make -s distdir distdir="$work/src.new" >/dev/null) || { echo "fuzz: make distdir failed"; exit 1; }
if [ -d "$work/src" ] && diff -rq "$work/src" "$work/src.new" >/dev/null 2>&1; then
    rm -rf "$work/src.new"
else
    rm -rf "$work/src" && mv "$work/src.new" "$work/src"
fi
mkdir -p "$work/obj" && cd "$work/obj" || exit 1
if [ ! -f Makefile ]; then
    "$work/src/configure" -q CC="$cc" --enable-fuzzing --without-cuda OCTET_GPU_WALK=no >configure.log 2>&1 ||
        { tail -n 30 configure.log; echo "fuzz: configure failed"; exit 1; }
fi
targets=
for h in $harnesses; do targets="$targets tests/fuzz/$h"; done
# shellcheck disable=SC2086
make -s -j"$(nproc)" $targets >make.log 2>&1 || { grep -E 'error|Error' make.log | head -n 30; echo "fuzz: build failed"; exit 1; }

python3 "$src/tests/fuzz/seeds.py" "$src" "$work/seeds" || { echo "fuzz: seeds.py failed"; exit 1; }
mkdir -p "$work/crashes" "$work/logs"
echo "| harness | seconds | CPU seconds | executions | executions/s | corpus | result |"
echo "|---|---:|---:|---:|---:|---:|---|"
# shellcheck disable=SC2086
rm -f "$work"/logs/*.row
printf '%s\n' $harnesses | OCTET_SRCDIR=$src OCTET_BUILDDIR=$build FUZZ_SECONDS=$seconds FUZZ_RUNS=${FUZZ_RUNS:-} \
    xargs -P "$parallel" -I{} sh "$src/tests/fuzz/run.sh" --one {}
status=$?
for h in $harnesses; do
    cat "$work/logs/$h.row" 2>/dev/null || { echo "| $h | | | | | | did not run |"; status=1; }
done
[ $status -eq 0 ] || { echo; echo "fuzz: inputs kept in $work/crashes; logs in $work/logs"; exit 1; }
exit 0
