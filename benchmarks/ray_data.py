"""Wall time of ``didtv convert --engine ray`` with ``--ray-data shared`` and ``object-store`` on
a local Ray cluster (a head node and a second node, 1 CPU each, as tests/io/test_ray.py starts
them), with the CLI exactly as a user runs it (default preset: x265 medium, CRF 18).

    .venv/bin/python benchmarks/ray_data.py [--model bt2408] [--size 640x360] [--segment 40]
        [--rounds 2] [--data ../shared/data/sdr-video] [--json]

The clips are those of benchmarks/workers.py: a file of 4 segments (3 hard cuts, converted with
``--chunks`` so every chunk starts at a cut: 4 chunk tasks) and a folder of the 4 segments as
separate files (4 file tasks). The modes alternate, ``--rounds`` times, so a load that changes
meanwhile hits both. Both nodes are on this machine: the object store's copies are memory copies,
not a network; the numbers show the mode's own overhead, not a cluster's transfers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workers import ROOT, make_clips, run  # noqa: E402

MODES = ("shared", "object-store")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="bt2408")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--segment", type=int, default=40, help="frames per source segment")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "sdr-video")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="didtv-ray-data-") as tmp:
            tmp = Path(tmp)
            joined, folder = make_clips(a.data, tmp, a.size, a.segment)
            frames, chunk_s = 4 * a.segment, f"{1.25 * a.segment / 25:g}"
            ray = ["--engine", "ray", "--address", cluster.address, "--model", a.model]
            for k in range(a.rounds):
                for mode in MODES:
                    load = os.getloadavg()[0]
                    single = run([str(joined), str(tmp / f"one-{mode}-{k}.mkv"), *ray, "--ray-data", mode,
                                  "--chunks", chunk_s, "--workers", "2"])
                    batch = run([str(folder), str(tmp / f"out-{mode}-{k}"), *ray, "--ray-data", mode])
                    rows.append({"mode": mode, "round": k + 1, "size": a.size, "frames": frames,
                                 "file_s": round(single, 2), "folder_s": round(batch, 2),
                                 "load_before": round(load, 2), "source_bytes": joined.stat().st_size})
                    if not a.json:
                        r = rows[-1]
                        print(f"{mode:12s} round {k + 1}: one file {r['file_s']:6.2f} s, folder of 4 "
                              f"{r['folder_s']:6.2f} s ({frames} frames each); load before {r['load_before']}",
                              flush=True)
    finally:
        cluster.shutdown()
    if a.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
