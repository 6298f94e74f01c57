"""The BT.2390 EETF (Report ITU-R BT.2390, section 5.4.1, black levels 0): the one highlight
roll-off of didtv (numpy only). Used by the preview's viewing map (HDR -> an SDR screen) and by
the training data (highlight roll-off of HDR sources, the ``bt2390`` SDR operator).
"""

from __future__ import annotations

import numpy as np

from didtv.color.transfer import pq_eotf, pq_inverse_eotf


def eetf_bt2390(pq: np.ndarray, source_peak: float, target_peak: float) -> np.ndarray:
    """The BT.2390 EETF on absolute PQ signals in [0, 1] -> PQ signals.

    Signals are normalised by PQ(source_peak); below the knee ``KS = 1.5 maxLum - 0.5``
    (``maxLum`` = PQ(target_peak) normalised) they pass unchanged, above it a Hermite spline
    rolls them off to exactly ``target_peak`` at ``source_peak``. Input above ``source_peak`` is
    first clipped to it. When the target is at least as bright as the source the curve is the
    identity (then clipped to the target). The input's float dtype is kept.
    """
    src = float(pq_inverse_eotf(np.float64(source_peak)))
    dst = float(pq_inverse_eotf(np.float64(target_peak)))
    e1 = np.clip(np.asarray(pq) / src, 0.0, 1.0)
    max_lum = dst / src
    if max_lum >= 1.0:
        return np.minimum(e1 * src, dst)
    ks = 1.5 * max_lum - 0.5
    t = np.clip((e1 - ks) / max(1.0 - ks, 1e-6), 0.0, 1.0)
    t2, t3 = t * t, t * t * t
    spline = (2 * t3 - 3 * t2 + 1) * ks + (t3 - 2 * t2 + t) * (1.0 - ks) + (-2 * t3 + 3 * t2) * max_lum
    return np.where(e1 < ks, e1, spline) * src


def eetf_bt2390_light(light: np.ndarray, *, source_peak: float, target_peak: float) -> np.ndarray:
    """:func:`eetf_bt2390` on display light: cd/m2 in [0, source_peak] -> [0, target_peak]."""
    pq = pq_inverse_eotf(np.clip(light, 0.0, source_peak))
    return pq_eotf(eetf_bt2390(pq, source_peak, target_peak))


def roll_off_max_rgb(light: np.ndarray, *, source_peak: float, target_peak: float,
                     axis: int = -1) -> np.ndarray:
    """Linear RGB light (cd/m2, the three channels along ``axis``) with max(R, G, B) rolled off by
    :func:`eetf_bt2390_light`; the channels are scaled by the same factor, so hue is kept and no
    channel exceeds ``target_peak``. Black stays black."""
    m = light.max(axis=axis, keepdims=True)
    mapped = eetf_bt2390_light(m, source_peak=source_peak, target_peak=target_peak)
    return light * np.where(m > 0, mapped / np.maximum(m, 1e-12), 0.0)
