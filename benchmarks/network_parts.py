"""Seconds per part of DIDNet on one window, by precision: where the network's time goes.

    .venv/bin/python benchmarks/network_parts.py --model tiny --size 960x544 --precision fp32 --precision bf16

Times each stage of the forward pass (eval mode, no grad) on random frames, median of --repeat
runs after one warm-up, and prints GFLOP and GFLOP/s per part (the model's own FLOP count,
docs/didnet.md). The runner's own path is ``didtv bench --part network``; this splits it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from didtv.models.align import conv_flops
from didtv.models.registry import load_model


def _time(fn, repeat: int) -> float:
    fn()
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def parts(model, frames: torch.Tensor, precision: str, repeat: int) -> list[dict]:
    h, w = frames.shape[-2:]
    tsaf = model.tsaf
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[precision]
    rows = []
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype, enabled=precision != "fp32"):
        b, t, c = frames.shape[:3]
        x = frames.reshape(b, t * c, h, w)
        raw = tsaf.offsets(x)
        fused = tsaf.act(tsaf.deform(x, raw))
        feat = tsaf.blocks(fused)
        cond = model.condition_vector(frames)
        mods = model.modulation_vectors(cond)
        ffe = model.ffe(feat)
        steps = [
            ("offset U-Net", lambda: tsaf.offsets(x), tsaf.offsets.flops(h, w)),
            # with the fused C kernel (didtv/models/native) tanh/sigmoid run inside the sampling
            ("deformable conv (+ tanh/sigmoid)", lambda: tsaf.deform(x, raw), tsaf.dcn.flops(h, w)),
            ("residual blocks", lambda: tsaf.blocks(fused), sum(bl.flops(h, w) for bl in tsaf.blocks)),
            ("aux conv", lambda: model.aux(feat), conv_flops(model.aux, h, w)),
            ("FFE", lambda: model.ffe(feat), model.ffe.flops(h, w)),
            ("DMC x3", lambda: [layer(ffe, a, bt, g) for layer, (a, bt, g) in zip(model.dmc, mods)],
             sum(layer.flops(h, w) for layer in model.dmc)),
            ("output conv + base", lambda: model.base_mapping(frames[:, 3], cond) + model.out(ffe).float(),
             conv_flops(model.out, h, w)),
            ("condition", lambda: model.condition_vector(frames), None),
            ("whole forward", lambda: model(frames, cond), model.flops(h, w)["total"]),
        ]
        for name, fn, flops in steps:
            s = _time(fn, repeat)
            rows.append({"part": name, "precision": precision, "seconds": s,
                         "gflop": flops / 1e9 if flops else None,
                         "gflops_per_s": flops / s / 1e9 if flops else None})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--size", default="960x544")
    ap.add_argument("--precision", action="append", choices=["fp32", "bf16"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    model = load_model(args.model)
    model.use_channels_last()
    frames = torch.rand(1, 7, 3, h, w, generator=torch.Generator().manual_seed(0))
    from didtv.models.align import native_deform_available

    print(f"deformable sampling: {'native C kernel' if native_deform_available() else 'torch (grid_sample)'}")
    rows = [r for p in (args.precision or ["fp32"]) for r in parts(model, frames, p, args.repeat)]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    for r in rows:
        g = "" if r["gflop"] is None else f"{r['gflop']:7.1f} GFLOP {r['gflops_per_s']:6.1f} GFLOP/s"
        print(f"{r['precision']:5} {r['part']:36} {r['seconds']:7.3f} s  {g}")


if __name__ == "__main__":
    main()
