"""How much a window that spans a hard cut changes the first frame of the new shot.

    .venv/bin/python benchmarks/cut_probe.py [-m tiny -m full]

Splices frames 0-9 of the bundled clip with frames 10-19 turned upside down and mirrored (another
"shot" with the same statistics) and compares, for frame 10 (the first after the splice), the
pipeline's output from the window frames 7-13 with the output from the window that stops at the
cut (frame 10 three times, then 10-13). Prints the mean, 99th percentile and largest difference in
ten-bit PQ codes with the motion guard off and on, and with the windows stopped at cuts
(``clamp_to_shot``, what the Runner does) and without (the Runner's old behaviour, reproduced by
replacing ``clamp_to_shot`` with the identity for that run).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
from pathlib import Path

import numpy as np

SAMPLE = Path(__file__).resolve().parents[1] / "didtv" / "samples" / "bikes-sample.mp4"


@contextlib.contextmanager
def windows_span_cuts(enabled: bool):
    import didtv.pipeline.runner as runner

    real = runner.clamp_to_shot
    if enabled:
        runner.clamp_to_shot = lambda x, *args, **kwargs: x
    try:
        yield
    finally:
        runner.clamp_to_shot = real


def main() -> None:
    from didtv.io.decode import FrameReader
    from didtv.io.probe import probe
    from didtv.models.registry import load_model
    from didtv.pipeline.runner import Runner

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", action="append", default=None)
    args = ap.parse_args()
    with FrameReader(probe(SAMPLE)) as reader:
        frames = list(itertools.islice(reader, 20))
    a = frames[:10]
    b = [np.ascontiguousarray(f[:, ::-1, ::-1]) for f in frames[10:]]
    for name in args.model or ["tiny", "lite"]:
        net = load_model(name)
        for span in (True, False):
            for guard in (False, True):
                runner = Runner(net, motion_guard=guard)
                with windows_span_cuts(span):
                    mixed = runner.infer(a[7:10] + b[0:4])
                clean = runner.infer([b[0]] * 3 + b[0:4])
                d = np.abs(np.clip(mixed, 0, 1) - np.clip(clean, 0, 1)) * 1023
                print(f"{name}: windows {'span cuts   ' if span else 'stop at cuts'}, motion guard {'on ' if guard else 'off'}: "
                      f"mean {d.mean():.2f}, 99th percentile {np.percentile(d, 99):.1f}, max {d.max():.1f} codes")


if __name__ == "__main__":
    main()
