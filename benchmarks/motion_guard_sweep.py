"""The motion guard's two constants (reach per frame, tolerance) against PSNR on val sets.

    .venv/bin/python benchmarks/motion_guard_sweep.py -m tiny --data data/val-objects --data data/val --qp 27

For each (radius, tolerance) pair, scores the model with the guard built with those constants
(didtv.pipeline.guard.motion_guard's keywords; the shipped ones are GUARD_RADIUS and GUARD_TOL)
and without the guard, on each --data set, and prints the mean PSNR and ΔE_ITP. The ghost depth
on the bundled clip for the same pairs comes from benchmarks/ghost_probe.py's band.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

PAIRS = [(4, 6), (2, 6), (8, 6), (4, 3), (4, 12)]  # (radius px/frame, tolerance in 8-bit codes)


@contextlib.contextmanager
def guard_constants(radius: int, tol_codes: float):
    import didtv.pipeline.runner as runner
    from didtv.pipeline.guard import motion_guard

    real = runner.motion_guard
    runner.motion_guard = functools.partial(motion_guard, radius=radius, tol=tol_codes / 255)
    try:
        yield
    finally:
        runner.motion_guard = real


def ghost_depth(model: str) -> float:
    from ghost_probe import BAND_ROWS, CLEAR_ROWS, COLS, FRAME, SAMPLE

    from didtv.io.decode import FrameReader
    from didtv.io.probe import probe
    from didtv.models.registry import load_model
    from didtv.pipeline.runner import Runner

    with FrameReader(probe(SAMPLE)) as reader:
        frames = list(itertools.islice(reader, FRAME + 4))
    out = list(Runner(load_model(model)).process(frames))[FRAME].mean(0)
    return float((out[BAND_ROWS, COLS].mean() - out[CLEAR_ROWS, COLS].mean()) * 1023)


def main() -> None:
    from didtv.train.evaluate import evaluate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", default="tiny")
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--qp", default=None)
    args = ap.parse_args()
    qps = [int(q) for q in args.qp.split(",")] if args.qp else None

    def mean_scores(data: str, guard: bool) -> tuple[float, float]:
        rows = evaluate([args.model], data, qps=qps, motion_guard=guard)["rows"]
        return float(np.mean([r["psnr"] for r in rows])), float(np.mean([r["delta_e_itp"] for r in rows]))

    cells = [f"{Path(d).name} PSNR / ΔE_ITP" for d in args.data]
    print(f"| guard | {' | '.join(cells)} | ghost (bikes) |")
    print("|---|" + "---|" * (len(cells) + 1))
    off = [mean_scores(d, False) for d in args.data]
    print("| off | " + " | ".join(f"{p:.3f} / {e:.2f}" for p, e in off) + " | |", flush=True)
    for radius, tol in PAIRS:
        with guard_constants(radius, tol):
            on = [mean_scores(d, True) for d in args.data]
            depth = ghost_depth(args.model)
        print(f"| radius {radius}, tol {tol}/255 | " + " | ".join(f"{p:.3f} / {e:.2f}" for p, e in on)
              + f" | {depth:+.1f} |", flush=True)


if __name__ == "__main__":
    main()
