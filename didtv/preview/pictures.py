"""The preview's pure picture functions. Frames are channel-first float arrays ``(3, h, w)``, as in
the pipeline; pictures are uint8 ``(h, w, 3)``."""

from __future__ import annotations

import math

import numpy as np

from didtv.color.gamut import BT2020_TO_BT709, LUMA
from didtv.color.tonemap import roll_off_max_rgb
from didtv.color.transfer import REFERENCE_WHITE, pq_eotf

#: The SDR screen of :func:`view_sdr`: HDR reference white (BT.2408, 203 cd/m2) is shown at
#: SDR 100%, and the signal is encoded with the inverse of BT.1886 (gamma 2.4), like the SDR input.
VIEW_WHITE = REFERENCE_WHITE
VIEW_GAMMA = 2.4

#: The SDR display the input histogram assumes: BT.1886 with a 100 cd/m2 peak and black 0.
SDR_DISPLAY_PEAK = 100.0

#: (lower cd/m2, upper cd/m2, label, sRGB colour) of the false-colour luminance map.
NITS_BANDS: tuple[tuple[float, float, str, tuple[int, int, int]], ...] = (
    (0.0, 1.0, "< 1", (26, 26, 64)),
    (1.0, 10.0, "1-10", (47, 95, 208)),
    (10.0, 100.0, "10-100", (47, 168, 106)),
    (100.0, 203.0, "100-203", (200, 200, 200)),
    (203.0, 400.0, "203-400", (242, 224, 58)),
    (400.0, 1000.0, "400-1000", (240, 140, 30)),
    (1000.0, 4000.0, "1000-4000", (224, 40, 45)),
    (4000.0, math.inf, ">= 4000", (255, 60, 255)),
)

#: (lower, upper, label, colour) of the ΔE_ITP error map (1 is about one just-noticeable step).
ERROR_BANDS: tuple[tuple[float, float, str, tuple[int, int, int]], ...] = (
    (0.0, 1.0, "< 1", (16, 16, 16)),
    (1.0, 2.0, "1-2", (30, 70, 40)),
    (2.0, 5.0, "2-5", (60, 150, 70)),
    (5.0, 10.0, "5-10", (230, 220, 60)),
    (10.0, 20.0, "10-20", (240, 140, 30)),
    (20.0, 50.0, "20-50", (220, 40, 40)),
    (50.0, math.inf, ">= 50", (255, 60, 255)),
)


def luminance(linear_rgb: np.ndarray, system: str = "bt2020") -> np.ndarray:
    """Luminance Y of linear RGB ``(3, h, w)`` with the primaries' luma weights -> ``(h, w)``."""
    kr, kb = LUMA[system]
    r, g, b = linear_rgb
    return kr * r + (1.0 - kr - kb) * g + kb * b


def view_sdr(pq_rgb: np.ndarray, *, source_peak: float = 1000.0, white: float = VIEW_WHITE) -> np.ndarray:
    """PQ BT.2020 R'G'B' ``(3, h, w)`` -> 8-bit BT.709 R'G'B' ``(h, w, 3)`` for an SDR screen.

    1. PQ EOTF -> linear BT.2020 light in cd/m2.
    2. BT.2020 -> BT.709 primaries (linear); negative components (colours outside BT.709) are
       clipped to 0 (gamut clipping).
    3. Highlight roll-off on max(R, G, B): the BT.2390 EETF (:mod:`didtv.color.tonemap`) from
       ``source_peak`` (the preset's tone peak) to ``white``; the three channels are scaled by
       the same factor, so hue is kept and no channel exceeds ``white``. For a 1000 cd/m2 source
       the knee is at 88 cd/m2 (and 203 cd/m2 lands at 90% signal): darker pixels are untouched.
    4. ``white`` (HDR reference white, 203 cd/m2) becomes SDR 100%; signal = (L / white)^(1/2.4),
       the inverse of the BT.1886 decode that the models apply to the SDR input, so below the
       knee the BT.2408 mapping's output is shown exactly as the SDR input was.
    """
    light = pq_eotf(np.clip(np.asarray(pq_rgb, dtype=np.float64), 0.0, 1.0))
    lin709 = np.einsum("ij,jhw->ihw", BT2020_TO_BT709, light).clip(0.0, None)
    mapped = roll_off_max_rgb(lin709, source_peak=source_peak, target_peak=white, axis=0)
    rel = np.clip(mapped / white, 0.0, 1.0)
    return to_uint8(rel ** (1.0 / VIEW_GAMMA))


def to_uint8(signal: np.ndarray) -> np.ndarray:
    """Signal in [0, 1], channel-first ``(3, h, w)`` -> uint8 ``(h, w, 3)`` (rounded)."""
    arr = np.asarray(signal)
    return np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8).transpose(1, 2, 0).copy()


def sdr_nits(sdr_rgb: np.ndarray, peak: float = SDR_DISPLAY_PEAK) -> np.ndarray:
    """Luminance in cd/m2 of BT.709 R'G'B' ``(3, h, w)`` on a BT.1886 display (gamma 2.4,
    black 0) with ``peak`` cd/m2 white -> ``(h, w)``."""
    lin = np.clip(np.asarray(sdr_rgb, dtype=np.float64), 0.0, 1.0) ** 2.4 * peak
    return luminance(lin, "bt709")


def hdr_nits(pq_rgb: np.ndarray) -> np.ndarray:
    """Luminance in cd/m2 of PQ BT.2020 R'G'B' ``(3, h, w)`` -> ``(h, w)``."""
    return luminance(pq_eotf(np.clip(np.asarray(pq_rgb, dtype=np.float64), 0.0, 1.0)))


def band_index(values: np.ndarray, bands=NITS_BANDS) -> np.ndarray:
    """For each value, the index of the band ``(lower, upper]`` holding it (anything at or below
    the first upper edge -> 0). Values are rounded to 0.01 first, so SDR white mapped to exactly
    203 cd/m2 counts as "100-203" despite float noise."""
    edges = np.array([b[1] for b in bands[:-1]])
    return np.searchsorted(edges, np.round(np.asarray(values, dtype=np.float64), 2), side="left")


def false_colour(values: np.ndarray, bands=NITS_BANDS) -> tuple[np.ndarray, list[float]]:
    """``(h, w)`` values -> (uint8 ``(h, w, 3)`` picture in the bands' colours, share of pixels
    in each band, summing to 1)."""
    idx = band_index(values, bands)
    palette = np.array([b[3] for b in bands], dtype=np.uint8)
    counts = np.bincount(idx.ravel(), minlength=len(bands))
    return palette[idx], [float(c) / max(idx.size, 1) for c in counts]
