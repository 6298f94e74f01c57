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
from test_chunks import (LOSSLESS, decoded, hidden_leftovers, kill_a_worker_writing, make_cut_clip,  # noqa: E402
                         video_times, worker_writing)

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


def test_a_killed_worker_is_retried_and_the_output_is_right(tmp_path, cluster):
    src = make_clip(tmp_path / "long.mp4", frames=120, size=(320, 240))
    dst = tmp_path / "ray.mkv"
    thread, killed = kill_a_worker_writing(work_dir(dst))
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


# -- --ray-data object-store: no shared filesystem -------------------------------------------------


def _weights(path: Path) -> Path:
    """BT.2408 as a .safetensors file (104 bytes): a model the nodes get through the object store."""
    from didtv.models.registry import get_info, load_model, save_weights

    return save_weights(load_model("bt2408"), path, arch=get_info("bt2408").arch)


def _sent_to_ray(monkeypatch) -> list[bytes]:
    """Every task's arguments as Ray receives them, pickled (object references by id only)."""
    import io
    import pickle

    from didtv.engine.ray_engine import RayEngine

    sent: list[bytes] = []
    real_init = RayEngine.__init__

    def pickled(args) -> bytes:
        out = io.BytesIO()

        class P(pickle.Pickler):
            def persistent_id(self, obj):
                return "ref" if isinstance(obj, ray.ObjectRef) else None

        P(out).dump(args)
        return out.getvalue()

    def init(self, *a, **k) -> None:
        real_init(self, *a, **k)
        remote = self._remote

        class Spy:
            def remote(self, *args):
                sent.append(pickled(args))
                return remote.remote(*args)

        self._remote = Spy()

    monkeypatch.setattr(RayEngine, "__init__", init)
    return sent


def _node_caches() -> set[str]:
    from didtv.engine.objects import cache_root

    return set(os.listdir(cache_root()))


def test_object_store_chunks_equal_one_pass_and_no_path_travels(tmp_path, cluster, monkeypatch):
    from didtv.engine.objects import Shipper
    from didtv.batch import read_identity

    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    src = make_cut_clip(tmp_path / "in" / "cuts.mp4")
    weights = _weights(tmp_path / "models" / "bt2408.safetensors")
    one = convert(src, tmp_path / "one.mkv", preset=LOSSLESS, model=str(weights), chunks="off")
    sent = _sent_to_ray(monkeypatch)
    away = weights.with_name("away")
    real_ship = Shipper.ship

    def ship(self, kind, task):  # once in the object store, the weights are gone from their path
        shipped = real_ship(self, kind, task)
        if weights.exists():
            weights.rename(away)
        return shipped

    monkeypatch.setattr(Shipper, "ship", ship)
    caches, seen = _node_caches(), []
    try:
        out = convert(src, tmp_path / "out" / "ray.mkv", preset=LOSSLESS, model=str(weights), chunks=0.3,
                      engine="ray", address=cluster.address, ray_data="object-store", on_progress=seen.append)
    finally:
        if away.exists():
            away.rename(weights)
    assert seen[-1].chunks_done == seen[-1].chunks_total >= 3 and len(sent) >= 3
    for blob in sent:  # no path of the input, the output or the work folder reaches a node
        for folder in (tmp_path / "in", tmp_path / "out"):
            assert str(folder).encode() not in blob
    assert np.array_equal(decoded(one.output), decoded(out.output))
    assert video_times(one.output) == video_times(out.output)
    assert read_identity(out.output)["options"]["model"] == str(weights)
    assert not work_dir(out.output).exists() and hidden_leftovers(tmp_path / "out") == []
    assert _node_caches() == caches  # the run's node cache is gone
    assert not ray.is_initialized()


def test_object_store_batch_outputs_verify_and_resume(tmp_path, cluster, monkeypatch):
    from didtv.api import conversion_options
    from didtv.batch import verify_output
    from didtv.engine.objects import Shipper
    from didtv.io.probe import probe

    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=10)
    make_clip(src / "b.mp4", frames=12)
    (src / "c.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2000))
    weights = _weights(tmp_path / "models" / "bt.safetensors")
    out = tmp_path / "out"
    sent, caches = _sent_to_ray(monkeypatch), _node_caches()
    away = weights.with_name("away")
    real_ship, real_land = Shipper.ship, Shipper.land

    def ship(self, kind, task):  # the weights are not where the user named them while a node converts ...
        shipped = real_ship(self, kind, task)
        weights.rename(away)
        return shipped

    def land(self, kind, task, value):  # ... and back for this machine's verification
        away.rename(weights)
        return real_land(self, kind, task, value)

    monkeypatch.setattr(Shipper, "ship", ship)
    monkeypatch.setattr(Shipper, "land", land)
    monkeypatch.chdir(tmp_path)  # the model named relative: tasks record it absolute, the checks too
    report = convert_batch(src, out, preset=LOSSLESS, model="models/bt.safetensors", engine="ray",
                           address=cluster.address, ray_data="object-store", workers=1,
                           report_path=out / "report.json")
    monkeypatch.undo()
    assert {i.input: i.status for i in report.items} == {"a.mp4": "converted", "b.mp4": "converted",
                                                          "c.mp4": "failed"}
    assert len(sent) == 2 and not any(str(src).encode() in b or str(out).encode() in b for b in sent)
    saved = json.loads((out / "report.json").read_text())
    assert saved["options"]["engine"] == "ray" and saved["options"]["ray_data"] == "object-store"
    assert saved["counts"]["converted"] == 2
    for name in ("a", "b"):  # the tag made on the node names the model as given here
        options = conversion_options(LOSSLESS, str(weights), probe(src / f"{name}.mp4").fps)
        assert verify_output(src / f"{name}.mp4", out / f"{name}.mkv", options, full=True) is None
    assert hidden_leftovers(out) == [] and _node_caches() == caches
    monkeypatch.chdir(tmp_path)
    again = convert_batch(src, out, preset=LOSSLESS, model="models/bt.safetensors", engine="ray",
                          address=cluster.address, ray_data="object-store")
    assert again.count("skipped") >= 2 and again.count("converted") == 0


def test_object_store_chunk_decode_failure_names_the_chunk_and_the_source(tmp_path, cluster):
    from didtv.errors import FFmpegError
    from test_chunks import make_damaged_clip

    bad = make_damaged_clip(tmp_path)
    dst = tmp_path / "out.mkv"
    with pytest.raises(FFmpegError) as info:
        convert(bad, dst, preset=LOSSLESS, chunks=0.4, engine="ray", address=cluster.address,
                ray_data="object-store")
    msg = str(info.value)
    assert "\n" not in msg and "chunk " in msg and "/5 (00:00:0" in msg and "damaged video" in msg, msg
    assert msg.startswith(f"{bad}: chunk ") and "didtv-objects" not in msg and "{" not in msg, msg
    assert not dst.exists() and not work_dir(dst).exists() and hidden_leftovers(tmp_path) == []


def test_task_cpus_reach_the_resource_request(tmp_path, cluster, monkeypatch):
    from click.testing import CliRunner

    from didtv.cli.main import cli
    from didtv.engine.ray_engine import RayEngine
    from didtv.errors import DidtvError

    asked: list[dict] = []
    real = ray.remote

    def remote(fn):
        wrapped = real(fn)

        class Options:
            def options(self, **kw):
                asked.append(kw)
                return wrapped.options(**kw)

        return Options()

    monkeypatch.setattr(ray, "remote", remote)
    with RayEngine(cluster.address, task_cpus=0.5) as engine:
        assert engine.capacity == 4 and engine.threads == 1  # 2 CPUs / 0.5
    assert asked[-1]["num_cpus"] == 0.5 and asked[-1]["max_retries"] == 3
    with pytest.raises(DidtvError, match="no node of the Ray cluster has that many CPUs") as info:
        RayEngine(cluster.address, task_cpus=2)  # the cluster has 2, each node 1
    assert "\n" not in str(info.value) and not ray.is_initialized()
    src = make_clip(tmp_path / "a.mp4", frames=12)
    res = CliRunner().invoke(cli, ["convert", str(src), str(tmp_path / "a.mkv"), "--model", "bt2408",
                                   "--engine", "ray", "--address", cluster.address, "--chunks", "0.2",
                                   "--task-cpus", "2", "--ray-data", "object-store"])
    assert res.exit_code == 1, res.output
    assert [ln for ln in res.output.splitlines() if "CPUs" in ln] == [
        "didtv: error: --task-cpus 2: no node of the Ray cluster has that many CPUs (the largest has 1, "
        "the cluster 2)"], res.output
    assert not (tmp_path / "a.mkv").exists() and not work_dir(tmp_path / "a.mkv").exists()


def _when_a_node_writes(action) -> tuple[threading.Thread, list[int]]:
    """A thread that calls ``action(pid)`` once a Ray worker's FFmpeg writes in a node's cache."""
    from didtv.engine.objects import cache_root

    seen: list[int] = []

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not seen and time.monotonic() < deadline:
            pid = worker_writing(cache_root(), "didtv-partial")
            if pid is not None:
                time.sleep(0.3)  # in the middle of its file
                action(pid)
                seen.append(pid)
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, seen


def test_object_store_a_killed_worker_is_retried(tmp_path, cluster):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_clip(src / "long.mp4", frames=120, size=(320, 240))
    caches = _node_caches()
    thread, killed = _when_a_node_writes(lambda pid: os.kill(pid, signal.SIGKILL))
    report = convert_batch(src, out, preset=LOSSLESS, engine="ray", address=cluster.address,
                           ray_data="object-store")
    thread.join(timeout=5)
    assert killed, "no Ray worker was seen writing a file"
    assert report.items[0].status == "converted", report.items[0].reason  # the retry got the source again
    assert hidden_leftovers(out) == [] and _node_caches() == caches
    again = convert_batch(src, out, preset=LOSSLESS, engine="ray", address=cluster.address,
                          ray_data="object-store")
    assert again.count("skipped") == 1


def test_object_store_cancel_leaves_nothing_behind(tmp_path, cluster):
    from didtv.batch import BatchInterrupted

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_clip(src / "long.mp4", frames=120, size=(320, 240))
    caches, cancel = _node_caches(), threading.Event()
    thread, seen = _when_a_node_writes(lambda pid: cancel.set())
    with pytest.raises(BatchInterrupted) as info:
        convert_batch(src, out, preset=LOSSLESS, engine="ray", address=cluster.address,
                      ray_data="object-store", cancel=cancel)
    thread.join(timeout=5)
    assert seen and info.value.report.items[0].status == "interrupted"
    assert not (out / "long.mkv").exists() and hidden_leftovers(out) == []
    assert _node_caches() == caches and not ray.is_initialized()
