"""The preview itself: frame choice, decoding the chosen windows, running the model, writing the
pictures and ``preview.json`` (see :mod:`didtv.preview`)."""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from didtv.color.transfer import pq_eotf
from didtv.errors import DidtvError, OutputError
from didtv.metrics.basic import delta_e_itp_map, psnr
from didtv.preview.drawing import histogram_picture, with_legend, write_png
from didtv.preview.pictures import (ERROR_BANDS, NITS_BANDS, SDR_DISPLAY_PEAK, VIEW_WHITE, false_colour,
                                    hdr_nits, sdr_nits, to_uint8, view_sdr)

SCHEMA_VERSION = 1


class PreviewError(DidtvError):
    """A preview request that cannot be honoured (frame out of range, bad reference)."""

    exit_code = 2


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

    from didtv.pipeline.runner import pick_device

    model_name, net = load_preset_model(preset, model, device=str(pick_device(device)))
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
        metrics = {
            "psnr_pq_mean": round(float(np.mean([r.metrics["psnr_pq"] for r in results])), 4),
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
            "psnr_pq": "dB over all pixels and R'G'B' channels of PQ [0,1] (docs/evaluation.md); model "
                       "output before x265 vs the reference as decoded; identical = 200 (MSE floor 1e-20)",
            "delta_e_itp_mean": "mean over pixels of ITU-R BT.2124 ΔE_ITP (BT.2100 PQ ICtCp, "
                                "docs/evaluation.md)",
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
        de = delta_e_itp_map(hdr, ref)
        err_picture, err_shares = false_colour(de, ERROR_BANDS)
        save("error", with_legend(err_picture, f"frame {index}: ΔE_ITP output vs reference, share of pixels",
                                  ERROR_BANDS, err_shares))
        metrics = {"psnr_pq": round(psnr(hdr, ref), 4), "delta_e_itp_mean": round(float(de.mean()), 4)}
    markers = [(SDR_DISPLAY_PEAK, "SDR peak 100"), (VIEW_WHITE, "reference white 203"),
               (source_peak, f"peak {source_peak:g}")]
    save("histogram", histogram_picture(series, title=f"frame {index}: luminance histogram",
                                        markers=markers))
    return PreviewFrame(index=index, files=files, output=_stats(hdr, nits, shares), metrics=metrics)
