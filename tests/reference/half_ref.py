#!/usr/bin/python3
"""half_ref.py: PyTorch's fp32 -> bf16 / fp16 rounding and the way back, for the ops suite's
check of to_half / from_half (tests/unit/check_ops_cast.c).

Builds a fixed set of float32 inputs — edge cases (zeros, ties to even both ways, the largest
finite values, the overflow thresholds, fp16 subnormals and their ties, float subnormals, inf,
NaN), random normals at scales from 1e-9 to 1e6 (torch.Generator seeded 4242) and random bit
patterns (every exponent) — and converts them with torch's own .to(torch.bfloat16) and
.to(torch.float16) on the CPU. Also converts every one of the 65536 16-bit patterns of each
format back with .to(torch.float32). Nothing here shares code with octet.

Usage: /usr/bin/python3 half_ref.py OUTFILE
Exit status 0; 2 (message on stderr) when torch cannot be imported or OUTFILE not written.

File format (little-endian):
  magic  8 bytes b"OCTHALF1"
  n      u32
  x      n x u32    the float32 inputs' bits
  bf16   n x u16    torch's x.to(torch.bfloat16) bits
  fp16   n x u16    torch's x.to(torch.float16) bits
  back_bf16  65536 x u32   bits of pattern h (0..65535) as bf16 .to(torch.float32)
  back_fp16  65536 x u32   bits of pattern h as fp16 .to(torch.float32)
"""
import os
import struct
import sys

try:
    import torch
except Exception as exc:  # pragma: no cover - reported to the C test
    sys.stderr.write("half_ref.py: cannot import torch (%s); install python3-torch\n" % exc)
    sys.exit(2)


def f32_from_bits(bits):
    return torch.tensor(bits, dtype=torch.int64).to(torch.int32).view(torch.float32)


def edge_bits():
    b = []
    for s in (0, 0x80000000):
        b += [s | v for v in (
            0x00000000, 0x3F800000,                 # 0, 1
            0x3F808000, 0x3F818000,                 # 1 + 2^-8, 1 + 3*2^-8: bf16 ties (even down, up)
            0x3F808001,                             # just above a bf16 tie
            0x3F801000, 0x3F803000,                 # 1 + 2^-11, 1 + 3*2^-11: fp16 ties (down, up)
            0x3F801001, 0x3F800FFF,                 # around an fp16 tie
            0x477FE000, 0x477FEFFF, 0x477FF000,     # 65504 (fp16 max), just below / at the overflow tie
            0x477FF001, 0x47800000,                 # above it, 65536
            0x7F7F0000, 0x7F7F7FFF, 0x7F7F8000,     # bf16 max finite, below / at its overflow tie
            0x7F7FFFFF,                             # FLT_MAX
            0x33800000, 0x33000000, 0x33000001,     # 2^-24 (fp16 min subnormal), 2^-25 (tie to 0), above
            0x33C00000, 0x34200000,                 # 3*2^-25 (tie up to 2 units), 5*2^-25 (tie down to 2)
            0x387FC000, 0x387FE000, 0x38800000,     # fp16 largest subnormal, tie to the min normal, min normal
            0x32FFFFFF, 0x2F800000,                 # just below 2^-25, 2^-32
            0x00000001, 0x00008000, 0x00008001,     # float subnormals: bf16 rounding of subnormals
            0x00018000, 0x007FFFFF, 0x00800000,     # tie up, the largest subnormal, FLT_MIN
            0x3FFFF000, 0x3FFF8000,                 # rounding carries into the exponent
            0x7F800000,                             # inf
            0x7FC00000, 0x7F800001, 0x7FA02000)]    # NaNs (torch canonicalises these)
    return b


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: half_ref.py OUTFILE\n")
        return 2
    g = torch.Generator().manual_seed(4242)
    parts = [f32_from_bits(edge_bits())]
    for scale in (1e-9, 1e-7, 6e-5, 1e-3, 1.0, 300.0, 3e4, 6e4, 1e6):
        parts.append(torch.randn(2000, generator=g, dtype=torch.float32) * scale)
    rb = torch.randint(0, 2**32, (20000,), generator=g, dtype=torch.int64)
    parts.append(rb.to(torch.int32).view(torch.float32))  # any bits, every exponent
    x = torch.cat(parts).contiguous()
    bf = x.to(torch.bfloat16).view(torch.int16).to(torch.int64) & 0xFFFF
    hf = x.to(torch.float16).view(torch.int16).to(torch.int64) & 0xFFFF
    xb = x.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    pat = torch.arange(65536, dtype=torch.int64).to(torch.int16)  # wraps to the 16-bit patterns
    back_bf = pat.view(torch.bfloat16).to(torch.float32).view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    back_hf = pat.view(torch.float16).to(torch.float32).view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    n = x.numel()
    out = sys.argv[1]
    try:
        with open(out + ".tmp", "wb") as f:
            f.write(b"OCTHALF1")
            f.write(struct.pack("<I", n))
            f.write(struct.pack("<%dI" % n, *xb.tolist()))
            f.write(struct.pack("<%dH" % n, *bf.tolist()))
            f.write(struct.pack("<%dH" % n, *hf.tolist()))
            f.write(struct.pack("<65536I", *back_bf.tolist()))
            f.write(struct.pack("<65536I", *back_hf.tolist()))
        os.replace(out + ".tmp", out)
    except OSError as exc:
        sys.stderr.write("half_ref.py: cannot write %s: %s\n" % (out, exc))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
