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
#   WARMUP (3), REPEATS (3: both sides report their best of that many medians), ROUNDS (3: the
#   two benchmarks run in turn that many times; the table shows each figure's median over the
#   rounds and the ratio's median and range, since the peer's speed here moves by up to 5x from
#   one run to the next; a target is met when the median ratio meets it), PYTHON
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
rounds=${ROUNDS:-3}
python=${PYTHON:-/usr/bin/python3}
tab=$(printf '\t')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! make -C "$build" bench/bench_optim >"$tmp/make.log" 2>&1; then
    cat "$tmp/make.log" >&2
    echo "optim.sh: cannot build bench/bench_optim in $build" >&2
    exit 1
fi
# Runs both benchmarks with $1 threads, ROUNDS times in turn, and prints their table.
run_with_threads() {
threads=$1
export OMP_NUM_THREADS="$threads"
: >"$tmp/all.tsv"
r=1
while [ "$r" -le "$rounds" ]; do
    "$build/bench/bench_optim" --tsv --shapes "$shapes" --steps "$steps" --warmup "$warmup" --repeats "$repeats" \
        >"$tmp/ours.tsv" || { echo "optim.sh: bench_optim failed" >&2; exit 1; }
    "$python" "$here/optim_torch.py" --tsv --threads "$threads" --shapes "$shapes" --steps "$steps" \
        --warmup "$warmup" --repeats "$repeats" >"$tmp/torch.tsv" || { echo "optim.sh: optim_torch.py failed" >&2; exit 1; }
    sed "s/^/$r$tab/" "$tmp/torch.tsv" "$tmp/ours.tsv" >>"$tmp/all.tsv"
    r=$((r + 1))
done

awk -F '\t' -v threads="$threads" -v steps="$steps" -v warmup="$warmup" -v repeats="$repeats" -v rounds="$rounds" '
# the targets: x PyTorch AdamW, and % of the bandwidth ceiling
BEGIN { target_x["adamw"] = 5; target_p["adamw"] = 60; target_x["adam8bit"] = 3; target_p["adam8bit"] = 40 }
# The median of v[1..n] (sorted in place; mawk has no asort).
function median(v, n,    i, j, x) {
    for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
    return n % 2 ? v[(n + 1) / 2] : 0.5 * (v[n / 2] + v[n / 2 + 1])
}
# Every line starts with its round. torch rows: round torch spec path n median_ms mparam_s
$2 == "torch" {
    t[$1 "," $3 "," $4] = $7
    if (!(($1 "," $3) in best) || $7 > best[$1 "," $3]) best[$1 "," $3] = $7
    next
}
$2 == "ceiling" {
    nc++; ceils[nc] = $5; copies[nc] = $7; rmws[nc] = $8; coress[nc] = $6; dev = $3
    next
}
# our rows: round row optim spec label n median_ms mparam_s Bpp gbps pct state adamw_state ledger_ok ceil_gbps
$2 == "row" {
    key = $3 "," $4
    if (!(key in seen)) { seen[key] = 1; order[++nr] = key; opt[key] = $3; spec[key] = $4; label[key] = $5;
                          n_el[key] = $6; bpp[key] = $9; state[key] = $12; adamw_state[key] = $13 }
    m[key "," $1] = $8; gb[key "," $1] = $10; pct[key "," $1] = $11; cg[key "," $1] = $15
    if ($14 != 1) bad_ledger = bad_ledger " " $3 "/" $5 "(round " $1 ")"
    next
}
END {
    cores = median(coress, nc); copy = median(copies, nc); rmw = median(rmws, nc); ceil = median(ceils, nc)
    printf "device %s, %d thread(s) for both (%.2f cores of compute measured); %d rounds, ours then torch in each; each side: best of %d medians of %d steps after %d warm-up; bandwidth ceiling (read+write, the faster of memcpy %.1f and b += a %.1f GB/s) %.1f GB/s at the start, and per row as shown; figures are medians over the rounds, the ratio is per round (median, and min-max)\n\n", dev, threads, cores, rounds, repeats, steps, warmup, copy, rmw, ceil
    if (cores < 0.8 * threads)
        printf "WARNING: %d threads got only %.2f cores of compute: the host is throttling this machine, and this table measures that, not the code\n\n", threads, cores
    print "| optimizer | size | ours Mparam/s | B/param | GB/s | ceiling GB/s | % of ceiling | torch AdamW for-loop / foreach Mparam/s | ours / best torch AdamW (min-max) | state MB (ours) | state MB (AdamW) |"
    print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= nr; i++) {
        key = order[i]; sp = spec[key]; k = 0; lo = 1e30; hi = 0; met = 0
        for (r = 1; r <= rounds; r++) {
            if (!((key "," r) in m)) continue
            k++; vm[k] = m[key "," r]; vg[k] = gb[key "," r]; vp[k] = pct[key "," r]; vc[k] = cg[key "," r]
            vf[k] = t[r "," sp ",forloop"]; ve[k] = t[r "," sp ",foreach"]
            b = best[r "," sp]; vb[k] = b; vr[k] = b > 0 ? m[key "," r] / b : 0
            lo = vr[k] < lo ? vr[k] : lo; hi = vr[k] > hi ? vr[k] : hi
            if (opt[key] in target_x && vr[k] >= target_x[opt[key]]) met++
        }
        ours = median(vm, k); gbps = median(vg, k); p = median(vp, k); c = median(vc, k)
        tf = median(vf, k); te = median(ve, k); tb = median(vb, k); ratio = median(vr, k)
        printf "| %s | %s | %.0f | %.2f | %.1f | %.1f | %.0f%% | %.0f / %.0f | %.2fx (%.2f-%.2f) | %.3f | %.3f |\n", opt[key], label[key], ours, bpp[key], gbps, c, p, tf, te, ratio, lo, hi, state[key] / 1e6, adamw_state[key] / 1e6
        if (opt[key] in target_x) {
            want_x = target_x[opt[key]]; want_p = target_p[opt[key]]
            targets[++nt] = sprintf("target %-8s %-20s %5.2fx torch, median of %d rounds (want >= %dx) %s, in %d of %d rounds; %5.1f%% of ceiling (want >= %d%%) %s", opt[key], label[key], ratio, k, want_x, ratio >= want_x ? "met" : "MISSED", met, k, p, want_p, p >= want_p ? "met" : "MISSED")
            # a step whose bytes cannot stay in any cache here (> 64 MB) streams from memory:
            # say when the ratio target asks for more than the memory moves
            need = want_x * tb * bpp[key] / 1000
            if (ratio < want_x && n_el[key] * bpp[key] > 64e6 && need > c)
                targets[nt] = targets[nt] sprintf(" (%dx = %.0f GB/s at %.0f B/param, %.1fx the %.1f GB/s ceiling that %d thread(s) reach here)", want_x, need, bpp[key], need / c, c, threads)
        }
    }
    print ""
    for (i = 1; i <= nt; i++) print targets[i]
    if (bad_ledger != "") print "WARNING: state bytes differ from the allocator ledger for" bad_ledger
}' "$tmp/all.tsv"
}

for n in $thread_list; do
    run_with_threads "$n"
    echo
done
