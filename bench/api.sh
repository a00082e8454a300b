#!/bin/sh
# api.sh: octetd's API under load while it trains, against a bare libmicrohttpd server.
#
# Starts BUILDDIR's octetd (its default settings) on a scratch data directory, runs a finished
# sweep (3 optimizers x 2 seeds of a small MLP, so GET /sweeps/{id} has groups to compute),
# queues 60 more jobs (so GET /jobs?limit=50 returns a full page), and starts a long training
# job (a Fashion-MNIST MLP). With that job training, wrk loads each endpoint in turn for
# DURATION seconds with CONNS connections: GET /jobs/{id}, GET /jobs?limit=50,
# GET /sweeps/{id}, POST /jobs?dry_run=1, GET /jobs/{id} again paced at RATE requests/s (wrk's
# delay()), then bench/bare_mhd (a libmicrohttpd server with octetd's thread pool and thread
# priority, --http-nice, answering a constant) in the same conditions. The training job's pace
# is read from the store (optimizer steps between two progress writes, timed by their own
# timestamps) in a quiet window before the load and during each load.
#
# Prints a Markdown table (requests/s, p99 latency, share of the bare server's rate, the job's
# steps/s under that load and its change from the quiet window) and one line per target:
# GET /jobs/{id} >= 50% of the bare handler's rate; the job's steps/s drops by <= 10% under
# that load, and under the paced load. Needs wrk (Debian: apt-get install wrk) and curl.
#
# Usage: bench/api.sh [BUILDDIR]        (BUILDDIR defaults to the current directory)
# Environment: DURATION (10 s), CONNS (16), WRK_THREADS (1), QUIET (10 s), RATE (1000: the
#   paced row's requests/s), HTTP_NICE (octetd's default, 10: its --http-nice, and bare_mhd's).
# Exit status: 0 when every run finished (targets met or not); 1 when something failed.
set -eu

build=${1:-.}
duration=${DURATION:-10}
conns=${CONNS:-16}
wrk_threads=${WRK_THREADS:-1}
quiet=${QUIET:-10}
rate=${RATE:-1000}
http_nice=${HTTP_NICE:-10}
src=$(cd "$(dirname "$0")/.." && pwd)
for tool in wrk curl; do
    command -v $tool >/dev/null || { echo "api.sh: needs $tool (Debian: apt-get install $tool)" >&2; exit 1; }
done
tmp=$(mktemp -d)
pids=
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
if ! make -C "$build" octetd bench/bare_mhd >"$tmp/make.log" 2>&1; then
    cat "$tmp/make.log" >&2
    echo "api.sh: cannot build octetd and bench/bare_mhd in $build" >&2
    exit 1
fi

# start NAME CMD...: runs CMD in the background, waits for its "listening on" line, sets $port.
start() {
    name=$1
    shift
    "$@" >"$tmp/$name.out" 2>"$tmp/$name.log" &
    pids="$pids $!"
    i=0
    until grep -q "listening on" "$tmp/$name.out" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "api.sh: $name did not start" >&2; cat "$tmp/$name.log" >&2; exit 1; }
        sleep 0.1
    done
    port=$(sed -n 's|.*127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$tmp/$name.out")
}

start octetd "$build/octetd" --http-nice "$http_nice" --port 0 --data-dir "$tmp/data" --web-dir "$src/web" --schema-dir "$src/schema"
api=http://127.0.0.1:$port/api/v1
post() { curl --noproxy '*' -sf -H 'Content-Type: application/json' "$api/$1" -d "$2"; }
get() { curl --noproxy '*' -sf "$api/$1"; }
# field FILE KEY: the first "KEY": number or string of a compact JSON text
field() { grep -o "\"$2\":\"\{0,1\}[^,\"}]*" "$1" | head -n 1 | sed 's/^"[^"]*":"\{0,1\}//'; }

mlp='"model": {"arch": "mlp", "hidden": [64], "num_labels": 10}, "dataset": {"name": "fashion-mnist", "train_limit": 300, "eval_limit": 100}'
post sweeps "{\"name\": \"bench\", \"base\": {$mlp, \"optimizer\": {\"lr\": 1e-3}, \"training\": {\"epochs\": 1}},
  \"grid\": {\"optimizer\": [{\"name\": \"adamw\"}, {\"name\": \"adamw8bit\"}, {\"name\": \"adafactor\"}], \"training.seed\": [1, 2]}}" >"$tmp/sweep.json"
sweep=$(field "$tmp/sweep.json" id)
until get "sweeps/$sweep" | grep -q '"status":"succeeded"'; do sleep 0.5; done
post jobs '{"name": "long", "model": {"arch": "mlp", "hidden": [256, 128, 100], "num_labels": 10},
  "dataset": {"name": "fashion-mnist", "train_limit": 20000}, "training": {"epochs": 1000, "batch_size": 64}}' >"$tmp/job.json"
job=$(field "$tmp/job.json" id)
post sweeps "{\"name\": \"queued\", \"base\": {$mlp}, \"grid\": {\"training.seed\": [$(seq -s, 1 60)]}}" >/dev/null
until get "jobs/$job" | grep -q '"steps_done":[1-9]'; do sleep 0.2; done

# pace: the job's steps/s over the next $1 seconds, from its own progress timestamps
pace() {
    get "jobs/$job" >"$tmp/p0.json"
    sleep "$1"
    get "jobs/$job" >"$tmp/p1.json"
    s0=$(field "$tmp/p0.json" steps_done) s1=$(field "$tmp/p1.json" steps_done)
    t0=$(field "$tmp/p0.json" updated_at) t1=$(field "$tmp/p1.json" updated_at)
    awk -v a="$s0" -v b="$s1" -v x="$(date -d "$t0" +%s.%N)" -v y="$(date -d "$t1" +%s.%N)" \
        'BEGIN { printf "%.1f", (y > x) ? (b - a) / (y - x) : 0 }'
}

cat >"$tmp/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model": {"arch": "mlp", "hidden": [256, 128], "num_labels": 10}, "dataset": {"name": "fashion-mnist"}, "optimizer": {"name": "adamw8bit", "lr": 0.001}, "training": {"epochs": 3, "batch_size": 64}}'
EOF

# load URL [SCRIPT]: wrk against URL while the job trains; "req/s p99_ms steps/s"
load() {
    script=
    [ $# -gt 1 ] && script="-s $2"
    get "jobs/$job" >"$tmp/p0.json"
    # shellcheck disable=SC2086
    wrk -t"$wrk_threads" -c"$conns" -d"${duration}s" --latency $script "$1" >"$tmp/wrk.out" 2>&1 || {
        cat "$tmp/wrk.out" >&2
        return 1
    }
    get "jobs/$job" >"$tmp/p1.json"
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$tmp/wrk.out")
    p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }; printf "%.2f", v }' "$tmp/wrk.out")
    errors=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$tmp/wrk.out")
    [ -z "$errors" ] || { echo "api.sh: $1 answered $errors errors" >&2; cat "$tmp/wrk.out" >&2; return 1; }
    s0=$(field "$tmp/p0.json" steps_done) s1=$(field "$tmp/p1.json" steps_done)
    t0=$(field "$tmp/p0.json" updated_at) t1=$(field "$tmp/p1.json" updated_at)
    steps=$(awk -v a="$s0" -v b="$s1" -v x="$(date -d "$t0" +%s.%N)" -v y="$(date -d "$t1" +%s.%N)" \
        'BEGIN { printf "%.1f", (y > x) ? (b - a) / (y - x) : 0 }')
    echo "$rps $p99 $steps"
}

quiet_pace=$(pace "$quiet")
start bare "$build/bench/bare_mhd" --threads 4 --nice "$http_nice"
bare=http://127.0.0.1:$port/
bare_r=$(load "$bare")
# shellcheck disable=SC2086
set -- $bare_r
bare_rps=$1

echo "training job: $quiet_pace optimizer steps/s with no load ($(nproc) cores); HTTP threads at nice +$http_nice"
echo
echo "| endpoint | requests/s | p99 (ms) | share of bare | job steps/s under load | change |"
echo "|---|---:|---:|---:|---:|---:|"
verdicts=
for spec in "GET /jobs/{id}|$api/jobs/$job" "GET /jobs?limit=50|$api/jobs?limit=50" \
            "GET /sweeps/{id}|$api/sweeps/$sweep" "POST /jobs?dry_run=1|$api/jobs?dry_run=1|$tmp/post.lua"; do
    name=${spec%%|*}
    rest=${spec#*|}
    url=${rest%%|*}
    script=
    [ "$url" != "$rest" ] && script=${rest#*|}
    if [ -n "$script" ]; then r=$(load "$url" "$script"); else r=$(load "$url"); fi
    # shellcheck disable=SC2086
    set -- $r
    share=$(awk -v a="$1" -v b="$bare_rps" 'BEGIN { printf "%.0f", 100 * a / b }')
    change=$(awk -v a="$3" -v b="$quiet_pace" 'BEGIN { printf "%.0f", 100 * (a - b) / b }')
    echo "| $name | $1 | $2 | $share% | $3 | $change% |"
    if [ "$name" = "GET /jobs/{id}" ]; then
        v1=$(awk -v s="$share" 'BEGIN { print (s >= 50 ? "met" : "missed") }')
        v2=$(awk -v c="$change" 'BEGIN { print (c >= -10 ? "met" : "missed") }')
        verdicts="GET /jobs/{id} at ${share}% of the bare handler's rate, target >= 50%: $v1
the training job's steps/s changed by ${change}% under that load, target >= -10%: $v2"
    fi
done
# The same endpoint at a fixed rate (each connection waits between requests): what a job loses
# to a busy dashboard rather than to a saturating load generator on the same cores.
delay=$(awk -v c="$conns" -v r="$rate" 'BEGIN { printf "%.3f", 1000 * c / r }')
printf 'function delay()\n  return %s\nend\n' "$delay" >"$tmp/paced.lua"
paced_r=$(load "$api/jobs/$job" "$tmp/paced.lua")
# shellcheck disable=SC2086
set -- $paced_r
paced_change=$(awk -v a="$3" -v b="$quiet_pace" 'BEGIN { printf "%.0f", 100 * (a - b) / b }')
echo "| GET /jobs/{id} paced at $rate/s | $1 | $2 | - | $3 | $paced_change% |"
verdicts="$verdicts
at a paced $1 requests/s of GET /jobs/{id} the job's steps/s changed by ${paced_change}%, target >= -10%: \
$(awk -v c="$paced_change" 'BEGIN { print (c >= -10 ? "met" : "missed") }')"
# shellcheck disable=SC2086
set -- $bare_r
echo "| bare libmicrohttpd (constant) | $1 | $2 | 100% | $3 | $(awk -v a="$3" -v b="$quiet_pace" 'BEGIN { printf "%.0f", 100 * (a - b) / b }')% |"
echo
printf '%s\n' "$verdicts"
