"""Sliding temporal windows over a stream of frames.

Every input frame produces exactly one output frame: the window for frame ``i`` holds frames
``i - r .. i + r`` (``r = size // 2``). Near the clip edges the missing neighbours are padded:

``replicate`` (default) repeats the edge frame. For n = 5, size = 7::

    frame 0 -> [0, 0, 0, 0, 1, 2, 3]
    frame 1 -> [0, 0, 0, 1, 2, 3, 4]
    frame 4 -> [1, 2, 3, 4, 4, 4, 4]

``reflect`` mirrors about the edge frame (without repeating it). For n = 5, size = 7::

    frame 0 -> [3, 2, 1, 0, 1, 2, 3]
    frame 4 -> [1, 2, 3, 4, 3, 2, 1]

Reflection needs more than r frames to stay inside the clip; shorter clips fall back to clamping
the mirrored index. didtv uses ``replicate``: it never shows the network a frame "from the
future" as if it were the past, and a 1-frame clip is simply 7 copies of itself.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
PAD_MODES = ("replicate", "reflect")


def _pad_index(j: int, n: int, pad: str) -> int:
    if pad == "replicate":
        return min(max(j, 0), n - 1)
    if pad == "reflect":
        if n == 1:
            return 0
        period = 2 * (n - 1)
        j = abs(j) % period
        return j if j < n else period - j
    raise ValueError(f"unknown pad mode {pad!r}; allowed: {', '.join(PAD_MODES)}")


def window_indices(n: int, size: int = 7, pad: str = "replicate") -> list[list[int]]:
    """Frame indices of every window: ``n`` lists of ``size`` indices in [0, n)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if size < 1 or size % 2 == 0:
        raise ValueError(f"window size must be odd and positive, got {size}")
    if pad not in PAD_MODES:
        raise ValueError(f"unknown pad mode {pad!r}; allowed: {', '.join(PAD_MODES)}")
    r = size // 2
    return [[_pad_index(i + k, n, pad) for k in range(-r, r + 1)] for i in range(n)]


def sliding_windows(frames: Iterable[T], size: int = 7) -> Iterator[list[T]]:
    """Stream windows (``replicate`` padding) holding at most ``size`` frames in memory.

    Yields one list of ``size`` frames per input frame, in order, with the same result as
    indexing with :func:`window_indices` (tested against it).
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"window size must be odd and positive, got {size}")
    r = size // 2
    if r == 0:
        yield from ([f] for f in frames)
        return
    buf: deque[T] = deque(maxlen=size)
    it = iter(frames)
    for first in it:
        break
    else:
        return
    buf.extend([first] * (r + 1))  # r copies as left padding, then frame 0 as the first centre
    ahead = 0  # real frames after the next centre to output
    for frame in it:
        buf.append(frame)
        ahead += 1
        if ahead == r:
            yield list(buf)
            ahead -= 1
    # The last ahead + 1 centres see the final frame repeated on the right.
    tail = list(buf)[-(r + 1 + ahead):]
    padded = tail + [tail[-1]] * r
    for k in range(r, r + ahead + 1):
        yield padded[k - r:k + r + 1]
