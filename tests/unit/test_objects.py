"""didtv.engine.objects (``--ray-data object-store``) without a Ray cluster: what the task records
sent to Ray hold (no path of the input, the output or the work folder), the node's cache (one
copy per source, written atomically), the node's scratch folder (gone after success, failure and
cancellation), bytes landing where the shared mode's output would be; and the option checks of
``--ray-data`` / ``--task-cpus``."""

from __future__ import annotations

import dataclasses
import io
import pickle
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from didtv.chunks.plan import Chunk
from didtv.chunks.run import ChunkJob
from didtv.engine import check_engine
from didtv.engine import objects
from didtv.engine.tasks import ChunkDone, ChunkTask, FileDone, FileTask, ModelSpec, TaskError
from didtv.errors import UsageError
from didtv.presets import load_preset


@dataclasses.dataclass(frozen=True)
class Info:  # the fields of VideoInfo a shipped chunk touches
    path: str


class Ref:
    def __init__(self, data) -> None:
        self.data = bytes(memoryview(data))


class FakeRay:
    """``put`` keeps the bytes in a Ref and counts the calls."""

    class exceptions:
        class RayError(Exception):
            pass

    def __init__(self) -> None:
        self.puts: list[int] = []

    def put(self, data):
        self.puts.append(len(data))
        return Ref(data)


def _blob(obj) -> bytes:
    """``obj`` pickled, references kept out (as Ray sends them: by id)."""
    out = io.BytesIO()

    class P(pickle.Pickler):
        def persistent_id(self, o):
            return "ref" if isinstance(o, Ref) else None

    P(out).dump(obj)
    return out.getvalue()


@pytest.fixture
def places(tmp_path):
    src = tmp_path / "in" / "film.mp4"
    src.parent.mkdir()
    src.write_bytes(b"source bytes " * 100)
    weights = tmp_path / "models" / "m.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(b"weights")
    out = tmp_path / "out"
    (out / ".film.mkv.didtv-work").mkdir(parents=True)
    preset = dataclasses.replace(load_preset(), path=tmp_path / "in" / "mine.toml",
                                 model=str(src.parent / "x.safetensors"))  # as the user gave them
    return src, weights, out, ModelSpec(preset, str(weights), {"device": "cpu"})


def _chunk_task(src: Path, out: Path, spec: ModelSpec) -> ChunkTask:
    job = ChunkJob(Info(str(src)), (64, 48), None, None, list(range(10)), Fraction(1, 25), Fraction(0))
    partial = out / ".film.mkv.didtv-work" / "chunk-00001.partial-{attempt}.mkv"
    return ChunkTask(job, Chunk(1, 3, 6, 0, 9, True), str(partial), None, spec, 3)


def test_shipped_tasks_name_no_path_of_input_output_or_work_folder(places, tmp_path):
    src, weights, out, spec = places
    ray = FakeRay()
    shipper = objects.Shipper(ray)
    chunk = _chunk_task(src, out, spec)
    file = FileTask(str(src), str(out / "film.mkv"), spec, False, False)
    for kind, task in (("file", file), ("chunk", chunk), ("chunk", chunk)):
        assert str(src.parent).encode() in _blob(task)  # what the shared mode sends: the check has teeth
        sent, inputs = shipper.ship(kind, task)
        blob = _blob((sent, inputs))
        for folder in (src.parent, out):
            assert str(folder).encode() not in blob, (kind, folder)
        assert inputs.suffix == ".mp4" and inputs.weights is not None
        assert sent.spec.model == str(weights)  # the name outputs record; its bytes travel as an object
    # the weights once; the source for the file (released with its task), then once for the chunks (kept)
    assert ray.puts == [len(b"weights"), 1300, 1300]
    assert sorted(shipper._objects) == [str(src), str(weights)]


def test_land_writes_the_bytes_where_the_shared_mode_writes_and_names_paths(places):
    src, _, out, spec = places
    shipper = objects.Shipper(FakeRay())
    chunk = _chunk_task(src, out, spec)
    returned = objects.Shipped(ChunkDone(None, True, 1.0, 1), np.frombuffer(b"mkv!", np.uint8))
    done = shipper.land("chunk", chunk, returned)
    landed = Path(done.out)
    assert landed.parent == out / ".film.mkv.didtv-work" and landed.name.startswith("chunk-00001.partial-")
    assert landed.read_bytes() == b"mkv!"
    err = shipper.land("chunk", chunk, objects.Shipped(TaskError("FFmpegError", "{source}: chunk 2/3 failed")))
    assert err.message == f"{src}: chunk 2/3 failed"
    file = FileTask(str(src), str(out / "film.mkv"), spec, False, False)
    done = shipper.land("file", file, objects.Shipped(FileDone(10, ["{source}: note"], 1.0), b"abc"))
    assert Path(done.out).name.startswith(".film.mkv.didtv-partial-") and Path(done.out).read_bytes() == b"abc"
    assert done.warnings == [f"{src}: note"]
    cancelled = TaskError("KeyboardInterrupt", "cancelled", interrupted=True)
    assert shipper.land("file", file, cancelled) is cancelled


def test_a_source_is_materialised_once_per_node(tmp_path):
    fetched: list[int] = []

    def fetch():
        fetched.append(1)
        time.sleep(0.2)  # the other thread waits for the lock meanwhile
        return np.frombuffer(b"video", np.uint8)

    threads = [threading.Thread(target=objects.materialise, args=(fetch, "ab" * 32, ".mp4", tmp_path))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    path = objects.materialise(fetch, "ab" * 32, ".mp4", tmp_path)
    assert len(fetched) == 1 and path.read_bytes() == b"video"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{'ab' * 16}.lock", f"{'ab' * 16}.mp4"]

    def broken():
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        objects.materialise(broken, "cd" * 32, ".mp4", tmp_path)
    assert not any("cd" in p.name and "lock" not in p.name for p in tmp_path.iterdir())


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A node: its TMPDIR, and ray.get reading the fake references."""
    ray = pytest.importorskip("ray")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "node"))
    (tmp_path / "node").mkdir()
    monkeypatch.setattr(ray, "get", lambda ref: np.frombuffer(ref.data, np.uint8))
    return tmp_path / "node"


@pytest.mark.parametrize("ending", ["done", "fails", "cancelled"])
def test_the_node_runs_on_its_copy_and_removes_its_scratch_folder(places, node, monkeypatch, ending):
    import didtv.engine.base
    from didtv.identity import WEIGHTS_COPIES

    src, weights, out, spec = places
    sent, inputs = objects.Shipper(FakeRay()).ship("chunk", _chunk_task(src, out, spec))
    seen = {}

    def run_task(kind, task):
        seen.update(src=task.job.info.path, out=task.out, weights=WEIGHTS_COPIES.get(str(weights)))
        assert Path(task.job.info.path).read_bytes() == src.read_bytes()
        if ending == "cancelled":
            raise KeyboardInterrupt
        if ending == "fails":
            return TaskError("FFmpegError", f"{task.job.info.path}: chunk 2/3 (00:00:00.080-...) failed")
        path = Path(task.out.replace("{attempt}", "x"))
        path.write_bytes(b"chunk")
        return ChunkDone(None, True, 1.0, 1, None, str(path))

    monkeypatch.setattr(didtv.engine.base, "run_task", run_task)
    result = objects.run_shipped("chunk", sent, inputs)
    assert Path(seen["weights"]).read_bytes() == b"weights" and str(weights) not in WEIGHTS_COPIES
    assert Path(seen["out"]).parent.parent == Path(seen["src"]).parent  # scratch inside the run's folder
    assert not Path(seen["out"]).parent.exists()  # the scratch folder is gone
    if ending == "done":
        assert bytes(result.data) == b"chunk" and result.outcome.out == ""
    elif ending == "fails":
        assert result.outcome.message.startswith("{source}: chunk 2/3") and result.data is None
    else:
        assert result.outcome.interrupted
    objects.remove_run(inputs.run)
    assert not (objects.cache_root() / inputs.run).exists()


def test_a_shared_cache_root_is_refused(node):
    root = node / f"didtv-objects-{__import__('os').getuid()}"
    root.mkdir(mode=0o777)
    root.chmod(0o777)
    with pytest.raises(Exception, match="not a private folder"):
        objects.cache_root()


def test_ray_data_and_task_cpus_options():
    assert check_engine("ray", None, None, data="object-store", task_cpus=2) == ("ray", None)
    with pytest.raises(UsageError, match="--ray-data applies to --engine ray"):
        check_engine("local", 2, None, data="object-store")
    with pytest.raises(UsageError, match="--task-cpus applies to --engine ray"):
        check_engine(None, None, None, task_cpus=2)
    with pytest.raises(UsageError, match="shared or object-store"):
        check_engine("ray", None, None, data="s3")
    for bad in (0, -1, float("nan"), "2"):
        with pytest.raises(UsageError, match="positive number"):
            check_engine("ray", None, None, task_cpus=bad)


def test_cli_task_cpus_and_ray_data_need_the_ray_engine(tmp_path):
    from click.testing import CliRunner

    from didtv.cli.main import cli

    src = tmp_path / "a.mp4"
    src.write_bytes(b"x")
    for extra, line in ((["--task-cpus", "2"], "--task-cpus applies to --engine ray"),
                        (["--ray-data", "object-store"], "--ray-data applies to --engine ray"),
                        (["--engine", "ray", "--task-cpus", "0"], "positive number of CPUs"),
                        (["--engine", "ray", "--ray-data", "nfs"], "'nfs' is not one of")):
        res = CliRunner().invoke(cli, ["convert", str(src), str(tmp_path / "b.mkv"), *extra])
        assert res.exit_code == 2 and line in res.output, res.output
        assert len([ln for ln in res.output.splitlines() if ln.startswith("Error")]) == 1
