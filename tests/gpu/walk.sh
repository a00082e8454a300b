#!/bin/sh
# tests/gpu/walk.sh: make check's run of the GPU script's no-device walk, so that the script, the
# bundle it is given and the sm_90 build it makes cannot rot while no GPU is lent. Packs a bundle
# with tests/gpu/prepare.sh into gpu-walk/bundle at the top of the build tree (its .debs are kept
# for the next run) and runs tests/gpu/run.sh --no-device over it, with its work and results in
# gpu-walk/ (the build there is reused: a later make check recompiles only what changed).
# Exit 77 (SKIP) when there is no CUDA toolkit (nvcc and its headers), when Debian's
# packages cannot be had (prepare.sh's 3: no apt lists, a failed download), or when
# OCTET_GPU_WALK=no (make distcheck sets it: the walk itself builds from a dist tarball); else
# run.sh's status (0 when the walk passed, 1 naming the stage that failed).
srcdir=${OCTET_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${OCTET_BUILDDIR:-.}
if [ "${OCTET_GPU_WALK:-yes}" = no ]; then
    echo "SKIP: OCTET_GPU_WALK=no (make distcheck: the walk builds from a dist tarball in make check)"
    exit 77
fi
# The toolkit as run.sh picks it (tests/gpu/toolkit.sh).
nvcc=
cuda=$("$srcdir/tests/gpu/toolkit.sh") && nvcc=$cuda/bin/nvcc
if [ -z "$nvcc" ]; then
    echo "SKIP: no CUDA toolkit here (no nvcc with include/cuda_runtime.h beside it): the GPU script's walk builds the CUDA twins for sm_90"
    exit 77
fi
work=$(cd "$builddir" && pwd)/gpu-walk
mkdir -p "$work"
# The outer make's flags (jobserver, -s, VERBOSE) are not the walk's.
unset MAKEFLAGS MFLAGS MAKELEVEL
"$srcdir/tests/gpu/prepare.sh" --out "$work/bundle"
case $? in
0) ;;
3) echo "SKIP: Debian's packages cannot be had from here (above): the walk needs them"; exit 77 ;;
*) exit 1 ;;
esac
OCTET_GPU_WORK=$work OCTET_GPU_BUNDLE=$work/bundle OUT=$work/out OCTET_GPU_PACK=no NVCC=$nvcc \
    exec "$srcdir/tests/gpu/run.sh" --no-device
