"""Shots: cut detection on small thumbnails, frames of a window kept to the centre's shot, and
the running mean of a model's global condition over a shot (:class:`ShotCondition`), which holds
the tone mapping steady from frame to frame. Used by :class:`didtv.pipeline.runner.Runner`."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def thumbnails(frames: torch.Tensor, size: int = 16) -> torch.Tensor:
    """``(n, 3, h, w)`` -> ``(n, size, size)``: mean-pooled luma-ish thumbnails (cut detection),
    on the frames' device."""
    return F.adaptive_avg_pool2d(frames.float(), size).mean(1)  # pool first: no full-size temporary


def thumbnail(frame: np.ndarray | torch.Tensor, size: int = 16) -> np.ndarray:
    """``(3, h, w)`` -> ``(size, size)`` thumbnail (:func:`thumbnails`) on the host."""
    t = frame if isinstance(frame, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(frame))
    return thumbnails(t[None], size)[0].cpu().numpy()


#: Mean absolute difference of consecutive 16x16 thumbnails (code values in [0, 1]) above which
#: two frames belong to different shots (:func:`is_cut`, :func:`clamp_to_shot`).
CUT_THRESHOLD = 0.12


def is_cut(previous: np.ndarray | None, current: np.ndarray, threshold: float = CUT_THRESHOLD) -> bool:
    """A hard cut: the mean absolute difference of consecutive thumbnails exceeds ``threshold``
    (code values in [0, 1]). Camera motion and flashes of a few frames stay well below it on
    real clips; a change of scene lands far above it."""
    return previous is None or float(np.mean(np.abs(current - previous))) > threshold


def clamp_to_shot(x: torch.Tensor, threshold: float = CUT_THRESHOLD, size: int = 16,
                  thumbs: torch.Tensor | None = None) -> torch.Tensor:
    """A window batch ``(b, t, c, h, w)`` -> the same windows stopped at hard cuts: every frame
    from another shot than the centre's is replaced by the centre shot's nearest frame, as at the
    start and end of a video (edge replication). Cuts are found as :func:`is_cut` finds them
    (thumbnails of consecutive frames), on the device; only whether there is a cut at all comes
    back to the host, and without one ``x`` itself is returned (no copy of the window).
    ``thumbs``: the frames' thumbnails ``(b, t, size, size)``, when the caller has them.

    Without this the first frames of a shot fused the last ones of the previous shot: 4.5 (Tiny)
    and 7.8 (Full) ten-bit codes of mean difference, up to 67, against the window that stops at
    the cut, on the bundled clip spliced with a flipped copy (benchmarks/cut_probe.py).
    """
    b, t = x.shape[:2]
    if thumbs is None:
        thumbs = thumbnails(x.flatten(0, 1), size).view(b, t, size, size)
    idx = shot_indices(thumbs, threshold)
    if idx is None:
        return x
    return torch.gather(x, 1, idx.view(b, t, 1, 1, 1).expand_as(x))


def shot_indices(thumbs: torch.Tensor, threshold: float = CUT_THRESHOLD) -> torch.Tensor | None:
    """The thumbnails ``(b, t, size, size)`` of a window batch -> ``(b, t)`` indices into each
    window that stop it at hard cuts (frames of another shot than the centre's -> the centre
    shot's nearest frame), or None when no window has a cut (the usual case: one device -> host
    sync, no index tensor). :func:`clamp_to_shot` gathers with them; the runner picks frames."""
    b, t = thumbs.shape[:2]
    r = t // 2
    cut = (thumbs[:, 1:] - thumbs[:, :-1]).abs().mean((-2, -1)) > threshold  # (b, t-1): j | j+1
    if not bool(cut.any()):
        return None
    pos = torch.arange(t - 1, device=thumbs.device)
    first = torch.where(cut[:, :r], pos[:r] + 1, 0).amax(1, keepdim=True)  # first frame of the shot
    last = torch.where(cut[:, r:], pos[r:], t - 1).amin(1, keepdim=True)  # last frame of the shot
    return torch.arange(t, device=thumbs.device).expand(b, t).clamp(first, last)


class ShotCondition:
    """Running mean of a model's global condition vector within the current shot.

    A per-frame condition makes the output brightness jitter from frame to frame (14x the
    BT.2408 mapping's jitter in a prototype, ../shared/RESEARCH.md); averaging it over the shot
    so far keeps the tone mapping steady, and a hard cut starts a new average.
    """

    def __init__(self, threshold: float = CUT_THRESHOLD) -> None:
        self.threshold = threshold
        self._sum: torch.Tensor | None = None
        self._count = 0
        self._thumb: np.ndarray | None = None
        self.shots = 0

    def update(self, cond: torch.Tensor, thumb: np.ndarray) -> torch.Tensor:
        """Add the condition of the window whose centre frame has the cut thumbnail ``thumb``
        (:func:`thumbnail`, ``(16, 16)``) -> the mean over the shot so far."""
        if is_cut(self._thumb, thumb, self.threshold):
            self._sum, self._count = None, 0
            self.shots += 1
        self._thumb = thumb
        # float64: a float32 (or bfloat16) running sum rounds in steps that grow with the shot
        cond64 = cond.detach().double()
        self._sum = cond64 if self._sum is None else self._sum + cond64
        self._count += 1
        return (self._sum / self._count).to(cond.dtype)
