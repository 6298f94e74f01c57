"""Overlapped stages: decode, model and encode run at the same time.

decode -> window -> model -> colour -> encode, with each arrow a bounded queue::

    decode thread    next(frames)  -> q_in  (at most `depth` frames)
    caller's thread  transform(q_in) = window -> model -> colour  -> q_out (at most `depth`)
    encode thread    write(frame)  <- q_out

FFmpeg decodes and x265 encodes in their own processes; the two threads only move frames through
pipes (both release the GIL), so the model rarely waits for them unless one of them is the slowest
stage. Memory is bounded by the queues plus the transform's own window, never by video length.

Every stage keeps a :class:`StageClock`: the seconds it spent working (not waiting on a queue) and
the frames it handled, so ``frames / busy`` is what that stage alone could sustain, and the stage
with the most busy time is the bottleneck (shown by ``didtv convert`` and ``didtv bench``).

An error in any stage stops the others and is raised in the caller's thread (the first one
wins); so is KeyboardInterrupt. The caller owns the decoder and encoder processes: its ``abort``
callback ends them before the threads are joined (a thread blocked on a pipe ends when the
process at the other end does), so a failure or Ctrl-C returns within the processes' stop grace.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
U = TypeVar("U")

STAGES = ("decode", "model", "encode")
_END = object()
_POLL = 0.1  # seconds between checks of the stop flag while blocked on a queue


@dataclass
class StageClock:
    """Busy seconds and frames of one stage."""

    name: str
    frames: int = 0
    busy: float = 0.0

    @property
    def fps(self) -> float:
        """Frames per second this stage sustains on its own (0 before its first frame)."""
        return self.frames / self.busy if self.busy > 0 else 0.0


@dataclass
class StageStats:
    """A snapshot of all stages (``didtv.api.Progress.stages``)."""

    clocks: dict[str, StageClock] = field(default_factory=lambda: {n: StageClock(n) for n in STAGES})
    wall: float = 0.0  # seconds since the stages started

    def snapshot(self) -> "StageStats":
        return StageStats({n: StageClock(c.name, c.frames, c.busy) for n, c in self.clocks.items()}, self.wall)

    @property
    def bottleneck(self) -> str | None:
        """The stage with the most busy time so far (None before any work)."""
        busiest = max(self.clocks.values(), key=lambda c: c.busy)
        return busiest.name if busiest.busy > 0 else None

    def describe(self) -> str:
        """``decode 41.0 fps · model 1.9 fps · encode 30.2 fps · bottleneck: model``."""
        parts = [f"{c.name} {c.fps:.1f} fps" for c in self.clocks.values() if c.frames]
        if self.bottleneck:
            parts.append(f"bottleneck: {self.bottleneck}")
        return " · ".join(parts)

    def as_dict(self) -> dict:
        return {"stages": {n: {"frames": c.frames, "busy_s": round(c.busy, 3), "fps": round(c.fps, 3)}
                           for n, c in self.clocks.items()},
                "bottleneck": self.bottleneck, "wall_s": round(self.wall, 3)}


class _Stop(Exception):
    """Raised inside a stage when another stage failed."""


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stop
        try:
            q.put(item, timeout=_POLL)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event):
    while True:
        if stop.is_set():
            raise _Stop
        try:
            return q.get(timeout=_POLL)
        except queue.Empty:
            continue


def queue_depth(frame_bytes: int, budget: int = 256 << 20) -> int:
    """Frames each stage queue may hold: about ``budget`` bytes, between 2 and 8 frames
    (8 at 1080p and below, 2 at 4K: 100 MB per float32 frame)."""
    return max(2, min(8, budget // max(1, frame_bytes)))


def run_stages(
    frames: Iterable[T],
    transform: Callable[[Iterator[T]], Iterator[U]],
    write: Callable[[U], None],
    *,
    depth: int = 4,
    on_frame: Callable[[StageStats], None] | None = None,
    abort: Callable[[], None] | None = None,
) -> StageStats:
    """Pull ``frames`` in a thread, run ``transform`` over them here, ``write`` its outputs in a
    second thread; return the stage clocks. ``on_frame`` is called in this thread with a
    snapshot after every frame the transform yields (and once more when everything is written),
    so progress advances frame by frame even while the encoder lags by a queue's worth.
    ``abort`` is called (once, in this thread) when any stage fails or is interrupted, before the
    threads are joined: it should end the processes behind ``frames`` and ``write``."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    stats = StageStats()
    dec, mod, enc = (stats.clocks[n] for n in STAGES)
    q_in: queue.Queue = queue.Queue(maxsize=depth)
    q_out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def fail(exc: BaseException) -> None:
        with lock:
            if not errors:
                errors.append(exc)
        stop.set()

    def decode_worker() -> None:
        try:
            it = iter(frames)
            while True:
                t = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    break
                dec.busy += time.perf_counter() - t
                dec.frames += 1
                _put(q_in, item, stop)
            _put(q_in, _END, stop)
        except _Stop:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            fail(exc)

    def encode_worker() -> None:
        try:
            while True:
                item = _get(q_out, stop)
                if item is _END:
                    return
                t = time.perf_counter()
                write(item)
                enc.busy += time.perf_counter() - t
                enc.frames += 1
        except _Stop:
            pass
        except BaseException as exc:  # noqa: BLE001
            fail(exc)

    waited = 0.0  # time the model stage spent blocked on its queues

    def inputs() -> Iterator[T]:
        nonlocal waited
        while True:
            t = time.perf_counter()
            item = _get(q_in, stop)
            waited += time.perf_counter() - t
            if item is _END:
                return
            yield item

    threads = [threading.Thread(target=decode_worker, name="didtv-decode", daemon=True),
               threading.Thread(target=encode_worker, name="didtv-encode", daemon=True)]
    for th in threads:
        th.start()
    start = time.perf_counter()
    try:
        for out in transform(inputs()):
            t = time.perf_counter()
            _put(q_out, out, stop)
            waited += time.perf_counter() - t
            mod.frames += 1
            mod.busy = time.perf_counter() - start - waited
            stats.wall = time.perf_counter() - start
            if on_frame is not None:
                on_frame(stats.snapshot())
        _put(q_out, _END, stop)
        threads[1].join()
    except _Stop:
        pass
    except BaseException as exc:
        fail(exc)
    finally:
        stop.set()
        # On success both threads have ended. On failure one may still be inside a pipe read or
        # write: it ends once ``abort`` has ended that process.
        if errors and abort is not None:
            abort()
        for th in threads:
            th.join(timeout=2)
    stats.wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    if on_frame is not None:
        on_frame(stats.snapshot())
    return stats
