"""Colour primaries and matrices: BT.709 <-> BT.2020 (same D65 white), R'G'B' <-> Y'CbCr.

Matrices are derived from the primaries (SMPTE RP 177), not typed in, so they carry full
precision. Functions take channel-last arrays ``(..., 3)`` (numpy) or channel-first torch tensors
``(b, 3, h, w)`` via :func:`apply_matrix_torch`.
"""

from __future__ import annotations

import numpy as np

PRIMARIES_XY = {
    "bt709": ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060)),
    "bt2020": ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)),
}
WHITE_D65 = (0.3127, 0.3290)

#: Luma coefficients (Kr, Kb).
LUMA = {"bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593), "bt601": (0.299, 0.114)}


def rgb_to_xyz_matrix(primaries: str) -> np.ndarray:
    """3x3 matrix from linear RGB with the given primaries (D65) to CIE XYZ (Y of white = 1)."""
    xy = np.array(PRIMARIES_XY[primaries], dtype=np.float64)
    xyz = np.stack([xy[:, 0] / xy[:, 1], np.ones(3), (1 - xy[:, 0] - xy[:, 1]) / xy[:, 1]])
    wx, wy = WHITE_D65
    white = np.array([wx / wy, 1.0, (1 - wx - wy) / wy])
    scale = np.linalg.solve(xyz, white)
    return xyz * scale


def conversion_matrix(src: str, dst: str) -> np.ndarray:
    """Linear-light RGB matrix from ``src`` primaries to ``dst`` primaries."""
    return np.linalg.solve(rgb_to_xyz_matrix(dst), rgb_to_xyz_matrix(src))


BT709_TO_BT2020 = conversion_matrix("bt709", "bt2020")
BT2020_TO_BT709 = conversion_matrix("bt2020", "bt709")


def apply_matrix(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 3x3 matrix to channel-last RGB ``(..., 3)``."""
    return rgb @ matrix.T


def apply_matrix_torch(rgb, matrix: np.ndarray):
    """Apply a 3x3 matrix to a channel-first torch tensor ``(b, 3, h, w)``."""
    import torch

    m = torch.as_tensor(matrix, dtype=rgb.dtype, device=rgb.device)
    return torch.einsum("ij,bjhw->bihw", m, rgb)


def rgb_to_ycbcr_matrix(system: str) -> np.ndarray:
    """Full-range R'G'B' -> Y'CbCr (Y in [0,1], Cb/Cr in [-0.5, 0.5]) for bt709/bt2020/bt601."""
    kr, kb = LUMA[system]
    kg = 1.0 - kr - kb
    return np.array([
        [kr, kg, kb],
        [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
        [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
    ])


def ycbcr_to_rgb_matrix(system: str) -> np.ndarray:
    return np.linalg.inv(rgb_to_ycbcr_matrix(system))


def quantise_ycbcr(ycbcr: np.ndarray, bits: int, *, limited: bool = True) -> np.ndarray:
    """Y'CbCr (Y in [0,1], C in [-0.5,0.5]) -> integer code values (limited or full range)."""
    scale = 2 ** (bits - 8)
    if limited:
        y = 16 * scale + 219 * scale * ycbcr[..., 0]
        c = 128 * scale + 224 * scale * ycbcr[..., 1:]
    else:
        peak = 2**bits - 1
        y = peak * ycbcr[..., 0]
        c = 2 ** (bits - 1) + peak * ycbcr[..., 1:]
    out = np.concatenate([y[..., None], c], axis=-1)
    return np.clip(np.rint(out), 0, 2**bits - 1).astype(np.int64)


def dequantise_ycbcr(codes: np.ndarray, bits: int, *, limited: bool = True) -> np.ndarray:
    """Inverse of :func:`quantise_ycbcr` (without the rounding)."""
    codes = np.asarray(codes, dtype=np.float64)
    scale = 2 ** (bits - 8)
    if limited:
        y = (codes[..., 0] - 16 * scale) / (219 * scale)
        c = (codes[..., 1:] - 128 * scale) / (224 * scale)
    else:
        peak = 2**bits - 1
        y = codes[..., 0] / peak
        c = (codes[..., 1:] - 2 ** (bits - 1)) / peak
    return np.concatenate([y[..., None], c], axis=-1)
