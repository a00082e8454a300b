#!/bin/sh
# api.sh: octetd's API under load while it trains, against a bare libmicrohttpd server.
#
# Starts BUILDDIR's octetd (its default settings) on a scratch data directory, runs a finished
# sweep (3 optimizers x 2 seeds of a small MLP, so GET /sweeps/{id} has groups to compute),
# queues 60 more jobs (so GET /jobs?limit=50 returns a full page), and starts a long training
# job (a Fashion-MNIST MLP). With that job training, wrk loads for DURATION seconds with CONNS
# connections bench/bare_mhd (a libmicrohttpd server with octetd's thread pool and thread
# priority answering a constant), then each endpoint in turn: GET /jobs/{id}, GET /jobs?limit=50,
# GET /sweeps/{id}, POST /jobs?dry_run=1, and GET /jobs/{id} again paced at RATE requests/s
# (wrk's delay()). The training job's pace is read from the store (optimizer steps between two
# progress writes, timed by their own timestamps). This host's pace drifts by a fifth between
# windows minutes apart, so each load window sits between two quiet windows of the same length
# and its change is against their mean; wrk's own CPU time is reported beside it (the load
# generator shares the job's cores). A last window with no load at all is the control: its
# "change" is the method's own spread. The whole sequence runs ROUNDS times.
#
# Prints a Markdown table, each figure the median of its rounds (requests/s, p99 latency, share
# of the bare server's rate, the job's steps/s under that load, the quiet steps/s around it, the
# change with its range over the rounds, wrk's CPU seconds per second) and one line per target: GET /jobs/{id} >= 50% of the bare handler's rate; the job's
# steps/s drops by <= 10% under that load, and under the paced load. Needs wrk (Debian:
# apt-get install wrk), curl and /usr/bin/time (Debian: time).
#
# Usage: bench/api.sh [BUILDDIR]        (BUILDDIR defaults to the current directory)
# Environment: DURATION (10 s: each load window and each quiet window), CONNS (16),
#   WRK_THREADS (1), RATE (1000: the paced row's requests/s), ROUNDS (3), HTTP_NICE (octetd's --http-nice
#   and bare_mhd's --nice; unset: octetd's default, which bare_mhd then takes from its log).
# Exit status: 0 when every run finished (targets met or not); 1 when something failed.
set -eu

build=${1:-.}
duration=${DURATION:-10}
conns=${CONNS:-16}
wrk_threads=${WRK_THREADS:-1}
rate=${RATE:-1000}
rounds=${ROUNDS:-3}
http_nice=${HTTP_NICE:-}
src=$(cd "$(dirname "$0")/.." && pwd)
for tool in wrk curl /usr/bin/time; do
    command -v $tool >/dev/null || { echo "api.sh: needs $tool (Debian: apt-get install ${tool##*/})" >&2; exit 1; }
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

start octetd "$build/octetd" ${http_nice:+--http-nice "$http_nice"} --port 0 --data-dir "$tmp/data" --web-dir "$src/web" --schema-dir "$src/schema"
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
  "dataset": {"name": "fashion-mnist", "train_limit": 20000}, "training": {"epochs": 100000, "batch_size": 64}}' >"$tmp/job.json"
job=$(field "$tmp/job.json" id)
post sweeps "{\"name\": \"queued\", \"base\": {$mlp}, \"grid\": {\"training.seed\": [$(seq -s, 1 60)]}}" >/dev/null
until get "jobs/$job" | grep -q '"steps_done":[1-9]'; do sleep 0.2; done

# steps_between P0 P1: the job's steps/s between two of its documents, by their own timestamps
steps_between() {
    s0=$(field "$1" steps_done) s1=$(field "$2" steps_done)
    t0=$(field "$1" updated_at) t1=$(field "$2" updated_at)
    awk -v a="$s0" -v b="$s1" -v x="$(date -d "$t0" +%s.%N)" -v y="$(date -d "$t1" +%s.%N)" \
        'BEGIN { printf "%.1f", (y > x) ? (b - a) / (y - x) : 0 }'
}

# pace: the job's steps/s over the next $duration seconds with no load
pace() {
    get "jobs/$job" >"$tmp/p0.json"
    sleep "$duration"
    get "jobs/$job" >"$tmp/p1.json"
    steps_between "$tmp/p0.json" "$tmp/p1.json"
}

cat >"$tmp/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model": {"arch": "mlp", "hidden": [256, 128], "num_labels": 10}, "dataset": {"name": "fashion-mnist"}, "optimizer": {"name": "adamw8bit", "lr": 0.001}, "training": {"epochs": 3, "batch_size": 64}}'
EOF

# load URL [SCRIPT]: wrk against URL while the job trains, then a quiet window;
# "req/s p99_ms steps/s quiet_before quiet_after wrk_cpu_per_s". The quiet window before is the
# one after the previous load ($last_quiet).
load() {
    script=
    [ $# -gt 1 ] && script="-s $2"
    get "jobs/$job" >"$tmp/p0.json"
    if [ "$1" = none ]; then # the control: a load window with no load
        /usr/bin/time -f '%U %S' -o "$tmp/wrk.time" sleep "$duration"
        printf 'Requests/sec: 0\n 99%% 0us\n' >"$tmp/wrk.out"
    else
        # shellcheck disable=SC2086
        /usr/bin/time -f '%U %S' -o "$tmp/wrk.time" \
            wrk -t"$wrk_threads" -c"$conns" -d"${duration}s" --latency $script "$1" >"$tmp/wrk.out" 2>&1 || {
            cat "$tmp/wrk.out" >&2
            return 1
        }
    fi
    get "jobs/$job" >"$tmp/p1.json"
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$tmp/wrk.out")
    p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }; printf "%.2f", v }' "$tmp/wrk.out")
    errors=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$tmp/wrk.out")
    [ -z "$errors" ] || { echo "api.sh: $1 answered $errors errors" >&2; cat "$tmp/wrk.out" >&2; return 1; }
    steps=$(steps_between "$tmp/p0.json" "$tmp/p1.json")
    cpu=$(awk -v d="$duration" '{ printf "%.2f", ($1 + $2) / d }' "$tmp/wrk.time")
    after=$(pace)
    echo "$rps $p99 $steps $last_quiet $after $cpu"
}

# median: the median of the numbers on standard input, one a line
median() {
    sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# summary FILE: the medians over rounds of FILE's load results (one per line) with each
# round's quiet pace (the mean of the windows before and after) and change from it:
# "req/s p99 steps/s quiet change min_change max_change wrk_cpu" (changes in percent)
summary() {
    awk '{ q = ($4 + $5) / 2; print $0, 100 * ($3 - q) / q, q }' "$1" >"$1.c"
    for col in 1 2 3 8 7; do printf '%s ' "$(cut -d' ' -f$col "$1.c" | median)"; done
    cut -d' ' -f7 "$1.c" | sort -g | sed -n '1p;$p' | tr '\n' ' '
    cut -d' ' -f6 "$1.c" | median
}

# row NAME SHARE S...: the table row of summary S
row() {
    awk -v n="$1" -v sh="$2" -v r="$3" -v p="$4" -v st="$5" -v q="$6" -v c="$7" -v lo="$8" -v hi="$9" -v w="${10}" \
        'BEGIN { printf "| %s | %.0f | %.2f | %s | %.1f | %.1f | %.0f%% (%.0f..%.0f) | %.2f |\n", n, r, p, sh, st, q, c, lo, hi, w }'
}

last_quiet=$(pace)
[ -n "$http_nice" ] || http_nice=$(sed -n 's/.*HTTP: [0-9]* threads at nice +\([0-9]*\).*/\1/p' "$tmp/octetd.log" "$tmp/octetd.out" | head -n 1)
start bare "$build/bench/bare_mhd" --threads 4 --nice "$http_nice"
bare=http://127.0.0.1:$port/
delay=$(awk -v c="$conns" -v r="$rate" 'BEGIN { printf "%.3f", 1000 * c / r }')
printf 'function delay()\n  return %s\nend\n' "$delay" >"$tmp/paced.lua"

# Each round loads every endpoint in turn; a row is the median of its rounds.
set -- "bare libmicrohttpd (constant)|$bare" "GET /jobs/{id}|$api/jobs/$job" "GET /jobs?limit=50|$api/jobs?limit=50" \
       "GET /sweeps/{id}|$api/sweeps/$sweep" "POST /jobs?dry_run=1|$api/jobs?dry_run=1|$tmp/post.lua" \
       "GET /jobs/{id} paced at $rate/s|$api/jobs/$job|$tmp/paced.lua" "no load (the method's control)|none"
round=0
while [ $round -lt "$rounds" ]; do
    round=$((round + 1))
    i=0
    for spec in "$@"; do
        i=$((i + 1))
        rest=${spec#*|}
        url=${rest%%|*}
        if [ "$url" != "$rest" ]; then r=$(load "$url" "${rest#*|}"); else r=$(load "$url"); fi
        echo "$r" >>"$tmp/result.$i"
        # shellcheck disable=SC2086
        if ! awk -v s="$(echo $r | cut -d' ' -f3-5)" 'BEGIN { split(s, v, " "); exit !(v[1] > 0 && v[2] > 0 && v[3] > 0) }'; then
            echo "api.sh: the training job made no progress in a window ($r); its state:" >&2
            get "jobs/$job" >&2
            exit 1
        fi
        last_quiet=$(echo "$r" | cut -d' ' -f5)
    done
done

echo "training job on $(nproc) cores, HTTP threads at nice +$http_nice; $duration-second windows, $rounds rounds"
echo
echo "| endpoint | requests/s | p99 (ms) | share of bare | job steps/s under load | quiet steps/s around | change (range) | wrk CPU/s |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
bare_rps=$(summary "$tmp/result.1" | cut -d' ' -f1)
i=0
verdicts=
for spec in "$@"; do
    i=$((i + 1))
    name=${spec%%|*}
    sum=$(summary "$tmp/result.$i")
    rps=${sum%% *}
    change=$(echo "$sum" | cut -d' ' -f5)
    share=$(awk -v a="$rps" -v b="$bare_rps" 'BEGIN { printf "%.0f", 100 * a / b }')
    case $name in GET*paced* | no\ load*) share=- ;; *) share="$share%" ;; esac
    # shellcheck disable=SC2086
    row "$name" "$share" $sum
    met=$(awk -v c="$change" 'BEGIN { print (c >= -10 ? "met" : "missed") }')
    change=$(awk -v c="$change" 'BEGIN { printf "%.0f", c }')
    case $name in
    "GET /jobs/{id}")
        verdicts="GET /jobs/{id} at ${share} of the bare handler's rate, target >= 50%: \
$(awk -v a="$rps" -v b="$bare_rps" 'BEGIN { print (a >= b / 2 ? "met" : "missed") }')
the training job's steps/s changed by ${change}% (median of $rounds) under that load, target >= -10%: $met" ;;
    GET*paced*)
        verdicts="$verdicts
at a paced $(printf '%.0f' "$rps") requests/s of GET /jobs/{id} the job's steps/s changed by ${change}% (median of $rounds), target >= -10%: $met" ;;
    esac
done
echo
printf '%s\n' "$verdicts"
