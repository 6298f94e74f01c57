"""Frame-to-frame brightness jitter of a model's output on a real SDR clip, next to BT.2408's.

    .venv/bin/python benchmarks/flicker.py CLIP [--model tiny] [--frames N]

Jitter = mean over frames of |mean PQ(t) - mean PQ(t-1)|, in 10-bit code values. A model with a
steady tone mapping has about the jitter of the BT.2408 mapping of the same frames (which only
follows the input's own changes); the ratio is printed.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from didtv.io.decode import FrameReader
from didtv.io.probe import probe
from didtv.models.registry import load_model
from didtv.pipeline.runner import Runner


def jitter(means: list[float]) -> float:
    return float(np.mean(np.abs(np.diff(means)))) * 1023 if len(means) > 1 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("clip")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--frames", type=int, default=48)
    args = ap.parse_args()
    info = probe(args.clip)
    with FrameReader(info) as reader:
        frames = list(itertools.islice(reader, args.frames))
    result = {}
    for name in (args.model, "bt2408"):
        runner = Runner(load_model(name), device="cpu")
        result[name] = jitter([float(o.clip(0, 1).mean()) for o in runner.process(frames)])
    print(f"{args.clip}: {len(frames)} frames {info.display_width}x{info.display_height}")
    for name, j in result.items():
        print(f"  {name:10s} jitter {j:.3f} codes/frame")
    print(f"  ratio {args.model}/bt2408 = {result[args.model] / max(result['bt2408'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
