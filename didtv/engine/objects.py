"""``--ray-data object-store``: Ray tasks on nodes that share no filesystem with this machine.

The tasks are those of the shared mode (:mod:`didtv.engine.tasks`: a chunk of one video, a file
of a batch); this module only moves what they read and write through Ray's object store:

- on the machine didtv runs on (:class:`Shipper`): the source file is read once and put in the
  object store (``ray.put``; every chunk of one video shares that one object; a batch file's is
  released when its task is over), a ``.safetensors`` model too (once per run). The task record
  sent to Ray names none of this machine's paths (placeholders; the source's extension is kept).
  The bytes a task returns are written to the name its output would have had in the shared mode
  (a chunk: its attempt's temporary name in the work folder; a file: the batch's hidden partial
  name), and the usual checks accept them (didtv.chunks.work.Work.finish for a chunk; the batch's
  verify_output, in didtv.batch.dispatch, for a file);
- on a node (:func:`run_shipped`): the source (and the weights) are written once per node into a
  cache folder of the run, ``TMPDIR/didtv-objects-UID/RUN/``, named by their SHA-256, under a lock
  and atomically (a rename); the task runs on that copy, writes into a scratch folder of its
  own, returns the output's bytes, and removes the scratch folder in a ``finally`` (also when it
  fails or is cancelled). The run's cache folder is removed on every node when the engine closes
  (:func:`forget`); one left behind by a driver that died goes a day later, at the next task on
  that node.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import os
import secrets
import shutil
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from didtv.errors import DidtvError

MODES = ("shared", "object-store")
#: Placeholders for this machine's paths in a shipped task and in what comes back.
SOURCE, OUTPUT, SCRATCH = "{source}", "{output}", "{scratch}"
#: A node's cache folder of a run no task has touched for this long is removed.
STALE_SECONDS = 24 * 3600
_BLOCK = 16 << 20


@dataclass(frozen=True)
class Inputs:
    """What a shipped task reads from the object store. The references are in lists, so Ray hands
    the task the reference and the task decides whether to fetch the bytes (not when cached)."""

    run: str  # the driver's run: the node's cache folder
    source: list  # [ObjectRef] of the source's bytes
    source_key: str  # their SHA-256
    suffix: str  # the source's extension (FFmpeg guesses some formats by it)
    weights: list | None = None  # [ObjectRef] of the .safetensors file given as the model
    weights_key: str | None = None


@dataclass(frozen=True)
class Shipped:
    """What a shipped task returns: its outcome (ChunkDone / FileDone / TaskError, naming no path
    of the node) and the output's bytes (None after an error)."""

    outcome: object
    data: object = None


def read_file(path: str) -> tuple[object, str]:
    """The file's bytes (a read-only numpy view of a memory map: no copy in this process's heap;
    ``ray.put`` copies them into the object store) and their SHA-256."""
    import numpy as np

    size = os.path.getsize(path)
    data = np.memmap(path, dtype=np.uint8, mode="r").view(np.ndarray) if size else np.empty(0, np.uint8)
    digest = hashlib.sha256()
    for i in range(0, size, _BLOCK):
        digest.update(data[i:i + _BLOCK])
    return data, digest.hexdigest()


def _write(path: Path, data) -> None:
    """``data`` (bytes or a uint8 array) into the new file ``path``; nothing left on a failure."""
    try:
        with open(path, "xb") as f:
            f.write(memoryview(data))
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _renamed(text: str, names: dict[str, str]) -> str:
    for old, new in names.items():
        text = text.replace(old, new)
    return text


def _renamed_outcome(outcome, names: dict[str, str]):
    """``outcome`` with the paths in ``names`` replaced in its message / warnings."""
    from didtv.engine.tasks import FileDone, TaskError

    if isinstance(outcome, TaskError):
        hint = _renamed(outcome.hint, names) if outcome.hint else outcome.hint
        return dataclasses.replace(outcome, message=_renamed(outcome.message, names), hint=hint)
    if isinstance(outcome, FileDone):
        return dataclasses.replace(outcome, warnings=[_renamed(str(w), names) for w in outcome.warnings])
    return outcome


class Shipper:
    """The driver's side: puts inputs in the object store, strips paths from the task records,
    writes returned bytes where the shared mode's output would be."""

    def __init__(self, ray) -> None:
        self.ray = ray
        self.run = secrets.token_hex(8)
        self._objects: dict[str, tuple] = {}  # absolute path -> (ObjectRef, SHA-256)
        self._lock = threading.Lock()

    def put(self, path: str, keep: bool = True) -> tuple:
        """(reference, SHA-256) of the file ``path`` in the object store, put once."""
        path = os.path.abspath(path)
        with self._lock:
            if path in self._objects:
                return self._objects[path]
        try:
            data, key = read_file(path)
            ref = self.ray.put(data)
        except OSError as exc:
            raise DidtvError(f"cannot read {path}: {exc.strerror or exc}") from None
        except self.ray.exceptions.RayError as exc:  # the object store is full and cannot spill
            raise DidtvError(f"cannot put {path} in Ray's object store: "
                             f"{' '.join(str(exc).split())[:300]}") from None
        del data
        if keep:
            with self._lock:
                self._objects[path] = (ref, key)
        return ref, key

    def ship(self, kind: str, task) -> tuple:
        """(the task as sent to Ray, its :class:`Inputs`)."""
        spec, weights = task.spec, (None, None)
        if isinstance(spec.model, str) and spec.model.endswith(".safetensors"):
            ref, key = self.put(spec.model)
            weights = ([ref], key)
        preset = spec.preset
        if preset is not None:  # its .toml path and the model as the user gave it stay here
            preset = dataclasses.replace(preset, model=spec.model, path=None)
        spec = dataclasses.replace(spec, preset=preset)
        if kind == "chunk":
            src = task.job.info.path
            job = dataclasses.replace(task.job, info=dataclasses.replace(task.job.info, path=SOURCE))
            sent = dataclasses.replace(task, job=job, out=Path(task.out).name, spec=spec)
        elif kind == "file":
            src = task.src
            sent = dataclasses.replace(task, src=SOURCE, dst=OUTPUT + Path(task.dst).suffix, spec=spec)
        else:
            raise ValueError(f"unknown task kind {kind!r}")
        ref, key = self.put(src, keep=kind == "chunk")  # a file's source: released with its task
        return sent, Inputs(self.run, [ref], key, Path(src).suffix, *weights)

    def land(self, kind: str, task, value):
        """The outcome the scheduler expects, from what the task returned: its bytes written to
        the attempt's temporary name (``out`` of the outcome), paths named as on this machine."""
        from didtv.engine.tasks import TaskError, attempt_path

        if kind == "chunk":
            src, out = task.job.info.path, attempt_path(task.out)
            names = {SOURCE: src, SCRATCH: str(out.parent), OUTPUT: str(out)}
        else:
            from didtv.api import partial_path

            dst = Path(task.dst)
            src, out = task.src, partial_path(dst, dst.suffix)
            names = {SOURCE: src, SCRATCH: str(dst.parent), OUTPUT: str(dst)}
        if not isinstance(value, Shipped):  # cancelled, or its worker died too often
            return value
        outcome = _renamed_outcome(value.outcome, names)
        if isinstance(outcome, TaskError):
            return outcome
        try:
            _write(out, value.data)
        except OSError as exc:
            return TaskError("OutputError", f"cannot write {out}: {exc.strerror or exc}")
        return dataclasses.replace(outcome, out=str(out))

    def forget(self, timeout: float = 30.0) -> None:
        """Release the objects and remove this run's cache folder on every node."""
        with self._lock:
            self._objects.clear()
        try:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            refs = [self.ray.remote(remove_run).options(
                        num_cpus=0, max_retries=0,
                        scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
                    ).remote(self.run)
                    for node in self.ray.nodes() if node.get("Alive")]
            if refs:
                self.ray.wait(refs, num_returns=len(refs), timeout=timeout)
        except Exception:  # noqa: BLE001 - a node gone: its folder goes a day later (STALE_SECONDS)
            pass


# -- on a node -------------------------------------------------------------------------------------


def cache_root() -> Path:
    """``TMPDIR/didtv-objects-UID``: this user's, not writable by others (else refused)."""
    root = Path(tempfile.gettempdir()) / f"didtv-objects-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise DidtvError(f"{root} is not a private folder of this user: refused as the cache of "
                         "sources sent through Ray's object store")
    return root


def remove_run(run: str) -> None:
    """A Ray task on each node at the end: remove the run's cache folder."""
    shutil.rmtree(cache_root() / run, ignore_errors=True)


def _sweep(root: Path, folder: Path) -> None:
    """Mark ``folder`` as in use; remove run folders untouched for STALE_SECONDS."""
    os.utime(folder)
    for old in root.iterdir():
        try:
            if old != folder and old.is_dir() and time.time() - old.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass


def materialise(fetch, key: str, suffix: str, folder: Path) -> Path:
    """The file named by ``key`` in ``folder``, written from ``fetch()`` (the bytes) only when it
    is not there yet: under a lock (one writer per node), to a temporary name, renamed."""
    path = folder / f"{key[:32]}{suffix}"
    if path.is_file():
        return path
    with open(folder / f"{key[:32]}.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if not path.is_file():
            part = path.with_name(f"{path.name}.partial-{os.getpid()}")
            try:
                _write(part, fetch())
                os.replace(part, path)
            finally:
                part.unlink(missing_ok=True)
    return path


def run_shipped(kind: str, task, inputs: Inputs) -> Shipped:
    """The body of a shipped task on a node (threads already limited): materialise the inputs,
    run the task of the shared mode on them, return its outcome and output bytes."""
    from didtv.engine.tasks import _captured
    from didtv.identity import WEIGHTS_COPIES

    scratch: list[Path] = []
    names: dict[str, str] = {}
    try:
        value = _captured(lambda: _run(kind, task, inputs, scratch, names))
        return value if isinstance(value, Shipped) else Shipped(_renamed_outcome(value, names))
    finally:
        WEIGHTS_COPIES.pop(task.spec.model, None)
        for path in scratch:
            shutil.rmtree(path, ignore_errors=True)


def _run(kind: str, task, inputs: Inputs, scratch: list, names: dict) -> Shipped:
    import numpy as np
    import ray

    from didtv.engine.base import run_task
    from didtv.engine.tasks import TaskError
    from didtv.identity import WEIGHTS_COPIES

    root = cache_root()
    folder = root / inputs.run
    folder.mkdir(mode=0o700, exist_ok=True)
    _sweep(root, folder)
    src = materialise(lambda: ray.get(inputs.source[0]), inputs.source_key, inputs.suffix, folder)
    if inputs.weights:
        WEIGHTS_COPIES[task.spec.model] = str(materialise(lambda: ray.get(inputs.weights[0]),
                                                          inputs.weights_key, ".safetensors", folder))
    tmp = Path(tempfile.mkdtemp(prefix=f"task-{os.getpid()}-", dir=folder))
    scratch.append(tmp)
    if kind == "chunk":
        job = dataclasses.replace(task.job, info=dataclasses.replace(task.job.info, path=str(src)))
        local = dataclasses.replace(task, job=job, out=str(tmp / task.out))
        out = None
    else:
        out = tmp / task.dst.replace(OUTPUT, "output")
        local = dataclasses.replace(task, src=str(src), dst=str(out))
        names[str(out)] = OUTPUT
    names.update({str(tmp): SCRATCH, str(src): SOURCE})
    outcome = _renamed_outcome(run_task(kind, local), names)
    if isinstance(outcome, TaskError):
        return Shipped(outcome)
    data = np.fromfile(out or outcome.out, dtype=np.uint8)
    return Shipped(dataclasses.replace(outcome, out="") if out is None else outcome, data)
