#!/usr/bin/env bash
# tests/gpu/prepare.sh: packs, on this machine (Debian, with autotools and a way to Debian's
# packages), what a bare GPU machine lacks to build and run octet, into .gpu/ at the top of the
# source tree (or --out DIR), which the device tool carries (README.md beside this file):
#   octet-VERSION.tar.gz  a `make dist` tarball (configure generated: no autotools needed there),
#                         made from a private copy of the sources: git's tracked and untracked
#                         but not ignored files, i.e. what the device tool itself sends, with
#                         their edits; the user's build, in place or out of tree, is never touched
#   SOURCE                which tree and commit the tarball was made from, and when
#   debs/*.deb            the Debian packages named in tests/gpu/debs.txt (kept when their
#                         checksum still matches apt's candidate, else taken from apt's cache or
#                         downloaded with apt-get download)
# tests/gpu/run.sh --no-device then builds from it here and adds prebuilt.tar.gz (the programs
# the device runs), so the device starts from binaries. Prints the sizes, and fails when the
# carried total would pass the device tool's 64 MiB. Without git (an unpacked tarball) the
# tarball comes from an out-of-tree configure of the tree, which must not be configured in place;
# --tarball FILE takes a ready dist tarball instead.
#   usage: tests/gpu/prepare.sh [--out DIR] [--tarball FILE] | --size [DIR]
# Exit status 0; 1 with one line saying what failed; 3 when this machine cannot reach Debian's
# packages (no apt lists, or a download failed): the machine's doing, not the project's.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
limit=$((64 * 1024 * 1024))

say() { printf 'prepare: %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }
unreachable() { say "$*" >&2; exit 3; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
bytes() { du -sb "$@" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }

# The files the device tool sends from the tree: tracked and untracked-not-ignored ones.
tree_files() {
    git -C "$root" ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
        [ -f "$root/$f" ] && printf '%s\0' "$f"
    done
}
in_git() { [ "$(git -C "$root" rev-parse --show-toplevel 2>/dev/null)" = "$root" ]; }

size_report() {  # dir
    local dir=$1 tree=0 total carried
    carried=$(bytes "$dir")
    if in_git; then tree=$(cd "$root" && tree_files | xargs -0 -r du -cb | awk '$2 == "total" { s += $1 } END { print s + 0 }'); fi
    total=$((carried + tree))
    say "$dir: $(mib "$carried") (debs $(mib "$(bytes "$dir/debs")"), tarball $(mib "$(bytes "$dir"/octet-*.tar.gz)"), prebuilt $(mib "$(bytes "$dir/prebuilt.tar.gz")"))"
    if in_git; then
        say "a device call carries the tree ($(mib "$tree")) and it: $(mib "$total") of the 64 MiB limit"
    else
        say "a device call carries it and the tree (not a git tree here: not counted), of 64 MiB at most"
    fi
    [ "$total" -le "$limit" ] || die "over the device tool's 64 MiB: carry less"
}

out=$root/.gpu tarball=""
while [ $# -gt 0 ]; do
    case $1 in
    --out) out=$2; shift 2 ;;
    --tarball) tarball=$2; shift 2 ;;
    --size) size_report "${2:-$out}"; exit 0 ;;
    *) echo "usage: tests/gpu/prepare.sh [--out DIR] [--tarball FILE] | --size [DIR]" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/octet-prepare.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---------------------------------------------------------------- the dist tarball
# Everything but debs/ goes: a new tarball makes the old prebuilt programs stale.
find "$out" -mindepth 1 -maxdepth 1 ! -name debs -exec rm -rf {} +
if [ -n "$tarball" ]; then
    [ -f "$tarball" ] || die "no such tarball: $tarball"
    cp "$tarball" "$out/"
    origin="the tarball $tarball"
elif in_git; then
    # A private copy keeps the user's tree and build as they are; tar keeps the modification
    # times, so a build reused from an earlier walk recompiles only what changed.
    mkdir -p "$tmp/src" "$tmp/obj"
    (cd "$root" && tree_files | tar --null -T - -cf -) | tar -xf - -C "$tmp/src"
    (cd "$tmp/src" && autoreconf -fi) >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; die "autoreconf failed in the private copy"; }
    conf=$tmp/src/configure
    head=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo "no commit")
    dirty=$(git -C "$root" status --porcelain --untracked-files=normal | grep -c . || true)
    origin="$root at $head$([ "$dirty" -eq 0 ] || echo " with $dirty uncommitted change(s)")"
else
    [ -x "$root/configure" ] || die "$root is neither a git tree nor has a configure script: pass --tarball"
    [ ! -f "$root/config.status" ] ||
        die "$root is configured in place and not a git tree: run 'make dist' there and pass --tarball"
    mkdir -p "$tmp/obj"
    conf=$root/configure
    origin="$root (no git)"
fi
if [ -z "$tarball" ]; then
    # CPU-only configure: make dist needs no compiler for the CUDA twins.
    (cd "$tmp/obj" && "$conf" -q --without-cuda && make -s dist) >"$tmp/log" 2>&1 ||
        { tail -n 30 "$tmp/log" >&2; die "configure or make dist failed (log above)"; }
    cp "$tmp/obj"/octet-*.tar.gz "$out/"
fi
name=$(cd "$out" && ls octet-*.tar.gz)
printf '%s made from %s on %s\n' "$name" "$origin" "$(date -u '+%Y-%m-%d %H:%M UTC')" >"$out/SOURCE"
say "$name from $origin"

# ---------------------------------------------------------------- the Debian packages
mapfile -t pkgs < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$here/debs.txt")
mkdir -p "$out/debs"
ls /var/lib/apt/lists/*Packages* >/dev/null 2>&1 || unreachable "apt has no package lists here: run apt-get update"
apt-get download --print-uris "${pkgs[@]}" >"$tmp/uris" 2>"$tmp/err" ||
    { cat "$tmp/err" >&2; die "apt-get cannot name every package of tests/gpu/debs.txt"; }
[ "$(wc -l <"$tmp/uris")" -eq "${#pkgs[@]}" ] || die "apt-get named $(wc -l <"$tmp/uris") files for ${#pkgs[@]} packages"
want=() fetch=()
while read -r _ file _ sum; do
    want+=("$file")
    sum=${sum#SHA256:}
    if [ -f "$out/debs/$file" ] && echo "$sum  $out/debs/$file" | sha256sum -c --status; then continue; fi
    if [ -f "/var/cache/apt/archives/$file" ] && echo "$sum  /var/cache/apt/archives/$file" | sha256sum -c --status; then
        cp "/var/cache/apt/archives/$file" "$out/debs/"
        continue
    fi
    fetch+=("${file%%_*}")
done <"$tmp/uris"
if [ "${#fetch[@]}" -gt 0 ]; then
    # apt-get download writes into the current directory; as root it warns that _apt cannot.
    (cd "$out/debs" && apt-get download -q "${fetch[@]}") >"$tmp/log" 2>&1 ||
        { cat "$tmp/log" >&2; unreachable "apt-get download failed"; }
fi
for f in "$out"/debs/*.deb; do
    keep=0
    for w in "${want[@]}"; do [ "${f##*/}" = "$w" ] && keep=1 && break; done
    [ "$keep" -eq 1 ] || rm -f "$f"
done
say "debs: ${#want[@]} packages (${#fetch[@]} downloaded, the rest already at hand)"
size_report "$out"
