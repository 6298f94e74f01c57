"""Preview pictures: judge a conversion on an ordinary (SDR) screen, frame by frame.

No click, no rich: :func:`preview` writes PNG files and a JSON summary, and returns a
:class:`PreviewResult`. For each chosen frame ``N`` (file names ``frame{N:06d}_*.png``):

``_sdr.png``
    The SDR input as decoded (BT.709 R'G'B', 8 bits), what the SDR video shows.
``_hdr-view.png``
    The HDR output tone-mapped for an SDR screen (:func:`view_sdr`). PQ code values shown as if
    they were sRGB look dim and washed out (100 cd/m2 is PQ 0.51), which is the trap this
    picture avoids.
``_nits.png``
    False colour of the output's luminance in cd/m2, bands :data:`NITS_BANDS`, with a legend
    giving each band's share of pixels.
``_histogram.png``
    Luminance histograms on a log cd/m2 axis: the SDR input as a 100 cd/m2 BT.1886 display shows
    it, the HDR output, and the reference when given.

With ``reference`` (an HDR10/PQ video of the same frames) also ``_reference-view.png``,
``_reference-nits.png`` and ``_error.png`` (a ΔE_ITP map, bands :data:`ERROR_BANDS`), and the
metrics (:func:`psnr_pq`, :func:`delta_e_itp`) go into ``preview.json``.

Frames are picked by decoding the input once, in order, and keeping only the frames the chosen
windows need (a model with a 7-frame window needs frames N-3 .. N+3): memory stays bounded by
a few windows whatever the length of the video. Decoding stops after the last chosen window.
The model is run through the same :class:`~didtv.pipeline.runner.Runner` as ``convert``, one
window at a time and without a shot history: a model whose global condition ``convert`` averages
over a shot uses the chosen window's own condition (as at the first frame of a shot), and a
model with ``reset_state`` is reset before each chosen frame. The HDR pictures show the model's
output before x265 (no compression).
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from didtv.color.gamut import BT2020_TO_BT709, LUMA
from didtv.color.transfer import REFERENCE_WHITE, pq_eotf, pq_inverse_eotf
from didtv.errors import DidtvError, OutputError

SCHEMA_VERSION = 1

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

#: Histogram range in cd/m2; values outside are counted in the first / last bin.
HIST_RANGE = (0.01, 10000.0)
HIST_BINS_PER_DECADE = 20


class PreviewError(DidtvError):
    """A preview request that cannot be honoured (frame out of range, bad reference)."""

    exit_code = 2


# ---------------------------------------------------------------------------------------------
# Pure picture functions. Frames are channel-first float arrays (3, h, w), as in the pipeline.

def luminance(linear_rgb: np.ndarray, system: str = "bt2020") -> np.ndarray:
    """Luminance Y of linear RGB ``(3, h, w)`` with the primaries' luma weights -> ``(h, w)``."""
    kr, kb = LUMA[system]
    r, g, b = linear_rgb
    return kr * r + (1.0 - kr - kb) * g + kb * b


def eetf_bt2390(pq: np.ndarray, source_peak: float, target_peak: float) -> np.ndarray:
    """The BT.2390 EETF (Report ITU-R BT.2390, section 5.4.1), black levels 0.

    ``pq``: absolute PQ signal in [0, 1]. Signals are normalised by PQ(source_peak); below the
    knee ``KS = 1.5 maxLum - 0.5`` (``maxLum`` = PQ(target_peak) normalised) they pass unchanged,
    above it a Hermite spline rolls them off to exactly ``target_peak`` at ``source_peak``.
    Input above ``source_peak`` is first clipped to it. When the target is at least as bright as
    the source the curve is the identity (then clipped to the target).
    """
    src = float(pq_inverse_eotf(np.float64(source_peak)))
    dst = float(pq_inverse_eotf(np.float64(target_peak)))
    e1 = np.clip(np.asarray(pq, dtype=np.float64) / src, 0.0, 1.0)
    max_lum = dst / src
    if max_lum >= 1.0:
        return np.minimum(e1 * src, dst)
    ks = 1.5 * max_lum - 0.5
    t = np.clip((e1 - ks) / (1.0 - ks), 0.0, 1.0)
    t2, t3 = t * t, t * t * t
    spline = (2 * t3 - 3 * t2 + 1) * ks + (t3 - 2 * t2 + t) * (1.0 - ks) + (-2 * t3 + 3 * t2) * max_lum
    return np.where(e1 < ks, e1, spline) * src


def view_sdr(pq_rgb: np.ndarray, *, source_peak: float = 1000.0, white: float = VIEW_WHITE) -> np.ndarray:
    """PQ BT.2020 R'G'B' ``(3, h, w)`` -> 8-bit BT.709 R'G'B' ``(h, w, 3)`` for an SDR screen.

    1. PQ EOTF -> linear BT.2020 light in cd/m2.
    2. BT.2020 -> BT.709 primaries (linear); negative components (colours outside BT.709) are
       clipped to 0 (gamut clipping).
    3. Highlight roll-off on max(R, G, B): the BT.2390 EETF (:func:`eetf_bt2390`) from
       ``source_peak`` (the preset's tone peak) to ``white``; the three channels are scaled by
       the same factor, so hue is kept and no channel exceeds ``white``. For a 1000 cd/m2 source
       the knee is at 88 cd/m2 (and 203 cd/m2 lands at 90% signal): darker pixels are untouched.
    4. ``white`` (HDR reference white, 203 cd/m2) becomes SDR 100%; signal = (L / white)^(1/2.4),
       the inverse of the BT.1886 decode that the models apply to the SDR input, so below the
       knee the BT.2408 mapping's output is shown exactly as the SDR input was.
    """
    light = pq_eotf(np.clip(np.asarray(pq_rgb, dtype=np.float64), 0.0, 1.0))
    lin709 = np.einsum("ij,jhw->ihw", BT2020_TO_BT709, light).clip(0.0, None)
    peak = lin709.max(axis=0)
    mapped = pq_eotf(eetf_bt2390(pq_inverse_eotf(peak), source_peak, white))
    scale = np.where(peak > 1e-9, mapped / np.maximum(peak, 1e-9), 1.0)
    rel = np.clip(lin709 * scale / white, 0.0, 1.0)
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


def psnr_pq(output_pq: np.ndarray, reference_pq: np.ndarray) -> float:
    """PSNR in dB over all pixels and R'G'B' channels of PQ signals in [0, 1] (both clipped to
    [0, 1]; peak 1), the HDRTV literature's convention; ``inf`` for identical pictures."""
    a = np.clip(np.asarray(output_pq, dtype=np.float64), 0.0, 1.0)
    b = np.clip(np.asarray(reference_pq, dtype=np.float64), 0.0, 1.0)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def delta_e_itp(output_pq: np.ndarray, reference_pq: np.ndarray) -> np.ndarray:
    """Per-pixel ΔE_ITP (ITU-R BT.2124) of two PQ BT.2020 R'G'B' pictures ``(3, h, w)`` ->
    ``(h, w)``.

    Both are decoded to linear light in cd/m2 and converted with colour-science's
    ``RGB_to_ICtCp(..., method="ITU-R BT.2100-2 PQ")``; ΔE_ITP = 720 sqrt(dI^2 + (0.5 dCt)^2
    + dCp^2) (PQ 0.5 vs 0.501 grey gives 0.720).
    """
    os.environ.setdefault("COLOUR_SCIENCE__FILTER_USAGE_WARNINGS", "True")
    import colour

    def ictcp(pq):
        light = pq_eotf(np.clip(np.asarray(pq, dtype=np.float64), 0.0, 1.0))
        return colour.RGB_to_ICtCp(np.moveaxis(light, 0, -1), method="ITU-R BT.2100-2 PQ")

    d = ictcp(output_pq) - ictcp(reference_pq)
    return 720.0 * np.sqrt(d[..., 0] ** 2 + (0.5 * d[..., 1]) ** 2 + d[..., 2] ** 2)


def window_of(index: int, total: int, size: int) -> list[int]:
    """The frame indices of frame ``index``'s window: the pipeline's ``replicate`` padding
    (:func:`didtv.pipeline.window.window_indices`, tested equal) without building every window."""
    r = size // 2
    return [min(max(index + k, 0), total - 1) for k in range(-r, r + 1)]


def default_frames(total: int, count: int = 3) -> list[int]:
    """``count`` frames spread evenly over ``total`` (centres of equal parts); 48 -> [8, 24, 40]."""
    if total <= 0:
        return []
    return sorted({min(total - 1, int((k + 0.5) * total / count)) for k in range(count)})


# ---------------------------------------------------------------------------------------------
# PNG writing (8-bit RGB, no dependency) and matplotlib drawings (Agg, no pyplot: the library
# never changes the process's matplotlib backend).

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


# ---------------------------------------------------------------------------------------------
# The preview itself.

@dataclass(frozen=True)
class PreviewFrame:
    index: int
    files: dict[str, str]
    output: dict  # luminance statistics of the HDR output (see _stats)
    metrics: dict | None = None  # {"psnr_pq": dB, "delta_e_itp_mean": ...} with a reference

    def to_json(self) -> dict:
        return {"index": self.index, "files": self.files, "output": self.output,
                "metrics": self.metrics}


@dataclass(frozen=True)
class PreviewResult:
    out_dir: Path
    json_path: Path
    model: str
    width: int
    height: int
    frames: list[PreviewFrame] = field(default_factory=list)
    metrics: dict | None = None  # means over frames, with a reference


def _stats(pq_rgb: np.ndarray, nits: np.ndarray, shares: Sequence[float]) -> dict:
    maxrgb = pq_eotf(np.clip(np.asarray(pq_rgb, dtype=np.float64), 0.0, 1.0).max(axis=0))
    return {
        "max_luminance": round(float(nits.max()), 3),
        "mean_luminance": round(float(nits.mean()), 3),
        "median_luminance": round(float(np.median(nits)), 3),
        "p99_luminance": round(float(np.percentile(nits, 99)), 3),
        "max_light_level": round(float(maxrgb.max()), 3),  # this frame's contribution to MaxCLL
        "frame_average_light_level": round(float(maxrgb.mean()), 3),  # ... to MaxFALL
        "bands": {b[2]: round(s, 6) for b, s in zip(NITS_BANDS, shares)},
    }


def parse_frames(text: str) -> list[int]:
    """"10,50,200" -> [10, 50, 200] (sorted, without repeats); PreviewError on anything else."""
    try:
        values = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise PreviewError(f"--frames {text!r}: expected frame numbers separated by commas, e.g. 0,120,240") from None
    if not values:
        raise PreviewError("--frames is empty: give frame numbers separated by commas, e.g. 0,120,240")
    return values


def preview(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    model: str | None = None,
    preset=None,
    frames: Sequence[int] | None = None,
    reference: str | os.PathLike | None = None,
    device: str | None = None,
    force: bool = False,
    on_frame: Callable[[PreviewFrame], None] | None = None,
) -> PreviewResult:
    """Write the preview pictures of ``src`` for ``frames`` (default: 3 spread over the clip) into
    ``out_dir`` (created if needed; existing files of the same names are replaced) and
    ``out_dir/preview.json``. ``model`` / ``preset`` as in :func:`didtv.api.convert` (the
    preset gives the tone targets, the downscale and the viewing map's source peak).
    ``reference``: an HDR10/PQ video of the same frames; it is decoded at the same size.
    ``on_frame`` is called after each frame's files are written.
    """
    from didtv.api import check_input
    from didtv.io.decode import FrameReader, even_size, fit_height, tool_safe_path
    from didtv.io.ffmpeg import check_ffmpeg
    from didtv.io.probe import count_frames, probe
    from didtv.pipeline.runner import Runner
    from didtv.presets import Preset, load_preset, load_preset_model

    src, out_dir = Path(src), Path(out_dir)
    if not isinstance(preset, Preset):
        preset = load_preset(preset)
    check_ffmpeg(need_mkvtoolnix=False)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir} exists and is not a folder")
    info = probe(tool_safe_path(src))  # "./-x.mp4": never an option or protocol for FFmpeg
    check_input(info, force=force)
    total = count_frames(tool_safe_path(src))
    chosen = sorted(set(frames)) if frames else default_frames(total)
    bad = [i for i in chosen if not 0 <= i < total]
    if bad or not chosen:
        raise PreviewError(f"{src} has {total} frames (0 to {total - 1}); cannot preview frame(s) "
                           f"{', '.join(map(str, bad)) or '(none)'}")
    # as convert does: odd sizes padded to even by the decoder, then the preset's downscale
    width, height = fit_height(*even_size(info.display_width, info.display_height), preset.max_height)

    ref_info = None
    if reference is not None:
        ref_info = probe(tool_safe_path(reference))
        if ref_info.transfer != "smpte2084":
            raise PreviewError(f"reference {reference} is not PQ (transfer {ref_info.transfer or 'untagged'})",
                               hint="give an HDR10 / PQ10 video (BT.2020, SMPTE ST 2084)")
        ref_aspect = ref_info.display_width / ref_info.display_height
        if abs(ref_aspect - width / height) > 0.01 * width / height:
            raise PreviewError(f"reference {reference} is {ref_info.display_width}x{ref_info.display_height}, "
                               f"not the shape of the input ({info.display_width}x{info.display_height})")
        ref_total = count_frames(tool_safe_path(reference))
        if ref_total <= chosen[-1]:
            raise PreviewError(f"reference {reference} has {ref_total} frames; frame {chosen[-1]} was asked for")

    model_name, net = load_preset_model(preset, model)
    runner = Runner(net, device=device)
    windows = {c: window_of(c, total, runner.spec.window) for c in chosen}
    out_dir.mkdir(parents=True, exist_ok=True)
    source_peak = preset.tone.peak
    reset = getattr(runner.model, "reset_state", None)

    kept: dict[int, np.ndarray] = {}
    ref_kept: dict[int, np.ndarray] = {}
    pending = list(chosen)
    results: list[PreviewFrame] = []
    ref_reader = FrameReader(ref_info, (width, height)) if ref_info is not None else nullcontext()
    with FrameReader(info, (width, height)) as reader, ref_reader as rreader:
        ref_iter = iter(rreader) if rreader is not None else None
        for i, frame in enumerate(reader):
            if any(i in windows[c] for c in pending):
                kept[i] = frame
            if ref_iter is not None and i <= chosen[-1]:
                ref_frame = next(ref_iter, None)
                if ref_frame is None:
                    raise PreviewError(f"reference {reference} ended before frame {i}")
                if i in pending:
                    ref_kept[i] = ref_frame
            while pending and max(windows[pending[0]]) <= i:
                c = pending.pop(0)
                if callable(reset):
                    reset()
                hdr = np.clip(runner.infer([kept[j] for j in windows[c]]), 0.0, 1.0)
                result = _write_frame(out_dir, c, kept[c], hdr, ref_kept.pop(c, None), source_peak)
                results.append(result)
                if on_frame is not None:
                    on_frame(result)
                needed = {j for p in pending for j in windows[p]}
                for j in [j for j in kept if j not in needed]:
                    del kept[j]
            if not pending:
                break
    if pending:
        raise PreviewError(f"decoding {src} ended before frame {pending[0]}: the input is damaged")

    metrics = None
    if ref_info is not None:
        psnrs = [r.metrics["psnr_pq"] for r in results]
        metrics = {
            "psnr_pq_mean": None if None in psnrs else round(float(np.mean(psnrs)), 4),
            "delta_e_itp_mean": round(float(np.mean([r.metrics["delta_e_itp_mean"] for r in results])), 4),
        }
    summary = {
        "schema_version": SCHEMA_VERSION,
        "input": str(src),
        "reference": None if reference is None else str(reference),
        "model": model_name,
        "preset": preset.name,
        "width": width,
        "height": height,
        "view": {
            "method": "BT.2020->BT.709 with gamut clip, BT.2390 EETF on max(R,G,B), "
                      "reference white = SDR 100%, gamma 1/2.4",
            "source_peak": source_peak, "white": VIEW_WHITE,
        },
        "histogram_sdr_display_peak": SDR_DISPLAY_PEAK,
        "metrics_definition": None if ref_info is None else {
            "psnr_pq": "dB over all pixels and R'G'B' channels of PQ [0,1]; model output before x265 "
                       "vs the reference as decoded; null = identical",
            "delta_e_itp_mean": "mean over pixels of ITU-R BT.2124 ΔE_ITP (colour-science ICtCp, "
                                "BT.2100-2 PQ)",
        },
        "frames": [r.to_json() for r in results],
        "metrics": metrics,
    }
    json_path = out_dir / "preview.json"
    json_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return PreviewResult(out_dir=out_dir, json_path=json_path, model=model_name, width=width,
                         height=height, frames=results, metrics=metrics)


def _write_frame(out_dir: Path, index: int, sdr: np.ndarray, hdr: np.ndarray,
                 ref: np.ndarray | None, source_peak: float) -> PreviewFrame:
    stem = f"frame{index:06d}"
    files: dict[str, str] = {}

    def save(kind: str, picture: np.ndarray) -> None:
        path = out_dir / f"{stem}_{kind}.png"
        write_png(path, picture)
        files[kind] = path.name

    save("sdr", to_uint8(sdr))
    save("hdr-view", view_sdr(hdr, source_peak=source_peak))
    nits = hdr_nits(hdr)
    picture, shares = false_colour(nits)
    save("nits", with_legend(picture, f"frame {index}: HDR output luminance (cd/m2), share of pixels",
                             NITS_BANDS, shares))
    series = [(f"SDR input (on a {SDR_DISPLAY_PEAK:g} cd/m2 display)", sdr_nits(sdr), "tab:blue"),
              ("HDR output", nits, "tab:orange")]
    metrics = None
    if ref is not None:
        ref_nits = hdr_nits(ref)
        series.append(("reference HDR", ref_nits, "tab:green"))
        save("reference-view", view_sdr(ref, source_peak=source_peak))
        ref_picture, ref_shares = false_colour(ref_nits)
        save("reference-nits", with_legend(ref_picture, f"frame {index}: reference luminance (cd/m2), "
                                           "share of pixels", NITS_BANDS, ref_shares))
        de = delta_e_itp(hdr, ref)
        err_picture, err_shares = false_colour(de, ERROR_BANDS)
        save("error", with_legend(err_picture, f"frame {index}: ΔE_ITP output vs reference, share of pixels",
                                  ERROR_BANDS, err_shares))
        psnr = psnr_pq(hdr, ref)
        metrics = {"psnr_pq": None if math.isinf(psnr) else round(psnr, 4),  # None: identical
                   "delta_e_itp_mean": round(float(de.mean()), 4)}
    markers = [(SDR_DISPLAY_PEAK, "SDR peak 100"), (VIEW_WHITE, "reference white 203"),
               (source_peak, f"peak {source_peak:g}")]
    save("histogram", histogram_picture(series, title=f"frame {index}: luminance histogram",
                                        markers=markers))
    return PreviewFrame(index=index, files=files, output=_stats(hdr, nits, shares), metrics=metrics)
