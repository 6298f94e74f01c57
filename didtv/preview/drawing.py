"""PNG writing (8-bit RGB, no dependency) and matplotlib drawings (Agg, no pyplot: the library
never changes the process's matplotlib backend): legends under false-colour pictures, luminance
histograms."""

from __future__ import annotations

import math
import os
import struct
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

#: Histogram range in cd/m2; values outside are counted in the first / last bin.
HIST_RANGE = (0.01, 10000.0)
HIST_BINS_PER_DECADE = 20

def write_png(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Write uint8 ``(h, w, 3)`` as an 8-bit RGB PNG (filter 0, zlib level 6)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (h, w, 3) uint8, got shape {rgb.shape}")
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    path = Path(path)
    path.write_bytes(data)
    return path


def _figure(width_px: int, height_px: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_px / 100.0, height_px / 100.0), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _pixels(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def legend_strip(title: str, bands, shares: Sequence[float], width: int) -> np.ndarray:
    """A legend ``(h, width, 3)`` uint8: a title, then one swatch per band with its label and
    share of pixels, in as many rows as the width needs."""
    cols = max(1, min(len(bands), width // 150))
    rows = math.ceil(len(bands) / cols)
    height = 30 + 26 * rows
    fig = _figure(width, height)
    fig.patch.set_facecolor("#202020")
    fig.text(6 / width, 1 - 8 / height, title, color="white", fontsize=10, va="top", ha="left")
    cell = (width - 12) / cols
    for k, (band, share) in enumerate(zip(bands, shares)):
        r, c = divmod(k, cols)
        x = 6 + c * cell
        y = height - 30 - 26 * r - 20
        fig.add_artist(_rect(fig, x / width, y / height, 18 / width, 16 / height,
                             tuple(v / 255 for v in band[3])))
        fig.text((x + 24) / width, (y + 8) / height, f"{band[2]}  {100 * share:.1f}%",
                 color="white", fontsize=9, va="center", ha="left")
    return _pixels(fig)


def _rect(fig, x, y, w, h, colour):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, transform=fig.transFigure, facecolor=colour,
                     edgecolor="white", linewidth=0.5)


def with_legend(picture: np.ndarray, legend_title: str, bands, shares: Sequence[float]) -> np.ndarray:
    """Stack a legend under ``picture`` (padded to at least 640 pixels wide)."""
    h, w, _ = picture.shape
    width = max(w, 640)
    legend = legend_strip(legend_title, bands, shares, width)
    top = np.full((h, width, 3), 32, np.uint8)
    top[:, (width - w) // 2:(width - w) // 2 + w] = picture
    return np.concatenate([top, legend], axis=0)


def histogram_picture(series: Sequence[tuple[str, np.ndarray, str]], *, title: str,
                      markers: Sequence[tuple[float, str]] = ()) -> np.ndarray:
    """Luminance histograms, log cd/m2 x axis, share of pixels per bin on y (800x450 pixels).

    ``series``: (label, luminance ``(h, w)`` in cd/m2, matplotlib colour). Values outside
    :data:`HIST_RANGE` are counted in the first / last bin. ``markers``: dashed vertical lines
    (cd/m2, label).
    """
    lo, hi = HIST_RANGE
    n_bins = int(round(math.log10(hi / lo) * HIST_BINS_PER_DECADE))
    edges = np.logspace(math.log10(lo), math.log10(hi), n_bins + 1)
    fig = _figure(800, 450)
    ax = fig.add_subplot(1, 1, 1)
    for label, values, colour in series:
        v = np.clip(np.asarray(values, dtype=np.float64).ravel(), lo, hi * 0.999999)
        counts, _ = np.histogram(v, bins=edges)
        ax.stairs(100.0 * counts / max(v.size, 1), edges, label=label, color=colour, linewidth=1.6)
    for x, label in markers:
        ax.axvline(x, color="0.45", linestyle="--", linewidth=0.9)
        ax.text(x * 1.08, 0.97, label, transform=ax.get_xaxis_transform(), rotation=90,
                va="top", ha="left", fontsize=8, color="0.3")
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("luminance (cd/m2), log scale; first/last bin hold everything beyond")
    ax.set_ylabel("pixels (%)")
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    fig.subplots_adjust(left=0.08, right=0.97, bottom=0.12, top=0.92)  # tight_layout: ~1 s
    return _pixels(fig)
