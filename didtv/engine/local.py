"""``--workers N`` on one machine: tasks in N worker processes.

Worker processes are started with ``spawn`` (forking a process whose torch thread pools have
started can deadlock), each with ``cores // N`` threads for torch, OpenMP/MKL and x265
(didtv.engine.limits). A worker builds its model once and keeps it for the tasks that follow.
Progress comes back through a queue, frame by frame; a shared event asks running tasks to stop
at their next frame (Ctrl-C, SIGTERM, a failed chunk), after which they clean up as an
interrupted conversion does. Workers ignore SIGINT (the parent decides) and die with the parent
(``PR_SET_PDEATHSIG``), so a parent killed with SIGKILL leaves no converting orphans behind.
A worker that dies (killed, out of memory) breaks the process pool: the engine starts a new
pool and submits again every task that was in flight or waiting, as Ray does (a task is run at
most ``1 + TASK_RETRIES`` times; a retried chunk writes to a new temporary name and is accepted
only after it verifies; a batch file's dead attempt leaves a hidden partial file whose PID is
dead, which the batch removes). After the last retry the task fails with one line saying so.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import queue as _queue
import signal
import threading
from typing import Callable

from didtv.engine.base import Engine, Handle, run_task

#: This worker's (queue, stop event), set by :func:`_init`.
_WORKER: list = []
#: How often a task is submitted again after its worker process died (as Ray's max_retries).
TASK_RETRIES = 3


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: orphans end when their task does


def _init(threads: int, cores: int, progress, stop) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    from didtv.engine.limits import apply_limits

    apply_limits(threads, cores)
    _WORKER[:] = [progress, stop]


def _work(kind: str, key: int, task):
    progress, stop = _WORKER

    def send(frames: int, stats=None) -> None:
        progress.put((key, frames))
    return run_task(kind, task, send, stop.is_set)


class ProcessEngine(Engine):
    """``workers`` processes on this machine."""

    name = "local"

    def __init__(self, workers: int) -> None:
        from didtv.engine.limits import cpu_count, threads_per_worker

        self.capacity = max(1, int(workers))
        self.threads = threads_per_worker(self.capacity)
        self._ctx = multiprocessing.get_context("spawn")
        self._cores = cpu_count()
        self._pool = self._new_pool()
        self._handles: dict[int, Handle] = {}
        self._lock = threading.Lock()
        self._deaths: dict[int, int] = {}  # handle key -> times its worker died
        self._stopping = False  # stop() was called (read here, never from a shared Event)

    def _new_pool(self):
        """A pool with its own progress queue and stop event: a worker killed while it holds
        their locks (it takes them on every frame) leaves them unusable for any other process."""
        self._progress, self._stop = self._ctx.Queue(), self._ctx.Event()
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.capacity, mp_context=self._ctx, initializer=_init,
            initargs=(self.threads, self._cores, self._progress, self._stop))

    def submit(self, kind: str, task, on_progress: Callable | None = None) -> Handle:
        handle = Handle(kind, task, on_progress)
        with self._lock:
            self._submit(handle)
            self._handles[handle.key] = handle
        return handle

    def _submit(self, handle: Handle) -> None:
        """Into the current pool; into a new one when a worker's death has broken it (the tasks
        in flight there learn it in :meth:`wait`). The caller holds the lock."""
        try:
            handle.ref = self._pool.submit(_work, handle.kind, handle.key, handle.task)
        except concurrent.futures.process.BrokenProcessPool:
            self._renew_pool()
            handle.ref = self._pool.submit(_work, handle.kind, handle.key, handle.task)
        handle.pool = self._pool

    def _renew_pool(self) -> None:
        """A new pool for the broken one (its futures fail with BrokenProcessPool: retried in
        :meth:`wait`). The caller holds the lock."""
        broken, progress = self._pool, self._progress
        self._pool = self._new_pool()
        broken.shutdown(wait=False)
        progress.close()  # its last frames' progress is lost; read from the new queue on

    def _retry(self, handle: Handle) -> bool:
        """Submit ``handle`` again after its worker died, in a new pool unless another task's
        death replaced the broken one already; False when it died too often or the run stops."""
        with self._lock:  # a batch waits for its files from several threads
            deaths = self._deaths[handle.key] = self._deaths.get(handle.key, 0) + 1
            if deaths > TASK_RETRIES or self._stopping:
                return False
            if handle.pool is self._pool:
                self._renew_pool()
            self._submit(handle)
            return True

    def _drain(self) -> None:
        with self._lock:
            while True:
                try:
                    key, frames = self._progress.get_nowait()
                except (_queue.Empty, OSError, ValueError):
                    return
                handle = self._handles.get(key)
                if handle is not None and not handle.done:
                    handle.progress(frames)

    def wait(self, handles, timeout: float = 0.2) -> set:
        futures = {h.ref: h for h in handles}
        done, _ = concurrent.futures.wait(futures, timeout=timeout,
                                          return_when=concurrent.futures.FIRST_COMPLETED)
        self._drain()
        finished = set()
        for f in done:
            handle = futures[f]
            try:
                handle.outcome = f.result()
            except concurrent.futures.process.BrokenProcessPool:
                if self._retry(handle):
                    continue
                handle.outcome = _died(self._deaths[handle.key])
            except concurrent.futures.CancelledError:
                from didtv.engine.tasks import TaskError

                handle.outcome = TaskError("KeyboardInterrupt", "cancelled", interrupted=True)
            handle.done = True
            with self._lock:
                self._handles.pop(handle.key, None)
            finished.add(handle)
        return finished

    def stop(self) -> None:
        self._stopping = True
        self._stop.set()
        with self._lock:
            running = [h.ref for h in self._handles.values() if h.ref is not None]
        for f in running:
            f.cancel()  # not started yet: never starts
        concurrent.futures.wait(running)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._progress.close()
        self._progress.join_thread()


def _died(times: int):
    from didtv.engine.tasks import TaskError

    count = "once" if times == 1 else f"{times} times"
    return TaskError("DidtvError", f"a worker process died {count} on this task (killed, or out of "
                     "memory); run the same command again")
