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
    def infer(self, window: list[np.ndarray]) -> np.ndarray:
        """One window (``spec.window`` frames) -> the HDR centre frame."""
        x = torch.from_numpy(np.stack(window)).unsqueeze(0).to(self.device)
        x, h, w = pad_to_multiple(x, self.spec.multiple_of)
        y = self.model(x)
        if isinstance(y, (tuple, list)):
            y = y[0]
        return y[0, :, :h, :w].float().cpu().numpy()

    def process(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        reset = getattr(self.model, "reset_state", None)
        if callable(reset):
            reset()
        for window in sliding_windows(frames, self.spec.window):
            yield self.infer(window)
