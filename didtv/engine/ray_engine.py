"""``--engine ray``: chunks and batch files as Ray tasks (the optional extra ``didtv[ray]``).

Two ways for the data (``data``, ``--ray-data``; docs/scale.md): ``shared`` (the default): every
node sees the input, the output folder (and a chunked conversion's work folder next to the
output) under the same absolute paths; ``object-store``: the source and the outputs travel
through Ray's object store, nodes need no shared filesystem (didtv.engine.objects). Every node
has the same didtv installed. A task asks Ray for ``task_cpus`` CPUs (and one GPU when the
device asked for is CUDA) and uses that many threads (didtv.engine.limits). Ray retries a task
whose worker process died (``max_retries``); a retried chunk writes to a new temporary name and
this process accepts a chunk only after it verifies (didtv.chunks.work.Work.finish), so a
killed worker never leaves a partial or corrupt chunk in place, and a batch file is renamed
into place only by the conversion that finished it. A task that *fails* (bad input) is not
retried: its error comes back as one line.

Progress comes back per finished task (chunks done / total, files done), not per frame.
"""

from __future__ import annotations

import os
from typing import Callable

from didtv.engine.base import Engine, Handle, run_task
from didtv.errors import DidtvError

#: How often Ray runs a task again after its worker process died.
TASK_RETRIES = 3
#: CPUs a task asks for by default (and threads it uses).
TASK_CPUS = 1.0


def _task(kind: str, task, threads: int, inputs=None):
    """The body of every Ray task, in a Ray worker process; ``inputs``: object-store mode."""
    from didtv.engine.limits import apply_limits

    apply_limits(max(1, threads))
    if inputs is None:
        return run_task(kind, task)
    from didtv.engine.objects import run_shipped

    return run_shipped(kind, task, inputs)


def import_ray():
    """``ray``, or one line naming the extra when it is not installed."""
    from didtv.extras import require

    require("ray", "convert --engine ray")
    import ray

    return ray


class RayEngine(Engine):
    """Tasks on the Ray cluster at ``address`` (None: RAY_ADDRESS, else the cluster ``ray
    start`` started last on this machine, else a Ray instance started here for this run)."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, *,
                 device: str | None = None, task_cpus: float | None = None,
                 data: str | None = None) -> None:
        from didtv.engine.objects import MODES, Shipper

        if (data or MODES[0]) not in MODES:
            raise DidtvError(f"--ray-data must be one of {', '.join(MODES)}, got {data!r}")
        ray = import_ray()
        self.ray = ray
        self.task_cpus = float(task_cpus or TASK_CPUS)
        self.threads = int(max(1.0, self.task_cpus))
        self.gpus = 1 if str(device or "").startswith("cuda") else 0
        self._owns = not ray.is_initialized()  # connected here: disconnected at close
        try:
            if self._owns:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
        except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError ...
            where = address or os.environ.get("RAY_ADDRESS") or "a local instance"
            raise DidtvError(f"cannot connect to the Ray cluster at {where}: "
                             f"{' '.join(str(exc).split())[:300]}",
                             hint="start one with 'ray start --head' (docs/scale.md)") from None
        cpus = ray.cluster_resources().get("CPU", 1.0)
        largest = max((n.get("Resources", {}).get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")),
                      default=cpus)
        if self.task_cpus > largest:  # a task no node can take would wait for ever
            if self._owns:  # (no __exit__ follows a failed __init__)
                ray.shutdown()
            raise DidtvError(f"--task-cpus {self.task_cpus:g}: no node of the Ray cluster has that many "
                             f"CPUs (the largest has {largest:g}, the cluster {cpus:g})")
        self.capacity = int(workers) if workers else max(1, int(cpus // self.task_cpus))
        self._remote = ray.remote(_task).options(
            num_cpus=self.task_cpus, num_gpus=self.gpus, max_retries=TASK_RETRIES,
            retry_exceptions=False)
        self.shipper = Shipper(ray) if data == "object-store" else None
        self._handles: dict = {}

    def submit(self, kind: str, task, on_progress: Callable | None = None) -> Handle:
        handle = Handle(kind, task, on_progress)
        sent, inputs = self.shipper.ship(kind, task) if self.shipper else (task, None)
        handle.ref = self._remote.remote(kind, sent, self.threads, inputs)
        self._handles[handle.key] = handle
        return handle

    def wait(self, handles, timeout: float = 0.2) -> set:
        by_ref = {h.ref: h for h in handles if not h.done}
        finished = {h for h in handles if h.done}
        if by_ref:
            ready, _ = self.ray.wait(list(by_ref), num_returns=len(by_ref), timeout=timeout)
            for ref in ready:
                handle = by_ref[ref]
                handle.outcome = self._get(ref)
                if self.shipper is not None:  # the bytes it sent back, written here
                    handle.outcome = self.shipper.land(handle.kind, handle.task, handle.outcome)
                handle.done = True
                self._handles.pop(handle.key, None)
                finished.add(handle)
        return finished

    def _get(self, ref):
        from didtv.engine.tasks import TaskError

        try:
            return self.ray.get(ref)
        except self.ray.exceptions.TaskCancelledError:
            return TaskError("KeyboardInterrupt", "cancelled", interrupted=True)
        except self.ray.exceptions.RayError as exc:  # its worker died more than TASK_RETRIES times
            text = " ".join(str(exc).split())[:300]
            return TaskError("DidtvError", f"a Ray task failed {TASK_RETRIES + 1} times ({type(exc).__name__}: {text})")

    def stop(self) -> None:
        """Cancel the running tasks (a KeyboardInterrupt inside each: they clean up) and wait."""
        refs = [h.ref for h in self._handles.values() if not h.done]
        for ref in refs:
            try:
                self.ray.cancel(ref, force=False)
            except Exception:  # noqa: BLE001 - already finished
                pass
        if refs:
            self.ray.wait(refs, num_returns=len(refs), timeout=30)
        self._handles.clear()

    def close(self) -> None:
        self._handles.clear()
        if getattr(self, "shipper", None) is not None:
            self.shipper.forget()
            self.shipper = None
        if self._owns and self.ray.is_initialized():
            self.ray.shutdown()
