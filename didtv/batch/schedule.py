"""Running the batch: :func:`convert_batch` checks everything that can stop the whole batch,
discovers, then verifies or converts each file (``jobs`` at a time), recording each outcome in
the report and writing it after every file."""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import os
import threading
import time
from pathlib import Path
from typing import Callable

from didtv.api import Progress, conversion_options, convert
from didtv.batch.discovery import _reason, check_dirs, clean_stale_partials, discover, output_names
from didtv.batch.report import BatchEvent, BatchInterrupted, BatchItem, BatchReport
from didtv.batch.verify import verify_output
from didtv.errors import DidtvError, OutputError
from didtv.io.probe import count_frames

CONTAINERS = ("mkv", "mp4")
VERIFY_MODES = ("quick", "full")


class _Cancelled(KeyboardInterrupt):
    """Raised inside a worker's progress callback to stop its conversion."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def convert_batch(
    in_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    preset=None,
    model: str | None = None,
    container: str = "mkv",
    recursive: bool = False,
    jobs: int = 1,
    overwrite: bool = False,
    force: bool = False,
    device: str | None = None,
    precision: str | None = None,
    tile: int | str | None = None,
    batch_size: int | None = None,
    motion_guard: bool | None = None,
    torch_compile: bool = False,
    verify: str = "quick",
    workers: int | None = None,
    engine: str | None = None,
    address: str | None = None,
    ray_data: str | None = None,
    task_cpus: float | None = None,
    report_path: str | os.PathLike | None = None,
    on_event: Callable[[BatchEvent], None] | None = None,
    cancel: threading.Event | None = None,
) -> BatchReport:
    """Convert every video under ``in_dir`` into ``out_dir`` (see the module docstring).

    ``preset``/``model``/``force``/``device``/``precision``/``tile``/``batch_size``/``motion_guard``/
    ``torch_compile``: as for
    :func:`didtv.api.convert`.
    ``container``: "mkv" or "mp4". ``jobs``: files converted at once (threads; each runs its
    own FFmpeg processes). ``overwrite``: convert again even when an output verifies.
    ``workers``/``engine``/``address``: files converted in ``workers`` processes of this
    machine, or as Ray tasks (didtv.engine, docs/scale.md), instead of ``jobs`` threads here;
    ``ray_data``/``task_cpus``: Ray's data mode (shared, object-store) and CPUs per task.
    ``verify``: "quick" or "full" (see :func:`verify_output`). ``report_path``: where the JSON
    report is written (atomically, after every file); None: not written. ``cancel``: set it
    (from any thread) to stop like an interrupt. Returns the report; raises
    :class:`BatchInterrupted` on KeyboardInterrupt or ``cancel``, DidtvError for problems
    that stop the whole batch before any file is touched (folders, FFmpeg, model, preset).
    """
    from didtv.io.ffmpeg import check_ffmpeg
    from didtv.presets import Preset, load_preset, load_preset_model

    t0 = time.monotonic()
    started = _now()
    container = container.lower().lstrip(".")
    if container not in CONTAINERS:
        raise OutputError(f"container must be mkv or mp4, got {container!r}")
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    from didtv.engine import check_engine, is_parallel, open_engine

    engine, workers = check_engine(engine, workers, address, data=ray_data, task_cpus=task_cpus)
    if jobs > 1 and is_parallel(engine, workers):
        raise ValueError("jobs (threads) and workers / engine ray (processes) exclude each other")
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    real_in, real_out, out_inside = check_dirs(in_dir, out_dir)
    if not isinstance(preset, Preset):
        preset = load_preset(preset)
    # Everything that can stop the whole batch fails here, before any file is touched.
    check_ffmpeg()
    from didtv.pipeline.runner import pick_device

    model_name, _net = load_preset_model(preset, model, device=str(pick_device(device)))
    del _net
    if is_parallel(engine, workers) and model_name.endswith(".safetensors"):
        model_name = os.path.abspath(model_name)  # as its tasks get it and record it (ModelSpec)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {out_dir}: {exc.strerror or exc}") from exc
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {out_dir} is not writable")

    report = BatchReport(
        in_dir=in_dir, out_dir=out_dir, container=container, recursive=recursive, jobs=jobs,
        options={"preset": preset.name, "model": model_name, "force": force,
                 "overwrite": overwrite, "verify": verify, "engine": engine, "workers": workers,
                 "ray_data": (ray_data or "shared") if engine == "ray" else None},
        started=started)
    report.removed_partials = clean_stale_partials(out_dir)
    if out_inside:
        report.excluded.append(str(out_dir))
    report.items = discover(real_in, recursive=recursive, exclude=real_out if out_inside else None,
                            force=force)
    # Report paths as the user gave them, not resolved through links.
    for item in report.items:
        item.source = in_dir / item.input
    output_names(report.items, container)
    lock = threading.Lock()

    def emit(kind: str, item: BatchItem | None = None, progress: Progress | None = None) -> None:
        if on_event is not None:
            with lock:
                on_event(BatchEvent(kind, report, item, progress))

    def save() -> None:
        if report_path is not None:
            with lock:
                report.seconds = time.monotonic() - t0
                report.write_json(Path(report_path))

    emit("plan")
    for item in report.items:
        if item.status != "pending":
            emit("done", item)
    save()
    stop = cancel or threading.Event()
    pool = (open_engine(engine, workers, address, device=device, task_cpus=task_cpus, data=ray_data)
            if is_parallel(engine, workers) else None)

    def process(item: BatchItem) -> None:
        _process(item, out_dir=out_dir, preset=preset, model_name=model_name, overwrite=overwrite,
                 force=force, run={"device": device, "precision": precision, "tile": tile,
                                   "batch_size": batch_size, "motion_guard": motion_guard,
                                   "torch_compile": torch_compile},
                 full=verify == "full", stop=stop, emit=emit, engine=pool)
        save()

    todo = [i for i in report.items if i.status == "pending"]
    try:
        if pool is not None:
            with pool:
                _run_parallel(todo, process, pool.capacity, stop)
                if stop.is_set():
                    pool.stop()
            report.removed_partials += clean_stale_partials(out_dir)  # of workers that died
        elif jobs == 1:
            for item in todo:
                if stop.is_set():
                    raise _Cancelled()
                process(item)
        else:
            _run_parallel(todo, process, jobs, stop)
    except KeyboardInterrupt:
        stop.set()
        report.interrupted = True
        report.finished = _now()
        save()
        raise BatchInterrupted(report) from None
    report.finished = _now()
    save()
    return report


def _run_parallel(todo: list[BatchItem], process, jobs: int, stop: threading.Event) -> None:
    """Run ``process`` on the items with ``jobs`` threads. On KeyboardInterrupt in the calling
    thread: set ``stop`` (workers stop at their next frame and clean up), wait for them, raise."""
    interrupted = False
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="didtv") as pool:
        futures = {pool.submit(process, item): item for item in todo}
        pending = set(futures)
        while pending:
            try:
                done, pending = concurrent.futures.wait(pending, timeout=0.2)
                if stop.is_set() and not interrupted:
                    interrupted = True
                    for f in pending:
                        f.cancel()
            except KeyboardInterrupt:
                interrupted = True
                stop.set()
                for f in pending:
                    f.cancel()
        for f in futures:
            if not f.cancelled() and f.exception() is not None:
                raise f.exception()  # a bug in _process itself (it records everything else)
    if interrupted:
        raise _Cancelled()


def _process(item: BatchItem, *, out_dir: Path, preset, model_name: str, overwrite: bool,
             force: bool, run: dict, full: bool, stop: threading.Event, emit, engine=None) -> None:
    """Verify or convert one item (``run``: convert()'s device/precision/tile/batch_size); records
    the outcome in ``item``. Re-raises interrupts
    (after marking the item) and nothing else."""
    from didtv.io.decode import tool_safe_path

    assert item.output is not None and item.info is not None
    dst = out_dir / item.output
    t0 = time.monotonic()
    emit("start", item)
    redo: str | None = None
    try:
        if stop.is_set():
            raise _Cancelled()
        if dst.exists() or dst.is_symlink():
            if dst.is_dir():
                raise OutputError(f"output {dst} is a folder")
            if overwrite:
                redo = "replaced (--overwrite)"
            else:
                source_frames = count_frames(tool_safe_path(item.source))
                options = conversion_options(preset, model_name, item.info.fps)
                redo = verify_output(item.source, dst, options, full=full, source_frames=source_frames)
                if redo is None:
                    item.status, item.frames = "skipped", source_frames
                    item.reason = "up to date (verified)"
                    return
        dst.parent.mkdir(parents=True, exist_ok=True)

        def on_progress(p: Progress) -> None:
            if stop.is_set():
                raise _Cancelled()
            emit("progress", item, p)

        if engine is None:
            result = convert(item.source, dst, preset=preset, model=model_name,
                             overwrite=redo is not None, force=force, **run, on_progress=on_progress)
        else:
            from didtv.batch.dispatch import convert_file

            result = convert_file(engine, item.source, dst, preset=preset, model=model_name,
                                  overwrite=redo is not None, force=force, run=run,
                                  estimated_frames=item.estimated_frames, on_progress=on_progress,
                                  stopped=stop.is_set, full=full,
                                  options=conversion_options(preset, model_name, item.info.fps))
        item.status, item.frames, item.warnings = "converted", result.frames, list(result.warnings)
        item.reason = f"redone: {redo}" if redo else None
    except KeyboardInterrupt:
        item.status, item.reason = "interrupted", "interrupted; its temporary files were removed"
        raise
    except DidtvError as exc:
        if stop.is_set():
            # Ctrl-C in a terminal reaches FFmpeg too: its death is the interrupt, not the file.
            item.status, item.reason = "interrupted", "interrupted; its temporary files were removed"
        else:
            item.status, item.reason, item.error = "failed", _reason(exc, item.source), type(exc).__name__
    except OSError as exc:
        item.status, item.error = "failed", type(exc).__name__
        item.reason = f"cannot write {dst}: {exc.strerror or exc}"
    except Exception as exc:  # a bug must not stop the batch; the reason says what it was
        item.status, item.error = "failed", type(exc).__name__
        item.reason = f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}"
    finally:
        item.seconds = time.monotonic() - t0
        if item.status != "pending":
            emit("done", item)
