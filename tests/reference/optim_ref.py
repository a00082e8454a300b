#!/usr/bin/python3
"""optim_ref.py: PyTorch reference trajectories for the optimizer engine's reference test.

Writes, for a fixed list of cases (optimizer, hyper-parameters, tensor shapes, number of
steps), the initial parameters, the gradient of every step and the parameters and states that
PyTorch reaches after the last step, to one binary file that tests/unit/check_optim_ref.c
reads. The C test steps our engine with the very same gradients (it never re-derives them) and
compares. References:
  - adamw: torch.optim.AdamW (for-loop path), float32;
  - sgd:   torch.optim.SGD, float32;
  - adafactor: our own PyTorch transcription of Hugging Face's `Adafactor.step`
    (transformers/optimization.py, /work/shared/reference/optimizers.md section 2.2), below,
    written against torch only so it needs no transformers install.
Every case seeds its own torch.Generator: parameters from seed s, the gradient of step k from
seed s*1000+k, so a case does not change when another is added.

Usage: /usr/bin/python3 optim_ref.py OUTFILE
Exit status 0 on success; 2 (with a message on stderr) when torch cannot be imported or
OUTFILE cannot be written. The file is written to OUTFILE.tmp and renamed, so a reader never
sees half a file.

File format (all little-endian; str = u32 byte length + UTF-8 bytes, no terminator):
  magic    8 bytes  b"OCTREF01"
  n_cases  u32
  per case:
    name     str
    kind     str                      "adamw" | "sgd" | "adafactor" (octet's optimizer names)
    n_hp     u32, then n_hp x (key str, value f64)   hyper-parameters (octet's optim_hparams
                                      field names: lr, beta1, beta2, eps, eps2, weight_decay,
                                      momentum, dampening, nesterov, clip_threshold,
                                      decay_rate, use_beta1, scale_parameter, relative_step,
                                      warmup_init; flags as 0.0/1.0; absent = octet's default)
    steps    u32  K
    lr_scale K x f64                  factor on every group's lr at each step (scheduler)
    n_tensors u32
    per tensor:
      name     str
      ndim     u32, shape ndim x i64
      n_grp    u32, then n_grp x (key str, value f64)  this tensor's param-group overrides
                                      (keys lr, weight_decay); empty = the base group
      init     numel x f32            parameters before the first step
      grads    K x numel x f32        gradient of step 1..K
      expected numel x f32            parameters after step K
      n_states u32, then n_states x (name str, count u32, count x f32)
                                      optimizer states after step K, by torch's / HF's names
                                      (exp_avg, exp_avg_sq, momentum_buffer, exp_avg_sq_row,
                                      exp_avg_sq_col)
"""
import math
import os
import struct
import sys

try:
    import torch
except ImportError as exc:  # the C test turns this into a failure with the message
    sys.stderr.write("optim_ref.py: cannot import torch (%s); install python3-torch\n" % exc)
    sys.exit(2)

MAGIC = b"OCTREF01"


# ----------------------------------------------------------------------------- Adafactor (HF)

class HFAdafactor(torch.optim.Optimizer):
    """Hugging Face's Adafactor, transcribed from optimizers.md section 2.2 (HF's code order):
    RMS(X) before the update, rho_t / alpha_t, beta2t = 1 - t^decay_rate, S = G^2 + eps1,
    factored row/column statistics over the last two dims (vectors unfactored), update
    clipping by RMS(U)/clip_threshold, alpha-scaled update, optional momentum on the scaled
    update, weight decay scaled by alpha, then X -= U. float32 throughout."""

    def __init__(self, params, lr=None, eps=(1e-30, 1e-3), clip_threshold=1.0, decay_rate=-0.8,
                 beta1=None, weight_decay=0.0, scale_parameter=True, relative_step=True,
                 warmup_init=False):
        if lr is not None and relative_step:
            raise ValueError("Cannot combine manual lr and relative_step=True options")
        if warmup_init and not relative_step:
            raise ValueError("warmup_init=True requires relative_step=True")
        defaults = dict(lr=lr, eps=eps, clip_threshold=clip_threshold, decay_rate=decay_rate,
                        beta1=beta1, weight_decay=weight_decay, scale_parameter=scale_parameter,
                        relative_step=relative_step, warmup_init=warmup_init)
        super().__init__(params, defaults)

    @staticmethod
    def _get_lr(group, state):
        rel_step_sz = group["lr"]
        if group["relative_step"]:
            min_step = 1e-6 * state["step"] if group["warmup_init"] else 1e-2
            rel_step_sz = min(min_step, 1.0 / math.sqrt(state["step"]))
        param_scale = 1.0
        if group["scale_parameter"]:
            param_scale = max(group["eps"][1], state["RMS"])
        return param_scale * rel_step_sz

    @staticmethod
    def _rms(tensor):
        return tensor.norm(2) / (tensor.numel() ** 0.5)

    @staticmethod
    def _approx_sq_grad(row, col):
        r_factor = (row / row.mean(dim=-1, keepdim=True)).rsqrt_().unsqueeze(-1)
        c_factor = col.unsqueeze(-2).rsqrt()
        return torch.mul(r_factor, c_factor)

    def _init_state(self, state, grad, factored, use_first_moment):
        state["step"] = 0
        if use_first_moment:
            state["exp_avg"] = torch.zeros_like(grad)
        if factored:
            state["exp_avg_sq_row"] = torch.zeros(grad.shape[:-1], dtype=grad.dtype)
            state["exp_avg_sq_col"] = torch.zeros(grad.shape[:-2] + grad.shape[-1:], dtype=grad.dtype)
        else:
            state["exp_avg_sq"] = torch.zeros_like(grad)
        state["RMS"] = 0

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                factored = grad.dim() >= 2
                use_first_moment = group["beta1"] is not None
                if len(state) == 0:
                    self._init_state(state, grad, factored, use_first_moment)
                state["step"] += 1
                state["RMS"] = self._rms(p)
                lr = self._get_lr(group, state)
                beta2t = 1.0 - math.pow(state["step"], group["decay_rate"])
                update = (grad ** 2) + group["eps"][0]
                if factored:
                    row, col = state["exp_avg_sq_row"], state["exp_avg_sq_col"]
                    row.mul_(beta2t).add_(update.mean(dim=-1), alpha=(1.0 - beta2t))
                    col.mul_(beta2t).add_(update.mean(dim=-2), alpha=(1.0 - beta2t))
                    update = self._approx_sq_grad(row, col)
                    update.mul_(grad)
                else:
                    v = state["exp_avg_sq"]
                    v.mul_(beta2t).add_(update, alpha=(1.0 - beta2t))
                    update = v.rsqrt().mul_(grad)
                update.div_((self._rms(update) / group["clip_threshold"]).clamp_(min=1.0))
                update.mul_(lr)
                if use_first_moment:
                    exp_avg = state["exp_avg"]
                    exp_avg.mul_(group["beta1"]).add_(update, alpha=(1 - group["beta1"]))
                    update = exp_avg
                if group["weight_decay"] != 0:
                    p.add_(p, alpha=float(-group["weight_decay"] * lr))
                p.add_(-update)


# ----------------------------------------------------------------------------- cases

def case(name, kind, hp, shapes, steps, seed, gscale=1.0, pscale=1.0, schedule=None, groups=None):
    """One case: `hp` in octet's field names, `shapes` a list of tensor shapes, `groups` an
    optional list (one per tensor) of override dicts, `schedule` an optional function
    k -> lr_scale for step k (1-based)."""
    return dict(name=name, kind=kind, hp=hp, shapes=shapes, steps=steps, seed=seed, gscale=gscale,
                pscale=pscale, schedule=schedule or (lambda k: 1.0),
                groups=groups or [{} for _ in shapes])


def linear_decay(total):
    return lambda k: (total - k + 1) / total


CASES = [
    # torch.optim.AdamW: defaults, custom betas/eps/wd, lr 1e-3 and 1e-2
    case("adamw_default_7x13", "adamw", dict(lr=1e-3), [(7, 13)], 10, 101, gscale=0.1),
    case("adamw_lr1e-2_custom_3x5x6", "adamw", dict(lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1),
         [(3, 5, 6)], 15, 102, gscale=0.1),
    case("adamw_lr1e-2_nowd_37", "adamw", dict(lr=1e-2, weight_decay=0.0), [(37,)], 20, 103, gscale=0.01),
    case("adamw_lr1e-3_custom_300x17", "adamw", dict(lr=1e-3, beta1=0.95, beta2=0.98, eps=1e-7, weight_decay=0.05),
         [(300, 17)], 8, 104, gscale=0.1),
    case("adamw_groups_schedule", "adamw", dict(lr=1e-2, weight_decay=0.01), [(7, 13), (37,), (300, 17)], 12, 105,
         gscale=0.1, schedule=linear_decay(12),
         groups=[{}, {"weight_decay": 0.0}, {"lr": 3e-3, "weight_decay": 0.1}]),
    # eps dominates the denominator (gradients of 1e-10 against eps 1e-8): the case in which a
    # wrong eps shows, 1e-4 of it included
    case("adamw_eps_dominated_9x11", "adamw", dict(lr=1e-3, weight_decay=0.0), [(9, 11)], 10, 106,
         gscale=1e-10, pscale=1e-4),
    # torch.optim.SGD: plain, momentum, dampening, nesterov, weight decay
    case("sgd_plain_7x13", "sgd", dict(lr=1e-2), [(7, 13)], 5, 201),
    case("sgd_momentum_300x17", "sgd", dict(lr=1e-2, momentum=0.9), [(300, 17)], 10, 202),
    case("sgd_dampening_3x5x6", "sgd", dict(lr=1e-2, momentum=0.9, dampening=0.5), [(3, 5, 6)], 12, 203),
    case("sgd_nesterov_37", "sgd", dict(lr=1e-2, momentum=0.9, nesterov=1), [(37,)], 15, 204),
    case("sgd_wd_momentum_7x13", "sgd", dict(lr=5e-2, momentum=0.9, weight_decay=1e-2), [(7, 13), (37,)], 20, 205),
    case("sgd_wd_plain_300x17", "sgd", dict(lr=1e-1, weight_decay=1e-3), [(300, 17)], 6, 206,
         schedule=linear_decay(6)),
    # Hugging Face Adafactor (own transcription): defaults, the Trainer's way, beta1, wd, clipping
    case("adafactor_default_7x13_37", "adafactor", dict(), [(7, 13), (37,)], 10, 301),
    case("adafactor_default_300x17_3x5x6", "adafactor", dict(), [(300, 17), (3, 5, 6)], 12, 302),
    case("adafactor_trainer_lr1e-3", "adafactor", dict(lr=1e-3, scale_parameter=0, relative_step=0),
         [(7, 13), (37,), (300, 17)], 10, 303, schedule=linear_decay(10)),
    case("adafactor_beta1_3x5x6", "adafactor", dict(use_beta1=1, beta1=0.9), [(3, 5, 6), (37,)], 12, 304),
    case("adafactor_trainer_beta1_wd", "adafactor",
         dict(lr=1e-2, scale_parameter=0, relative_step=0, use_beta1=1, beta1=0.8, weight_decay=0.01),
         [(7, 13), (37,)], 8, 305),
    case("adafactor_wd_scaled", "adafactor", dict(weight_decay=0.1), [(300, 17), (37,)], 6, 306),
    case("adafactor_clip_0.3", "adafactor", dict(clip_threshold=0.3, decay_rate=-0.5, eps2=1e-2),
         [(7, 13), (2, 3, 4, 5), (37,)], 15, 307),
    case("adafactor_warmup_init", "adafactor", dict(warmup_init=1), [(7, 13), (37,)], 5, 308),
    case("adafactor_small_params", "adafactor", dict(), [(300, 17)], 5, 309, pscale=1e-4),
]


# ----------------------------------------------------------------------------- torch side

def make_optimizer(kind, hp, tensors, groups):
    """The PyTorch optimizer for a case; per-tensor overrides become param groups."""
    pg = [dict(params=[t], **g) for t, g in zip(tensors, groups)]
    if kind == "adamw":
        return torch.optim.AdamW(pg, lr=hp.get("lr", 1e-3), betas=(hp.get("beta1", 0.9), hp.get("beta2", 0.999)),
                                 eps=hp.get("eps", 1e-8), weight_decay=hp.get("weight_decay", 1e-2),
                                 foreach=False)
    if kind == "sgd":
        return torch.optim.SGD(pg, lr=hp.get("lr", 1e-3), momentum=hp.get("momentum", 0.0),
                               dampening=hp.get("dampening", 0.0), weight_decay=hp.get("weight_decay", 0.0),
                               nesterov=bool(hp.get("nesterov", 0)), foreach=False)
    if kind == "adafactor":
        return HFAdafactor(pg, lr=hp.get("lr"), eps=(hp.get("eps", 1e-30), hp.get("eps2", 1e-3)),
                           clip_threshold=hp.get("clip_threshold", 1.0), decay_rate=hp.get("decay_rate", -0.8),
                           beta1=hp.get("beta1") if hp.get("use_beta1") else None,
                           weight_decay=hp.get("weight_decay", 0.0),
                           scale_parameter=bool(hp.get("scale_parameter", 1)),
                           relative_step=bool(hp.get("relative_step", 1)),
                           warmup_init=bool(hp.get("warmup_init", 0)))
    raise ValueError("unknown kind " + kind)


def run_case(c):
    """Runs one case in torch; returns per-tensor dicts with init, grads, expected, states."""
    gen = torch.Generator().manual_seed(c["seed"])
    tensors = [(torch.randn(s, generator=gen, dtype=torch.float32) * c["pscale"]) for s in c["shapes"]]
    init = [t.clone() for t in tensors]
    params = [torch.nn.Parameter(t) for t in tensors]
    opt = make_optimizer(c["kind"], c["hp"], params, c["groups"])
    base_lr = [g["lr"] for g in opt.param_groups]
    grads = [[] for _ in params]
    for k in range(1, c["steps"] + 1):
        gk = torch.Generator().manual_seed(c["seed"] * 1000 + k)
        for i, p in enumerate(params):
            p.grad = torch.randn(p.shape, generator=gk, dtype=torch.float32) * c["gscale"]
            grads[i].append(p.grad.clone())
        for g, lr in zip(opt.param_groups, base_lr):
            if lr is not None:
                g["lr"] = lr * c["schedule"](k)
        opt.step()
    out = []
    for i, p in enumerate(params):
        st = opt.state[p]
        states = [(n, st[n].detach().clone()) for n in
                  ("exp_avg", "exp_avg_sq", "momentum_buffer", "exp_avg_sq_row", "exp_avg_sq_col")
                  if n in st and st[n] is not None]
        out.append(dict(init=init[i], grads=grads[i], expected=p.detach().clone(), states=states))
    return out


# ----------------------------------------------------------------------------- writing

def put_str(f, s):
    b = s.encode("utf-8")
    f.write(struct.pack("<I", len(b)))
    f.write(b)


def put_kv(f, d):
    f.write(struct.pack("<I", len(d)))
    for k in sorted(d):
        put_str(f, k)
        f.write(struct.pack("<d", float(d[k])))


def put_f32(f, t):
    f.write(t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes())


def write_case(f, c, result):
    put_str(f, c["name"])
    put_str(f, c["kind"])
    put_kv(f, c["hp"])
    f.write(struct.pack("<I", c["steps"]))
    for k in range(1, c["steps"] + 1):
        f.write(struct.pack("<d", c["schedule"](k)))
    f.write(struct.pack("<I", len(c["shapes"])))
    for i, (shape, r) in enumerate(zip(c["shapes"], result)):
        put_str(f, "t%d" % i)
        f.write(struct.pack("<I", len(shape)))
        for d in shape:
            f.write(struct.pack("<q", d))
        put_kv(f, c["groups"][i])
        put_f32(f, r["init"])
        for g in r["grads"]:
            put_f32(f, g)
        put_f32(f, r["expected"])
        f.write(struct.pack("<I", len(r["states"])))
        for name, t in r["states"]:
            put_str(f, name)
            f.write(struct.pack("<I", t.numel()))
            put_f32(f, t)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: optim_ref.py OUTFILE\n")
        return 2
    torch.set_num_threads(1)  # reductions in one fixed order; the data are tiny anyway
    out = argv[1]
    tmp = out + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC)
            f.write(struct.pack("<I", len(CASES)))
            for c in CASES:
                write_case(f, c, run_case(c))
        os.replace(tmp, out)
    except OSError as exc:
        sys.stderr.write("optim_ref.py: cannot write %s: %s\n" % (out, exc))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
