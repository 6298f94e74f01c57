"""Where the HDR targets put a scene's light, per metering (didtv/data/sources.py, ``expose``).

For each scene-linear HDR source of ../shared/data/hdri (or the paths given): 6 random training
views (192x192, the training size; ``--size``) at the nominal key (no random exposure), and the median over views of the centre
frame's luminance percentiles p50 / p90 / p99 in cd/m2 (after the roll-off to 1000 cd/m2), for
``average`` metering (the default) and ``highkey``. Prints the darkest and brightest files (by
their own log-average), named scenes, and the median over all files.

Usage: ``.venv/bin/python benchmarks/exposure_metering.py [--scene PATH ...] [--all DIR ...]``
(about a minute for hdri/train on 2 cores).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from didtv.data.sources import LUMA_709, METERINGS, find_sources, hdr_clip, is_video, read_source

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hdri"
NAMED = [SHARED / "train-more" / "realism-effects" / "snowy_field_1k.hdr",
         SHARED / "train-more" / "realism-effects" / "quarry_02_1k.hdr"]


def view_levels(image: np.ndarray, metering: str, views: int = 6, size: int = 192) -> tuple[float, float, float]:
    """Median over ``views`` random ``size`` x ``size`` views of (p50, p90, p99) luminance in cd/m2."""
    panorama = abs(image.shape[1] / image.shape[0] - 2.0) < 0.05
    stats = []
    for s in range(views):
        clip = hdr_clip(image, np.random.default_rng(s), size=(size, size), panorama=panorama, key_range=(0.0, 0.0),
                        metering=metering)
        stats.append(np.percentile(clip[3] @ LUMA_709, [50, 90, 99]))
    return tuple(float(v) for v in np.median(np.array(stats), axis=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", nargs="*", default=[str(SHARED / "train")], help="folders measured as a whole")
    ap.add_argument("--scene", nargs="*", default=[str(p) for p in NAMED if p.exists()], help="scenes listed by name")
    ap.add_argument("--size", type=int, default=192, help="view edge in pixels")
    args = ap.parse_args()
    files = [f for f in find_sources(args.all) if not is_video(f) and f.suffix.lower() in (".exr", ".hdr")]
    levels, table = {}, {}
    for f in files + [Path(p) for p in args.scene]:
        image = read_source(f).light
        levels[f] = float(np.exp(np.log(np.maximum(image @ LUMA_709, 1e-6)).mean()))
        table[f] = {m: view_levels(image, m, size=args.size) for m in METERINGS}
    darkest, brightest = min(files, key=levels.get), max(files, key=levels.get)
    head = "| scene | file log-average | " + " | ".join(f"{m} p50 / p90 / p99" for m in METERINGS) + " |"
    print(head + "\n|---|---|" + "---|" * len(METERINGS))

    def row(name: str, level: str, cells: dict) -> None:
        print(f"| {name} | {level} | " + " | ".join(" / ".join(f"{v:.0f}" for v in cells[m]) for m in METERINGS) + " |")

    med = {m: tuple(np.median([table[f][m] for f in files], axis=0)) for m in METERINGS}
    row(f"all {len(files)} files of {', '.join(Path(a).name for a in args.all)} (median)", "-", med)
    row(f"darkest: {darkest.stem}", f"{levels[darkest]:.3f}", table[darkest])
    row(f"brightest: {brightest.stem}", f"{levels[brightest]:.3f}", table[brightest])
    for p in args.scene:
        row(Path(p).stem, f"{levels[Path(p)]:.3f}", table[Path(p)])
    lifted = [f for f in files if table[f]["highkey"][0] > table[f]["average"][0] * 1.05]
    print(f"\nhighkey lifts {len(lifted)} of {len(files)} files by more than 5 % at the median: "
          + ", ".join(f"{f.stem} x{table[f]['highkey'][0] / table[f]['average'][0]:.2f}" for f in lifted))


if __name__ == "__main__":
    main()
