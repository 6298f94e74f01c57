"""The paper's structural and perceptual metrics, computed by piq on didtv's convention.

Inputs are PQ BT.2020 R'G'B' frames ``(3, h, w)`` in [0, 1] (clipped to it: piq refuses values
outside ``[0, data_range]``), data range 1, the whole frame, in float32 (float64 is 30x slower
on the CPU; float32 is within 1e-4 of the closed form on flat frames). Per metric (docs/evaluation.md):

- ``ssim``: Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, on each of R', G', B' and averaged;
  no downsampling (piq's default rescales frames above 256 pixels; standard SSIM does not).
- ``ms_ssim``: 5 scales with Wang et al.'s weights.
- ``vif_p``: pixel-domain VIF on the luma (piq's YIQ Y of R'G'B').
- ``haarpsi``, ``vsi``: as published (their colour handling is piq's: YIQ, resp. LMN).

Frames smaller than a metric's window (``MIN_SIDE``: e.g. 161 pixels for MS-SSIM's fifth scale)
give NaN, which the evaluation leaves out of its means.
"""

from __future__ import annotations

import math

import numpy as np
import torch

# The smallest side piq 0.8 accepts (measured): the 11-tap window, at MS-SSIM's 5th scale for it.
MIN_SIDE = {"ssim": 11, "ms_ssim": 161, "vif_p": 41, "haarpsi": 16, "vsi": 4}


def _pair(pred: np.ndarray, target: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.from_numpy(np.clip(np.asarray(pred, np.float32), 0.0, 1.0))
    b = torch.from_numpy(np.clip(np.asarray(target, np.float32), 0.0, 1.0))
    if a.shape != b.shape or a.ndim != 3 or a.shape[0] != 3:
        raise ValueError(f"expected two (3, h, w) frames, got {tuple(a.shape)} and {tuple(b.shape)}")
    return a[None], b[None]


# didtv's name -> (piq function, its options beyond data_range=1)
_PIQ = {"ssim": ("ssim", {"downsample": False}), "ms_ssim": ("multi_scale_ssim", {}),
        "vif_p": ("vif_p", {}), "haarpsi": ("haarpsi", {}), "vsi": ("vsi", {})}
STRUCTURAL_METRICS = tuple(_PIQ)


def score(name: str, pred: np.ndarray, target: np.ndarray) -> float:
    """One metric (a name of ``STRUCTURAL_METRICS``) of ``pred`` against ``target``."""
    import piq

    fn, options = _PIQ[name]
    a, b = _pair(pred, target)
    return float(getattr(piq, fn)(a, b, data_range=1.0, **options))


def structural_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """All five, by name; NaN where the frame is smaller than the metric's ``MIN_SIDE``."""
    side = min(np.shape(target)[-2:])
    return {name: score(name, pred, target) if side >= MIN_SIDE[name] else math.nan
            for name in STRUCTURAL_METRICS}
