"""HDR sources -> display-referred HDR clips (7 frames of BT.709-primaries linear light, cd/m2).

Convention (docs/training.md):

1. **Read** scene-linear OpenEXR or Radiance RGBE (``.hdr``; BT.709 primaries, relative units;
   negatives from compression ringing are clamped to 0), or display-referred 16-bit PNG/TIFF in
   BT.2020 PQ or HLG (``transfer``; HLG through the BT.2100 OOTF of a 1000 cd/m2 display). The
   display-referred ones keep their grade (no exposure anchoring, step 4) and are gamut-clipped
   to BT.709 light, the gamut every other step works in.
2. **View**: a camera-like view of ``size x size`` pixels is cut from the image at a random
   centre and zoom (equirectangular panoramas: away from the poles). The image is first
   area-downscaled so the view samples it at about one source pixel per output pixel.
3. **Motion**: the 7 frames are the same view under a small synthetic camera motion (pan,
   zoom, rotation, sub-pixel jitter), rendered with bilinear sampling: real 7-frame windows.
   Optionally (``data build --moving-objects P``) a share of the clips also gets an object that
   moves against that background, fast (up to 24 px/frame): occlusions and local motion.
4. **Exposure** is anchored on the view (not the whole panorama): the log-average luminance of
   the centre frame, ignoring the darkest and brightest 1 %, is mapped to ``key`` cd/m2
   (default 18 % of the BT.2408 reference white, 36.5 cd/m2, times a random 2^U(-1, 1)):
   diffuse white at 203 cd/m2 for a view of average reflectance (:data:`DIFFUSE_WHITE`,
   :data:`DEFAULT_KEY`). ``metering="highkey"`` also lifts views whose brightest surfaces
   would land far below it (:func:`expose`).
5. **Highlights** roll off smoothly to the mastering peak (1000 cd/m2) with the BT.2390 EETF
   applied in PQ to max(R, G, B), which keeps hue; light below about 390 cd/m2 is untouched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from didtv.color.tonemap import roll_off_max_rgb
from didtv.color.transfer import REFERENCE_WHITE, pq_eotf

LUMA_709 = np.array([0.2126, 0.7152, 0.0722])
LUMA_2020 = np.array([0.2627, 0.6780, 0.0593])
EXR_SUFFIXES = (".exr",)
RGBE_SUFFIXES = (".hdr", ".pic")
DISPLAY_SUFFIXES = (".png", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mkv", ".mp4", ".mov", ".m2ts", ".ts", ".webm")
SOURCE_SUFFIXES = EXR_SUFFIXES + RGBE_SUFFIXES + DISPLAY_SUFFIXES + VIDEO_SUFFIXES
VIDEO_TRANSFERS = {"smpte2084": "pq", "arib-std-b67": "hlg"}  # ffprobe's color_transfer names
TRANSFERS = ("pq", "hlg")
HLG_DISPLAY_PEAK = 1000.0  # cd/m2: the BT.2100 reference display for HLG's OOTF


@dataclass(frozen=True)
class HDRImage:
    """A source image as linear BT.709-primaries light ``(h, w, 3)`` float32. ``display_referred``:
    the values are cd/m2 of a grade (PQ/HLG files); otherwise relative scene light (EXR, RGBE)."""

    light: np.ndarray
    display_referred: bool


def read_exr(path: str | Path) -> np.ndarray:
    """Scene-linear RGB ``(h, w, 3)`` float32 from an OpenEXR file (Y-only files become grey)."""
    import OpenEXR

    with OpenEXR.File(str(path)) as f:
        channels = f.channels()
        if "RGB" in channels:
            rgb = channels["RGB"].pixels[..., :3]
        elif "RGBA" in channels:
            rgb = channels["RGBA"].pixels[..., :3]
        elif all(c in channels for c in "RGB"):
            rgb = np.stack([channels[c].pixels for c in "RGB"], -1)
        elif "Y" in channels:
            rgb = np.repeat(channels["Y"].pixels[..., None], 3, -1)
        else:
            raise ValueError(f"{path}: no RGB or Y channels (has {', '.join(channels)})")
    rgb = np.nan_to_num(np.asarray(rgb, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(rgb, 0.0, None)


def read_rgbe(path: str | Path) -> np.ndarray:
    """Scene-linear RGB ``(h, w, 3)`` float32 from a Radiance RGBE (``.hdr``) file (OpenCV)."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if bgr is None or bgr.dtype != np.float32 or bgr.ndim != 3:
        raise ValueError(f"{path}: not a readable Radiance RGBE image")
    rgb = np.nan_to_num(bgr[..., 2::-1], nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(np.ascontiguousarray(rgb), 0.0, None)


def read_display_referred(path: str | Path, transfer: str = "pq") -> np.ndarray:
    """BT.709-primaries display light in cd/m2 ``(h, w, 3)`` from a 16-bit BT.2020 PQ or HLG
    PNG/TIFF. Colours outside BT.709 are clipped (the SDR renderings could not show them)."""
    import cv2

    if transfer not in TRANSFERS:
        raise ValueError(f"transfer must be one of {', '.join(TRANSFERS)}, got {transfer!r}")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"{path}: not a readable image")
    if img.dtype != np.uint16:
        raise ValueError(f"{path}: {img.dtype} samples; a PQ/HLG source needs 16 bits per sample "
                         "(an 8-bit file is SDR, not an HDR master)")
    if img.ndim != 3 or img.shape[2] < 3:
        raise ValueError(f"{path}: not an RGB image")
    return signal_to_light(img[..., 2::-1].astype(np.float64) / 65535.0, transfer)  # BGR(A) -> RGB


def signal_to_light(signal: np.ndarray, transfer: str) -> np.ndarray:
    """BT.2020 PQ or HLG R'G'B' ``(..., 3)`` in [0, 1] -> BT.709-primaries display light in cd/m2
    (float32), colours outside BT.709 clipped."""
    from didtv.color.gamut import BT2020_TO_BT709, apply_matrix
    from didtv.color.transfer import hlg_inverse_oetf

    if transfer == "pq":
        light2020 = pq_eotf(signal)
    elif transfer == "hlg":  # BT.2100: scene light E, then the OOTF Fd = Lw * Ys^(gamma - 1) * E, gamma 1.2
        scene = hlg_inverse_oetf(signal)
        ys = np.tensordot(scene, LUMA_2020, axes=([-1], [0]))[..., None]
        light2020 = HLG_DISPLAY_PEAK * np.power(np.maximum(ys, 1e-12), 0.2) * scene
    else:
        raise ValueError(f"transfer must be one of {', '.join(TRANSFERS)}, got {transfer!r}")
    return np.clip(apply_matrix(light2020, BT2020_TO_BT709), 0.0, None).astype(np.float32)


def read_source(path: str | Path, transfer: str = "pq") -> HDRImage:
    """Any supported source by its suffix; ``transfer`` applies to 16-bit PNG/TIFF only."""
    suffix = Path(path).suffix.lower()
    if suffix in EXR_SUFFIXES:
        return HDRImage(read_exr(path), display_referred=False)
    if suffix in RGBE_SUFFIXES:
        return HDRImage(read_rgbe(path), display_referred=False)
    if suffix in DISPLAY_SUFFIXES:
        return HDRImage(read_display_referred(path, transfer), display_referred=True)
    if suffix in VIDEO_SUFFIXES:
        raise ValueError(f"{path}: a video: use video_clips()")
    raise ValueError(f"{path}: unsupported HDR source ({', '.join(SOURCE_SUFFIXES)})")


def find_sources(paths: list[str | Path]) -> list[Path]:
    """Files and folders (searched recursively) -> sorted list of HDR source files."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += [q for q in sorted(p.rglob("*")) if q.suffix.lower() in SOURCE_SUFFIXES]
        elif p.suffix.lower() in SOURCE_SUFFIXES:
            found.append(p)
        else:
            raise ValueError(f"{p}: unsupported HDR source (OpenEXR .exr, Radiance .hdr, 16-bit PQ/HLG "
                             ".png/.tif, PQ/HLG videos, and folders of them are read)")
    return found


def roll_off_highlights(nits: np.ndarray, peak: float = 1000.0) -> np.ndarray:
    """Compress max(R, G, B) with the BT.2390 EETF to ``peak``; ``nits`` is ``(..., 3)``."""
    src_peak = float(max(min(nits.max(), 10000.0), peak * 1.0001))
    return roll_off_max_rgb(nits, source_peak=src_peak, target_peak=peak)


@dataclass(frozen=True)
class Motion:
    """Per-frame camera motion: pixels/frame pan, zoom factor/frame, radians/frame, jitter px."""

    pan: tuple[float, float] = (0.0, 0.0)
    zoom: float = 0.0
    rotation: float = 0.0
    jitter: float = 0.0

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Motion":
        angle = rng.uniform(0, 2 * math.pi)
        speed = rng.choice([0.0, rng.uniform(0.2, 1.5), rng.uniform(1.5, 5.0)], p=[0.15, 0.45, 0.4])
        return cls((speed * math.cos(angle), speed * math.sin(angle)), rng.uniform(-0.01, 0.01),
                   rng.uniform(-0.004, 0.004), rng.uniform(0.0, 0.3))


def render_view(image: np.ndarray, *, size: tuple[int, int], centre: tuple[float, float], span: float,
                motion: Motion, rng: np.random.Generator, frames: int = 7) -> np.ndarray:
    """``frames`` views ``(t, h, w, 3)`` of ``image`` (h_src, w_src, 3) around ``centre`` (x, y in
    source pixels); ``span`` = source pixels covered by the view's width."""
    out_h, out_w = size
    src = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    factor = span / out_w
    if factor > 1.5:  # area-downscale first so bilinear sampling does not alias
        k = int(factor)
        src = F.avg_pool2d(src, k, ceil_mode=True)
        centre = (centre[0] / k, centre[1] / k)
        span = span / k
    _, _, h_src, w_src = src.shape
    r = frames // 2
    ys, xs = torch.meshgrid(torch.arange(out_h, dtype=torch.float32) - (out_h - 1) / 2,
                            torch.arange(out_w, dtype=torch.float32) - (out_w - 1) / 2, indexing="ij")
    grids = []
    for t in range(-r, r + 1):
        scale = span / out_w * (1.0 + motion.zoom * t)
        ang = motion.rotation * t
        jx, jy = rng.normal(0.0, motion.jitter, 2) if motion.jitter > 0 else (0.0, 0.0)
        cx = centre[0] + motion.pan[0] * t * scale + jx
        cy = centre[1] + motion.pan[1] * t * scale + jy
        sx = (math.cos(ang) * xs - math.sin(ang) * ys) * scale + cx
        sy = (math.sin(ang) * xs + math.cos(ang) * ys) * scale + cy
        # grid_sample's normalised coordinates with align_corners=False: pixel centres at +0.5.
        grids.append(torch.stack([(sx + 0.5) / w_src * 2 - 1, (sy + 0.5) / h_src * 2 - 1], -1))
    grid = torch.stack(grids)
    views = F.grid_sample(src.expand(frames, -1, -1, -1), grid, mode="bilinear", padding_mode="border",
                          align_corners=False)
    return views.permute(0, 2, 3, 1).numpy()


MAX_OBJECT_SPEED = 24.0  # output pixels per frame: a bus crossing a 640-wide frame moves ~20


def add_moving_object(views: np.ndarray, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Composite an object moving against the background into ``views`` (t, h, w, 3): a
    soft-edged rectangle of ``image`` texture (another random place of the same picture, at the
    views' scale) that crosses the frame at its own velocity, up to ``MAX_OBJECT_SPEED`` px/frame
    in any direction. Gives the training data what camera motion alone never shows: occlusion
    edges and motion too large to align, which a model must learn to leave out of the fusion
    (ghosting otherwise, docs/model-card.md)."""
    t, h, w, _ = views.shape
    oh = int(round(h * rng.uniform(0.2, 0.5)))
    ow = int(round(w * rng.uniform(0.2, 0.5)))
    h_src, w_src = image.shape[:2]
    span = min(w_src, h_src * ow / oh) * rng.uniform(0.15, 0.5)
    centre = (rng.uniform(span / 2, max(w_src - span / 2, span / 2 + 1e-3)),
              rng.uniform(span * oh / ow / 2, max(h_src - span * oh / ow / 2, span * oh / ow / 2 + 1e-3)))
    texture = render_view(image, size=(oh, ow), centre=centre, span=span, motion=Motion(), rng=rng, frames=1)[0]
    # brightness of its own, so the object is not a copy of the background's level
    texture = texture * 2.0 ** rng.uniform(-1.5, 1.5)
    speed = rng.uniform(2.0, MAX_OBJECT_SPEED)
    angle = rng.uniform(0, 2 * math.pi)
    vx, vy = speed * math.cos(angle), speed * math.sin(angle)
    # centre frame: the object's top-left corner somewhere it is at least half visible
    x0 = rng.uniform(-ow / 2, w - ow / 2)
    y0 = rng.uniform(-oh / 2, h - oh / 2)
    # alpha: 1 inside, a 1.5-pixel linear ramp at the edges; zero outside through grid_sample
    ys, xs = np.mgrid[0:oh, 0:ow].astype(np.float32)
    edge = np.minimum(np.minimum(xs + 0.5, ow - 0.5 - xs), np.minimum(ys + 0.5, oh - 0.5 - ys))
    alpha = np.clip(edge / 1.5, 0.0, 1.0)[..., None]
    layer = torch.from_numpy(np.concatenate([texture * alpha, alpha], -1)).permute(2, 0, 1)[None].float()
    gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    r = t // 2
    grids = []
    for k in range(t):
        ox, oy = x0 + vx * (k - r), y0 + vy * (k - r)
        grids.append(torch.stack([((gx - ox) + 0.5) / ow * 2 - 1, ((gy - oy) + 0.5) / oh * 2 - 1], -1))
    moved = F.grid_sample(layer.expand(t, -1, -1, -1), torch.stack(grids), mode="bilinear",
                          padding_mode="zeros", align_corners=False).permute(0, 2, 3, 1).numpy()
    a = moved[..., 3:]
    return views * (1.0 - a) + moved[..., :3]  # premultiplied texture


def whole_view_size(height: int, width: int, max_width: int) -> tuple[int, int]:
    """(h, w) of a whole-picture view (validation): at most ``max_width`` wide, multiples of 8."""
    out_w = min(max_width, width) // 8 * 8
    return int(round(out_w * height / width / 8)) * 8, out_w


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def video_frame_count(path: str | Path) -> int:
    """Coded frames of a video (container count, or counted packets where the container has none)."""
    from didtv.io.probe import count_frames, probe

    return probe(path).frame_count or count_frames(path)


def video_clips(path: str | Path, rng: np.random.Generator, *, count: int, size: tuple[int, int] | None,
                frames: int = 7, peak: float = 1000.0, max_width: int = 384) -> list[np.ndarray]:
    """``count`` HDR clips ``(t, h, w, 3)`` (BT.709 display light in cd/m2, rolled off to ``peak``)
    of ``frames`` consecutive frames from a PQ or HLG video, in one decode pass. Each clip is a
    random view held still over its frames: the motion is the video's own (objects moving against
    the background, which synthetic camera motion never has). ``size=None`` frames the whole
    picture, downscaled to at most ``max_width`` (validation). The grade's levels are kept."""
    from didtv.io.decode import FrameReader, even_size
    from didtv.io.probe import count_frames, probe

    info = probe(path)
    transfer = VIDEO_TRANSFERS.get(info.transfer or "")
    if transfer is None:
        raise ValueError(f"{path}: not an HDR video (transfer {info.transfer or 'untagged'}; PQ or HLG needed)")
    total = info.frame_count or count_frames(path)
    if total < frames:
        raise ValueError(f"{path}: {total} frames; a clip needs {frames}")
    w_src, h_src = even_size(info.display_width, info.display_height)
    starts = sorted(int(s) for s in rng.choice(total - frames + 1, size=min(count, total - frames + 1), replace=False))
    plans = []
    for start in starts:
        if size is None:
            # centre in pixel-index coordinates: at full size every sample lands on a pixel centre
            view = (whole_view_size(h_src, w_src, max_width), ((w_src - 1) / 2, (h_src - 1) / 2), float(w_src))
        else:
            out_h, out_w = size
            max_span = min(w_src * 0.95, h_src * 0.95 * out_w / out_h)
            span = float(np.exp(rng.uniform(np.log(min(out_w * 0.75, max_span)), np.log(max_span))))
            half_h = span * out_h / out_w / 2
            centre = (rng.uniform(span / 2, max(w_src - span / 2, span / 2 + 1e-3)),
                      rng.uniform(half_h, max(h_src - half_h, half_h + 1e-3)))
            view = ((out_h, out_w), centre, span)
        plans.append((start, view, []))
    last = starts[-1] + frames
    with FrameReader(info) as reader:
        for k, frame in enumerate(reader):
            active = [p for p in plans if p[0] <= k < p[0] + frames]
            if active:
                light = signal_to_light(frame.transpose(1, 2, 0).astype(np.float64), transfer)
                for _, (vsize, centre, span), out in active:
                    out.append(render_view(light, size=vsize, centre=centre, span=span, motion=Motion(),
                                           rng=rng, frames=1)[0])
            if k + 1 >= last:
                break
    clips = [np.stack(out) for _, _, out in plans]
    if any(len(c) != frames for c in clips):
        raise ValueError(f"{path}: decoded fewer frames than its {total} counted")
    return [roll_off_highlights(c, peak) for c in clips]


#: The exposure convention of the HDR targets (docs/training.md, "The exposure convention"):
#: diffuse white at the BT.2408 reference white, 203 cd/m2, and a view's robust log-average
#: luminance at the 18 % grey of that white (average metering, as a camera's).
DIFFUSE_WHITE = REFERENCE_WHITE
GREY = 0.18
DEFAULT_KEY = GREY * DIFFUSE_WHITE  # 36.5 cd/m2
#: ``metering="highkey"``: a view whose brightest surfaces (its 99th luminance percentile) would
#: land below this share of diffuse white under average metering is brightened until they reach
#: it, by at most ``HIGHKEY_MAX_STOPS`` (snow, sand, a white ceiling stay high-key). 0.75 x 203 =
#: 152 cd/m2 is about where the median ``hdri/train`` view puts it already (155), so views of
#: average or low key are left as average metering renders them.
HIGHKEY_FLOOR = 0.75
HIGHKEY_PERCENTILE = 99.0
HIGHKEY_MAX_STOPS = 2.0
METERINGS = ("average", "highkey")


def expose(views: np.ndarray, key_nits: float, metering: str = "average") -> np.ndarray:
    """Scale scene-linear ``views`` (t, h, w, 3) to display light in cd/m2 from the centre frame.

    ``average``: its robust log-average luminance (the darkest and brightest 1 % ignored) becomes
    ``key_nits``. ``highkey``: the same, then brightened where the view's 99th luminance
    percentile sits below ``HIGHKEY_FLOOR`` of diffuse white (scaled with ``key_nits`` /
    :data:`DEFAULT_KEY`, so a random exposure grade still applies), by at most
    ``HIGHKEY_MAX_STOPS``; a view already reaching it is unchanged."""
    if metering not in METERINGS:
        raise ValueError(f"metering must be one of {', '.join(METERINGS)}, got {metering!r}")
    centre = views[len(views) // 2]
    y = centre @ LUMA_709
    lo, hi = np.percentile(y, [1, 99])
    yc = np.clip(y, max(lo, 1e-6), max(hi, 2e-6))
    log_avg = float(np.exp(np.mean(np.log(yc))))
    gain = key_nits / max(log_avg, 1e-9)
    if metering == "highkey":
        bright = float(np.percentile(y, HIGHKEY_PERCENTILE)) * gain
        floor = HIGHKEY_FLOOR * DIFFUSE_WHITE * key_nits / DEFAULT_KEY
        gain *= float(np.clip(floor / max(bright, 1e-9), 1.0, 2.0 ** HIGHKEY_MAX_STOPS))
    return views * gain


def hdr_clip(image: np.ndarray, rng: np.random.Generator, *, size: tuple[int, int] = (192, 192),
             panorama: bool = True, peak: float = 1000.0, key_range: tuple[float, float] = (-1.0, 1.0),
             whole: bool = False, frames: int = 7, display_referred: bool = False,
             moving_object: bool = False, metering: str = "average") -> np.ndarray:
    """One display-referred HDR clip ``(t, h, w, 3)``: BT.709-primaries linear light in cd/m2,
    at most ``peak``. ``whole=True`` frames the entire image (validation) instead of a random view.
    ``display_referred``: ``image`` is already in cd/m2 (a graded PQ/HLG source): its exposure is
    kept instead of being anchored. ``moving_object``: add one object that moves against the
    background (:func:`add_moving_object`). ``metering``: how a scene-linear view is exposed
    (:func:`expose`)."""
    h_src, w_src = image.shape[:2]
    out_h, out_w = size
    if whole:
        span = w_src * 0.96
        centre = (w_src / 2, h_src / 2)
        motion = Motion(tuple(rng.uniform(-0.5, 0.5, 2)), 0.0, 0.0, 0.1)
    else:
        max_span = min(w_src * (0.5 if panorama else 0.95), h_src * (0.5 if panorama else 0.95) * out_w / out_h)
        min_span = min(out_w * 0.75, max_span)
        span = float(np.exp(rng.uniform(np.log(min_span), np.log(max_span))))
        half_h = span * out_h / out_w / 2
        y_lo, y_hi = (0.25 * h_src, 0.75 * h_src) if panorama else (half_h, h_src - half_h)
        centre = (rng.uniform(span / 2, max(w_src - span / 2, span / 2 + 1e-3)),
                  rng.uniform(min(y_lo, y_hi), max(y_lo, y_hi)))
        motion = Motion.random(rng)
    views = render_view(image, size=size, centre=centre, span=span, motion=motion, rng=rng, frames=frames)
    if moving_object:
        views = add_moving_object(views, image, rng)
    key = DEFAULT_KEY * 2.0 ** rng.uniform(*key_range)
    return roll_off_highlights(views if display_referred else expose(views, key, metering), peak)
