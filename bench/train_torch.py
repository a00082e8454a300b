#!/usr/bin/python3
"""train_torch.py: PyTorch's side of bench/train.sh: the same models as octet's runner, written
here as plain PyTorch modules with the same shapes, trained with the same step (zero_grad,
forward, cross-entropy, backward, clip_grad_norm_(1.0), AdamW step, LambdaLR linear schedule)
on the same synthetic batches, with torch.set_num_threads(threads) (and, with --interop N,
torch.set_num_interop_threads(N), which must come before any parallel work).

  mlp         784-256-128-100-10, ReLU (Fashion-MNIST's MLP), batch 64
  distilbert  DistilBertForSequenceClassification as in transformers: word + position
              embeddings, LayerNorm(eps 1e-12), dropout 0.1; post-LayerNorm blocks of 4-head
              self-attention (scaled by 1/sqrt(head dim), padding mask, dropout 0.1 on the
              probabilities) and a GELU FFN; [CLS] -> pre_classifier -> ReLU -> dropout 0.2 ->
              classifier. distilbert-small's sizes: dim 256, 4 layers, FFN 1024, 261 byte-level
              ids, 512 positions, 6 labels; every sequence `seq` tokens. Batch 32.

Prints one line "model threads batch seq samples_per_s adamw_impl": the best epoch of
`repeats`, each over `steps` batches, for the faster of AdamW's for-loop and foreach paths.
Usage: train_torch.py mlp|distilbert [--threads N] [--interop N] [--batch B] [--steps N] [--seq T]
                      [--repeats R]
Debian's PyTorch runs its GEMMs on Debian's pthreads OpenBLAS, whose threads follow
OPENBLAS_NUM_THREADS (default: every core), not torch.set_num_threads.
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, dim, heads, hidden, p):
        super().__init__()
        self.heads = heads
        self.q_lin, self.k_lin = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.v_lin, self.out_lin = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.sa_layer_norm = nn.LayerNorm(dim, eps=1e-12)
        self.lin1, self.lin2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.output_layer_norm = nn.LayerNorm(dim, eps=1e-12)
        self.drop = nn.Dropout(p)

    def forward(self, x, mask):
        B, T, D = x.shape
        hd = D // self.heads

        def split(t):
            return t.view(B, T, self.heads, hd).transpose(1, 2)

        q = split(self.q_lin(x)) / math.sqrt(hd)
        k, v = split(self.k_lin(x)), split(self.v_lin(x))
        scores = q @ k.transpose(-1, -2)
        scores = scores.masked_fill((mask == 0).view(B, 1, 1, T), torch.finfo(scores.dtype).min)
        w = self.drop(F.softmax(scores, dim=-1))
        ctx = (w @ v).transpose(1, 2).reshape(B, T, D)
        x = self.sa_layer_norm(self.out_lin(ctx) + x)
        ff = self.drop(self.lin2(F.gelu(self.lin1(x))))
        return self.output_layer_norm(ff + x)


class DistilBert(nn.Module):
    def __init__(self, vocab=261, pos=512, dim=256, layers=4, heads=4, hidden=1024, labels=6):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, dim, padding_idx=0)
        self.position_embeddings = nn.Embedding(pos, dim)
        self.LayerNorm = nn.LayerNorm(dim, eps=1e-12)
        self.drop = nn.Dropout(0.1)
        self.layer = nn.ModuleList([Block(dim, heads, hidden, 0.1) for _ in range(layers)])
        self.pre_classifier = nn.Linear(dim, dim)
        self.classifier = nn.Linear(dim, labels)
        self.head_drop = nn.Dropout(0.2)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                m.weight.data.normal_(0.0, 0.02)
            if isinstance(m, nn.Linear):
                m.bias.data.zero_()

    def forward(self, ids, mask):
        T = ids.shape[1]
        x = self.word_embeddings(ids) + self.position_embeddings(torch.arange(T).unsqueeze(0))
        x = self.drop(self.LayerNorm(x))
        for blk in self.layer:
            x = blk(x, mask)
        h = self.head_drop(F.relu(self.pre_classifier(x[:, 0])))
        return self.classifier(h)


def mlp():
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 100), nn.ReLU(), nn.Linear(100, 10))


def data(kind, n, seq):
    g = torch.Generator().manual_seed(12345)
    if kind == "mlp":
        return (torch.rand(n, 784, generator=g),), torch.randint(0, 10, (n,), generator=g)
    ids = torch.randint(5, 261, (n, seq), generator=g)
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] ... [SEP]
    return (ids, torch.ones(n, seq, dtype=torch.long)), torch.randint(0, 6, (n,), generator=g)


def epoch_rate(model, opt, sched, xs, y, batch, steps):
    perm = torch.randperm(len(y))
    t0 = time.perf_counter()
    for s in range(steps):
        idx = perm[s * batch:(s + 1) * batch]
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(*(x[idx] for x in xs)), y[idx])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    return batch * steps / (time.perf_counter() - t0)


def run(kind, batch, steps, seq, repeats, foreach):
    torch.manual_seed(0)
    model = mlp() if kind == "mlp" else DistilBert()
    model.train()
    lr = 1e-3 if kind == "mlp" else 5e-5
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, foreach=foreach)
    total = steps * repeats
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, (total - s) / total))
    xs, y = data(kind, batch * steps, seq)
    return max(epoch_rate(model, opt, sched, xs, y, batch, steps) for _ in range(repeats))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["mlp", "distilbert"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--interop", type=int, default=0, help="torch.set_num_interop_threads (0: leave it)")
    ap.add_argument("--batch", type=int)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    bert = a.model == "distilbert"
    batch = a.batch or (32 if bert else 64)
    steps = a.steps or (8 if bert else 200)
    if a.interop > 0:
        torch.set_num_interop_threads(a.interop)
    torch.set_num_threads(a.threads)
    best = max((run(a.model, batch, steps, a.seq, a.repeats, fe), "foreach" if fe else "for-loop")
               for fe in (False, True))
    print(f"{a.model} {a.threads} {batch} {a.seq if bert else 0} {best[0]:.1f} {best[1]}")


if __name__ == "__main__":
    main()
