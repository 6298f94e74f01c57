"""Where conversions run: engines for chunks of one video and for the files of a batch.

- ``local`` with one worker: in this process, one task after the other (the default);
- ``local`` with ``workers=N``: N worker processes on this machine, threads shared out so the
  cores are not oversubscribed (:mod:`~didtv.engine.local`, :mod:`~didtv.engine.limits`);
- ``ray``: Ray tasks on a cluster, with CPU (and GPU) resource requests and retries of tasks
  whose worker died (:mod:`~didtv.engine.ray_engine`; the optional extra ``didtv[ray]``), on a
  shared filesystem or through Ray's object store (:mod:`~didtv.engine.objects`).

The tasks themselves (a chunk, a file) are in :mod:`~didtv.engine.tasks`; the schedulers that
use an engine are didtv.chunks.schedule and didtv.batch.schedule. docs/scale.md has the set-up
and the measured throughput.
"""

from __future__ import annotations

from didtv.errors import UsageError

ENGINES = ("local", "ray")


def check_engine(engine: str | None, workers: int | None, address: str | None, *,
                 data: str | None = None, task_cpus: float | None = None) -> tuple[str, int | None]:
    """Validate the options; returns (engine, workers). ``workers`` None: the engine's default
    (local: 1; ray: as many tasks as the cluster has room for). ``data`` (``--ray-data``:
    shared, object-store) and ``task_cpus`` (``--task-cpus``, a positive number) apply to ray."""
    from didtv.engine.objects import MODES

    engine = (engine or "local").lower()
    if engine not in ENGINES:
        raise UsageError(f"engine must be local or ray, got {engine!r}")
    if workers is not None and int(workers) < 1:
        raise UsageError(f"workers must be at least 1, got {workers}")
    for option, value in (("--address", address), ("--ray-data", data), ("--task-cpus", task_cpus)):
        if value is not None and value != "" and engine != "ray":
            raise UsageError(f"{option} applies to --engine ray")
    if data is not None and data not in MODES:
        raise UsageError(f"--ray-data must be {' or '.join(MODES)}, got {data!r}")
    if task_cpus is not None and not (isinstance(task_cpus, (int, float)) and 0 < task_cpus < float("inf")):
        raise UsageError(f"--task-cpus must be a positive number of CPUs, got {task_cpus!r}")
    return engine, None if workers is None else int(workers)


def is_parallel(engine: str | None, workers: int | None) -> bool:
    """Whether an engine other than this process is asked for."""
    return (engine or "local") == "ray" or (workers or 1) > 1


def open_engine(engine: str | None, workers: int | None, address: str | None = None, *,
                device: str | None = None, task_cpus: float | None = None, data: str | None = None):
    """The engine to run tasks on (a context manager), or None for this process alone."""
    engine, workers = check_engine(engine, workers, address, data=data, task_cpus=task_cpus)
    if engine == "ray":
        from didtv.engine.ray_engine import RayEngine

        return RayEngine(address, workers, device=device, task_cpus=task_cpus, data=data)
    if (workers or 1) <= 1:
        return None
    from didtv.engine.local import ProcessEngine

    return ProcessEngine(workers)
