"""Time of the motion guard (didtv.pipeline.guard) per 7-frame window, on this CPU.

    .venv/bin/python benchmarks/motion_guard_cost.py [--size 960x544 --size 1920x1088] [--threads N]

Prints milliseconds per window (median of 5 after a warm-up) for float32 windows of random
frames; the guard's cost does not depend on the content.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from didtv.pipeline.guard import motion_guard


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", action="append", default=None, help="WxH (repeatable)")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for size in args.size or ["960x544", "1920x1088"]:
        w, h = (int(v) for v in size.split("x"))
        x = torch.rand(1, 7, 3, h, w)
        motion_guard(x)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            motion_guard(x)
            times.append(time.perf_counter() - t0)
        print(f"{w}x{h}: {statistics.median(times) * 1000:.0f} ms per window "
              f"({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
