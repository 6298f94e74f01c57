"""A batch's files on an engine (``--workers N`` processes, or Ray tasks; didtv.engine): each
file is one task; a thread of this process waits for it and relays its progress, so the batch
report, the events and the resumption rules are those of a batch in one process.

In Ray's object-store mode (didtv.engine.objects) the output comes back as bytes, written to the
hidden partial name next to the output; it is renamed into place only after the batch's own
check of an existing output (:func:`didtv.batch.verify.verify_output`) accepts it.
"""

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
                 stopped: Callable[[], bool] | None = None, options: dict | None = None,
                 full: bool = False) -> FileResult:
    """didtv.api.convert of one file as a task on ``engine``; raises what the conversion raised
    (a DidtvError, or KeyboardInterrupt when the task was stopped). When ``stopped()`` says so
    (or ``on_progress`` raises), KeyboardInterrupt is raised here; the task itself is ended by
    the engine's stop, which the batch calls on its way out. ``options`` (conversion_options)
    and ``full``: how an output that came back as bytes is verified before it is put in place."""
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
    try:
        while not engine.wait({handle}, timeout=0.2):
            if stopped is not None and stopped():
                raise KeyboardInterrupt("stopped")
        outcome = handle.outcome
        if isinstance(outcome, TaskError):
            raise_error(outcome)
        assert isinstance(outcome, FileDone)
        if outcome.out:  # its bytes, written here: verified, then put in place
            _accept(Path(outcome.out), src, dst, options, full=full, overwrite=overwrite)
    finally:
        landed = getattr(handle.outcome, "out", "")
        if landed:  # not accepted (once accepted it is gone: renamed)
            Path(landed).unlink(missing_ok=True)
    return FileResult(outcome.frames, list(outcome.warnings), outcome.seconds)


def _accept(partial: Path, src: Path, dst: Path, options: dict | None, *, full: bool,
            overwrite: bool) -> None:
    """Rename ``partial`` to ``dst`` once :func:`verify_output` accepts it as an output of ``src``."""
    from didtv.batch.verify import verify_output
    from didtv.errors import OutputError

    if options is None:
        raise ValueError("an output that came back as bytes needs the options to verify it")
    why = verify_output(src, partial, options, full=full)
    if why is not None:
        raise OutputError(f"{dst}: the output sent back by the Ray task does not verify: "
                          f"{why.replace('the existing output', 'it')}")
    if dst.exists() and not overwrite:
        raise OutputError(f"output {dst} appeared while converting", hint="pass --overwrite to replace it")
    try:
        os.replace(partial, dst)
    except OSError as exc:
        raise OutputError(f"cannot write {dst}: {exc.strerror or exc}") from exc
