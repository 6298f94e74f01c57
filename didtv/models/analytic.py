"""Non-learned SDR -> HDR mappings, served through the same interface as learned models.

They are the fallback when no learned weights exist and the baselines every learned model must
beat. Both are frame-wise (window 1) and stateless. Input ``(b, 1, 3, h, w)`` BT.709 R'G'B' in
[0, 1]; output ``(b, 3, h, w)`` BT.2020 PQ in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from didtv.color.gamut import BT709_TO_BT2020, LUMA, apply_matrix_torch
from didtv.color.transfer import REFERENCE_WHITE, bt1886_eotf, bt1886_inverse_eotf, pq_inverse_eotf
from didtv.models.spec import ModelSpec


def _centre(x: torch.Tensor) -> torch.Tensor:
    if x.ndim != 5 or x.shape[2] != 3:
        raise ValueError(f"expected (b, t, 3, h, w) frames, got shape {tuple(x.shape)}")
    return x[:, x.shape[1] // 2]


class BT2408(nn.Module):
    """BT.2408 display-light mapping of SDR into HDR.

    E' (BT.709) -> BT.1886 EOTF (gamma 2.4, black 0) -> scale so SDR peak white = 203 cd/m2
    (BT.2408 HDR reference white) -> BT.709 -> BT.2020 primaries (linear) -> PQ inverse EOTF.
    Colours outside BT.709 cannot occur, so the result always lies inside BT.2020.
    """

    def __init__(self, *, white: float = REFERENCE_WHITE) -> None:
        super().__init__()
        self.white = float(white)
        self.config = {"white": self.white}
        self.spec = ModelSpec(name="bt2408", window=1, description=(
            f"BT.2408 mapping: BT.1886 decode, SDR white to {self.white:g} cd/m2, BT.709->BT.2020, PQ"))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return sdr_to_pq_bt2408(_centre(frames), white=self.white)


# BT.709 -> BT.2020 primaries (didtv.color.gamut), as plain floats for written-out multiply-adds.
_BT709_TO_BT2020 = tuple(tuple(float(v) for v in row) for row in BT709_TO_BT2020)


def sdr_to_pq_bt2408(rgb: torch.Tensor, *, white: float = REFERENCE_WHITE) -> torch.Tensor:
    """BT.2408 display-light mapping of SDR: ``(b, 3, h, w)`` BT.709 R'G'B' -> BT.2020 PQ.

    The one implementation of the mapping (:class:`BT2408`, DIDNet's base). BT.1886 decode with
    gamma 2.4 and zero black (``L = white * V**2.4`` cd/m2), the BT.709 -> BT.2020 matrix on
    linear light, then the ST 2084 inverse EOTF. Computed in float32 (float64 stays float64)
    with autocast off; SDR 1.0 -> PQ 0.5807 for ``white=203``.
    """
    dtype = torch.float64 if rgb.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=rgb.device.type, enabled=False):
        v = rgb.to(dtype).clamp(0.0, 1.0)
        linear = white * v.pow(2.4)
        r, g, b = linear.unbind(1)  # written out: 9 multiply-adds per pixel, no matmul kernel
        linear = torch.stack([m0 * r + m1 * g + m2 * b for m0, m1, m2 in _BT709_TO_BT2020], 1).clamp_min(0.0)
        return pq_inverse_eotf(linear)


# BT.2446-1 Method A inverse (Report ITU-R BT.2446-1, section 4.2): E = a Y''^2 + b Y'' + c.
_ITM_LOW = (1.8712e-5, -2.7334e-3, 1.3141)   # Y'' <= 70
_ITM_HIGH = (2.8305e-6, -7.4622e-4, 1.2528)  # Y'' > 70
_ITM_PEAK = 1000.0


class BT2446AInverse(nn.Module):
    """Inverse of BT.2446 Method A tone mapping (SDR -> HDR with a 1000 cd/m2 peak).

    Steps: BT.709 E' -> linear (BT.1886, gamma 2.4) -> BT.2020 primaries -> E' = L**(1/2.4)
    (the method works on BT.2020 R'G'B') -> Y'CbCr (BT.2020 weights) -> Y'' = 255 Y';
    Y'_HDR = Y''**E with E from the table above, giving 0..1000; chroma scaled by
    S = 1.075 Y'_HDR / Y' -> R'G'B'_HDR in 0..1000, clipped -> normalised by 1000 and expanded
    with gamma 2.4 to linear light, 1 = 1000 cd/m2 -> PQ.
    """

    def __init__(self) -> None:
        super().__init__()
        self.config: dict = {}
        self.spec = ModelSpec(name="bt2446a", window=1, description=(
            "Inverse BT.2446 Method A: SDR white to 1000 cd/m2 peak, luma-driven expansion"))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return bt2446a_inverse_pq(_centre(frames).float())


def bt2446a_inverse_pq(sdr: torch.Tensor) -> torch.Tensor:
    """BT.2446 Method A inverse of ``(b, 3, h, w)`` BT.709 R'G'B' in [0, 1] -> BT.2020 PQ in [0, 1].

    The steps of :class:`BT2446AInverse`. Computed in float32 (float64 stays float64) with
    autocast off, so DIDNet can use it as a base mapping under bfloat16/float16 too.
    """
    dtype = torch.float64 if sdr.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=sdr.device.type, enabled=False):
        sdr = sdr.to(dtype)
        rgb2020 = bt1886_inverse_eotf(apply_matrix_torch(bt1886_eotf(sdr), BT709_TO_BT2020).clamp(0.0, 1.0))
        kr, kb = LUMA["bt2020"]
        kg = 1.0 - kr - kb
        r, g, b = rgb2020.unbind(1)
        y = kr * r + kg * g + kb * b
        cb = (b - y) / (2.0 * (1.0 - kb))
        cr = (r - y) / (2.0 * (1.0 - kr))
        ypp = 255.0 * y
        lo = _ITM_LOW[0] * ypp**2 + _ITM_LOW[1] * ypp + _ITM_LOW[2]
        hi = _ITM_HIGH[0] * ypp**2 + _ITM_HIGH[1] * ypp + _ITM_HIGH[2]
        expo = torch.where(ypp <= 70.0, lo, hi)
        y_hdr = ypp.clamp_min(1e-12) ** expo * (ypp > 0)
        scale = torch.where(y > 0, 1.075 * y_hdr / y.clamp_min(1e-12), torch.ones_like(y))
        cb_h, cr_h = cb * scale, cr * scale
        r_h = y_hdr + 2.0 * (1.0 - kr) * cr_h
        b_h = y_hdr + 2.0 * (1.0 - kb) * cb_h
        g_h = (y_hdr - kr * r_h - kb * b_h) / kg
        rgb_h = torch.stack([r_h, g_h, b_h], 1).clamp(0.0, _ITM_PEAK) / _ITM_PEAK
        return pq_inverse_eotf(bt1886_eotf(rgb_h) * _ITM_PEAK)
