#!/bin/sh
# run.sh: runs a browser test (tests/web/*.js) with Node.js; make check's log compiler for .js
# tests. A test that cannot run here exits 77 (SKIP) with one line saying why: no node, or one
# older than 18 (Debian bookworm's). The test itself checks for Chromium, playwright-core and
# the chart library.
if ! command -v node >/dev/null 2>&1; then
    echo "SKIP: no node (Node.js 18 or later) on PATH; ./setup.sh test installs it"
    exit 77
fi
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 18 ]; then
    echo "SKIP: node $(node --version) is older than 18"
    exit 77
fi
exec node "$@"
