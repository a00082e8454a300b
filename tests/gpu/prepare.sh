#!/usr/bin/env bash
# tests/gpu/prepare.sh: run HERE (the CPU machine with Debian's packages and network to them)
# before lending the work tree to a GPU machine. That machine has nvcc and PyTorch but none of
# our build dependencies and no package registry, so we carry them:
#   .gpu/octet-*.tar.gz   a `make dist` tarball (configure already generated: no autotools there)
#   .gpu/debs/*.deb       the -dev packages and libraries octet builds against
# .gpu/ is git-ignored; name it in the device tool's `carry`. Then run tests/gpu/run.sh there.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/debs
build=$(mktemp -d)
(cd "$build" && "$root/configure" -q --without-cuda && make -s dist) >/dev/null
cp "$build"/octet-*.tar.gz .gpu/
rm -rf "$build"
pkgs=(libmicrohttpd-dev libmicrohttpd12 libjansson-dev libjansson4 libsqlite3-dev libsqlite3-0 check
      libsubunit-dev libsubunit0 zlib1g-dev libopenblas-dev libopenblas0 libopenblas0-pthread
      libopenblas-pthread-dev libgfortran5 libgnutls30 libgomp1 pkg-config libpkgconf3 pkgconf pkgconf-bin)
(cd .gpu/debs && apt-get download "${pkgs[@]}" >/dev/null)
du -sh .gpu
