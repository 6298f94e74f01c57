"""Where conversions run: engines for chunks of one video and for the files of a batch.

- ``local`` with one worker: in this process, one task after the other (the default);
- ``local`` with ``workers=N``: N worker processes on this machine, threads shared out so the
  cores are not oversubscribed (:mod:`~didtv.engine.local`, :mod:`~didtv.engine.limits`);
- ``ray``: Ray tasks on a cluster, with CPU (and GPU) resource requests and retries of tasks
  whose worker died (:mod:`~didtv.engine.ray_engine`; the optional extra ``didtv[ray]``).

The tasks themselves (a chunk, a file) are in :mod:`~didtv.engine.tasks`; the schedulers that
use an engine are didtv.chunks.schedule and didtv.batch.schedule. docs/scale.md has the set-up
and the measured throughput.
"""

from __future__ import annotations

from didtv.errors import UsageError

ENGINES = ("local", "ray")


def check_engine(engine: str | None, workers: int | None, address: str | None) -> tuple[str, int | None]:
    """Validate the options; returns (engine, workers). ``workers`` None: the engine's default
    (local: 1; ray: as many tasks as the cluster has room for)."""
    engine = (engine or "local").lower()
    if engine not in ENGINES:
        raise UsageError(f"engine must be local or ray, got {engine!r}")
    if workers is not None and int(workers) < 1:
        raise UsageError(f"workers must be at least 1, got {workers}")
    if address and engine != "ray":
        raise UsageError("--address applies to --engine ray")
    return engine, None if workers is None else int(workers)


def is_parallel(engine: str | None, workers: int | None) -> bool:
    """Whether an engine other than this process is asked for."""
    return (engine or "local") == "ray" or (workers or 1) > 1


def open_engine(engine: str | None, workers: int | None, address: str | None = None, *,
                device: str | None = None, task_cpus: float | None = None):
    """The engine to run tasks on (a context manager), or None for this process alone."""
    engine, workers = check_engine(engine, workers, address)
    if engine == "ray":
        from didtv.engine.ray_engine import RayEngine

        return RayEngine(address, workers, device=device, task_cpus=task_cpus)
    if (workers or 1) <= 1:
        return None
    from didtv.engine.local import ProcessEngine

    return ProcessEngine(workers)
