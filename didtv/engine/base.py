"""The interface every engine offers the schedulers (didtv.chunks.schedule, didtv.batch.schedule),
and the engine that runs tasks in the calling thread.

An engine runs *tasks* (:mod:`didtv.engine.tasks`: a chunk, or a file of a batch) and hands back
their *outcome* (ChunkDone / FileDone, or a TaskError). ``submit`` returns a :class:`Handle`;
``wait`` returns the handles that finished and, meanwhile, passes each running task's progress
(frames done, and stage clocks where the engine has them) to the callback given at submit.
"""

from __future__ import annotations

import itertools
from typing import Callable

_KEYS = itertools.count(1)


class Handle:
    """One submitted task."""

    def __init__(self, kind: str, task, on_progress: Callable | None) -> None:
        self.key = next(_KEYS)
        self.kind, self.task, self.on_progress = kind, task, on_progress
        self.ref = None  # the engine's own reference (a Future, a Ray ObjectRef)
        self.pool = None  # local engine: the process pool the task was submitted to (a retry after a death)
        self.outcome = None
        self.done = False

    def progress(self, frames: int, stats=None) -> None:
        if self.on_progress is not None:
            self.on_progress(frames, stats)


def run_task(kind: str, task, send=None, stopped=None, runner=None, capture: bool = True):
    """Run one task here; its outcome (``capture``: errors as a TaskError, else raised)."""
    from didtv.engine.tasks import run_chunk, run_file

    if kind == "chunk":
        return run_chunk(task, send, stopped, runner, capture)
    if kind == "file":
        return run_file(task, send, stopped)
    raise ValueError(f"unknown task kind {kind!r}")


class Engine:
    """Base: ``capacity`` tasks in flight at once."""

    name = "engine"
    capacity = 1

    def submit(self, kind: str, task, on_progress: Callable | None = None) -> Handle:
        raise NotImplementedError

    def wait(self, handles, timeout: float = 0.2) -> set:
        raise NotImplementedError

    def stop(self) -> None:
        """Ask every running task to stop (they clean up as an interrupted conversion does)
        and wait for them."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is not None:
            self.stop()
        self.close()


class InlineEngine(Engine):
    """Runs each task at submit, in the calling thread, with the caller's runner: what
    ``--workers 1`` does (per-frame progress with stage clocks, as in one pass)."""

    name = "inline"

    def __init__(self, runner=None) -> None:
        self.runner = runner

    def submit(self, kind: str, task, on_progress: Callable | None = None) -> Handle:
        handle = Handle(kind, task, on_progress)  # errors and Ctrl-C propagate as they are
        handle.outcome = run_task(kind, task, handle.progress, None, self.runner, capture=False)
        handle.done = True
        return handle

    def wait(self, handles, timeout: float = 0.2) -> set:
        return {h for h in handles if h.done}
