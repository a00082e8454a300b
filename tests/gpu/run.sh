#!/usr/bin/env bash
# tests/gpu/run.sh: the one script a GPU machine runs, over the bundle tests/gpu/prepare.sh packs
# into .gpu/ (README.md beside this file has the device tool's exact calls). In order:
#   deps    unpacks the carried Debian packages (.gpu/debs) into a private prefix, never into /,
#           and points configure at it alone (pkg-config, headers, link libraries); only octet's
#           own programs run with the prefix on their library path, so the machine's compiler
#           and Python keep the machine's libraries
#   build   takes the carried prebuilt programs (.gpu/prebuilt.tar.gz, made by the walk below
#           from the same tarball) when they load here, else builds the carried dist tarball with
#           CUDA for sm_90: octetd and octet-train, every benchmark, the parity runners
#   links   every library those programs load resolves (in the walk: from the prefix, or is one
#           the compiler brings), and every header of a carried package came from the prefix
#   python  the peers' imports are in the stdlib, on the image's list (image-python.txt) or in
#           carried wheels (.gpu/wheels), and each peer's --check runs with the interpreter the
#           benchmarks will use (the first of $PYTHON, python3, /usr/bin/python3 with torch)
#   parity  the CPU-vs-CUDA parity suites (optimizers bit for bit, ops within tolerances, whole
#           training steps); they decide whether the CUDA twins are right
#   bench   DistilBERT fine-tuning throughput (train_bench, 4 runs) beside PyTorch + Transformers
#           (train_gpu_torch.py), then optimizer steps (bench_optim) beside fused AdamW
# Modes: `parity` runs deps..parity, `bench` deps..python then bench (reusing this machine's
# build when the first command left one), `all` both; `--no-device` is the walk: every stage
# that needs no GPU (on any machine with nvcc), then one "no device" line and exit 0; it also
# packs the programs it built into .gpu/prebuilt.tar.gz (not with OCTET_GPU_PACK=no).
# --budget S: the seconds this command may take; each stage runs under `timeout` with the
# smaller of its own cap and what is left, and a stage that no longer fits is recorded as not
# run. Every result goes to $OUT (default $OCTET_GPU_WORK/out) as it is produced: gpu-run.log,
# stages.tsv, the benchmarks' rows, and tables.md (the Markdown for bench/RESULTS.md, redrawn
# after every stage), so a killed command still returns what it measured. Work directory:
# $OCTET_GPU_WORK (default /tmp/octet-gpu); bundle: $OCTET_GPU_BUNDLE (default .gpu/).
# Exit status: 0 when every stage passed or skipped, 1 when one failed, timed out or did not fit
# the budget, 2 on a usage error.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
mode="" budget=540
while [ $# -gt 0 ]; do
    case $1 in
    --no-device | parity | bench | all) mode=$1; shift ;;
    --budget) budget=${2:-}; shift 2 || shift ;;
    *) echo "usage: tests/gpu/run.sh [--budget SECONDS] --no-device | parity | bench | all" >&2; exit 2 ;;
    esac
done
[ -n "$mode" ] || mode=all
[[ $budget =~ ^[0-9]+$ ]] || { echo "run.sh: --budget takes seconds, got '$budget'" >&2; exit 2; }
work=${OCTET_GPU_WORK:-/tmp/octet-gpu}
bundle=${OCTET_GPU_BUNDLE:-$root/.gpu}
out=${OUT:-$work/out}
res=$work/results            # this machine's results, so `bench` can show `parity`'s beside its own
jobs=${OCTET_GPU_JOBS:-$(nproc)}
start=$(date +%s)
deadline=$((start + budget - 5))
status=0
mkdir -p "$work" "$out" "$res"
results=(gpu-run.log stages.tsv tables.md train_gpu.txt train_gpu_torch.tsv bench_optim_cuda.tsv torch_gpu.tsv)
for f in "${results[@]}"; do rm -f "$out/$f"; done
exec > >(tee -a "$out/gpu-run.log") 2>&1
tee_pid=$!
# On exit, let tee write the last lines: a process left running when the device tool's command
# returns is killed, and those lines are the tables.
trap 'exec >&- 2>&-; wait "$tee_pid" 2>/dev/null' EXIT

say() { printf '== %s\n' "$*"; }
now() { date +%s; }

# ---------------------------------------------------------------- results
# stages.tsv: "# key<TAB>value" lines (date, device, source), then one row per stage:
# name, result (pass, skip, FAIL (rc), TIMEOUT, not run ...), seconds, a note.
record() {  # name result seconds note
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >>"$out/stages.tsv"
    case $2 in FAIL* | TIMEOUT* | "not run"*) status=1 ;; esac
    cp "$out/stages.tsv" "$res/stages.tsv"
    bash "$here/tables.sh" "$out" >"$out/tables.md" 2>/dev/null
}

# run_stage NAME CAP DEST COMMAND...: COMMAND under timeout (the smaller of CAP and what is left
# of the budget); its stdout is appended to $out/DEST ('-': the log), everything else goes to
# the log. The note is the Check runner's summary line, else the output's last line.
run_stage() {
    local name=$1 cap=$2 dest=$3 left t t0 rc so=$work/stage.out note result
    shift 3
    left=$((deadline - $(now)))
    t=$((cap < left ? cap : left))
    if [ "$t" -lt 15 ]; then
        say "$name: not run (${left}s of the budget left)"
        record "$name" "not run (budget)" 0 "${left}s left of --budget $budget"
        return 0
    fi
    local shown=("$@")     # the command as shown: without env, its -u NAME and its NAME=VALUE
    while [ "${#shown[@]}" -gt 1 ]; do
        case ${shown[0]} in
        env | *=*) shown=("${shown[@]:1}") ;;
        -u) shown=("${shown[@]:2}") ;;
        *) break ;;
        esac
    done
    say "$name (timeout ${t}s): ${shown[*]}"
    t0=$(now)
    if [ "$dest" = - ]; then
        timeout -k 5 "$t" "$@" 2>&1 | tee "$so"
    else
        { timeout -k 5 "$t" "$@" >>"$out/$dest"; } 2>&1 | tee "$so"
    fi
    rc=${PIPESTATUS[0]}
    note=$(grep -E '^[0-9]+%: Checks:' "$so" | tail -n 1)
    [ -n "$note" ] || note=$(grep -v '^[[:space:]]*$' "$so" | tail -n 1 | cut -c1-160)
    case $rc in
    0) result=pass ;;
    77) result=skip ;;
    124 | 137) result="TIMEOUT (${t}s)" ;;
    *) result="FAIL ($rc)" ;;
    esac
    record "$name" "$result" "$(($(now) - t0))" "$note"
}

# ---------------------------------------------------------------- deps
# deb_x DEB DIR: dpkg-deb where there is one, else ar and tar (the .deb's data member).
deb_x() {
    if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$1" "$2"; return; fi
    local m
    m=$(ar t "$1" | grep '^data\.tar') || return 1
    case $m in
    *.xz) ar p "$1" "$m" | tar -xJ -C "$2" ;;
    *.zst) ar p "$1" "$m" | tar --zstd -x -C "$2" ;;
    *.gz) ar p "$1" "$m" | tar -xz -C "$2" ;;
    *) ar p "$1" "$m" | tar -x -C "$2" ;;
    esac
}

# Library folders of the prefix: /usr/lib's, OpenBLAS's (Debian keeps it beside, behind
# alternatives that unpacking does not make) and /lib's (bookworm's zlib1g is there).
deps=$work/deps multi=$work/deps/usr/lib/x86_64-linux-gnu
libdirs=("$multi" "$multi/openblas-pthread" "$deps/lib/x86_64-linux-gnu")
DEPS_LD=$(IFS=:; echo "${libdirs[*]}")
unpack_deps() {
    local debs=("$bundle"/debs/*.deb) stamp f
    [ -e "${debs[0]}" ] || { echo "no carried packages in $bundle/debs (run tests/gpu/prepare.sh)"; return 1; }
    stamp=$(cd "$bundle/debs" && ls -l -- *.deb | awk '{ print $5, $NF }' | sha256sum | cut -c1-16)
    if [ "$(cat "$deps/.stamp" 2>/dev/null)" = "$stamp" ]; then
        echo "${#debs[@]} packages already unpacked in $deps"
        return 0
    fi
    rm -rf "$deps" && mkdir -p "$deps/bin" || return 1
    for f in "${debs[@]}"; do deb_x "$f" "$deps" || { echo "cannot unpack $f"; return 1; }; done
    # The .pc files say prefix=/usr (openblas.pc: libdir=/usr/...), and a link may name an
    # absolute path (zlib1g-dev's libz.so): point them at the prefix.
    find "$deps" -name '*.pc' -exec sed -i -E "s#^([A-Za-z_]+)=/usr(/|\$)#\\1=$deps/usr\\2#" {} +
    find "$deps" -type l -lname '/*' | while IFS= read -r f; do ln -sfn "$deps$(readlink "$f")" "$f"; done
    # pkgconf needs libpkgconf from the prefix; the wrapper gives it that and nothing else.
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$multi" "$deps/usr/bin/pkgconf" >"$deps/bin/pkg-config"
    chmod +x "$deps/bin/pkg-config"
    "$deps/bin/pkg-config" --version >/dev/null || { echo "the carried pkgconf does not run here"; return 1; }
    echo "$stamp" >"$deps/.stamp"
    echo "${#debs[@]} packages unpacked into $deps ($(du -sh "$deps" | cut -f1))"
}

# ---------------------------------------------------------------- build
# The programs the device runs; the walk packs exactly these.
device_programs=(tests/unit/run_cuda tests/unit/run_ops_cuda tests/unit/run_train_cuda bench/bench_optim bench/train_bench)
build=$work/build
srcdir=""

# Prints every "name => not found" (and, with "strict", every library found outside the prefix
# that is not one the C compiler and the CUDA toolkit bring) of the given programs.
bad_links() {  # strict|loose program...
    local how=$1
    shift
    LD_LIBRARY_PATH=$DEPS_LD ldd "$@" 2>&1 | awk -v deps="$deps/" -v strict="$how" '
        /not found/ { sub(/^[ \t]+/, ""); print "  " $0; next }    # a library, or a symbol version
        / => / && strict == "strict" && index($3, deps) != 1 &&
            $1 !~ /^(libc|libm|libdl|libpthread|librt|libutil|libresolv|libstdc\+\+|libgcc_s|libgomp|libcudart|libcublas|libcublasLt)\.so/ {
            print "  " $1 " from " $3 }' | sort -u
}

build_octet() {
    local tarball cuda nvcc sum stamp
    tarball=$(ls "$bundle"/octet-*.tar.gz 2>/dev/null)
    [ "$(printf '%s\n' "$tarball" | grep -c .)" -eq 1 ] || { echo "want one octet-*.tar.gz in $bundle, found: ${tarball:-none}"; return 1; }
    sum=$(sha256sum "$tarball" | cut -c1-64)
    rm -rf "$work/src" && mkdir -p "$work/src" && tar -xzf "$tarball" -C "$work/src" || return 1
    srcdir=$(ls -d "$work"/src/octet-*/)
    srcdir=${srcdir%/}
    if [ "$mode" != --no-device ] && [ -f "$bundle/prebuilt.tar.gz" ]; then
        stamp=$(tar -xzOf "$bundle/prebuilt.tar.gz" PREBUILT 2>/dev/null | awk '$1 == "tarball_sha256" { print $2 }')
        if [ "$stamp" = "$sum" ]; then
            local pre=$work/prebuilt missing
            rm -rf "$pre" && mkdir -p "$pre" && tar -xzf "$bundle/prebuilt.tar.gz" -C "$pre" || return 1
            missing=$(cd "$pre" && bad_links loose "${device_programs[@]}")
            if [ -z "$missing" ]; then
                build=$pre
                echo "prebuilt programs from the walk: $(grep -v tarball_sha256 "$pre/PREBUILT" | tr '\n' ';')"
                return 0
            fi
            printf 'the prebuilt programs do not load here, building instead:\n%s\n' "$missing"
        else
            echo "prebuilt.tar.gz is from another tarball: building"
        fi
    fi
    cuda=$("$here/toolkit.sh") || { echo "no CUDA toolkit: no nvcc with include/cuda_runtime.h beside it (NVCC, /usr/local/cuda, PATH)"; return 1; }
    nvcc=$cuda/bin/nvcc
    mkdir -p "$build" && cd "$build" || return 1
    local t0=$(now) t1
    # configure sees the prefix alone: its pkg-config, its .pc files, its headers first, its
    # libraries first (-rpath-link finds what they link to without LD_LIBRARY_PATH).
    env -u LD_LIBRARY_PATH "$srcdir/configure" -q --with-cuda="$cuda" --with-nvcc-gencode="-gencode=arch=compute_90,code=sm_90" \
        PKG_CONFIG="$deps/bin/pkg-config" PKG_CONFIG_PATH= \
        PKG_CONFIG_LIBDIR="$multi/pkgconfig:$multi/openblas-pthread/pkgconfig:$deps/usr/share/pkgconfig" \
        CPPFLAGS="-I$deps/usr/include" \
        LDFLAGS="${libdirs[*]/#/-L} ${libdirs[*]/#/-Wl,-rpath-link,}" ||
        { sed -n '1,/^## Cache variables/p' config.log | tail -n 40; return 1; }
    grep -q '^#define HAVE_CUDA 1' config.h || { echo "configure did not enable CUDA"; return 1; }
    t1=$(now)
    # make from the prefix only where the machine has none
    command -v make >/dev/null || PATH=$PATH:$deps/usr/bin
    # The programs, every benchmark and the parity runners (the CPU test runners are make
    # check's business, not the GPU machine's).
    # all first, alone: with BUILT_SOURCES it is a make of its own, which would race the other
    # goals' make over the same objects.
    { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -j"$jobs" -s all &&
        env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -j"$jobs" -s bench "${device_programs[@]}"; } >make.log 2>&1 ||
        { grep -n -B2 -A8 -m3 -E 'error|\*\*\*' make.log | head -n 60; return 1; }
    grep -E 'warning|error' make.log | head -n 20
    local v objs cu
    v=$("$nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')
    objs=$(find . -name '*.o' -newer config.status | wc -l)
    cu=$(find kernels -name '*_cuda.o' -newer config.status | wc -l)
    echo "built in $build: configure $((t1 - t0))s, make $(($(now) - t1))s ($objs objects compiled, $cu CUDA), nvcc $v, sm_90"
    printf 'tarball_sha256 %s\nbuilt %s on %s, nvcc %s, -gencode=arch=compute_90,code=sm_90\n' "$sum" \
        "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(uname -n)" "$v" >PREBUILT
}

# The walk's checks on what it built: every program loads, from the prefix or the compiler's
# libraries; every header of a carried package was read from the prefix.
check_links() {
    local progs bad hdrs
    cd "$build" || return 1
    mapfile -t progs < <(find . -maxdepth 3 -type f -perm -u+x ! -name '*.sh' ! -name '*.py' \
        \( -path './tests/*' -o -path './bench/*' -o -name 'octet*' \) | sort)
    bad=$(bad_links "$1" "${progs[@]}")
    [ -z "$bad" ] || { printf 'libraries a bare machine would lack (carry them: tests/gpu/debs.txt):\n%s\n' "$bad"; return 1; }
    if [ "$1" = strict ]; then
        hdrs=$(find . -path '*/.deps/*' -name '*.Po' -exec cat {} + 2>/dev/null |
            grep -oE '[^ :\\]*/(microhttpd|jansson|sqlite3|zlib|cblas|check)\.h' | sort -u | grep -v "^$deps/")
        [ -z "$hdrs" ] || { printf 'headers read from outside the prefix:\n%s\n' "$hdrs"; return 1; }
    fi
    echo "${#progs[@]} programs load their libraries from $deps or the compiler's and CUDA's"
}

# The walk's check of tables.sh, which record() runs quietly after every stage.
check_tables() {
    bash "$here/tables.sh" "$out" >"$out/tables.md" || return 1
    grep -q '^### Run of ' "$out/tables.md" || { echo "tables.sh drew no heading"; return 1; }
    echo "tables.sh drew $(grep -c '^|' "$out/tables.md") table lines into $out/tables.md"
}

pack_prebuilt() {
    [ "${OCTET_GPU_PACK:-yes}" != no ] || return 0
    tar -czf "$bundle/prebuilt.tar.gz" -C "$build" PREBUILT "${device_programs[@]}" || return 1
    echo "packed ${#device_programs[@]} programs into $bundle/prebuilt.tar.gz ($(du -h "$bundle/prebuilt.tar.gz" | cut -f1))"
}

# ---------------------------------------------------------------- python
py="" peer_train="" peer_optim=""
python_check() {
    local p w rc
    for p in ${PYTHON:-} "$(command -v python3)" /usr/bin/python3; do
        [ -x "$p" ] && env -u LD_LIBRARY_PATH "$p" -c 'import torch' 2>/dev/null && { py=$p; break; }
    done
    [ -n "$py" ] || py=$(command -v python3) || { echo "no python3"; return 1; }
    w=("$bundle"/wheels/*.whl)
    if [ -e "${w[0]}" ]; then
        env -u LD_LIBRARY_PATH "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$work/site" "${w[@]}" || return 1
        export PYTHONPATH=$work/site${PYTHONPATH:+:$PYTHONPATH}
        echo "${#w[@]} carried wheels installed into $work/site"
    fi
    echo "interpreter: $py ($(env -u LD_LIBRARY_PATH "$py" -V 2>&1))"
    # In the walk a missing import fails; on a GPU machine each peer's --check decides.
    env -u LD_LIBRARY_PATH "$py" "$here/pycheck.py" --image "$here/image-python.txt" --wheels "$bundle/wheels" \
        "$srcdir/bench/train_gpu_torch.py" "$srcdir/bench/optim_gpu_torch.py" || [ "$mode" != --no-device ] || return 1
    peer_train=$(env -u LD_LIBRARY_PATH "$py" "$srcdir/bench/train_gpu_torch.py" --check 2>&1)
    rc=$?
    echo "$peer_train"
    [ "$rc" -eq 0 ] && peer_train=ok
    peer_optim=$(env -u LD_LIBRARY_PATH "$py" "$srcdir/bench/optim_gpu_torch.py" --check 2>&1)
    rc=$?
    echo "$peer_optim"
    [ "$rc" -eq 0 ] && peer_optim=ok
    # Here a peer that cannot import what the image carries is a note, not a failure: its
    # imports passed the list above. On a GPU machine its benchmark is skipped, ours still run.
    echo "peers: train_gpu_torch $([ "$peer_train" = ok ] && echo ready || echo 'NOT ready (above)'), optim_gpu_torch $([ "$peer_optim" = ok ] && echo ready || echo 'NOT ready (above)')"
    return 0
}

# step NAME COMMAND...: a stage of this script itself (deps, build, links, python, pack), run in
# this shell so that what it sets stays set; its output is shown when it ends.
step() {
    local name=$1 t0 rc so=$work/stage.out
    shift
    say "$name"
    t0=$(now)
    "$@" >"$so" 2>&1
    rc=$?
    cat "$so"
    record "$name" "$([ "$rc" -eq 0 ] && echo pass || echo "FAIL ($rc)")" "$(($(now) - t0))" \
        "$(grep -v '^[[:space:]]*$' "$so" | tail -n 1 | cut -c1-160)"
    return "$rc"
}
stop() { say "gpu: stopped at $1 after $(($(now) - start))s (see above)"; cat "$out/tables.md"; exit 1; }

# ---------------------------------------------------------------- run
if [ "$mode" = bench ] && [ -s "$res/stages.tsv" ]; then
    cp "$res/stages.tsv" "$out/stages.tsv"     # the first command's results on this machine
else
    rm -f "$res"/*
    gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)
    {
        printf '# date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
        printf '# device\t%s\n' "${gpu:-none (nvidia-smi saw no GPU)}"
        printf '# source\t%s\n' "$(cat "$bundle/SOURCE" 2>/dev/null || echo "unknown (no $bundle/SOURCE)")"
    } >"$out/stages.tsv"
fi
say "tests/gpu/run.sh $mode: budget ${budget}s, $(uname -n), $jobs cores, bundle $bundle, results $out"
say "$(grep -E '^# (device|source)' "$out/stages.tsv" | tail -n 2 | cut -c3- | tr '\t' ' ' | sed 's/$/;/' | paste -sd ' ')"

# In a second command the setup stages are named as such: the first's rows are above them.
again=$([ "$mode" = bench ] && grep -q '^deps' "$out/stages.tsv" && echo ' (2nd call)')
step "deps$again" unpack_deps || stop deps
step "build$again" build_octet || stop build
cd "$build" || stop build
if [ "$mode" = --no-device ]; then
    step links check_links strict
else
    step "links$again" check_links loose || stop links
fi
# The peers run in `bench` only; the walk checks them for it.
[ "$mode" = parity ] || step "python$again" python_check

OURS=(env "LD_LIBRARY_PATH=$DEPS_LD" "OCTET_SRCDIR=$srcdir" "OCTET_BUILDDIR=$build" CK_DEFAULT_TIMEOUT=600)
PY=(env -u LD_LIBRARY_PATH PYTHONUNBUFFERED=1 "$py")

if [ "$mode" = --no-device ]; then
    step tables check_tables
    step pack pack_prebuilt
    [ "$bundle" != "$root/.gpu" ] || bash "$root/tests/gpu/prepare.sh" --size "$bundle"
    if [ "$status" -ne 0 ]; then
        say "gpu: the no-device walk FAILED after $(($(now) - start))s: $(awk -F'\t' '$2 ~ /^FAIL/ { print $1 }' "$out/stages.tsv" | paste -sd ' ')"
        exit 1
    fi
    say "gpu: no device (--no-device): everything but the GPU stages done in $(($(now) - start))s (deps, sm_90 build, links, python); the parity suites and benchmarks need a GPU"
    exit 0
fi

if [ "$mode" = parity ] || [ "$mode" = all ]; then
    run_stage "parity optimizers (run_cuda)" 90 - "${OURS[@]}" ./tests/unit/run_cuda
    run_stage "parity ops (run_ops_cuda)" 90 - "${OURS[@]}" ./tests/unit/run_ops_cuda
    run_stage "parity training step (run_train_cuda)" 120 - "${OURS[@]}" ./tests/unit/run_train_cuda
fi

if [ "$mode" = bench ] || [ "$mode" = all ]; then
    # Fine-tuning throughput: 4 octet runs (one train_bench row each, train_gpu.txt), then the
    # peer's fp32 and bf16 rows (train_gpu_torch.tsv); then optimizer steps and the copy ceiling.
    for prec in fp32 bf16; do
        for opt in adamw adamw8bit; do
            run_stage "train $opt $prec" 45 train_gpu.txt "${OURS[@]}" ./bench/train_bench distilbert --device cuda \
                --preset distilbert-base-cased --seq 128 --batch 32 --steps 50 --warmup 5 --optim "$opt" --precision "$prec"
        done
    done
    if [ "$peer_train" = ok ]; then
        run_stage "torch train" 110 train_gpu_torch.tsv "${PY[@]}" "$srcdir/bench/train_gpu_torch.py"
    else
        record "torch train" "skip (peer unavailable)" 0 "$(printf '%s\n' "$peer_train" | tail -n 1 | cut -c1-160)"
    fi
    run_stage "bench_optim cuda" 60 bench_optim_cuda.tsv "${OURS[@]}" ./bench/bench_optim --device cuda --tsv
    if [ "$peer_optim" = ok ]; then
        run_stage "torch optim" 45 torch_gpu.tsv "${PY[@]}" "$srcdir/bench/optim_gpu_torch.py"
    else
        record "torch optim" "skip (peer unavailable)" 0 "$(printf '%s\n' "$peer_optim" | tail -n 1 | cut -c1-160)"
    fi
fi

echo
cat "$out/tables.md"
say "gpu: $mode done in $(($(now) - start))s: $(awk -F'\t' '!/^#/ { r = $2; sub(/ \(.*/, "", r); n[r]++ } END { for (k in n) printf "%s %d; ", k, n[k] }' "$out/stages.tsv")exit $status"
exit "$status"
