"""Threads per worker process, so that N workers share the machine's cores without
oversubscribing them.

A conversion runs three thread pools: torch's (intra-op, OpenMP / oneDNN), x265's (``pools``)
and the decoder's. One worker of N gets ``cores // N`` threads in each (at least 1): the
environment a worker process starts with (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,
``OMP_WAIT_POLICY=PASSIVE``: OpenMP threads do not spin at barriers while another worker
computes), ``torch.set_num_threads`` once torch is imported, and x265's ``pools=`` read from
``DIDTV_X265_POOLS`` by :func:`x265_thread_params`.

x265 picks its number of frame threads from the size of its pool, and frame threads change the
bitstream. So a worker also pins ``frame-threads`` to what x265 would pick with every core
(:func:`x265_frame_threads`): N workers write the same file as one process.
"""

from __future__ import annotations

import os

#: Read by :func:`x265_thread_params` (set in worker processes only).
X265_POOLS_ENV = "DIDTV_X265_POOLS"
X265_CORES_ENV = "DIDTV_X265_CORES"  # the machine's cores: x265's frame threads as in one process


def cpu_count() -> int:
    """Cores this process may use (the affinity mask; os.cpu_count() where there is none)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """``cores // workers``, at least 1."""
    cores = cpu_count() if cores is None else cores
    return max(1, cores // max(1, workers))


def x265_frame_threads(cores: int, height: int = 1080) -> int:
    """x265's own choice of frame threads for a pool of ``cores`` threads with wavefront
    parallelism (x265's default; ThreadPool::getFrameThreadsCount)."""
    if cores >= 32:
        return 6 if height > 2000 else 5
    for limit, n in ((16, 4), (8, 3), (4, 2)):
        if cores >= limit:
            return n
    return 1


def worker_env(threads: int, cores: int | None = None) -> dict[str, str]:
    """The environment variables of a worker process given ``threads`` threads."""
    cores = (os.cpu_count() or 1) if cores is None else cores  # x265 counts every core online
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
            "OPENBLAS_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE",
            X265_POOLS_ENV: str(threads), X265_CORES_ENV: str(cores)}


def apply_limits(threads: int, cores: int | None = None) -> None:
    """In a worker process: set :func:`worker_env` and, when torch is already imported (or is
    imported now), its thread count."""
    os.environ.update(worker_env(threads, cores))
    import torch

    torch.set_num_threads(threads)


def x265_thread_params(height: int) -> str:
    """``":pools=N:frame-threads=F"`` in a worker process, ``""`` elsewhere (x265 decides)."""
    pools, cores = os.environ.get(X265_POOLS_ENV, ""), os.environ.get(X265_CORES_ENV, "")
    if not pools.isdigit() or int(pools) < 1:
        return ""
    frames = x265_frame_threads(int(cores), height) if cores.isdigit() and int(cores) >= 1 else None
    return f":pools={int(pools)}" + (f":frame-threads={frames}" if frames else "")
