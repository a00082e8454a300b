#!/bin/sh
# optim.sh: the optimizer-step benchmark, ours against PyTorch's AdamW, in one table.
#
# Builds bench/bench_optim in BUILDDIR (`make bench/bench_optim`), runs it on the CPU and runs
# bench/optim_torch.py (Debian's /usr/bin/python3 with python3-torch) on the same shapes with
# the same thread count, then prints one Markdown table: per optimizer and size our Mparam/s,
# the GB/s it moves and its share of the bandwidth ceiling measured in the same run (right
# before that row, since this host's memory bandwidth moves with its neighbours' load; the
# faster of memcpy and a b += a stream, see bench_optim.c),
# PyTorch's best AdamW (for-loop or foreach) Mparam/s and our ratio to it, and the optimizer
# state bytes (ours, from optim_state_bytes_total, beside AdamW's). Then one line per target
# (adamw >= 5x torch and >= 60% of the ceiling; adam8bit >= 3x and >= 40%), met or missed; a
# missed row too big for any cache also says what bandwidth its ratio target would need, against
# the ceiling measured with the same thread count.
#
# Usage: bench/optim.sh [BUILDDIR]        (BUILDDIR defaults to the current directory)
# Environment: THREADS (thread counts to run, one table each; default $OMP_NUM_THREADS, else
#   nproc; e.g. THREADS="1 2"), SHAPES (default 1024x1024,4096x4096,256x256*256), STEPS (20),
#   WARMUP (3), REPEATS (3: both sides report their best of that many medians), PYTHON
#   (/usr/bin/python3).
# Exit status: 0 when both benchmarks ran (targets missed or not); 1 when the build or either
# benchmark failed, with its message on stderr.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-.}
thread_list=${THREADS:-${OMP_NUM_THREADS:-$(nproc)}}
shapes=${SHAPES:-1024x1024,4096x4096,256x256*256}
steps=${STEPS:-20}
warmup=${WARMUP:-3}
repeats=${REPEATS:-3}
python=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! make -C "$build" bench/bench_optim >"$tmp/make.log" 2>&1; then
    cat "$tmp/make.log" >&2
    echo "optim.sh: cannot build bench/bench_optim in $build" >&2
    exit 1
fi
# Runs both benchmarks with $1 threads and prints their table.
run_with_threads() {
threads=$1
export OMP_NUM_THREADS="$threads"
"$build/bench/bench_optim" --tsv --shapes "$shapes" --steps "$steps" --warmup "$warmup" --repeats "$repeats" \
    >"$tmp/ours.tsv" || { echo "optim.sh: bench_optim failed" >&2; exit 1; }
"$python" "$here/optim_torch.py" --tsv --threads "$threads" --shapes "$shapes" --steps "$steps" \
    --warmup "$warmup" --repeats "$repeats" >"$tmp/torch.tsv" || { echo "optim.sh: optim_torch.py failed" >&2; exit 1; }

cat "$tmp/torch.tsv" "$tmp/ours.tsv" | awk -F '\t' -v threads="$threads" -v steps="$steps" -v warmup="$warmup" -v repeats="$repeats" '
# the targets: x PyTorch AdamW, and % of the bandwidth ceiling
BEGIN { target_x["adamw"] = 5; target_p["adamw"] = 60; target_x["adam8bit"] = 3; target_p["adam8bit"] = 40 }
# torch rows: torch spec path n median_ms mparam_s
$1 == "torch" {
    t[$2 "," $3] = $6
    if (!($2 in best) || $6 > best[$2]) { best[$2] = $6; bestpath[$2] = $3 }
    next
}
$1 == "ceiling" { ceil = $4; dev = $2; cores = $5; copy = $6; rmw = $7; next }
# our rows: row optim spec label n median_ms mparam_s Bpp gbps pct state adamw_state ledger_ok ceil_gbps
$1 == "row" { rows[++nr] = $0 }
END {
    printf "device %s, %d thread(s) for both (%.2f cores of compute measured); best of %d medians of %d steps after %d warm-up; bandwidth ceiling (read+write, the faster of memcpy %.1f and b += a %.1f GB/s) %.1f GB/s at the start, and per row as shown\n\n", dev, threads, cores, repeats, steps, warmup, copy, rmw, ceil
    if (cores < 0.8 * threads)
        printf "WARNING: %d threads got only %.2f cores of compute: the host is throttling this machine, and this table measures that, not the code\n\n", threads, cores
    print "| optimizer | size | ours Mparam/s | B/param | GB/s | ceiling GB/s | % of ceiling | torch AdamW for-loop / foreach Mparam/s | ours / best torch AdamW | state MB (ours) | state MB (AdamW) |"
    print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= nr; i++) {
        split(rows[i], r, "\t")
        spec = r[3]; b = best[spec]
        ratio = b > 0 ? r[7] / b : 0
        printf "| %s | %s | %.0f | %.2f | %.1f | %.1f | %.0f%% | %.0f / %.0f | %.2fx | %.3f | %.3f |\n", r[2], r[4], r[7], r[8], r[9], r[14], r[10], t[spec ",forloop"], t[spec ",foreach"], ratio, r[11] / 1e6, r[12] / 1e6
        if (r[13] != 1) bad_ledger = bad_ledger " " r[2] "/" r[4]
        if (r[2] in target_x) {
            want_x = target_x[r[2]]; want_p = target_p[r[2]]
            targets[++nt] = sprintf("target %-8s %-20s %5.2fx torch (want >= %dx) %s; %5.1f%% of ceiling (want >= %d%%) %s", r[2], r[4], ratio, want_x, ratio >= want_x ? "met" : "MISSED", r[10], want_p, r[10] >= want_p ? "met" : "MISSED")
            # a step whose bytes cannot stay in any cache here (> 64 MB) streams from memory:
            # say when the ratio target asks for more than the memory moves
            need = want_x * b * r[8] / 1000
            if (ratio < want_x && r[5] * r[8] > 64e6 && need > r[14])
                targets[nt] = targets[nt] sprintf(" (%dx = %.0f GB/s at %.0f B/param, %.1fx the %.1f GB/s ceiling that %d thread(s) reach here)", want_x, need, r[8], need / r[14], r[14], threads)
        }
    }
    print ""
    for (i = 1; i <= nt; i++) print targets[i]
    if (bad_ledger != "") print "WARNING: state bytes differ from the allocator ledger for" bad_ledger
}'
}

for n in $thread_list; do
    run_with_threads "$n"
    echo
done
