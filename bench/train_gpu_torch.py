#!/usr/bin/env python3
"""train_gpu_torch.py: the GPU peer of octet's fine-tuning throughput run (tests/gpu/run.sh).

Builds Hugging Face's DistilBertForSequenceClassification from a distilbert-base-cased config
(random weights, no download), and trains it with torch.optim.AdamW(fused=True) on random token
batches: sequence length 128, batch 32, 50 timed steps after 5 warm-up steps, in fp32 and in
bf16 autocast. Prints tab-separated rows
  torch_train <precision> <samples/s> <peak device MiB> <optimizer state bytes>
and exits 77 when no CUDA device (or no PyTorch, or no transformers) is present, as a skip."""
import sys
import time

try:
    import torch
except ImportError:  # a machine without PyTorch: a skip, as without a device
    torch = None


def run(precision, steps=50, warmup=5, batch=32, seq=128):
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    cfg = DistilBertConfig(vocab_size=28996, dim=768, n_layers=6, n_heads=12, hidden_dim=3072,
                           max_position_embeddings=512, num_labels=2)
    model = DistilBertForSequenceClassification(cfg).cuda().train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=True)
    ids = torch.randint(0, cfg.vocab_size, (batch, seq), device="cuda")
    mask = torch.ones(batch, seq, dtype=torch.long, device="cuda")
    labels = torch.randint(0, 2, (batch,), device="cuda")
    dtype = torch.bfloat16 if precision == "bf16" else None

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

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


def main():
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
