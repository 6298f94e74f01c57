"""Peak memory of a benchmark part: its own process (ru_maxrss) and its process tree (sampled).

ru_maxrss alone cannot give the tree: a child forked from a large Python process reports the
parent's size as its own peak. So :class:`TreeMemory` samples the resident memory of the part's
process plus all its descendants (FFmpeg, x265) from /proc and keeps the peak of the sum.
"""

from __future__ import annotations

import os
import resource
import threading

#: The sampler of the part running in this process (set by :func:`didtv.bench.parts.run_part`).
_TREE: "TreeMemory | None" = None


def tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants now (kB, from /proc; 0 if gone)."""
    total = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(k) for k in f.read().split()]
    except (OSError, ValueError):
        return total
    return total + sum(tree_rss_kb(k) for k in kids)


class TreeMemory:
    """Samples the RSS of this process plus its children every ``interval`` s and keeps the peak
    of the sum (``peak_kb``). A context manager; entering it makes it this process's sampler."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, tree_rss_kb(os.getpid()))
            self._stop.wait(self.interval)

    def __enter__(self) -> "TreeMemory":
        global _TREE
        _TREE = self
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        global _TREE
        self._stop.set()
        self._thread.join()
        _TREE = None


def peak_memory(device: str | None = None) -> dict:
    """``rss_mb`` (this process's peak), ``tree_rss_mb`` (with its children, while a
    :class:`TreeMemory` runs) and on CUDA ``cuda_mb`` (the peak allocation)."""
    out = {"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if _TREE is not None:
        out["tree_rss_mb"] = max(_TREE.peak_kb, tree_rss_kb(os.getpid())) / 1024
    if device and device.startswith("cuda"):
        import torch

        out["cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out
