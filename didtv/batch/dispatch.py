"""A batch's files on an engine (``--workers N`` processes, or Ray tasks; didtv.engine): each
file is one task; a thread of this process waits for it and relays its progress, so the batch
report, the events and the resumption rules are those of a batch in one process."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from didtv.api import Progress


class FileResult:
    """What :func:`convert_file` returns (the fields of ConvertResult the batch reads)."""

    def __init__(self, frames: int, warnings: list, seconds: float) -> None:
        self.frames, self.warnings, self.seconds = frames, warnings, seconds


def convert_file(engine, src: Path, dst: Path, *, preset, model: str, overwrite: bool, force: bool,
                 run: dict, estimated_frames: int | None,
                 on_progress: Callable[[Progress], None] | None = None,
                 stopped: Callable[[], bool] | None = None) -> FileResult:
    """didtv.api.convert of one file as a task on ``engine``; raises what the conversion raised
    (a DidtvError, or KeyboardInterrupt when the task was stopped). When ``stopped()`` says so
    (or ``on_progress`` raises), KeyboardInterrupt is raised here; the task itself is ended by
    the engine's stop, which the batch calls on its way out."""
    from didtv.engine.tasks import FileDone, FileTask, ModelSpec, TaskError, raise_error

    t0 = time.monotonic()
    total = estimated_frames or 0

    def relay(frames: int, stats=None) -> None:
        if on_progress is not None:
            on_progress(Progress(frames, max(total, frames), time.monotonic() - t0))

    if on_progress is not None:
        on_progress(Progress(0, total, 0.0))
    if engine.name == "ray":  # other nodes: the same absolute paths (a shared filesystem)
        src, dst = Path(os.path.abspath(src)), Path(os.path.abspath(dst))
    task = FileTask(str(src), str(dst), ModelSpec(preset, model, dict(run)), overwrite, force)
    handle = engine.submit("file", task, relay)
    while not engine.wait({handle}, timeout=0.2):
        if stopped is not None and stopped():
            raise KeyboardInterrupt("stopped")
    outcome = handle.outcome
    if isinstance(outcome, TaskError):
        raise_error(outcome)
    assert isinstance(outcome, FileDone)
    return FileResult(outcome.frames, list(outcome.warnings), outcome.seconds)
