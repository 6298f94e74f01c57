"""Throughput of ``didtv convert --workers N``: one chunked file and a folder of files, 1 vs 2
(or more) workers, with the CLI exactly as a user runs it (default preset: x265 medium, CRF 18).

    .venv/bin/python benchmarks/workers.py [--workers 1 2] [--model lite bt2408] [--size 960x540]
        [--data ../shared/data/sdr-video] [--json]

The clips are made from ../shared/data/sdr-video (vtest, bikes, tree), scaled to ``--size`` at
25 fps, ``--segment`` frames from each source: a file of 4 segments (3 hard cuts, converted with
``--chunks`` so every chunk starts at a cut) and a folder of the 4 segments as separate files.
Prints frames/s and files/hour per (model, workers). It takes every core: run it on an
otherwise idle machine (a loaded one shows in the load average it prints).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [("vtest.avi", 0), ("bikes.mp4", 0), ("tree.avi", 0), ("vtest.avi", 400)]


def make_clips(data: Path, out: Path, size: str, segment: int) -> tuple[Path, Path]:
    """(the 4-segment file, the folder of the 4 segments)."""
    folder = out / "files"
    folder.mkdir()
    w, h = size.split("x")
    parts = []
    for k, (name, start) in enumerate(SOURCES):
        part = folder / f"part{k}.mp4"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(data / name), "-vf",
                        f"select=gte(n\\,{start}),setpts=N/25/TB,scale={w}:{h},setsar=1", "-r", "25",
                        "-frames:v", str(segment), "-an", "-c:v", "libx264", "-preset", "fast", "-crf", "16",
                        "-pix_fmt", "yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709",
                        "-color_trc", "bt709", str(part)], check=True)
        parts.append(part)
    listing = out / "list.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in parts))
    joined = out / "joined.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-c", "copy", str(joined)], check=True)
    return joined, folder


def run(args: list[str]) -> float:
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "didtv.cli.main", "convert", *args, "-q", "--overwrite"],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"didtv convert {' '.join(args)} failed: {done.stderr.strip()}")
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--model", nargs="+", default=["lite", "bt2408"])
    ap.add_argument("--size", default="960x540")
    ap.add_argument("--segment", type=int, default=50, help="frames per source segment")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "sdr-video")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="didtv-workers-") as tmp:
        tmp = Path(tmp)
        joined, folder = make_clips(a.data, tmp, a.size, a.segment)
        frames = 4 * a.segment
        chunk_s = f"{1.25 * a.segment / 25:g}"  # every chunk ends at the next cut
        for model in a.model:
            for n in a.workers:
                load = os.getloadavg()[0]
                single = run([str(joined), str(tmp / f"one-{model}-{n}.mkv"), "--model", model,
                              "--chunks", chunk_s, "--workers", str(n)])
                batch = run([str(folder), str(tmp / f"out-{model}-{n}"), "--model", model, "--workers", str(n)])
                rows.append({"model": model, "workers": n, "size": a.size, "frames": frames,
                             "file_s": round(single, 2), "file_fps": round(frames / single, 2),
                             "batch_files": 4, "batch_s": round(batch, 2),
                             "files_per_hour": round(4 * 3600 / batch, 1),
                             "batch_fps": round(frames / batch, 2), "load_before": round(load, 2)})
                if not a.json:
                    r = rows[-1]
                    print(f"{model:7s} workers {n}: one file {r['file_fps']:6.2f} fps ({r['file_s']} s); "
                          f"folder of 4 {r['files_per_hour']:7.1f} files/h, {r['batch_fps']:6.2f} fps "
                          f"({r['batch_s']} s); load before {r['load_before']}", flush=True)
    if a.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
