"""Transfer functions. Each works on numpy arrays and torch tensors alike (only ``clip``,
arithmetic and ``**`` are used), element-wise.

Units: "signal" values are normalised code values in [0, 1]; "light" values are linear display
light in cd/m2 unless a function says otherwise.
"""

from __future__ import annotations

import math

# SMPTE ST 2084 (PQ) constants.
PQ_M1 = 2610 / 16384
PQ_M2 = 2523 / 4096 * 128
PQ_C1 = 3424 / 4096
PQ_C2 = 2413 / 4096 * 32
PQ_C3 = 2392 / 4096 * 32
PQ_PEAK = 10000.0

#: BT.2408 HDR reference white ("graphics white", diffuse white) in cd/m2.
REFERENCE_WHITE = 203.0


def pq_inverse_eotf(light):
    """Linear light in cd/m2 -> PQ signal in [0, 1] (ST 2084 inverse EOTF). Negative light -> 0."""
    y = (light / PQ_PEAK).clip(0.0, None)
    yp = y ** PQ_M1
    return ((PQ_C1 + PQ_C2 * yp) / (1.0 + PQ_C3 * yp)) ** PQ_M2


def pq_eotf(signal):
    """PQ signal in [0, 1] -> linear light in cd/m2 (ST 2084 EOTF). Input is clipped to [0, 1]."""
    ep = signal.clip(0.0, 1.0) ** (1.0 / PQ_M2)
    return PQ_PEAK * ((ep - PQ_C1).clip(0.0, None) / (PQ_C2 - PQ_C3 * ep)) ** (1.0 / PQ_M1)


def bt1886_eotf(signal, gamma: float = 2.4):
    """BT.1886 EOTF with a black level of 0: signal in [0, 1] -> relative light in [0, 1]
    (1 = SDR peak white). didtv's decision: reference black 0 cd/m2, so L = V**2.4."""
    return signal.clip(0.0, 1.0) ** gamma


def bt1886_inverse_eotf(light, gamma: float = 2.4):
    """Relative light in [0, 1] -> BT.1886 signal (inverse of :func:`bt1886_eotf`)."""
    return light.clip(0.0, 1.0) ** (1.0 / gamma)


# BT.2100 HLG constants.
HLG_A = 0.17883277
HLG_B = 1.0 - 4.0 * HLG_A
HLG_C = 0.5 - HLG_A * math.log(4.0 * HLG_A)


def hlg_oetf(scene):
    """BT.2100 HLG OETF: normalised scene light E in [0, 1] -> signal E' in [0, 1]."""
    e = scene.clip(0.0, 1.0)
    low = (3.0 * e).clip(0.0, None) ** 0.5
    high = HLG_A * _log((12.0 * e - HLG_B).clip(1e-12, None)) + HLG_C
    return _where(e <= 1.0 / 12.0, low, high)


def hlg_inverse_oetf(signal):
    """BT.2100 HLG inverse OETF: signal E' in [0, 1] -> normalised scene light in [0, 1]."""
    s = signal.clip(0.0, 1.0)
    low = s * s / 3.0
    high = (_exp((s - HLG_C) / HLG_A) + HLG_B) / 12.0
    return _where(s <= 0.5, low, high)


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _log(x):
    if _is_torch(x):
        return x.log()
    import numpy as np

    return np.log(x)


def _exp(x):
    if _is_torch(x):
        return x.exp()
    import numpy as np

    return np.exp(x)


def _where(cond, a, b):
    if _is_torch(a):
        import torch

        return torch.where(cond, a, b)
    import numpy as np

    return np.where(cond, a, b)
