"""The shot condition across chunk boundaries.

In one pass, :class:`~didtv.pipeline.runner.ShotCondition` averages a model's global condition
over the shot so far. A chunk that starts at a hard cut starts a new shot anyway: its leading
context frames belong to the previous shot and the cut resets the average at the first frame
written. A chunk that starts inside a shot (a boundary at the maximum length) is *seeded* with
the state the previous chunk had after its last written frame (saved in the work folder), so
its average is the one-pass average, bit for bit (the float64 sum is stored exactly).
Models without a global condition (analytic ones) never touch any of this.
"""

from __future__ import annotations

import numpy as np
import torch

from didtv.pipeline.runner import Runner, ShotCondition


class ChunkShot(ShotCondition):
    """The ShotCondition of one chunk: ``skip`` leading context frames, then ``core`` frames
    written. With ``seed`` (a :meth:`state` of the previous chunk) the context frames leave the
    state alone and the seed is loaded before the first frame written; without, the context
    frames run as in one pass (right when the chunk starts at a cut or at frame 0).

    After the run: ``fresh`` says whether the first frame written started a shot (None: the
    model has no condition), ``end_state`` is the state after the last frame written."""

    def __init__(self, skip: int, core: int, seed: dict | None = None) -> None:
        super().__init__()
        self.skip, self.core, self.seed = skip, core, seed
        self.seen = 0
        self.fresh: bool | None = None
        self.end_state: dict | None = None

    def update(self, cond: torch.Tensor, thumb: np.ndarray) -> torch.Tensor:
        i = self.seen
        self.seen += 1
        if i < self.skip and self.seed is not None:
            return cond  # context of a seeded chunk: its output is not written
        if i == self.skip and self.seed is not None:
            self._load(self.seed, cond.device)
        shots = self.shots
        out = super().update(cond, thumb)
        if i == self.skip:
            self.fresh = self.shots > shots
        if i == self.skip + self.core - 1:
            self.end_state = self.state()
        return out

    def state(self) -> dict | None:
        """JSON-ready: the float64 sum (exact: Python floats are float64), count, the last
        centre's thumbnail (float32, exact as float64) and the shot counter."""
        if self._sum is None:
            return None
        return {"sum": self._sum.cpu().tolist(), "count": self._count,
                "thumb": None if self._thumb is None else self._thumb.astype(np.float64).tolist(),
                "shots": self.shots}

    def _load(self, state: dict, device: torch.device) -> None:
        self._sum = torch.tensor(state["sum"], dtype=torch.float64, device=device)
        self._count = int(state["count"])
        self._thumb = None if state["thumb"] is None else np.asarray(state["thumb"], dtype=np.float32)
        self.shots = int(state["shots"])


class ChunkRunner(Runner):
    """A Runner whose :meth:`~Runner.process` uses ``self.shot`` (a :class:`ChunkShot`), when
    set, instead of a fresh ShotCondition."""

    shot: ShotCondition | None = None

    def infer_batch(self, windows, shot=None, thumbs=None):
        if shot is not None and self.shot is not None:
            shot = self.shot
        return super().infer_batch(windows, shot, thumbs)
