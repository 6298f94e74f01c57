"""Output difference of half-precision inference against float32, as PQ PSNR (dB).

    .venv/bin/python benchmarks/precision.py --data data/val [--model tiny] [--clips 12]
        [--precision bf16 --precision fp16] [--device cpu]

For each of ``--clips`` validation clips (evenly spread over the manifest, so every operator and
QP appears), the model's HDR centre frame is computed in float32 and under autocast in each
half precision; PSNR is over PQ BT.2020 R'G'B' in [0, 1] (clipped), the eval convention. The
mode may be the default only where the minimum stays above 50 dB (issue 4). On a CPU without
native bfloat16 the autocast path still computes bfloat16 results (emulated, slowly): the
numbers are the same arithmetic a CUDA GPU or an AMX CPU would do up to accumulation order.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from didtv.data.build import load_manifest
from didtv.metrics.basic import psnr
from didtv.models.registry import load_model
from didtv.pipeline import runner as runner_mod
from didtv.pipeline.runner import Runner


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/val")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--precision", action="append", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    modes = args.precision or ["bf16", "fp16"]
    runner_mod.cpu_has_native_bf16 = lambda: True  # measure numbers, not speed
    manifest = load_manifest(args.data)
    clips = manifest["clips"]
    picks = [clips[round(i * (len(clips) - 1) / max(1, args.clips - 1))] for i in range(args.clips)]
    net = load_model(args.model)
    runners = {"fp32": Runner(net, device=args.device, precision="fp32")}
    for mode in modes:
        if mode == "fp16" and torch.device(args.device).type == "cpu":
            # CPU autocast has float16 too; resolve_precision refuses it for speed, not numbers.
            r = Runner(net, device=args.device, precision="fp32")
            r.precision = "fp16"
            runners[mode] = r
        else:
            runners[mode] = Runner(net, device=args.device, precision=mode)
    rows = []
    for rec in picks:
        with np.load(Path(args.data) / rec["file"]) as z:
            lq = z["lq"].astype(np.float32) / 65535.0
        c = len(lq) // 2
        window = [lq[c + k] for k in range(-3, 4)]
        ref = np.clip(runners["fp32"].infer(window), 0, 1).astype(np.float64)
        row = {"file": rec["file"], "operator": rec["operator"], "qp": rec["qp"]}
        for mode in modes:
            out = np.clip(runners[mode].infer(window), 0, 1).astype(np.float64)
            row[mode] = psnr(out, ref)
        rows.append(row)
        if not args.json:
            print(row, flush=True)
    summary = {m: {"min_db": min(r[m] for r in rows), "mean_db": float(np.mean([r[m] for r in rows]))} for m in modes}
    if args.json:
        print(json.dumps({"model": args.model, "clips": len(rows), "rows": rows, "summary": summary}, indent=2))
    else:
        for m, s in summary.items():
            print(f"{m} vs fp32 over {len(rows)} clips: min {s['min_db']:.1f} dB, mean {s['mean_db']:.1f} dB")


if __name__ == "__main__":
    main()
