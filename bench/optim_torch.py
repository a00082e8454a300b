#!/usr/bin/python3
"""optim_torch.py: PyTorch's AdamW step throughput, the peer of bench/bench_optim.c.

Times torch.optim.AdamW (defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-2)
on the CPU for the same shape sets as bench_optim, with both of torch 1.13's paths: the
for-loop (`foreach=False`) and the multi-tensor one (`foreach=True`), with
torch.set_num_threads(THREADS) so it uses the same cores as our OpenMP threads. Each
measurement is the median of STEPS timed steps after WARMUP warm-up steps, taken REPEATS times
with fresh tensors and optimizer, and the best (fastest) median is reported: torch's step time
on this machine is bimodal from one allocation to the next (up to 5x apart), and the peer is
given its best. Parameters are uniform in [-1, 1) and gradients in [-0.01, 0.01), as in
bench_optim (which reports its best of REPEATS medians too).

Usage: /usr/bin/python3 optim_torch.py [--threads T] [--shapes RxC[*T],...] [--steps N]
                                       [--warmup N] [--repeats N] [--tsv]
Prints one row per shape set and path (with --tsv: "torch<TAB>spec<TAB>path<TAB>n<TAB>
median_ms<TAB>Mparam/s", the rows bench/optim.sh joins on `spec`). Exit status 2 when
torch cannot be imported or an argument is bad.
"""
import argparse
import sys
import time

try:
    import torch
except ImportError as exc:
    sys.stderr.write("optim_torch.py: cannot import torch (%s); use /usr/bin/python3 with python3-torch\n" % exc)
    sys.exit(2)


def parse_shape(text):
    """'RxC' or 'RxC*T' -> (rows, cols, count); raises ValueError otherwise."""
    mat, _, count = text.partition("*")
    rows, cols = mat.split("x")
    r, c, t = int(rows), int(cols), int(count or 1)
    if r <= 0 or c <= 0 or t <= 0:
        raise ValueError(text)
    return r, c, t


def make_params(rows, cols, count):
    gen = torch.Generator().manual_seed(1)
    params = []
    for _ in range(count):
        p = torch.nn.Parameter(torch.rand(rows, cols, generator=gen) * 2 - 1)
        p.grad = (torch.rand(rows, cols, generator=gen) * 2 - 1) * 0.01
        params.append(p)
    return params


def time_adamw(params, foreach, steps, warmup):
    """Median seconds of one AdamW step over `steps` timed steps."""
    opt = torch.optim.AdamW(params, foreach=foreach)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.step()
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
    times.sort()
    mid = len(times) // 2
    return times[mid] if len(times) % 2 else 0.5 * (times[mid - 1] + times[mid])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--shapes", default="1024x1024,4096x4096,256x256*256")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tsv", action="store_true")
    args = ap.parse_args()
    try:
        shapes = [(s, parse_shape(s)) for s in args.shapes.split(",")]
    except ValueError as exc:
        sys.stderr.write("optim_torch.py: bad shape %s (want RxC or RxC*T)\n" % exc)
        return 2
    torch.set_num_threads(args.threads)
    if not args.tsv:
        print("torch %s, %d thread(s), best of %d medians of %d timed steps after %d warm-up"
              % (torch.__version__, torch.get_num_threads(), args.repeats, args.steps, args.warmup))
    for spec, (r, c, t) in shapes:
        n = r * c * t
        for path, foreach in (("forloop", False), ("foreach", True)):
            sec = float("inf")
            for _ in range(max(1, args.repeats)):
                params = make_params(r, c, t)
                sec = min(sec, time_adamw(params, foreach, args.steps, args.warmup))
                del params
            if args.tsv:
                print("torch\t%s\t%s\t%d\t%.4f\t%.2f" % (spec, path, n, sec * 1e3, n / sec / 1e6))
            else:
                print("%-16s %-8s %10.1f Mparam/s  (%.3f ms/step)" % (spec, path, n / sec / 1e6, sec * 1e3))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
