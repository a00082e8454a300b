#!/usr/bin/env bash
# tests/gpu/run.sh: the one script a GPU machine runs (prepared here with tests/gpu/prepare.sh).
#
# 1. Makes the build dependencies available: the system's if pkg-config finds them, else the
#    carried Debian packages in .gpu/debs unpacked into a private prefix.
# 2. Builds with CUDA for sm_90 from the carried dist tarball (or the tree, when autotools and a
#    configure script are at hand), in a scratch directory.
# 3. Runs the CPU-vs-CUDA parity suites (optimizer twins: identical codes/absmax, params within
#    1 ulp; ops twins: stated tolerances) — exit 0 pass, 77 skip (no device), else fail.
# 4. Runs bench_optim on the GPU at 16M and 256M parameters beside PyTorch's fused AdamW and a
#    device-to-device copy (the bandwidth ceiling).
# 5. Prints one short table last. Everything it prints is also written under $OUT (if set).
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
    make -j"$jobs" -s bench/bench_optim || return 1
    export OCTET_SRCDIR=$(dirname "$conf") OCTET_BUILDDIR=$PWD
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
    *) result[$name]="FAIL ($rc)"; status=1 ;;
    esac
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || say "nvidia-smi: no GPU visible"
deps_prefix || { echo "gpu: dependencies unavailable"; exit 1; }
( build ) || { say "build failed"; exit 1; }
cd /tmp/octet-gpu-build/obj
export OCTET_SRCDIR=$(dirname "$(ls -d /tmp/octet-gpu-build/octet-*/configure 2>/dev/null || echo "$src/configure")")
export OCTET_BUILDDIR=$PWD CK_DEFAULT_TIMEOUT=600

for t in tests/unit/run_cuda tests/unit/run_ops_cuda; do
    [ -x "$t" ] && run_stage "parity $(basename "$t")" "./$t"
done
run_stage "bench_optim cuda" sh -c "./bench/bench_optim --device cuda --tsv > '$out/bench_optim_cuda.tsv'; rc=\$?; cat '$out/bench_optim_cuda.tsv'; exit \$rc"
py=$(command -v python3)
run_stage "torch fused AdamW" sh -c "$py '$OCTET_SRCDIR/bench/optim_gpu_torch.py' > '$out/torch_gpu.tsv'; rc=\$?; cat '$out/torch_gpu.tsv'; exit \$rc"

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
exit $status
