#!/usr/bin/env bash
# setup.sh: the newcomer's two commands, and CI's one.
#
#   ./setup.sh serve [octetd options]   install what is missing, build, start octetd with
#                                       data/octet.db on 127.0.0.1:8080, or where --listen
#                                       and --port say (octetd prints the address; Ctrl-C
#                                       stops it)
#   ./setup.sh test                     install what is missing, build, run every test
#                                       (make check, then make distcheck, which is make check
#                                       again under ASan and UBSan, then make fuzz: each
#                                       libFuzzer harness for 30 s); for the browser test
#                                       also Chromium, Node.js and npm when missing, and
#                                       playwright-core at the version tests/web pins; for
#                                       the fuzzers clang and its libFuzzer
#
# Idempotent: Debian packages are installed only when missing (apt-get update first, only
# then), playwright-core only when tests/web/node_modules lacks the pinned version (npm ci;
# it never downloads a browser: the test drives Debian's /usr/bin/chromium), autoreconf
# only when there is no ./configure, ./configure only when there is no Makefile; make does
# the rest. Builds in the source tree. Runs as root without sudo; as
# another user it uses sudo for apt-get. CUDA is used when configure finds it, skipped when not.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

PACKAGES=(build-essential autoconf automake pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev
          check zlib1g-dev libopenblas-dev python3-torch python3-numpy dataset-fashion-mnist
          fortunes fortunes-de fortunes-it fortunes-es fortunes-br fortunes-pl sqlite3 curl
          libjs-dygraphs)
# What `test` adds: for the browser test (tests/web) Debian's Chromium, and Node.js and npm
# only when no node or npm is on PATH (a newer Node.js installed another way is kept); for the
# fuzzers (tests/fuzz) clang and its libFuzzer runtime.
test_packages() {
    echo chromium
    echo clang
    echo libclang-rt-14-dev
    command -v node >/dev/null || echo nodejs
    command -v npm >/dev/null || echo npm
}

say() { printf 'setup.sh: %s\n' "$*" >&2; }

missing_packages() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed || echo "$p"
    done
}

# install_missing PACKAGE...
install_missing() {
    if ! command -v dpkg-query >/dev/null; then
        say "not a Debian system: install the equivalents of $* yourself"
        return 0
    fi
    local missing
    mapfile -t missing < <(missing_packages "$@")
    if [ "${#missing[@]}" -eq 0 ]; then
        say "all packages present"
        return 0
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { say "need root (or sudo) to install: ${missing[*]}"; exit 1; }
        sudo=(sudo)
    fi
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# playwright-core for the browser test, as tests/web/package-lock.json pins it, unless
# tests/web/node_modules holds that version already.
web_modules() {
    command -v npm >/dev/null || { say "no npm: the browser test will skip"; return 0; }
    local want have
    want=$(node -p 'require("./tests/web/package.json").dependencies["playwright-core"]')
    have=$(node -p 'try { require("./tests/web/node_modules/playwright-core/package.json").version } catch { "" }')
    if [ "$want" = "$have" ]; then
        say "playwright-core $have present"
        return 0
    fi
    say "installing playwright-core $want in tests/web/node_modules (npm ci)"
    (cd tests/web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
}

build() {
    [ -x configure ] || autoreconf -fi
    [ -f Makefile ] || ./configure
    make -j"$(nproc)"
}

# Prints "tests: N passed, N failed" summed over the Check programs' logs of the in-tree run
# (a test program that skipped with exit 77 adds nothing). Never fails.
summary() {
    local logs
    mapfile -t logs < <(find tests -name '*.log' -type f 2>/dev/null)
    [ "${#logs[@]}" -gt 0 ] || { say "no test logs found"; return 0; }
    { grep -h '^[0-9]*%: Checks:' "${logs[@]}" || true; } | awk -F'[:,] *' '
        { for (i = 1; i < NF; i++) { if ($i == "Checks") c += $(i + 1); if ($i == "Failures" || $i == "Errors") f += $(i + 1) } }
        END { printf "tests: %d passed, %d failed\n", c - f, f }'
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
serve)
    install_missing "${PACKAGES[@]}"
    build
    mkdir -p data
    # The caller's options come last and override these defaults (also as --port=N, an
    # abbreviation or port 0), so only octetd knows the address: its "listening on" line says it.
    say "starting octetd; it prints the address it listens on (Ctrl-C stops it)"
    exec ./octetd --listen 127.0.0.1 --port 8080 --data-dir data --db data/octet.db "$@"
    ;;
test)
    mapfile -t extra < <(test_packages)
    install_missing "${PACKAGES[@]}" "${extra[@]}"
    web_modules
    build
    rc=0
    # everything is installed now: a Check test that would skip for missing data fails instead
    export OCTET_REQUIRE_ALL=1
    make -j"$(nproc)" check VERBOSE=1 || rc=$?
    summary
    [ "$rc" -eq 0 ] || exit "$rc"
    make -j"$(nproc)" distcheck
    say "make check and make distcheck (the sanitizer build) passed; fuzzing each parser for 30 s"
    make fuzz FUZZ_SECONDS=30
    summary
    ;;
*)
    echo "usage: ./setup.sh serve [octetd options] | ./setup.sh test" >&2
    exit 2
    ;;
esac
