"""The inference stage: decoded frames in, HDR frames out, one output per input frame.

decode -> **window -> model** -> colour -> encode. The runner owns the frame buffer (sliding
windows, :mod:`didtv.pipeline.window`), moves windows to the model's device, pads them to the
model's size multiple and crops the result back.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from didtv.models.spec import ModelSpec
from didtv.pipeline.window import sliding_windows


def pick_device(requested: str | None = None) -> torch.device:
    """``None``/"auto": CUDA when available, else CPU."""
    if requested in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Replicate-pad the last two dims of ``x`` up to a multiple; returns (padded, h, w)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        lead = x.shape[:-3]
        flat = x.reshape(-1, *x.shape[-3:])
        flat = F.pad(flat, (0, pw, 0, ph), mode="replicate")
        x = flat.reshape(*lead, *flat.shape[-3:])
    return x, h, w


class Runner:
    """Runs ``model`` over a stream of frames.

    Frames are float32 ``(3, h, w)`` BT.709 R'G'B' in [0, 1]; outputs are float32 ``(3, h, w)``
    PQ BT.2020 in [0, 1] (not yet clipped; the encoder clips).
    """

    def __init__(self, model: torch.nn.Module, *, device: str | torch.device | None = None) -> None:
        self.spec: ModelSpec = model.spec
        self.device = pick_device(device) if not isinstance(device, torch.device) else device
        self.model = model.to(self.device).eval()

    @torch.inference_mode()
    def infer(self, window: list[np.ndarray], shot: "ShotCondition | None" = None) -> np.ndarray:
        """One window (``spec.window`` frames) -> the HDR centre frame.

        Stateless unless ``shot`` is given: then a model with a global condition
        (``condition_vector``) gets the running mean of its condition over the current shot.
        """
        x = torch.from_numpy(np.stack(window)).unsqueeze(0).to(self.device)
        x, h, w = pad_to_multiple(x, self.spec.multiple_of)
        if shot is not None and hasattr(self.model, "condition_vector"):
            cond = shot.update(self.model.condition_vector(x), window[len(window) // 2])
            y = self.model(x, cond)
        else:
            y = self.model(x)
        if isinstance(y, (tuple, list)):
            y = y[0]
        return y[0, :, :h, :w].float().cpu().numpy()

    def process(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Every input frame -> one HDR frame; the global condition is held steady per shot."""
        shot = ShotCondition()
        for window in sliding_windows(frames, self.spec.window):
            yield self.infer(window, shot)


def thumbnail(frame: np.ndarray, size: int = 16) -> np.ndarray:
    """``(3, h, w)`` -> ``(size, size)`` mean-pooled luma-ish thumbnail (for cut detection)."""
    t = torch.from_numpy(np.ascontiguousarray(frame)).float().mean(0, keepdim=True)[None]
    return F.adaptive_avg_pool2d(t, size)[0, 0].numpy()


def is_cut(previous: np.ndarray | None, current: np.ndarray, threshold: float = 0.12) -> bool:
    """A hard cut: the mean absolute difference of consecutive thumbnails exceeds ``threshold``
    (code values in [0, 1]). Camera motion and flashes of a few frames stay well below it on
    real clips; a change of scene lands far above it."""
    return previous is None or float(np.mean(np.abs(current - previous))) > threshold


class ShotCondition:
    """Running mean of a model's global condition vector within the current shot.

    A per-frame condition makes the output brightness jitter from frame to frame (14x the
    BT.2408 mapping's jitter in a prototype, ../shared/RESEARCH.md); averaging it over the shot
    so far keeps the tone mapping steady, and a hard cut starts a new average.
    """

    def __init__(self, threshold: float = 0.12) -> None:
        self.threshold = threshold
        self._sum: torch.Tensor | None = None
        self._count = 0
        self._thumb: np.ndarray | None = None
        self.shots = 0

    def update(self, cond: torch.Tensor, centre: np.ndarray) -> torch.Tensor:
        thumb = thumbnail(centre)
        if is_cut(self._thumb, thumb, self.threshold):
            self._sum, self._count = None, 0
            self.shots += 1
        self._thumb = thumb
        self._sum = cond.clone() if self._sum is None else self._sum + cond
        self._count += 1
        return self._sum / self._count
