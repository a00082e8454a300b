#!/usr/bin/python3
"""models_ref.py: PyTorch references for octet's models (tests/unit/check_models_*.c).

DistilBertForSequenceClassification is written here from the published architecture, module
for module as Hugging Face's modeling_distilbert.py has it (Embeddings, MultiHeadSelfAttention
with the masked_fill of torch.finfo.min, FFN with exact GELU, post-LayerNorm TransformerBlock,
the pre_classifier -> ReLU -> dropout -> classifier head, CrossEntropyLoss or MSELoss for one
label), so its named_parameters() are HF's. The MLP is nn.Sequential(Linear, ReLU, ..., Linear)
under the attribute `layers`. Transformers itself is not needed.

Usage:
  models_ref.py ref WORKDIR     every WORKDIR/<case>/ holds config.json + model.safetensors
                                (written by octet's hfdir_save), batch.safetensors and
                                case.json; writes WORKDIR/<case>/out.safetensors with
                                "logits", "loss", "grad/<param>" of one forward/backward with
                                dropout off, and for each optimizer in case.json ("adamw":
                                torch.optim.AdamW, "sgd": torch.optim.SGD) "<opt>/<param>" after
                                `steps` steps on the same batch and "<opt>/losses".
  models_ref.py hfdir OUTDIR    writes two tiny random model directories in Hugging Face's
                                layout (config.json, model.safetensors, vocab.txt,
                                tokenizer_config.json): OUTDIR/mlm, a DistilBertForMaskedLM
                                checkpoint (prefixed names, MLM head, F16), and OUTDIR/base, a
                                DistilBertModel checkpoint (no prefix, BF16, with the
                                position_ids buffer); each also gets expected.safetensors, the
                                fp32 values octet must load, under the classifier's names.

The safetensors format is read and written by hand (8-byte header length, JSON header, raw
little-endian data): Debian has no python3-safetensors. Exit status 0 on success; 2 with a
message when torch is missing.
"""
import json
import math
import os
import struct
import sys

try:
    import torch
    from torch import nn
except ImportError as exc:  # the C side turns this into a failing test with this message
    sys.stderr.write("models_ref.py needs PyTorch (Debian: apt-get install python3-torch): %s\n" % exc)
    sys.exit(2)

torch.set_num_threads(2)
torch.manual_seed(0)

# ---------------------------------------------------------------- safetensors by hand

DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2),
          "I64": (torch.int64, 8), "F64": (torch.float64, 8)}


def st_read(path):
    """Returns {name: tensor} of a safetensors file (any dtype above)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, _ = DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        buf = bytearray(data[b:e])
        t = torch.frombuffer(buf, dtype=dtype) if e > b else torch.zeros(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def st_write(path, tensors, dtype="F32"):
    """Writes {name: tensor} (in the dict's order) as `dtype` (int64 tensors stay I64)."""
    header, chunks, at = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        dt = "I64" if t.dtype == torch.int64 else dtype
        t = t.to(DTYPES[dt][0])
        raw = t.view(torch.int16).numpy().tobytes() if dt == "BF16" else t.numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [at, at + len(raw)]}
        chunks.append(raw)
        at += len(raw)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)


# ---------------------------------------------------------------- DistilBERT, as HF writes it

class Config:
    def __init__(self, d):
        self.dim = d.get("dim", 768)
        self.n_layers = d.get("n_layers", 6)
        self.n_heads = d.get("n_heads", 12)
        self.hidden_dim = d.get("hidden_dim", 3072)
        self.vocab_size = d.get("vocab_size", 30522)
        self.max_position_embeddings = d.get("max_position_embeddings", 512)
        self.dropout = d.get("dropout", 0.1)
        self.attention_dropout = d.get("attention_dropout", 0.1)
        self.seq_classif_dropout = d.get("seq_classif_dropout", 0.2)
        self.pad_token_id = d.get("pad_token_id", 0)
        self.num_labels = len(d["id2label"]) if "id2label" in d else d.get("num_labels", 2)


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.dim, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.dim)
        self.LayerNorm = nn.LayerNorm(c.dim, eps=1e-12)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, input_ids):
        seq_length = input_ids.size(1)
        position_ids = torch.arange(seq_length, dtype=torch.long).unsqueeze(0).expand_as(input_ids)
        embeddings = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_heads, self.dim = c.n_heads, c.dim
        self.dropout = nn.Dropout(p=c.attention_dropout)
        self.q_lin = nn.Linear(c.dim, c.dim)
        self.k_lin = nn.Linear(c.dim, c.dim)
        self.v_lin = nn.Linear(c.dim, c.dim)
        self.out_lin = nn.Linear(c.dim, c.dim)

    def forward(self, query, key, value, mask):
        bs, _, _ = query.size()
        k_length = key.size(1)
        dim_per_head = self.dim // self.n_heads
        mask_reshp = (bs, 1, 1, k_length)

        def shape(x):
            return x.view(bs, -1, self.n_heads, dim_per_head).transpose(1, 2)

        def unshape(x):
            return x.transpose(1, 2).contiguous().view(bs, -1, self.n_heads * dim_per_head)

        q = shape(self.q_lin(query))
        k = shape(self.k_lin(key))
        v = shape(self.v_lin(value))
        q = q / math.sqrt(dim_per_head)
        scores = torch.matmul(q, k.transpose(2, 3))
        mask = (mask == 0).view(mask_reshp).expand_as(scores)
        scores = scores.masked_fill(mask, torch.tensor(torch.finfo(scores.dtype).min))
        weights = nn.functional.softmax(scores, dim=-1)
        weights = self.dropout(weights)
        context = unshape(torch.matmul(weights, v))
        return self.out_lin(context)


class FFN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dropout = nn.Dropout(p=c.dropout)
        self.lin1 = nn.Linear(c.dim, c.hidden_dim)
        self.lin2 = nn.Linear(c.hidden_dim, c.dim)
        self.activation = nn.GELU()

    def forward(self, x):
        return self.dropout(self.lin2(self.activation(self.lin1(x))))


class TransformerBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = MultiHeadSelfAttention(c)
        self.sa_layer_norm = nn.LayerNorm(c.dim, eps=1e-12)
        self.ffn = FFN(c)
        self.output_layer_norm = nn.LayerNorm(c.dim, eps=1e-12)

    def forward(self, x, attn_mask):
        sa_output = self.sa_layer_norm(self.attention(x, x, x, attn_mask) + x)
        return self.output_layer_norm(self.ffn(sa_output) + sa_output)


class Transformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([TransformerBlock(c) for _ in range(c.n_layers)])

    def forward(self, x, attn_mask):
        for layer in self.layer:
            x = layer(x, attn_mask)
        return x


class DistilBertModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.transformer = Transformer(c)

    def forward(self, input_ids, attention_mask):
        return self.transformer(self.embeddings(input_ids), attention_mask)


class DistilBertForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.num_labels = c.num_labels
        self.distilbert = DistilBertModel(c)
        self.pre_classifier = nn.Linear(c.dim, c.dim)
        self.classifier = nn.Linear(c.dim, c.num_labels)
        self.dropout = nn.Dropout(c.seq_classif_dropout)

    def forward(self, batch):
        hidden_state = self.distilbert(batch["ids"], batch["mask"])
        pooled_output = hidden_state[:, 0]
        pooled_output = nn.ReLU()(self.pre_classifier(pooled_output))
        logits = self.classifier(self.dropout(pooled_output))
        return logits, loss_of(logits, batch, self.num_labels)


class DistilBertForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.distilbert = DistilBertModel(c)
        self.vocab_transform = nn.Linear(c.dim, c.dim)
        self.vocab_layer_norm = nn.LayerNorm(c.dim, eps=1e-12)
        self.vocab_projector = nn.Linear(c.dim, c.vocab_size)


# ---------------------------------------------------------------- the MLP

class MLP(nn.Module):
    def __init__(self, in_features, hidden, num_labels):
        super().__init__()
        mods, last = [], in_features
        for h in hidden:
            mods += [nn.Linear(last, h), nn.ReLU()]
            last = h
        mods.append(nn.Linear(last, num_labels))
        self.layers = nn.Sequential(*mods)
        self.num_labels = num_labels

    def forward(self, batch):
        logits = self.layers(batch["features"])
        return logits, loss_of(logits, batch, self.num_labels)


def loss_of(logits, batch, num_labels):
    """HF's: MSELoss on squeezed logits for one label, else CrossEntropyLoss."""
    if num_labels == 1:
        return nn.MSELoss()(logits.squeeze(), batch["targets"].squeeze())
    return nn.CrossEntropyLoss()(logits.view(-1, num_labels), batch["labels"].view(-1))


# ---------------------------------------------------------------- ref mode

def build(case_dir):
    cfg = json.load(open(os.path.join(case_dir, "config.json")))
    if cfg.get("model_type") == "octet-mlp":
        model = MLP(cfg["in_features"], cfg["hidden"], cfg["num_labels"])
    else:
        model = DistilBertForSequenceClassification(Config(cfg))
    weights = st_read(os.path.join(case_dir, "model.safetensors"))
    names = [n for n, _ in model.named_parameters()]
    if names != list(weights.keys()):
        raise SystemExit("%s: parameter names/order differ:\n torch %s\n octet %s" % (case_dir, names, list(weights)))
    model.load_state_dict(weights, strict=True)
    model.train()
    return model


def load_batch(case_dir):
    raw = st_read(os.path.join(case_dir, "batch.safetensors"))
    batch = {}
    for k, v in raw.items():
        batch[k] = v.long() if k in ("ids", "mask", "labels") else v
    return batch


def make_optimizer(kind, hp, params):
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=hp["lr"], betas=tuple(hp["betas"]), eps=hp["eps"],
                                 weight_decay=hp["weight_decay"])
    if kind == "sgd":
        return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"])
    raise SystemExit("unknown optimizer " + kind)


def run_case(case_dir):
    case = json.load(open(os.path.join(case_dir, "case.json")))
    batch = load_batch(case_dir)
    out = {}
    model = build(case_dir)
    logits, loss = model(batch)
    loss.backward()
    out["logits"] = logits.detach()
    out["loss"] = loss.detach().reshape(1)
    for name, p in model.named_parameters():
        out["grad/" + name] = p.grad.detach().clone()
    for kind in ("adamw", "sgd"):
        if kind not in case:
            continue
        model = build(case_dir)
        opt = make_optimizer(kind, case[kind], model.parameters())
        losses = []
        for _ in range(case["steps"]):
            opt.zero_grad()
            _, loss = model(batch)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        out[kind + "/losses"] = torch.tensor(losses, dtype=torch.float32)
        for name, p in model.named_parameters():
            out[kind + "/" + name] = p.detach().clone()
    st_write(os.path.join(case_dir, "out.safetensors"), out)


def mode_ref(workdir):
    cases = sorted(d for d in os.listdir(workdir) if os.path.isfile(os.path.join(workdir, d, "case.json")))
    if not cases:
        raise SystemExit("no cases under " + workdir)
    for c in cases:
        run_case(os.path.join(workdir, c))


# ---------------------------------------------------------------- hfdir mode

TINY = {"dim": 16, "n_layers": 2, "n_heads": 2, "hidden_dim": 32, "vocab_size": 40,
        "max_position_embeddings": 24, "pad_token_id": 0}


def write_dir(path, module, arch, state, dtype):
    """A model directory: config.json, model.safetensors (state in `dtype`), vocab.txt,
    tokenizer_config.json, and expected.safetensors (what each classifier parameter must load
    as, in fp32 after the dtype's rounding)."""
    os.makedirs(path, exist_ok=True)
    cfg = dict(TINY, model_type="distilbert", architectures=[arch], activation="gelu", dropout=0.1,
               attention_dropout=0.1, seq_classif_dropout=0.2, initializer_range=0.02,
               sinusoidal_pos_embds=False, qa_dropout=0.1, tie_weights_=True)
    json.dump(cfg, open(os.path.join(path, "config.json"), "w"), indent=2)
    st_write(os.path.join(path, "model.safetensors"), state, dtype)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + ["w%d" % i for i in range(TINY["vocab_size"] - 5)]
    open(os.path.join(path, "vocab.txt"), "w").write("\n".join(words) + "\n")
    json.dump({"do_lower_case": True, "model_max_length": 24}, open(os.path.join(path, "tokenizer_config.json"), "w"))
    expected = {}
    for name, t in state.items():
        if t.dtype == torch.int64 or name.startswith("vocab_"):
            continue
        full = name if name.startswith("distilbert.") else "distilbert." + name
        expected[full] = t.to(DTYPES[dtype][0]).float()
    st_write(os.path.join(path, "expected.safetensors"), expected)


def mode_hfdir(outdir):
    c = Config(TINY)
    with torch.no_grad():
        mlm = DistilBertForMaskedLM(c)
        for p in mlm.parameters():
            p.normal_(0.0, 0.5)
        write_dir(os.path.join(outdir, "mlm"), mlm, "DistilBertForMaskedLM", dict(mlm.state_dict()), "F16")
        base = DistilBertModel(c)
        for p in base.parameters():
            p.normal_(0.0, 0.5)
        state = {"embeddings.position_ids": torch.arange(TINY["max_position_embeddings"]).unsqueeze(0)}
        state.update(base.state_dict())
        write_dir(os.path.join(outdir, "base"), base, "DistilBertModel", state, "BF16")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("ref", "hfdir"):
        sys.stderr.write("usage: models_ref.py ref WORKDIR | hfdir OUTDIR\n")
        return 64
    if sys.argv[1] == "ref":
        mode_ref(sys.argv[2])
    else:
        mode_hfdir(sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
