"""Network FLOP/s against the reference convolution measured in the same minutes, window by window.

    .venv/bin/python benchmarks/interleaved_ratio.py --model full --size 960x540 --windows 6 [--compile]

`didtv bench` runs its reference and network parts in separate processes, one after the other;
on a shared VM the reference convolution alone varied from 197 to 441 GFLOP/s between runs, so
their ratio moved by up to 20%. Here each network window is followed by reference convolutions
(64->64 3x3, channels-last, the runner's precision, on a frame of the same size) for about as
long, and the ratio is taken over the same stretch of time. Random frames (the FLOP count does
not depend on the content; the deformable sampling's speed does a little).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from didtv.models.registry import load_model
from didtv.pipeline.runner import _DTYPES, Runner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--size", default="960x540")
    ap.add_argument("--windows", type=int, default=6)
    ap.add_argument("--precision", default=None)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    net = load_model(args.model)
    runner = Runner(net, device="cpu", precision=args.precision, torch_compile=args.compile)
    window = [torch.rand(3, h, w) for _ in range(runner.spec.window)]
    m = runner.spec.multiple_of
    net_flops = net.flops(h + (-h) % m, w + (-w) % m)["total"]
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(memory_format=torch.channels_last)
    x = torch.rand(1, 64, h, w).contiguous(memory_format=torch.channels_last)
    ref_flops = 2 * 64 * 64 * 9 * h * w
    dtype = _DTYPES.get(runner.precision)

    def reference(seconds: float) -> tuple[int, float]:
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            n, t0 = 0, time.perf_counter()
            while n < 2 or time.perf_counter() - t0 < seconds:
                conv(x)
                n += 1
            return n, time.perf_counter() - t0

    runner.infer_batch([window])  # warm-up (and compilation)
    reference(1.0)
    net_s = ref_s = 0.0
    ref_n = 0
    rows = []
    for _ in range(args.windows):
        t0 = time.perf_counter()
        runner.infer_batch([window])
        dt = time.perf_counter() - t0
        n, rs = reference(dt)
        net_s, ref_s, ref_n = net_s + dt, ref_s + rs, ref_n + n
        rows.append({"network_s": dt, "network_gflops": net_flops / dt / 1e9,
                     "reference_gflops": n * ref_flops / rs / 1e9})
    out = {"model": args.model, "size": args.size, "precision": runner.precision,
           "torch_compile": runner.torch_compile, "windows": rows,
           "network_gflops": args.windows * net_flops / net_s / 1e9,
           "reference_gflops": ref_n * ref_flops / ref_s / 1e9}
    out["ratio"] = out["network_gflops"] / out["reference_gflops"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
