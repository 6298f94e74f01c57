"""What a worker (a local process or a Ray task) runs: one chunk of a video, or one file of a
batch. Everything here is picklable and imports torch only when a task runs.

A task reports progress through ``send(frames_done)`` (a queue to the parent, or nothing) and
stops, cleaning up as an interrupted conversion does, when ``stopped()`` says so. Errors come
back as :class:`TaskError`, a plain picklable record that the parent turns into the DidtvError
it was (:func:`raise_error`), so a failure reads the same as in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

#: The runner of this process, kept between tasks: (key, runner).
_RUNNER: list = []


@dataclass(frozen=True)
class ModelSpec:
    """How a worker builds the parent's model: the preset and the resolved model name (a
    registered name or a .safetensors path every worker can read) and the Runner's options."""

    preset: object  # didtv.presets.Preset
    model: str
    run: dict = field(default_factory=dict)  # device, precision, tile, batch_size, motion_guard, torch_compile

    def __post_init__(self) -> None:
        # a weights file named relative to the parent's directory: absolute, as the input and
        # output paths are (a Ray task runs in another directory, possibly on another machine)
        if isinstance(self.model, str) and self.model.endswith(".safetensors"):
            object.__setattr__(self, "model", os.path.abspath(self.model))

    def device(self) -> str:
        from didtv.pipeline.runner import pick_device

        return str(pick_device(self.run.get("device")))


@dataclass(frozen=True)
class ChunkTask:
    job: object  # didtv.chunks.run.ChunkJob
    chunk: object  # didtv.chunks.plan.Chunk
    out: str  # the temporary file the chunk is written to; "{attempt}" in it: a name per attempt
    seed: dict | None
    spec: ModelSpec
    total: int  # chunks in the video (an error names "chunk k/total")


@dataclass(frozen=True)
class ChunkDone:
    end_state: dict | None
    fresh: bool | None  # the first written frame started a shot (None: no condition)
    seconds: float
    pid: int
    stages: object = None  # StageStats of the chunk
    out: str = ""  # the file written


@dataclass(frozen=True)
class FileTask:
    src: str
    dst: str
    spec: ModelSpec
    overwrite: bool
    force: bool


@dataclass(frozen=True)
class FileDone:
    frames: int
    warnings: list
    seconds: float
    out: str = ""  # object-store mode: the partial file its bytes were written to, to be verified


@dataclass(frozen=True)
class TaskError:
    kind: str  # the DidtvError subclass (or another exception's type name)
    message: str
    hint: str | None = None
    interrupted: bool = False


class Stopped(KeyboardInterrupt):
    """Raised in a task whose parent asked it to stop."""


def raise_error(err: TaskError) -> None:
    """Raise what the task raised: its DidtvError subclass, KeyboardInterrupt, or a RuntimeError."""
    from didtv import errors

    if err.interrupted:
        raise KeyboardInterrupt(err.message)
    cls = getattr(errors, err.kind, None)
    if isinstance(cls, type) and issubclass(cls, errors.DidtvError):
        raise cls(err.message, hint=err.hint)
    raise RuntimeError(f"{err.kind}: {err.message}")


def _captured(fn):
    """Run ``fn()``; return its value, or a :class:`TaskError` for what it raised."""
    from didtv.errors import DidtvError

    try:
        return fn()
    except KeyboardInterrupt as exc:
        return TaskError("KeyboardInterrupt", str(exc) or "stopped", interrupted=True)
    except DidtvError as exc:
        return TaskError(type(exc).__name__, str(exc), exc.hint)
    except Exception as exc:  # noqa: BLE001 - the parent reports it as one line
        return TaskError(type(exc).__name__, " ".join(str(exc).split()))


def chunk_runner(spec: ModelSpec):
    """This process's ChunkRunner for ``spec`` (built once, reused by later tasks)."""
    from didtv.chunks.shot import ChunkRunner
    from didtv.presets import load_preset_model

    from didtv.identity import weights_file

    key = (spec.model, weights_file(spec.model), repr(spec.preset), tuple(sorted(spec.run.items())))
    if _RUNNER and _RUNNER[0] == key:
        return _RUNNER[1]
    device = spec.device()
    _, net = load_preset_model(spec.preset, spec.model, device=device)
    run = {k: v for k, v in spec.run.items() if k != "batch_size"}
    runner = ChunkRunner(net, batch=spec.run.get("batch_size"), **run)
    _RUNNER[:] = [key, runner]
    return runner


def attempt_path(out: str) -> Path:
    """The chunk file of one attempt: ``out`` with its "{attempt}" made unique, so a retried
    task (its worker died) never writes into the file of the attempt before it."""
    import secrets

    return Path(out.replace("{attempt}", secrets.token_hex(4)))


def run_chunk(task: ChunkTask, send: Callable | None = None,
              stopped: Callable[[], bool] | None = None, runner=None, capture: bool = True):
    """Convert one chunk into ``task.out``. Returns :class:`ChunkDone` or (``capture``) a
    :class:`TaskError` for what it raised; without ``capture`` exceptions propagate."""
    import time

    from didtv.chunks.run import convert_chunk_named

    def on_frame(stats) -> None:
        if stopped is not None and stopped():
            raise Stopped("stopped")
        if send is not None:
            send(stats.clocks["model"].frames, stats)

    def go() -> ChunkDone:
        t0 = time.monotonic()
        out = attempt_path(task.out)
        shot, stages = convert_chunk_named(task.job, task.chunk, runner or chunk_runner(task.spec),
                                           out, task.seed, on_frame, task.total)
        return ChunkDone(shot.end_state, shot.fresh, time.monotonic() - t0, os.getpid(),
                         stages.snapshot() if stages is not None else None, str(out))

    return _captured(go) if capture else go()


def run_file(task: FileTask, send: Callable | None = None,
             stopped: Callable[[], bool] | None = None):
    """Convert one file of a batch (didtv.api.convert). Returns :class:`FileDone` or :class:`TaskError`."""
    from didtv.api import convert

    def on_progress(p) -> None:
        if stopped is not None and stopped():
            raise Stopped("stopped")
        if send is not None:
            send(p.frames_done, None)

    def go() -> FileDone:
        result = convert(task.src, task.dst, preset=task.spec.preset, model=task.spec.model,
                         overwrite=task.overwrite, force=task.force, **task.spec.run,
                         on_progress=on_progress)
        return FileDone(result.frames, list(result.warnings), result.seconds)

    return _captured(go)
