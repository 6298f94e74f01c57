"""HDR10 static metadata: mastering display colour volume (SMPTE ST 2086) and content light
levels (CTA-861.3 MaxCLL / MaxFALL), with the strings x265 and mkvtoolnix expect.

Pure Python + numpy; nothing here runs a process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from didtv.color.transfer import pq_eotf

#: CIE 1931 xy chromaticities.
PRIMARIES = {
    "p3-d65": ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)),
    "bt2020": ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)),
    "bt709": ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060)),
}
D65 = (0.3127, 0.3290)


@dataclass(frozen=True)
class MasteringDisplay:
    """SMPTE ST 2086 mastering display colour volume.

    red, green, blue, white: xy chromaticities; max_luminance, min_luminance in cd/m2.
    """

    red: tuple[float, float]
    green: tuple[float, float]
    blue: tuple[float, float]
    white: tuple[float, float] = D65
    max_luminance: float = 1000.0
    min_luminance: float = 0.0001

    @classmethod
    def named(cls, primaries: str = "p3-d65", max_luminance: float = 1000.0,
              min_luminance: float = 0.0001) -> "MasteringDisplay":
        try:
            r, g, b = PRIMARIES[primaries]
        except KeyError:
            raise ValueError(f"unknown mastering primaries {primaries!r}; allowed: {', '.join(PRIMARIES)}") from None
        if not (0 <= min_luminance < max_luminance <= 10000):
            raise ValueError(f"mastering luminance must satisfy 0 <= min < max <= 10000, got {min_luminance}, {max_luminance}")
        return cls(r, g, b, D65, float(max_luminance), float(min_luminance))

    def x265(self) -> str:
        """x265 ``master-display`` value: G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min); chromaticity in
        units of 0.00002, luminance in units of 0.0001 cd/m2 (HEVC SEI units)."""

        def xy(p: tuple[float, float]) -> str:
            return f"({round(p[0] / 0.00002)},{round(p[1] / 0.00002)})"

        return (f"G{xy(self.green)}B{xy(self.blue)}R{xy(self.red)}WP{xy(self.white)}"
                f"L({round(self.max_luminance / 0.0001)},{round(self.min_luminance / 0.0001)})")

    def mkvpropedit_args(self) -> list[str]:
        """``mkvpropedit --edit track:v1`` property settings (Matroska MasteringMetadata)."""
        props = {
            "chromaticity-coordinates-red-x": self.red[0], "chromaticity-coordinates-red-y": self.red[1],
            "chromaticity-coordinates-green-x": self.green[0], "chromaticity-coordinates-green-y": self.green[1],
            "chromaticity-coordinates-blue-x": self.blue[0], "chromaticity-coordinates-blue-y": self.blue[1],
            "white-coordinates-x": self.white[0], "white-coordinates-y": self.white[1],
            "max-luminance": self.max_luminance, "min-luminance": self.min_luminance,
        }
        args: list[str] = []
        for key, value in props.items():
            args += ["--set", f"{key}={value:g}"]
        return args


@dataclass(frozen=True)
class ContentLightLevel:
    """CTA-861.3 content light levels in cd/m2 (integers, as carried in SEI and containers)."""

    max_cll: int
    max_fall: int


class LightLevelMeter:
    """Accumulates MaxCLL / MaxFALL over the frames written.

    Per CTA-861.3, a pixel's light level is max(R, G, B) in linear cd/m2; MaxCLL is the largest
    pixel light level of the stream, MaxFALL the largest per-frame average of pixel light levels.
    Frames are PQ-encoded BT.2020 R'G'B' in [0, 1]. They are first quantised to the 10-bit
    limited-range code grid that the encoder writes (``quantise=True``), so the values describe
    what is written rather than the float intermediate. Results are rounded up to whole cd/m2 so
    the signalled maximum is never below the content.
    """

    def __init__(self, *, quantise: bool = True) -> None:
        self.quantise = quantise
        self.max_cll = 0.0
        self.max_fall = 0.0
        self.frames = 0

    @staticmethod
    def to_code_grid(pq: np.ndarray) -> np.ndarray:
        """PQ [0,1] -> the nearest 10-bit limited-range code value, back in [0,1]."""
        codes = np.rint(64.0 + 876.0 * np.clip(pq, 0.0, 1.0))
        return (codes - 64.0) / 876.0

    def update(self, pq_rgb: np.ndarray) -> None:
        """Add one frame: PQ BT.2020 R'G'B', channel-first ``(3, h, w)`` (the pipeline's layout)."""
        v = np.asarray(pq_rgb)
        if v.ndim != 3 or v.shape[0] != 3:
            raise ValueError(f"expected a (3, h, w) frame, got shape {v.shape}")
        # PQ is monotonic, so the max of the PQ values is the PQ value of the brightest channel.
        peak_pq = v.max(axis=0).astype(np.float64)
        if self.quantise:
            peak_pq = self.to_code_grid(peak_pq)
        else:
            peak_pq = np.clip(peak_pq, 0.0, 1.0)
        light = pq_eotf(peak_pq)
        self.max_cll = max(self.max_cll, float(light.max()))
        self.max_fall = max(self.max_fall, float(light.mean()))
        self.frames += 1

    def result(self) -> ContentLightLevel:
        return ContentLightLevel(math.ceil(self.max_cll - 1e-9), math.ceil(self.max_fall - 1e-9))
