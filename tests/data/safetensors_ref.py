#!/usr/bin/python3
"""safetensors_ref.py: an independent implementation of the safetensors format (per the
published spec: 8-byte little-endian header size N, N bytes of JSON {name: {dtype, shape,
data_offsets}, "__metadata__": {str: str}}, then the byte buffer) with numpy and, when it is
there, torch doing the dtype conversions; octet's C reader and writer are checked against it.
Debian bookworm packages neither python3-safetensors nor transformers, so this stands in for
"a file written by PyTorch's safetensors writer".

  safetensors_ref.py write OUT.safetensors OUT_expected.json
      writes F32, F16, BF16, I64, scalar and empty tensors plus metadata, with the JSON keys in
      a different order from the data (as the reference writer may), and the fp32 value of every
      float element to OUT_expected.json;
  safetensors_ref.py check FILE SOURCE.json
      parses FILE strictly and compares every tensor's bytes with SOURCE.json's fp32 values
      converted here: F16 by numpy (round-to-nearest-even), BF16 by torch (skipped, and said so,
      without torch). Exit status 0 when all match.
"""
import json
import struct
import sys

import numpy as np

try:
    import torch
except ImportError:  # BF16 checks need torch
    torch = None

DTYPE_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}


def bf16_bytes(values):
    t = torch.tensor(values, dtype=torch.float32).to(torch.bfloat16)
    return t.view(torch.int16).numpy().astype("<i2").tobytes()


def write(out, expected_path):
    f32 = np.array([[(i * 0.37 - 1.1) * (10.0 ** (i % 5 - 2)) for i in range(r * 4, r * 4 + 4)] for r in range(3)],
                   dtype=np.float32)
    f32[0, 0] = np.float32(1e-40)          # subnormal
    f32[2, 3] = np.float32(3.4e38)
    f16 = np.array([1.0, -2.5, 0.0999755859375, 65504.0, 5.960464477539063e-08], dtype=np.float16)
    bf16_vals = [1.5, -2.0, 0.15625, 1.0e10, -0.0]     # 1e10 is rounded by torch
    tensors = {  # name: (dtype, shape, bytes, fp32 values or None)
        "w.f32": ("F32", [3, 4], f32.astype("<f4").tobytes(), [float(x) for x in f32.ravel()]),
        "b.f16": ("F16", [5], f16.astype("<f2").tobytes(), [float(x) for x in f16.astype(np.float32)]),
        "s.scalar": ("F32", [], np.float32(7.0).tobytes(), [7.0]),
        "z.empty": ("F32", [0, 3], b"", []),
        "i.i64": ("I64", [2], np.array([1, -3], dtype="<i8").tobytes(), None),
    }
    if torch is not None:
        raw = bf16_bytes(bf16_vals)
        back = torch.frombuffer(bytearray(raw), dtype=torch.bfloat16).float().tolist()
        tensors["c.bf16"] = ("BF16", [5], raw, back)
    # data in reverse name order; header keys sorted
    header, blob = {"__metadata__": {"format": "pt", "writer": "safetensors_ref.py"}}, b""
    for name in sorted(tensors, reverse=True):
        dtype, shape, data, _ = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(header, sort_keys=True).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)
    with open(expected_path, "w") as f:
        json.dump({n: {"dtype": t[0], "shape": t[1], "values": t[3]} for n, t in tensors.items()}, f)


def parse(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    assert 8 + n <= len(data), "header length past the end"
    raw = data[8:8 + n]
    assert raw[:1] == b"{", "header must start with {"
    header = json.loads(raw.decode("utf-8"))
    buf = data[8 + n:]
    meta = header.pop("__metadata__", {})
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in header.items())
    pos = 0
    for b, e, k in spans:
        assert b == pos, f"{k}: hole or overlap at {b}, expected {pos}"
        info = header[k]
        numel = int(np.prod(info["shape"])) if info["shape"] else 1
        assert e - b == numel * DTYPE_SIZE[info["dtype"]], f"{k}: size mismatch"
        pos = e
    assert pos == len(buf), "trailing bytes"
    return header, meta, buf, n


def check(path, source_path):
    header, meta, buf, hlen = parse(path)
    src = json.load(open(source_path))
    bad, notes = 0, []
    if (8 + hlen) % 8:
        notes.append(f"data section not 8-byte aligned (header {hlen} bytes)")
        bad += 1
    if set(src) != set(header):
        print("tensor names differ:", sorted(src), sorted(header))
        return 1
    for name, s in src.items():
        h = header[name]
        b, e = h["data_offsets"]
        got = buf[b:e]
        if h["dtype"] != s["dtype"] or h["shape"] != s["shape"]:
            notes.append(f"{name}: {h['dtype']}{h['shape']} != {s['dtype']}{s['shape']}")
            bad += 1
            continue
        vals = np.array(s["values"], dtype=np.float32)
        if s["dtype"] == "F32":
            want = vals.astype("<f4").tobytes()
        elif s["dtype"] == "F16":
            want = vals.astype(np.float16).astype("<f2").tobytes()
        elif torch is None:
            notes.append(f"{name}: BF16 not checked (no torch)")
            continue
        else:
            want = bf16_bytes(s["values"])
        if got != want:
            w = np.frombuffer(want, dtype="<u2" if s["dtype"] != "F32" else "<u4")
            g = np.frombuffer(got, dtype=w.dtype)
            idx = np.nonzero(w != g)[0][:5]
            notes.append(f"{name}: {len(np.nonzero(w != g)[0])} elements differ, e.g. "
                         + ", ".join(f"[{i}] {vals[i]!r}: want {w[i]:#x} got {g[i]:#x}" for i in idx))
            bad += 1
    if meta.get("source") != "octet":
        notes.append(f"metadata lost: {meta}")
        bad += 1
    for n in notes:
        print(n)
    print(f"{'OK' if bad == 0 else 'FAIL'}: {len(src)} tensors, torch {'yes' if torch else 'no'}")
    return 1 if bad else 0


def main():
    if sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3])
        return 0
    return check(sys.argv[2], sys.argv[3])


if __name__ == "__main__":
    sys.exit(main())
