"""``--workers N`` on one machine: tasks in N worker processes.

Worker processes are started with ``spawn`` (forking a process whose torch thread pools have
started can deadlock), each with ``cores // N`` threads for torch, OpenMP/MKL and x265
(didtv.engine.limits). A worker builds its model once and keeps it for the tasks that follow.
Progress comes back through a queue, frame by frame; a shared event asks running tasks to stop
at their next frame (Ctrl-C, SIGTERM, a failed chunk), after which they clean up as an
interrupted conversion does. Workers ignore SIGINT (the parent decides) and die with the parent
(``PR_SET_PDEATHSIG``), so a parent killed with SIGKILL leaves no converting orphans behind.
A worker that dies (killed, out of memory) fails the conversion with one line saying so (an
error like any other: the CLI removes the finished chunks unless ``--keep-work``), and breaks
the pool: in a batch, the files in flight and those not yet started fail too. The Ray engine
(didtv.engine.ray_engine) retries such tasks instead.
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
        ctx = multiprocessing.get_context("spawn")
        self._progress = ctx.Queue()
        self._stop = ctx.Event()
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=self.capacity, mp_context=ctx, initializer=_init,
            initargs=(self.threads, cpu_count(), self._progress, self._stop))
        self._handles: dict[int, Handle] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, task, on_progress: Callable | None = None) -> Handle:
        handle = Handle(kind, task, on_progress)
        with self._lock:
            self._handles[handle.key] = handle
        handle.ref = self._pool.submit(_work, kind, handle.key, task)
        return handle

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
                handle.outcome = _died()
            except concurrent.futures.CancelledError:
                from didtv.engine.tasks import TaskError

                handle.outcome = TaskError("KeyboardInterrupt", "cancelled", interrupted=True)
            handle.done = True
            with self._lock:
                self._handles.pop(handle.key, None)
            finished.add(handle)
        return finished

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            running = [h.ref for h in self._handles.values()]
        for f in running:
            f.cancel()  # not started yet: never starts
        concurrent.futures.wait(running)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._progress.close()
        self._progress.join_thread()


def _died():
    from didtv.engine.tasks import TaskError

    return TaskError("DidtvError", "a worker process died (killed, or out of memory); "
                     "run the same command again")
