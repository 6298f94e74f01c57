"""SDR renderings of display-referred HDR (a randomised operator family) and real codec damage.

Every operator maps HDR display light (BT.709 primaries, cd/m2, ``(..., 3)``) to SDR relative
linear light in [0, 1] (1 = SDR peak white) in BT.709; :func:`render_sdr` then applies random
saturation, clips to the BT.709 gamut and encodes with the BT.1886 inverse EOTF to 8 bits.
``exposure`` scales the HDR light before the operator (a random grade).

The family (docs/training.md says why each is there):

- ``hardclip``: a camera-like curve: HDR reference white (203 cd/m2) to SDR white, hard clip.
- ``reinhard``: extended Reinhard on luminance, white point at the 1000 cd/m2 peak.
- ``hable``: Hable's filmic curve ("Uncharted 2"), per channel, exposure bias 2, W = 11.2.
- ``bt2390``: BT.2390 EETF from the 1000 cd/m2 master to a 100 cd/m2 display, then clip.
- ``bt2446a``: BT.2446 Method A (the broadcast HDR->SDR conversion), with its chroma correction.
- ``bt2446c``: BT.2446 Method C (luminance curve with a logarithmic shoulder), no crosstalk.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from didtv.color.gamut import BT709_TO_BT2020, BT2020_TO_BT709, LUMA, apply_matrix, rgb_to_ycbcr_matrix
from didtv.color.tonemap import roll_off_max_rgb
from didtv.color.transfer import REFERENCE_WHITE
from didtv.data.sources import LUMA_709

OPERATORS = ("hardclip", "reinhard", "hable", "bt2390", "bt2446a", "bt2446c")
CODECS = ("x265", "x264")
QPS = (27, 32, 37, 42)


def _scale_by_luminance(rgb: np.ndarray, y_new: np.ndarray) -> np.ndarray:
    y = rgb @ LUMA_709
    return rgb * np.where(y > 1e-9, y_new / np.maximum(y, 1e-9), 0.0)[..., None]


def op_hardclip(nits: np.ndarray) -> np.ndarray:
    return np.clip(nits / REFERENCE_WHITE, 0.0, 1.0)


def op_reinhard(nits: np.ndarray, peak: float = 1000.0) -> np.ndarray:
    x = nits / REFERENCE_WHITE * 2.0  # key: reference white lands at ~0.67 of SDR white
    lw = peak / REFERENCE_WHITE * 2.0
    y = x @ LUMA_709
    yd = y * (1.0 + y / (lw * lw)) / (1.0 + y)
    return _scale_by_luminance(x, yd)


def _hable(x: np.ndarray) -> np.ndarray:
    a, b, c, d, e, f = 0.15, 0.50, 0.10, 0.20, 0.02, 0.30
    return (x * (a * x + c * b) + d * e) / (x * (a * x + b) + d * f) - e / f


def op_hable(nits: np.ndarray) -> np.ndarray:
    x = nits / REFERENCE_WHITE * 2.0  # exposure bias 2
    return _hable(x * 2.0) / _hable(np.array(11.2))


def op_bt2390(nits: np.ndarray, peak: float = 1000.0) -> np.ndarray:
    out = roll_off_max_rgb(nits, source_peak=peak, target_peak=100.0)
    return np.clip(out / 100.0, 0.0, 1.0)


def op_bt2446a(nits: np.ndarray, peak: float = 1000.0) -> np.ndarray:
    """Report ITU-R BT.2446-1 Method A, HDR (BT.2020, 0..peak) -> SDR (100 cd/m2)."""
    kr, kb = LUMA["bt2020"]
    rgb = np.clip(apply_matrix(nits / peak, BT709_TO_BT2020), 0.0, 1.0) ** (1 / 2.4)
    y = rgb @ np.array([kr, 1 - kr - kb, kb])
    cb = (rgb[..., 2] - y) / (2 * (1 - kb))
    cr = (rgb[..., 0] - y) / (2 * (1 - kr))
    rho_h = 1 + 32 * (peak / 10000) ** (1 / 2.4)
    rho_s = 1 + 32 * (100 / 10000) ** (1 / 2.4)
    yp = np.log(1 + (rho_h - 1) * y) / np.log(rho_h)
    yc = np.where(yp <= 0.7399, 1.0770 * yp,
                  np.where(yp <= 0.9909, -1.1510 * yp ** 2 + 2.7811 * yp - 0.6302, 0.5 * yp + 0.5))
    ys = (rho_s ** yc - 1) / (rho_s - 1)
    f = np.where(y > 0, ys / (1.1 * np.maximum(y, 1e-9)), 0.0)
    cb_t, cr_t = f * cb, f * cr
    yt = ys - np.maximum(0.1 * cr_t, 0.0)
    r = yt + 2 * (1 - kr) * cr_t
    b = yt + 2 * (1 - kb) * cb_t
    g = (yt - kr * r - kb * b) / (1 - kr - kb)
    sdr2020 = np.clip(np.stack([r, g, b], -1), 0.0, 1.0) ** 2.4
    return np.clip(apply_matrix(sdr2020, BT2020_TO_BT709), 0.0, 1.0)


BT2446C_K = (0.83802, 15.09968, 0.74204, 78.99439)  # k1..k4 of BT.2446-1 Method C


def op_bt2446c(nits: np.ndarray, k: tuple[float, float, float, float] = BT2446C_K,
               y_ip_sdr: float = 58.5) -> np.ndarray:
    """BT.2446 Method C's luminance curve: linear ``k1 * Y`` up to the inflection point (SDR
    ``y_ip_sdr`` cd/m2), logarithmic above; SDR 100 cd/m2 = 1, clipped."""
    k1, k2, k3, k4 = k
    y_ip = y_ip_sdr / k1
    y = nits @ LUMA_709
    ys = np.where(y <= y_ip, k1 * y, k2 * np.log(np.maximum(y / y_ip - k3, 1e-9)) + k4)
    return np.clip(_scale_by_luminance(nits, ys) / 100.0, 0.0, 1.0)


_OPS = {"hardclip": op_hardclip, "reinhard": op_reinhard, "hable": op_hable, "bt2390": op_bt2390,
        "bt2446a": op_bt2446a, "bt2446c": op_bt2446c}


def render_sdr(nits: np.ndarray, operator: str, *, exposure: float = 1.0, saturation: float = 1.0) -> np.ndarray:
    """HDR light ``(..., 3)`` cd/m2 -> clean 8-bit SDR BT.709 R'G'B' codes (uint8, BT.1886 encoded)."""
    try:
        op = _OPS[operator]
    except KeyError:
        raise ValueError(f"unknown SDR operator {operator!r}; allowed: {', '.join(OPERATORS)}") from None
    lin = op(nits * exposure)
    if saturation != 1.0:
        y = (lin @ LUMA_709)[..., None]
        lin = y + saturation * (lin - y)
    return encode_sdr(lin)


def encode_sdr(lin: np.ndarray) -> np.ndarray:
    """SDR relative linear light (1 = SDR white) -> 8-bit BT.1886 R'G'B' codes, after the gamut
    clip to BT.709 and to SDR white."""
    lin = np.clip(lin, 0.0, 1.0)
    return np.rint(lin ** (1 / 2.4) * 255.0).astype(np.uint8)


def rgb8_to_yuv420p(rgb8: np.ndarray) -> bytes:
    """``(t, h, w, 3)`` uint8 R'G'B' -> raw yuv420p bytes, BT.709 limited range, exact matrix,
    chroma averaged over 2x2 (centre-sited; FFmpeg assumes left siting: a quarter-pixel shift
    of chroma, far below the codec damage)."""
    t, h, w, _ = rgb8.shape
    ycc = apply_matrix(rgb8.astype(np.float64) / 255.0, rgb_to_ycbcr_matrix("bt709"))
    y = np.clip(np.rint(16 + 219 * ycc[..., 0]), 0, 255).astype(np.uint8)
    c = ycc[..., 1:].reshape(t, h // 2, 2, w // 2, 2, 2).mean(axis=(2, 4))
    c = np.clip(np.rint(128 + 224 * c), 0, 255).astype(np.uint8)
    out = bytearray()
    for k in range(t):
        out += y[k].tobytes() + c[k, ..., 0].tobytes() + c[k, ..., 1].tobytes()
    return bytes(out)


def codec_damage(rgb8: np.ndarray, *, codec: str = "x265", qp: int = 32, workdir: str | None = None) -> np.ndarray:
    """Encode ``(t, h, w, 3)`` uint8 SDR with x265/x264 at a fixed QP and decode it back through
    the same path ``didtv convert`` uses (:class:`didtv.io.decode.FrameReader`).

    Returns float32 ``(t, 3, h, w)`` R'G'B' in [0, 1].
    """
    from didtv.io.decode import FrameReader
    from didtv.io.ffmpeg import FFMPEG_FLAGS, run, tool_path
    from didtv.io.probe import probe

    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; allowed: {', '.join(CODECS)}")
    t, h, w, _ = rgb8.shape
    enc = (["-c:v", "libx265", "-preset", "faster", "-x265-params", f"qp={qp}:log-level=error"]
           if codec == "x265" else ["-c:v", "libx264", "-preset", "faster", "-qp", str(qp)])
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        raw, mkv = Path(tmp) / "in.yuv", Path(tmp) / "damaged.mkv"
        raw.write_bytes(rgb8_to_yuv420p(rgb8))
        run([tool_path("ffmpeg"), *FFMPEG_FLAGS, "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p",
             "-s", f"{w}x{h}", "-framerate", "25", "-i", str(raw), *enc, "-pix_fmt", "yuv420p",
             "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
             "-color_range", "tv", str(mkv)], f"{codec} damage")
        with FrameReader(probe(mkv)) as reader:
            frames = np.stack(list(reader))
    if frames.shape != (t, 3, h, w):
        raise RuntimeError(f"codec round trip returned {frames.shape}, expected {(t, 3, h, w)}")
    return frames
