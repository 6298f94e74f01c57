"""``--engine ray``: chunks and batch files as Ray tasks on a local cluster (a head node and a
second node, one CPU each, started by ray.cluster_utils on this machine). Skipped, saying why,
when ray is not installed (the optional extra didtv[ray])."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'didtv[ray]'): Ray engine not tested")

from clips import make_clip, requires_ffmpeg  # noqa: E402
from didtv.api import convert  # noqa: E402
from didtv.batch import convert_batch  # noqa: E402
from didtv.chunks import work_dir  # noqa: E402
from test_chunks import LOSSLESS, decoded, hidden_leftovers, make_cut_clip, video_times  # noqa: E402

pytestmark = requires_ffmpeg


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    yield c
    c.shutdown()


def test_chunks_as_ray_tasks_equal_one_pass(tmp_path, cluster):
    src = make_cut_clip(tmp_path / "cuts.mp4")
    one = convert(src, tmp_path / "one.mkv", preset=LOSSLESS, chunks="off")
    seen = []
    out = convert(src, tmp_path / "ray.mkv", preset=LOSSLESS, chunks=0.3, engine="ray",
                  address=cluster.address, on_progress=seen.append)
    assert seen[-1].chunks_done == seen[-1].chunks_total >= 3
    assert np.array_equal(decoded(one.output), decoded(out.output))
    assert video_times(one.output) == video_times(out.output)
    assert not work_dir(out.output).exists() and hidden_leftovers(tmp_path) == []
    assert not ray.is_initialized()  # the engine disconnected


def _ray_worker_writing(folder: Path) -> int | None:
    """The PID of the process (a Ray worker) whose FFmpeg child writes a chunk in ``folder``."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmd = Path(entry.path, "cmdline").read_bytes().decode(errors="replace")
            if "ffmpeg" not in cmd or str(folder) not in cmd or ".partial" not in cmd:
                continue
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        ppid = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("PPid:")))
        if ppid != os.getpid():  # not this process's own ffmpeg
            return ppid
    return None


def test_a_killed_worker_is_retried_and_the_output_is_right(tmp_path, cluster):
    src = make_clip(tmp_path / "long.mp4", frames=120, size=(320, 240))
    dst = tmp_path / "ray.mkv"
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            pid = _ray_worker_writing(work_dir(dst))
            if pid is not None:
                time.sleep(0.3)  # in the middle of its chunk
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    out = convert(src, dst, preset=LOSSLESS, chunks=1.6, engine="ray", address=cluster.address)
    thread.join(timeout=5)
    assert killed, "no Ray worker was seen writing a chunk"
    one = convert(src, tmp_path / "one.mkv", preset=LOSSLESS, chunks="off")
    assert np.array_equal(decoded(one.output), decoded(out.output))
    assert not work_dir(dst).exists()


def test_batch_files_as_ray_tasks(tmp_path, cluster):
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=10)
    make_clip(src / "b.mp4", frames=12)
    (src / "c.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2000))
    out = tmp_path / "out"
    report = convert_batch(src, out, preset=LOSSLESS, engine="ray", address=cluster.address,
                           report_path=out / "report.json")
    assert {i.input: i.status for i in report.items} == {"a.mp4": "converted", "b.mp4": "converted",
                                                          "c.mp4": "failed"}
    saved = json.loads((out / "report.json").read_text())
    assert saved["options"]["engine"] == "ray" and saved["counts"]["converted"] == 2
    again = convert_batch(src, out, preset=LOSSLESS, engine="ray", address=cluster.address)
    assert again.count("skipped") >= 2 and again.count("converted") == 0
    assert hidden_leftovers(out) == []
