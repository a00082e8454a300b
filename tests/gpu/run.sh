#!/usr/bin/env bash
# tests/gpu/run.sh: the one script a GPU machine runs (prepared here with tests/gpu/prepare.sh).
#
# 1. Makes the build dependencies available: the system's if pkg-config finds them, else the
#    carried Debian packages in .gpu/debs unpacked into a private prefix.
# 2. Builds with CUDA for sm_90 from the carried dist tarball (or the tree, when autotools and a
#    configure script are at hand), in a scratch directory.
# 3. Runs the CPU-vs-CUDA parity suites (optimizer twins: identical codes/absmax, params within
#    1 ulp; ops twins: stated tolerances; a whole training step of the MLP and a tiny DistilBERT:
#    loss, gradients, the adamw step, the 8-bit step bit for bit) — exit 0 pass, 77 skip (no
#    device), else fail.
# 4. Fine-tuning throughput of distilbert-base-cased (random weights, seq 128, batch 32, 50 steps
#    after 5 warm-up steps) with adamw and adamw8bit in fp32 and bf16 (bench/train_bench --device
#    cuda) beside PyTorch + Transformers with fused AdamW in the same shapes
#    (bench/train_gpu_torch.py): samples/s, peak device memory, activation bytes (bf16 stores
#    DistilBERT's saved activations in 16 bits), optimizer-state bytes, ratios and
#    the targets (octet >= 1.0x PyTorch's samples/s in each precision; octet's 8-bit optimizer
#    state <= 1/3.9 of AdamW's).
# 5. Runs bench_optim on the GPU at 16M and 256M parameters beside PyTorch's fused AdamW and a
#    device-to-device copy (the bandwidth ceiling).
# 6. Prints the short tables last. Everything it prints is also written under $OUT (if set).
# Every benchmark runs under `timeout`, so the script fits in about 10 minutes on an H200.
# Exit status: 0 when every stage passed or skipped for lack of a device, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
out=${OUT:-/tmp/octet-gpu}
mkdir -p "$out"
log=$out/gpu-run.log
exec > >(tee "$log") 2>&1
jobs=$(nproc)
status=0
declare -A result

say() { printf '== %s\n' "$*"; }

deps_prefix() {
    if pkg-config --exists libmicrohttpd jansson sqlite3 check zlib 2>/dev/null; then
        return 0
    fi
    [ -d .gpu/debs ] || { say "build dependencies missing and no .gpu/debs carried (run tests/gpu/prepare.sh)"; return 1; }
    local prefix=/tmp/octet-deps
    rm -rf "$prefix" && mkdir -p "$prefix"
    for f in .gpu/debs/*.deb; do dpkg-deb -x "$f" "$prefix"; done
    local multi=$prefix/usr/lib/x86_64-linux-gnu
    # The .pc files name prefix=/usr; point them at the private prefix.
    sed -i "s|^prefix=/usr|prefix=$prefix/usr|" "$multi"/pkgconfig/*.pc "$prefix"/usr/share/pkgconfig/*.pc 2>/dev/null
    [ -e "$multi/libopenblas.so" ] || ln -sf openblas-pthread/libopenblas.so "$multi/libopenblas.so" 2>/dev/null
    export PKG_CONFIG_PATH=$multi/pkgconfig:$prefix/usr/share/pkgconfig:${PKG_CONFIG_PATH:-}
    export CPATH=$prefix/usr/include:$prefix/usr/include/x86_64-linux-gnu:$prefix/usr/include/x86_64-linux-gnu/openblas-pthread:${CPATH:-}
    export LIBRARY_PATH=$multi:$multi/openblas-pthread:${LIBRARY_PATH:-}
    export LD_LIBRARY_PATH=$multi:$multi/openblas-pthread:${LD_LIBRARY_PATH:-}
    command -v pkg-config >/dev/null || export PATH=$prefix/usr/bin:$PATH
    say "using carried build dependencies in $prefix"
}

build() {
    local b=/tmp/octet-gpu-build
    rm -rf "$b" && mkdir -p "$b"
    local tarball
    tarball=$(ls .gpu/octet-*.tar.gz 2>/dev/null | head -n1)
    local conf=$src/configure
    if [ -n "$tarball" ]; then
        tar -xzf "$tarball" -C "$b"
        conf=$(ls -d "$b"/octet-*/)configure
    elif [ ! -x "$conf" ]; then
        (cd "$src" && autoreconf -fi) || return 1
    fi
    mkdir -p "$b/obj" && cd "$b/obj" || return 1
    "$conf" -q --with-cuda --with-nvcc-gencode="-gencode=arch=compute_90,code=sm_90" || return 1
    make -j"$jobs" -s || return 1
    make -j"$jobs" -s check TESTS= || return 1        # builds the test programs without running them
    make -j"$jobs" -s bench/bench_optim bench/train_bench || return 1
}

run_stage() {   # name, command...
    local name=$1
    shift
    say "$name: $*"
    "$@"
    local rc=$?
    case $rc in
    0) result[$name]=pass ;;
    77) result[$name]=skip ;;
    124) result[$name]="TIMEOUT"; status=1 ;;
    *) result[$name]="FAIL ($rc)"; status=1 ;;
    esac
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || say "nvidia-smi: no GPU visible"
deps_prefix || { echo "gpu: dependencies unavailable"; exit 1; }
( build ) || { say "build failed"; exit 1; }
cd /tmp/octet-gpu-build/obj
export OCTET_SRCDIR=$(dirname "$(ls -d /tmp/octet-gpu-build/octet-*/configure 2>/dev/null || echo "$src/configure")")
export OCTET_BUILDDIR=$PWD CK_DEFAULT_TIMEOUT=600

for t in tests/unit/run_cuda tests/unit/run_ops_cuda tests/unit/run_train_cuda; do
    [ -x "$t" ] && run_stage "parity $(basename "$t")" "./$t"
done

# Fine-tuning throughput: octet (4 runs) and PyTorch (fp32, bf16). Rows of train_gpu.txt are
# train_bench's "model threads batch seq samples/s device precision optimizer peak_bytes state_bytes
# activation_bytes".
: > "$out/train_gpu.txt"
for prec in fp32 bf16; do
    for opt in adamw adamw8bit; do
        run_stage "train $opt $prec" sh -c "timeout 150 ./bench/train_bench distilbert --device cuda \
            --preset distilbert-base-cased --seq 128 --batch 32 --steps 50 --warmup 5 --optim $opt \
            --precision $prec >> '$out/train_gpu.txt'"
    done
done
cat "$out/train_gpu.txt"
# The first of $PYTHON, python3 on the PATH and Debian's that has PyTorch.
py=$(for p in ${PYTHON:-} "$(command -v python3)" /usr/bin/python3; do
         [ -x "$p" ] && "$p" -c 'import torch' 2>/dev/null && { echo "$p"; break; }
     done)
py=${py:-$(command -v python3)}
run_stage "torch train" sh -c "timeout 240 $py '$OCTET_SRCDIR/bench/train_gpu_torch.py' > '$out/train_gpu_torch.tsv'; rc=\$?; cat '$out/train_gpu_torch.tsv'; exit \$rc"
run_stage "bench_optim cuda" sh -c "timeout 150 ./bench/bench_optim --device cuda --tsv > '$out/bench_optim_cuda.tsv'; rc=\$?; cat '$out/bench_optim_cuda.tsv'; exit \$rc"
run_stage "torch fused AdamW" sh -c "timeout 120 $py '$OCTET_SRCDIR/bench/optim_gpu_torch.py' > '$out/torch_gpu.tsv'; rc=\$?; cat '$out/torch_gpu.tsv'; exit \$rc"

say "summary"
printf '%-28s %s\n' stage result
for k in "${!result[@]}"; do printf '%-28s %s\n' "$k" "${result[$k]}"; done | sort
if [ -s "$out/bench_optim_cuda.tsv" ] && [ -s "$out/torch_gpu.tsv" ]; then
    copy=$(awk -F'\t' '$1=="copy"{print $2}' "$out/torch_gpu.tsv")
    best=$(awk -F'\t' '$1=="torch"{ if ($5 > b[$3]) b[$3] = $5 } END { for (n in b) print n, b[n] }' "$out/torch_gpu.tsv")
    printf '\n%-10s %-12s %10s %8s %8s %14s %7s\n' optimizer n Mparam/s GB/s %copy torch-AdamW ratio
    awk -F'\t' -v copy="$copy" -v best="$best" '
        BEGIN { n = split(best, a, /[ \n]/); for (i = 1; i < n; i += 2) t[a[i]] = a[i + 1] }
        $1 == "row" { printf "%-10s %-12s %10.1f %8.1f %7.1f%% %14.1f %6.2fx\n", $2, $5, $7, $9, 100 * $9 / copy, t[$5], (t[$5] ? $7 / t[$5] : 0) }' \
        "$out/bench_optim_cuda.tsv"
    echo "device-to-device copy: $copy GB/s (read + write)"
fi

# The fine-tuning table: one row per octet run (or "-" where it did not run), PyTorch beside it.
echo
echo "distilbert-base-cased fine-tuning, seq 128, batch 32, 50 steps after warm-up (targets: octet >= 1.0x PyTorch; 8-bit state <= 1/3.9 of AdamW's)"
printf '%-6s %-10s %12s %12s %8s %12s %12s %12s %14s %10s\n' prec optimizer octet-samp/s torch-samp/s ratio octet-peakMiB torch-peakMiB octet-actMiB octet-stateMB target
for prec in fp32 bf16; do
    for opt in adamw adamw8bit; do
        awk -v p="$prec" -v o="$opt" -v tf="$out/train_gpu_torch.tsv" '
            BEGIN { while ((getline l < tf) > 0) { split(l, f, "\t"); if (f[1] == "torch_train") { ts[f[2]] = f[3]; tm[f[2]] = f[4] } } }
            $6 == "cuda" && $7 == p && $8 == o { s = $5; pk = $9; st = $10; ac = $11 }
            END {
                t = (p in ts) ? ts[p] : ""
                r = (s != "" && t > 0) ? sprintf("%.2fx", s / t) : "-"
                v = (s != "" && t > 0) ? (s / t >= 1.0 ? "met" : "missed") : "-"
                printf "%-6s %-10s %12s %12s %8s %12s %12s %12s %14s %10s\n", p, o, (s != "" ? s : "-"), (t != "" ? t : "-"), r,
                       (pk != "" ? sprintf("%.0f", pk / 1048576) : "-"), (p in tm ? tm[p] : "-"),
                       (ac != "" ? sprintf("%.0f", ac / 1048576) : "-"), (st != "" ? sprintf("%.1f", st / 1e6) : "-"), v
            }' "$out/train_gpu.txt"
    done
done
awk '$6 == "cuda" && $8 == "adamw" { a[$7] = $10; act[$7] = $11 } $6 == "cuda" && $8 == "adamw8bit" { b[$7] = $10 }
    END { n = 0
          if (("fp32" in act) && ("bf16" in act) && act["fp32"] > 0)
              printf "activations (adamw runs): fp32 %.0f MiB, bf16 %.0f MiB (%.0f%%: bf16/fp16 activation storage)\n",
                     act["fp32"] / 1048576, act["bf16"] / 1048576, 100 * act["bf16"] / act["fp32"]
          for (p in a) if (p in b && b[p] > 0) { n++
              printf "optimizer state %s: adamw %d B, adamw8bit %d B, ratio 1/%.2f (target <= 1/3.9): %s\n", p, a[p], b[p],
                     a[p] / b[p], (a[p] / b[p] >= 3.9 ? "met" : "missed") }
          if (!n) print "optimizer state: no CUDA runs (no CUDA device)" }' "$out/train_gpu.txt"
exit $status
