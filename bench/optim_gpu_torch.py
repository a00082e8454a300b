#!/usr/bin/env python3
"""optim_gpu_torch.py: the GPU peer of bench_optim --device cuda.

Times PyTorch's fused AdamW (torch.optim.AdamW(fused=True)) and foreach AdamW on one fp32
parameter of each size, with CUDA events around single steps (median of N after warm-up), and
a device-to-device copy as the bandwidth ceiling (bytes read + written). Prints tab-separated
rows "torch\\t<impl>\\t<n>\\t<ms>\\t<Mparam/s>\\t<GB/s at 28 B/param>" and
"copy\\t<GB/s>". Exit 77 when no CUDA device is present (a skip, as the C side)."""
import sys
import statistics

import torch


def time_steps(opt, steps, warmup):
    for _ in range(warmup):
        opt.step()
    torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        opt.step()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def copy_gbps(n_bytes=1 << 30, reps=10):
    src = torch.empty(n_bytes // 4, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        dst.copy_(src)
    b.record()
    b.synchronize()
    return 2 * n_bytes * reps / (a.elapsed_time(b) / 1e3) / 1e9


def main():
    if not torch.cuda.is_available():
        print("optim_gpu_torch: no CUDA device", file=sys.stderr)
        return 77
    sizes = [int(s) for s in (sys.argv[1].split(",") if len(sys.argv) > 1 else ["16777216", "268435456"])]
    print("copy\t%.1f" % copy_gbps())
    for n in sizes:
        for impl in ("fused", "foreach"):
            p = torch.nn.Parameter(torch.randn(n, device="cuda") * 0.1)
            p.grad = torch.randn(n, device="cuda") * 0.01
            opt = torch.optim.AdamW([p], lr=1e-3, **{impl: True})
            ms = time_steps(opt, 20, 3)
            print("torch\t%s\t%d\t%.4f\t%.1f\t%.1f" % (impl, n, ms, n / ms / 1e3, 28 * n / ms / 1e6))
            del opt, p
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
