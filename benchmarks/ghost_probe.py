"""Depth of the motion ghost on the bundled clip: a dark band trailing the moving roof box.

    .venv/bin/python benchmarks/ghost_probe.py -m bt2408 -m tiny -m full [-m weights.safetensors]

Each model runs without and with the motion guard (didtv.pipeline.guard).

In ``didtv/samples/bikes-sample.mp4`` a bus roof with a dark box moves down ~19 px per frame
(block matching, frames 20-28), more than the DCN's 16-pixel offset bound covers over a 7-frame
window. Models that fuse the misaligned neighbours draw a dark copy of the box's edge above it
(docs/model-card.md, "Ghosting on motion"). This prints, for frame 24, the mean PQ level of the
flat roof 6-17 rows above the box (where the ghost lies) minus that of the roof 20-27 rows above
it (clear of it), in 10-bit codes: about 0 with no ghost (the SDR roof is flat there), negative
with a dark ghost. A probe of one known artefact on one clip, not a general metric; the general
one is the PSNR on a val set with moving objects (``didtv data build --moving-objects 1``).
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

SAMPLE = Path(__file__).resolve().parents[1] / "didtv" / "samples" / "bikes-sample.mp4"
FRAME = 24
BAND_ROWS, CLEAR_ROWS, COLS = slice(93, 105), slice(83, 91), slice(310, 360)  # box top at row ~110


def main() -> None:
    from didtv.io.decode import FrameReader
    from didtv.io.probe import probe
    from didtv.models.registry import load_model
    from didtv.pipeline.runner import Runner

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", action="append", required=True)
    args = ap.parse_args()
    with FrameReader(probe(SAMPLE)) as reader:
        frames = list(itertools.islice(reader, FRAME + 4))
    sdr = frames[FRAME].mean(0)
    print(f"SDR input: band - clear = {(sdr[BAND_ROWS, COLS].mean() - sdr[CLEAR_ROWS, COLS].mean()) * 1023:+.1f} "
          "codes (8-bit signal scaled to 10-bit)")
    for name in args.model:
        net = load_model(name)
        for guard in (False, True):
            out = list(Runner(net, motion_guard=guard).process(frames))[FRAME].mean(0)
            depth = (out[BAND_ROWS, COLS].mean() - out[CLEAR_ROWS, COLS].mean()) * 1023
            print(f"{name}, motion guard {'on ' if guard else 'off'}: band - clear = {depth:+.1f} PQ codes")


if __name__ == "__main__":
    main()
