#!/bin/sh
# tests/gpu/toolkit.sh: prints the CUDA toolkit's directory that the GPU script builds with: the
# first of $NVCC, /usr/local/cuda/bin/nvcc and the nvcc on PATH whose toolkit (links resolved)
# has include/cuda_runtime.h, as configure wants it. Exit 1, printing nothing, when none has.
for c in ${NVCC:-} /usr/local/cuda/bin/nvcc "$(command -v nvcc)"; do
    [ -x "$c" ] || continue
    dir=$(dirname "$(dirname "$(readlink -f "$c")")")
    if [ -f "$dir/include/cuda_runtime.h" ]; then
        echo "$dir"
        exit 0
    fi
done
exit 1
