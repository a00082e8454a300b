#!/usr/bin/env python3
"""optim_gpu_torch.py: the GPU peer of bench_optim --device cuda.

Times PyTorch's fused AdamW (torch.optim.AdamW(fused=True)) and foreach AdamW on one fp32
parameter of each size, with CUDA events around single steps (median of N after warm-up), and
a device-to-device copy as the bandwidth ceiling (bytes read + written). Prints tab-separated
rows "torch\\t<impl>\\t<n>\\t<ms>\\t<Mparam/s>\\t<GB/s at 28 B/param>" and
"copy\\t<GB/s>". Exit 77 when no CUDA device (or no PyTorch) is present (a skip, as the C side).
With --check (tests/gpu/run.sh, on any machine) it needs no GPU: it imports PyTorch, takes one
AdamW step on the CPU and looks up the CUDA API it will call; exit 0, 77 without PyTorch, 1 when
something is missing."""
import sys
import statistics

try:
    import torch
except ImportError:  # a machine without PyTorch: a skip, as without a device
    torch = None


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


def check():
    if torch is None:
        print("optim_gpu_torch: --check: PyTorch is not installed for %s" % sys.executable)
        return 77
    p = torch.nn.Parameter(torch.randn(64))
    p.grad = torch.randn(64)
    torch.optim.AdamW([p], lr=1e-3, foreach=True).step()
    absent = [name for name in ("Event", "synchronize", "empty_cache", "is_available") if not hasattr(torch.cuda, name)]
    if absent or not torch.isfinite(p).all():
        print("optim_gpu_torch: --check: torch.cuda lacks %s or the CPU step went wrong" % absent)
        return 1
    print("optim_gpu_torch: --check: ok (torch %s, %s; a CPU AdamW step)" % (torch.__version__, sys.executable))
    return 0


def main():
    if sys.argv[1:] == ["--check"]:
        return check()
    if torch is None:
        print("optim_gpu_torch: PyTorch is not installed for %s" % sys.executable, file=sys.stderr)
        return 77
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
