#!/usr/bin/env python3
"""seeds.py SRCDIR OUTDIR: writes the fuzz harnesses' seed inputs, one directory per harness
under OUTDIR, made from the repository's test data (tests/data, bench/*.json) in each harness's
input layout (tests/fuzz/fuzz_*.c say it). Standard library only."""
import glob
import json
import os
import struct
import sys

src, out = sys.argv[1], sys.argv[2]


def put(harness, name, data):
    d = os.path.join(out, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(*parts):
    with open(os.path.join(src, *parts), "rb") as f:
        return f.read()


specs = sorted(glob.glob(os.path.join(src, "tests/data/specs/*.json")) + glob.glob(os.path.join(src, "bench/*.json")))
for p in specs:
    put("fuzz_spec", os.path.basename(p), read(p))
put("fuzz_spec", "groups.json", json.dumps({
    "model": {"arch": "mlp", "hidden": [8], "num_labels": 3}, "dataset": {"name": "fashion-mnist"},
    "optimizer": {"name": "adamw8bit", "param_groups": [{"params": ["*.bias"], "weight_decay": 0.0},
                                                        {"params": ["layers.0.*"], "optim_bits": 32}]},
    "training": {"epochs": 1, "precision": "bf16", "lr_scheduler": "cosine", "warmup_steps": 0.1}}))


def safetensors(tensors, meta=None):
    header, blob = {}, b""
    for name, (dtype, shape, payload) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(payload)]}
        blob += payload
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + blob


put("fuzz_safetensors", "f32.safetensors", safetensors(
    {"w": ("F32", [2, 3], struct.pack("<6f", *range(6))), "b": ("F32", [3], struct.pack("<3f", 1, 2, 3))},
    {"format": "pt"}))
put("fuzz_safetensors", "half.safetensors", safetensors(
    {"h": ("F16", [4], struct.pack("<4e", 1, -2, 0.5, 65504)), "bf": ("BF16", [2], b"\x80\x3f\x00\xc0"),
     "i": ("I64", [1], struct.pack("<q", 7)), "s": ("F32", [], struct.pack("<f", 3.5))}))

for name, flag in (("train_small.jsonl", 0), ("eval_small.jsonl", 2), ("train_pairs.csv", 1),
                   ("train_names.csv", 3), ("eval_pairs.csv", 5)):
    put("fuzz_dataset", name, bytes([flag]) + read("tests/data", name))

vocab = read("tests/data/wordpiece/vocab.txt")
cases = read("tests/data/tokenizer_cases.txt").splitlines()[:40]
for i, line in enumerate(cases):
    put("fuzz_tokenizer", "case%02d" % i, bytes([i & 1]) + vocab + b"\0" + line)
put("fuzz_tokenizer", "text-only", "Hello, wörld! 中文 naïve\tcafé ﬁne")

base = json.loads(read("tests/data/specs/fashion-mlp-small.json"))
for i, grid in enumerate([
        {"optimizer": [{"name": "adamw"}, {"name": "adamw8bit"}, {"name": "adafactor", "relative_step": False}],
         "training.seed": [1, 2, 3]},
        {"optimizer.lr": [1e-4, 3e-4, 1e-3], "training.batch_size": [16, 32]},
        {"optimizer.param_groups": [[], [{"params": ["*.bias"], "weight_decay": 0.0}]], "name": ["a", "b"]},
        {"model.hidden": [[8], [16, 8]], "dataset.train_limit": [100]},
        {"optimizer.lrr": [1]}, {"training.seed": []}, {}]):
    put("fuzz_sweep", "grid%d" % i, json.dumps({"name": "s", "base": base, "grid": grid}))

routes = [(0, "jobs"), (1, "jobs"), (0, "jobs/12/epochs"), (0, "jobs/12/steps"), (3, "jobs/7"),
          (1, "jobs/3/cancel"), (1, "sweeps"), (0, "sweeps/2/"), (1, "estimate"), (0, "health"),
          (0, "/index.html"), (0, "js/app.js"), (0, "../etc/passwd"), (2, "datasets/x")]
spec = read("tests/data/specs/fashion-mlp-small.json")
for i, (m, path) in enumerate(routes):
    put("fuzz_http", "route%02d" % i, bytes([m]) + path.encode() + b"\0" + (spec if m == 1 else b"Bearer s3cret-token"))

config = {"architectures": ["DistilBertForSequenceClassification"], "model_type": "distilbert",
          "vocab_size": 30522, "dim": 768, "n_layers": 6, "n_heads": 12, "hidden_dim": 3072,
          "max_position_embeddings": 512, "dropout": 0.1, "attention_dropout": 0.1,
          "activation": "gelu", "id2label": {"0": "NEGATIVE", "1": "POSITIVE"},
          "label2id": {"NEGATIVE": 0, "POSITIVE": 1}, "pad_token_id": 0}
put("fuzz_hfconfig", "base.json", json.dumps(config))
small = dict(config, vocab_size=6, dim=8, n_layers=1, n_heads=2, hidden_dim=16, max_position_embeddings=16)
put("fuzz_hfconfig", "small-vocab.json", b" " + json.dumps(small).encode())
