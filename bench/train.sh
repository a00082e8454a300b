#!/bin/sh
# train.sh: training throughput on the CPU, ours against PyTorch's, in one table.
#
# Builds bench/train_bench in BUILDDIR (`make bench/train_bench`): one epoch of octet's real
# training loop (batching, forward, backward, clipping, AdamW, schedule) over synthetic
# batches; and runs bench/train_torch.py (Debian's /usr/bin/python3 with python3-torch), the
# same models as plain PyTorch modules with the same shapes, batch sizes and step, with the
# same thread count (OMP_NUM_THREADS for ours, torch.set_num_threads for PyTorch). The two
# alternate REPEATS times and each side keeps its best, since this host's neighbours move the
# figures. Models: the Fashion-MNIST MLP 784-256-128-100-10 at batch 64, and distilbert-small
# (dim 256, 4 layers, 4 heads, FFN 1024, byte ids, 64 tokens) at batch 32 with HF's dropouts.
# Prints a Markdown table (samples/s, ratio) and one line per target: MLP >= 1.5x PyTorch,
# DistilBERT >= 1.0x, met or missed.
#
# Usage: bench/train.sh [BUILDDIR]        (BUILDDIR defaults to the current directory)
# Environment: THREADS (thread counts, one row each per model; default $OMP_NUM_THREADS, else
#   nproc), REPEATS (3), PYTHON (/usr/bin/python3).
# Exit status: 0 when every run finished (targets met or not); 1 when the build or a run failed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-.}
thread_list=${THREADS:-${OMP_NUM_THREADS:-$(nproc)}}
repeats=${REPEATS:-3}
python=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! make -C "$build" bench/train_bench >"$tmp/make.log" 2>&1; then
    cat "$tmp/make.log" >&2
    echo "train.sh: cannot build bench/train_bench in $build" >&2
    exit 1
fi

# best MODEL THREADS: the best samples/s of each side over $repeats alternating runs, "ours torch impl".
best() {
    ours=0 torch=0 impl=
    i=0
    while [ $i -lt "$repeats" ]; do
        o=$(OMP_NUM_THREADS=$2 OPENBLAS_NUM_THREADS=$2 "$build/bench/train_bench" "$1" --repeats 2) || return 1
        # torch.set_num_threads does not bound Debian's pthread OpenBLAS: give both sides the
        # same BLAS thread count, or PyTorch's "1 thread" row uses every core.
        t=$(OMP_NUM_THREADS=$2 OPENBLAS_NUM_THREADS=$2 "$python" "$here/train_torch.py" "$1" --threads "$2" --repeats 2) || return 1
        ours=$(printf '%s\n%s\n' "$ours" "$(echo "$o" | cut -d' ' -f5)" | sort -g | tail -n 1)
        tv=$(echo "$t" | cut -d' ' -f5)
        if awk -v a="$tv" -v b="$torch" 'BEGIN { exit !(a > b) }'; then torch=$tv impl=$(echo "$t" | cut -d' ' -f6); fi
        i=$((i + 1))
    done
    echo "$ours $torch $impl"
}

echo "| model | threads | batch | ours (samples/s) | PyTorch (samples/s) | PyTorch AdamW | ratio | target |"
echo "|---|---:|---:|---:|---:|---|---:|---:|"
verdicts=
for threads in $thread_list; do
    for model in mlp distilbert; do
        r=$(best $model "$threads") || { echo "train.sh: $model with $threads threads failed" >&2; exit 1; }
        set -- $r
        target=1.5 batch=64
        [ $model = distilbert ] && target=1.0 batch=32
        ratio=$(awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }')
        echo "| $model | $threads | $batch | $1 | $2 | $3 | ${ratio}x | ${target}x |"
        verdict=$(awk -v r="$ratio" -v t="$target" 'BEGIN { print (r >= t ? "met" : "missed") }')
        verdicts="$verdicts
$model, $threads threads: ${ratio}x PyTorch, target ${target}x: $verdict"
    done
done
printf '%s\n' "$verdicts"
