"""didtv.engine without processes: the thread shares of --workers, and the chunk scheduler
(didtv.chunks.schedule) on a fake engine: what runs at once, what waits for which seed, a
speculation that fails, a failing chunk, what a resumed run keeps."""

from __future__ import annotations

import pytest

import didtv.io.probe
from didtv.chunks.plan import Chunk
from didtv.chunks.schedule import convert_chunks
from didtv.chunks.work import Work, seed_digest, usable_records
from didtv.engine import check_engine, is_parallel
from didtv.engine.base import Engine, Handle
from didtv.engine.limits import threads_per_worker, worker_env, x265_frame_threads, x265_thread_params
from didtv.engine.tasks import ChunkDone, TaskError
from didtv.errors import FFmpegError, UsageError


def test_threads_per_worker_share_the_cores():
    assert threads_per_worker(1, cores=2) == 2
    assert threads_per_worker(2, cores=2) == 1
    assert threads_per_worker(3, cores=2) == 1  # never 0
    assert threads_per_worker(4, cores=16) == 4


def test_x265_frame_threads_pinned_to_the_one_process_choice(monkeypatch):
    assert [x265_frame_threads(c) for c in (1, 2, 4, 8, 16, 32)] == [1, 1, 2, 3, 4, 5]
    assert x265_frame_threads(64, height=2160) == 6
    for key in ("DIDTV_X265_POOLS", "DIDTV_X265_CORES"):
        monkeypatch.delenv(key, raising=False)
    assert x265_thread_params(1080) == ""  # one process: x265 decides
    for key, value in worker_env(4, cores=16).items():
        monkeypatch.setenv(key, value)
    assert x265_thread_params(1080) == ":pools=4:frame-threads=4"
    env = worker_env(1, cores=2)
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1" and env["OMP_WAIT_POLICY"] == "PASSIVE"


def test_engine_options():
    assert check_engine(None, None, None) == ("local", None)
    assert is_parallel("local", 2) and is_parallel("ray", None) and not is_parallel("local", 1)
    with pytest.raises(UsageError, match="local or ray"):
        check_engine("dask", None, None)
    with pytest.raises(UsageError, match="--address applies"):
        check_engine("local", 2, "head:6379")
    with pytest.raises(UsageError, match="at least 1"):
        check_engine("local", 0, None)


class FakeEngine(Engine):
    """Runs nothing: ``result(task)`` says what a task returns; ``wait`` finishes the oldest
    running task. Records what was submitted, in order, and how many ran at once."""

    def __init__(self, capacity: int, result) -> None:
        self.capacity, self.result = capacity, result
        self.running: list[Handle] = []
        self.log: list[tuple[int, dict | None]] = []
        self.most = 0
        self.stopped = False

    def submit(self, kind, task, on_progress=None):
        h = Handle(kind, task, on_progress)
        self.running.append(h)
        self.most = max(self.most, len(self.running))
        self.log.append((task.chunk.index, task.seed))
        return h

    def wait(self, handles, timeout=0.2):
        h = self.running.pop(0)
        out = h.task.out.replace("{attempt}", "x")
        h.outcome = self.result(h.task, out)
        if isinstance(h.outcome, ChunkDone):
            with open(out, "w") as f:
                f.write(str(h.task.chunk.frames))
        h.done = True
        return {h}

    def stop(self):
        self.stopped = True


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.setattr(didtv.io.probe, "count_frames", lambda p: int(open(p).read()))
    with Work(tmp_path / "out.mkv") as w:
        yield w


def _chunks(cuts: list[bool], frames: int = 10) -> list[Chunk]:
    n = len(cuts)
    return [Chunk(k, k * frames, (k + 1) * frames, max(0, k * frames - 3), min(n * frames, (k + 1) * frames + 3),
                  at_cut) for k, at_cut in enumerate(cuts)]


def _plan(work, chunks):
    work.plan({"test": 1}, chunks[-1].end, lambda: chunks)


class _Job:
    info = None


def _done(fresh, state):
    def result(task, out):
        return ChunkDone(state(task), fresh(task), 0.1, 1, None, out)
    return result


def test_without_a_shot_condition_every_chunk_runs_at_once(work):
    chunks = _chunks([True, False, False, False])
    _plan(work, chunks)
    engine = FakeEngine(2, _done(lambda t: None, lambda t: None))
    seen = []
    convert_chunks(_Job(), chunks, work, engine, None, has_condition=False,
                   report=lambda *a: seen.append(a))
    assert [i for i, _ in engine.log] == [0, 1, 2, 3] and engine.most == 2
    assert seen[-1][:4] == (40, 0, 4, 4)
    assert all(work.finished(c) is not None for c in chunks)


def test_in_shot_chunks_wait_for_their_seed_and_a_wrong_guess_is_redone(work):
    # chunk 2 starts at a cut the scan saw but the runner does not (fresh False): redone seeded
    chunks = _chunks([True, False, True, True])
    _plan(work, chunks)
    state = lambda t: {"sum": [float(t.chunk.index)], "count": 1, "thumb": None, "shots": 1}  # noqa: E731
    fresh = lambda t: t.chunk.index != 2 if t.seed is None else False  # noqa: E731
    engine = FakeEngine(2, _done(fresh, state))
    convert_chunks(_Job(), chunks, work, engine, None, has_condition=True)
    order = [(i, None if s is None else s["sum"][0]) for i, s in engine.log]
    # 0 and 2 at once (both at a cut); 1 waits for 0's state; 3 runs unseeded; 2 is redone
    # with 1's state after its guess failed
    assert order[:2] == [(0, None), (2, None)]
    assert (1, 0.0) in order and (3, None) in order and order[-1] == (2, 1.0)
    records = usable_records(work, chunks)
    assert sorted(records) == [0, 1, 2, 3]
    assert records[2]["seed"] == seed_digest(records[1]["shot"]) and records[3]["seed"] is None


def test_a_failing_chunk_stops_the_others_and_is_raised(work):
    chunks = _chunks([True, True, True])
    _plan(work, chunks)

    def result(task, out):
        if task.chunk.index == 1:
            return TaskError("FFmpegError", "x.mp4: chunk 2/3 (00:00:00.400-00:00:00.760) failed: damaged")
        return ChunkDone(None, None, 0.1, 1, None, out)
    engine = FakeEngine(2, result)
    with pytest.raises(FFmpegError, match="chunk 2/3"):
        convert_chunks(_Job(), chunks, work, engine, None, has_condition=False)
    assert engine.stopped


def test_a_resumed_run_keeps_independent_chunks_after_a_gap(work):
    chunks = _chunks([True, False, True, False])
    _plan(work, chunks)
    state = lambda t: {"sum": [float(t.chunk.index)], "count": 1, "thumb": None, "shots": 1}  # noqa: E731
    convert_chunks(_Job(), chunks, work, FakeEngine(2, _done(lambda t: True if t.seed is None else False, state)),
                   None, has_condition=True)
    work.chunk_path(chunks[0]).unlink()  # chunk 0 lost: chunk 1 (seeded by it) must go too
    kept = usable_records(work, chunks)
    assert sorted(kept) == [2, 3] and not work.chunk_path(chunks[1]).exists()


def test_the_ray_engine_names_its_extra_when_ray_is_missing(monkeypatch):
    import importlib.util

    import didtv.extras
    from didtv.engine.ray_engine import RayEngine
    from didtv.extras import MissingExtraError

    real = importlib.util.find_spec
    monkeypatch.setattr(didtv.extras.importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(MissingExtraError, match=r"pip install 'didtv\[ray\]'"):
        RayEngine()


def test_a_relative_weights_path_travels_absolute(tmp_path, monkeypatch):
    """A worker (a Ray task elsewhere) gets the weights file as the parent named it, made
    absolute against the parent's directory; registered names are left alone."""
    from didtv.engine.tasks import ModelSpec

    monkeypatch.chdir(tmp_path)
    assert ModelSpec(None, "runs/x/final.safetensors").model == str(tmp_path / "runs" / "x" / "final.safetensors")
    assert ModelSpec(None, "lite").model == "lite"


def _finish_first(work, chunks):
    part = work.partial_path(chunks[0], "t")
    part.write_text(str(chunks[0].frames))
    work.finish(chunks[0], None, part)


@pytest.mark.parametrize("any_length, other, resumed", [
    (True, {}, True),                 # --chunks auto, another --workers: the saved plan goes on
    (False, {}, False),               # --chunks SECONDS changed: a new plan
    (True, {"preset": "other"}, False),  # another conversion: a new plan however long the chunks
])
def test_a_saved_plan_of_another_chunk_length_resumes_under_auto(work, any_length, other, resumed):
    what = {"preset": "p", "chunk_frames": 10}
    first = _chunks([True, False, True])
    assert work.plan(what, 30, lambda: first) == (first, False)
    _finish_first(work, first)
    second = _chunks([True, True], frames=15)
    chunks, again = work.plan({**what, "chunk_frames": 15, **other}, 30, lambda: second, any_length=any_length)
    assert again is resumed and chunks == (first if resumed else second)
    assert (work.finished(first[0]) is not None) is resumed
