"""Chunk planning for ``convert --chunks`` (didtv.chunks.plan): pure functions."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from didtv.chunks.plan import (AUTO_CHUNK_SECONDS, CONTEXT, chunk_seconds, chunks_from_lists, parse_chunks,
                               plan_chunks)
from didtv.chunks.shot import ChunkShot
from didtv.errors import UsageError
from didtv.pipeline.runner import ShotCondition, thumbnail


def test_parse_chunks():
    assert parse_chunks("auto") == "auto"
    assert parse_chunks("off") is None and parse_chunks(None) is None and parse_chunks("0") is None
    assert parse_chunks("0.25") == 0.25 and parse_chunks(60) == 60.0
    for bad in ("-1", "soon", "nan", "inf"):
        with pytest.raises(UsageError):
            parse_chunks(bad)


def test_auto_chunks_only_long_videos():
    fps = Fraction(24000, 1001)
    assert chunk_seconds("auto", int(299 * fps), fps) is None  # under 5 minutes: one pass
    assert chunk_seconds("auto", int(301 * fps), fps) == AUTO_CHUNK_SECONDS
    assert chunk_seconds("off", 10**6, fps) is None
    assert chunk_seconds(0.5, 10, fps) == 0.5  # asked for: even a short clip


def test_plan_covers_every_frame_and_prefers_cuts():
    chunks = plan_chunks(100, 30, cuts=[10, 25, 75, 95])
    assert [(c.start, c.end) for c in chunks] == [(0, 25), (25, 55), (55, 75), (75, 100)]
    # 10 is in the first half of the first chunk's length: not used; 55 is a length boundary;
    # the last chunk reaches the end within its length, so 95 is not needed
    assert [c.at_cut for c in chunks] == [True, True, False, True]
    for c in chunks:
        assert c.lo == max(0, c.start - CONTEXT) and c.hi == min(100, c.end + CONTEXT)
    assert chunks_from_lists([c.as_list() for c in chunks], 100) == chunks
    with pytest.raises(ValueError):
        chunks_from_lists([[0, 10, True], [11, 100, False]], 100)
    with pytest.raises(ValueError):
        chunks_from_lists([[0, 10, True]], 100)


def test_plan_without_cuts_and_tiny_lengths():
    chunks = plan_chunks(7, 1, cuts=[])
    assert [(c.start, c.end) for c in chunks] == [(k, k + 1) for k in range(7)]
    assert plan_chunks(5, 100, cuts=[2])[0].end == 5


def _frames(n: int, cut: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.1, 0.3, (3, 8, 8)), rng.uniform(0.7, 0.9, (3, 8, 8))
    return [(a if i < cut else b) + 0.01 * i for i in range(n)]


def _run(shot, frames, conds):
    return [shot.update(c, thumbnail(f)) for c, f in zip(conds, frames)]


@pytest.mark.parametrize("start", [6, 10])  # inside the second shot / at the cut (frame 10)
def test_chunk_shot_reproduces_one_pass(start):
    frames = _frames(20, cut=10)
    conds = [torch.tensor([[float(i), 2.0 * i + 1]]) for i in range(20)]
    one = _run(ShotCondition(), frames, conds)
    # first chunk [0, start), written frames only (no leading context at frame 0)
    first = ChunkShot(0, start)
    _run(first, frames[:start + CONTEXT], conds[:start + CONTEXT])
    lo = start - CONTEXT
    seeded = ChunkShot(CONTEXT, 20 - start, seed=first.end_state)
    out = _run(seeded, frames[lo:], conds[lo:])[CONTEXT:]
    assert all(torch.equal(a, b) for a, b in zip(out, one[start:]))
    unseeded = ChunkShot(CONTEXT, 20 - start)
    out = _run(unseeded, frames[lo:], conds[lo:])[CONTEXT:]
    same = all(torch.equal(a, b) for a, b in zip(out, one[start:]))
    assert unseeded.fresh == (start == 10) and same == (start == 10)
