"""PSNR, ΔE_ITP (ITU-R BT.2124) and high-frequency PSNR."""

from __future__ import annotations

import numpy as np

from didtv.color.transfer import pq_eotf, pq_inverse_eotf

# BT.2100: linear BT.2020 RGB -> LMS, and PQ L'M'S' -> ICtCp (integer/4096 forms).
_RGB_TO_LMS = np.array([[1688, 2146, 262], [683, 2951, 462], [99, 309, 3688]]) / 4096
_LMS_TO_ICTCP = np.array([[2048, 2048, 0], [6610, -13613, 7003], [17933, -17390, -543]]) / 4096


def psnr(pred: np.ndarray, target: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR in dB over all values (PQ code values in [0, 1] by didtv's convention)."""
    mse = float(np.mean((np.asarray(pred, np.float64) - np.asarray(target, np.float64)) ** 2))
    return psnr_from_mse(mse, data_range)


def psnr_from_mse(mse: float, data_range: float = 1.0) -> float:
    """10 log10(range^2 / MSE); identical inputs are capped (MSE floor 1e-20) instead of infinite."""
    return 10.0 * np.log10(data_range**2 / max(mse, 1e-20))


def ictcp_from_pq2020(pq: np.ndarray) -> np.ndarray:
    """PQ BT.2020 R'G'B' ``(3, ...)`` -> ICtCp ``(3, ...)`` (BT.2100 PQ variant)."""
    light = pq_eotf(np.asarray(pq, np.float64))  # cd/m2
    lms = np.tensordot(_RGB_TO_LMS, light, axes=1)
    return np.tensordot(_LMS_TO_ICTCP, pq_inverse_eotf(lms), axes=1)


def delta_e_itp_map(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-pixel ΔE_ITP = 720 * sqrt(dI^2 + (0.5 dCt)^2 + dCp^2) between two PQ BT.2020 frames
    ``(3, h, w)`` -> ``(h, w)`` (the preview's error map)."""
    d = ictcp_from_pq2020(pred) - ictcp_from_pq2020(target)
    return 720.0 * np.sqrt(d[0] ** 2 + (0.5 * d[1]) ** 2 + d[2] ** 2)


def delta_e_itp(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean over pixels of :func:`delta_e_itp_map`."""
    return float(np.mean(delta_e_itp_map(pred, target)))


def quads(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four pixels of every 2x2 block of ``(..., h, w)``: top-left, top-right, bottom-left,
    bottom-right, each ``(..., h/2, w/2)`` (odd sizes lose their last row/column)."""
    x = np.asarray(frame, np.float64)
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    return x[..., 0:h:2, 0:w:2], x[..., 0:h:2, 1:w:2], x[..., 1:h:2, 0:w:2], x[..., 1:h:2, 1:w:2]


def haar_detail(frame: np.ndarray) -> np.ndarray:
    """The three level-1 detail sub-bands (LH, HL, HH) of the orthonormal Haar DWT of ``(c, h, w)``
    (odd sizes lose their last row/column), stacked as ``(3, c, h/2, w/2)``."""
    a, b, c, d = quads(frame)
    return np.stack([(a - b + c - d) / 2, (a + b - c - d) / 2, (a - b - c + d) / 2])


def hf_psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """PSNR (range 1) over the Haar detail sub-bands only: how well fine detail is restored.
    The transform is orthonormal, so a detail coefficient of a [0, 1] frame lies in [-1, 1]."""
    return psnr(haar_detail(pred), haar_detail(target))
