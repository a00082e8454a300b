#!/usr/bin/env python3
"""train_gpu_torch.py: the GPU peer of octet's fine-tuning throughput run (tests/gpu/run.sh).

Builds Hugging Face's DistilBertForSequenceClassification from a distilbert-base-cased config
(random weights, no download), and trains it with torch.optim.AdamW(fused=True) on random token
batches: sequence length 128, batch 32, 50 timed steps after 5 warm-up steps, in fp32 and in
bf16 autocast. Prints tab-separated rows
  torch_train <precision> <samples/s> <peak device MiB> <optimizer state bytes>
and exits 77 when no CUDA device (or no PyTorch, or no transformers) is present, as a skip.
With --check (tests/gpu/run.sh, before any benchmark, on any machine) it needs no GPU: it
imports what the run needs and trains a 1-layer model of the same class for one step on the CPU,
so an API the installed versions lack fails there, not on device time; exit 0, 77 when PyTorch
or Transformers cannot be imported (the message names which), 1 on any other error."""
import sys
import time

try:
    import torch
except ImportError:  # a machine without PyTorch: a skip, as without a device
    torch = None


BASE = dict(vocab_size=28996, dim=768, n_layers=6, n_heads=12, hidden_dim=3072, max_position_embeddings=512)


def trainer(cfg_args, device, precision, batch, seq, fused):
    """The model, its optimizer and one training step (a closure), as the benchmark times it."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    cfg = DistilBertConfig(num_labels=2, **cfg_args)
    model = DistilBertForSequenceClassification(cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, **({"fused": True} if fused else {}))
    ids = torch.randint(0, cfg.vocab_size, (batch, seq), device=device)
    mask = torch.ones(batch, seq, dtype=torch.long, device=device)
    labels = torch.randint(0, 2, (batch,), device=device)
    dtype = torch.bfloat16 if precision == "bf16" else None

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    return opt, step


def run(precision, steps=50, warmup=5, batch=32, seq=128):
    opt, step = trainer(BASE, "cuda", precision, batch, seq, fused=True)
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t
    state = sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values()
                if torch.is_tensor(v) and v.dim() > 0)
    print("torch_train\t%s\t%.1f\t%.0f\t%d" % (precision, steps * batch / dt,
                                               torch.cuda.max_memory_allocated() / 2**20, state))


def check():
    if torch is None:
        print("train_gpu_torch: --check: PyTorch is not installed for %s" % sys.executable)
        return 77
    try:
        import transformers
    except ImportError as e:
        print("train_gpu_torch: --check: torch %s, but transformers is not importable by %s (%s)"
              % (torch.__version__, sys.executable, e))
        return 77
    tiny = dict(vocab_size=64, dim=32, n_layers=1, n_heads=2, hidden_dim=64, max_position_embeddings=16)
    _, step = trainer(tiny, "cpu", "fp32", batch=2, seq=8, fused=False)
    loss = float(step())
    if loss != loss:
        print("train_gpu_torch: --check: the CPU step gave a NaN loss")
        return 1
    print("train_gpu_torch: --check: ok (torch %s, transformers %s, %s; a CPU step: loss %.3f)"
          % (torch.__version__, transformers.__version__, sys.executable, loss))
    return 0


def main():
    if sys.argv[1:] == ["--check"]:
        return check()
    if torch is None:
        print("train_gpu_torch: PyTorch is not installed for %s" % sys.executable, file=sys.stderr)
        return 77
    if not torch.cuda.is_available():
        print("train_gpu_torch: no CUDA device", file=sys.stderr)
        return 77
    try:
        import transformers  # noqa: F401
    except ImportError:
        print("train_gpu_torch: transformers is not installed", file=sys.stderr)
        return 77
    for precision in ("fp32", "bf16"):
        run(precision)
    return 0


if __name__ == "__main__":
    sys.exit(main())
