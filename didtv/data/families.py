"""Continuous SDR operator families: tone mappers whose parameters are drawn at random per clip.

The six fixed operators of :mod:`didtv.data.degrade` are six points; real SDR comes from a
continuum of curves (docs/training.md, "Continuous operator families"). Each family here has

- ``draw(rng) -> params``: its parameters, drawn from ``rng`` (the same generator state gives the
  same parameters), as a JSON-ready dict that ``data build`` writes into the manifest;
- ``apply(nits, params) -> SDR``: HDR display light (BT.709 primaries, cd/m2, ``(..., 3)``) to
  SDR relative linear light (1 = SDR white, BT.709), the convention of the fixed operators:
  :func:`render_family_sdr` then clips to the gamut and SDR white and BT.1886-encodes to 8 bits
  (:func:`didtv.data.degrade.encode_sdr`).

Exposure is part of every family. Input is measured in units of the HDR reference white
(203 cd/m2, ``x = nits / 203``). Most families draw ``white_level``, the SDR linear level that
reference-white grey lands on, and solve their exposure gain for it (:func:`_solve_gain`); the
BT.2390 and BT.2446 variants draw a gain around the standard's own placement instead.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from didtv.color.tonemap import eetf_bt2390_light
from didtv.color.transfer import REFERENCE_WHITE
from didtv.data.degrade import BT2446C_K, _scale_by_luminance, encode_sdr, op_bt2446a, op_bt2446c
from didtv.data.sources import LUMA_709

def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _log_u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _solve_gain(response: Callable[[float], float], target: float) -> float:
    """The exposure gain g with ``response(g) = target`` (``response`` increasing in g):
    bisection on log2 g in [-12, 12]."""
    lo, hi = -12.0, 12.0
    for _ in range(48):
        mid = (lo + hi) / 2
        if response(2.0 ** mid) < target:
            lo = mid
        else:
            hi = mid
    return float(2.0 ** ((lo + hi) / 2))


def _expose(p: dict, response: Callable[[float], float]) -> dict:
    """Set ``p["gain"]`` so reference white lands on ``p["white_level"]``; where the curve cannot
    reach it (a white point close to reference white), ``white_level`` becomes what it reaches."""
    p["gain"] = _solve_gain(response, p["white_level"])
    p["white_level"] = float(response(p["gain"]))
    return p


def _on(rgb: np.ndarray, curve: Callable[[np.ndarray], np.ndarray], mode: str) -> np.ndarray:
    """``curve`` per channel, on luminance (channels scaled by the same factor), or on max(R,G,B)."""
    if mode == "channel":
        return curve(rgb)
    if mode == "luminance":
        return _scale_by_luminance(rgb, curve(rgb @ LUMA_709))
    m = rgb.max(axis=-1)
    return rgb * np.where(m > 1e-9, curve(m) / np.maximum(m, 1e-9), 0.0)[..., None]


# -- filmic: Hable / ACES-like / AgX-like ---------------------------------------------------------

def _filmic_curve(p: dict) -> Callable[[np.ndarray], np.ndarray]:
    """The shape alone, on exposed input x (1 = reference white): increasing, 0 at 0, <= ~1."""
    if p["shape"] == "hable":
        a, b, c, d, e, f, w = (p[k] for k in ("a", "b", "c", "d", "e", "f", "white"))

        def h(x):
            return (x * (a * x + c * b) + d * e) / (x * (a * x + b) + d * f) - e / f

        return lambda x: np.minimum(h(np.maximum(x, 0.0)) / h(np.float64(w)), 1.0)
    if p["shape"] == "aces":
        a, b, c, d, e, w = (p[k] for k in ("a", "b", "c", "d", "e", "white"))

        def r(x):
            return x * (a * x + b) / (x * (c * x + d) + e)

        return lambda x: np.minimum(r(np.maximum(x, 0.0)) / r(np.float64(w)), 1.0)
    lo, hi, k, gamma = p["min_ev"], p["max_ev"], p["contrast"], p["gamma"]
    pivot = -lo / (hi - lo) + p["pivot_shift"]  # where mid grey (0.18) sits on the log axis

    def agx(x):
        u = np.clip((np.log2(np.maximum(x, 1e-12) / 0.18) - lo) / (hi - lo), 0.0, 1.0)
        s0, s1 = 1 / (1 + np.exp(k * pivot)), 1 / (1 + np.exp(-k * (1 - pivot)))
        return ((1 / (1 + np.exp(-k * (u - pivot))) - s0) / (s1 - s0)) ** gamma

    return agx


def draw_filmic(rng):
    shape = str(rng.choice(["hable", "aces", "agx"]))
    p: dict = {"shape": shape, "mode": str(rng.choice(["channel", "luminance"], p=[0.6, 0.4])),
                    "white_level": _log_u(rng, 0.3, 0.85)}
    if shape == "hable":  # shoulder A, linear B and C, toe D/E/F, white point W (in x)
        p.update(a=_u(rng, 0.1, 0.3), b=_u(rng, 0.3, 0.6), c=_u(rng, 0.05, 0.2), d=_u(rng, 0.1, 0.3),
                 e=_u(rng, 0.005, 0.03), f=_u(rng, 0.2, 0.4), white=_log_u(rng, 4.0, 40.0))
    elif shape == "aces":  # Narkowicz's fit with jittered toe (b, e) and shoulder (a, c, d)
        p.update(a=2.51 * _u(rng, 0.85, 1.15), b=0.03 * _log_u(rng, 0.3, 3.0), c=2.43 * _u(rng, 0.9, 1.1),
                 d=0.59 * _u(rng, 0.8, 1.2), e=0.14 * _log_u(rng, 0.6, 1.6), white=_log_u(rng, 4.0, 40.0))
    else:  # log encoding between min_ev and max_ev stops around mid grey, a sigmoid, a display power
        p.update(min_ev=_u(rng, -12.5, -8.0), max_ev=_u(rng, 2.5, 6.5), contrast=_u(rng, 4.0, 9.0),
                 pivot_shift=_u(rng, -0.05, 0.05), gamma=_u(rng, 2.0, 2.4))
    curve = _filmic_curve(p)
    return _expose(p, lambda g: float(curve(np.float64(g))))


def apply_filmic(nits, p):
    curve = _filmic_curve(p)
    return _on(nits / REFERENCE_WHITE * p["gain"], curve, p["mode"])


# -- camera S-curve with knee and clip ------------------------------------------------------------

def _scurve(p: dict) -> Callable[[np.ndarray], np.ndarray]:
    knee, slope, contrast = p["knee"], p["knee_slope"], p["contrast"]

    def f(x):
        lin = np.clip(np.where(x < knee, x, knee + (x - knee) * slope), 0.0, 1.0)  # knee, then clip
        v = lin ** (1 / 2.4)
        v = v + contrast * (v * v * (3 - 2 * v) - v)  # S-curve in the encoded domain (smoothstep mix)
        return v ** 2.4

    return f


def draw_scurve(rng):
    p: dict = {"knee": _u(rng, 0.6, 0.95), "knee_slope": _log_u(rng, 0.03, 0.5),
                    "contrast": _u(rng, 0.0, 0.6), "white_level": _u(rng, 0.45, 0.95)}
    f = _scurve(p)
    return _expose(p, lambda g: float(f(np.float64(g))))


def apply_scurve(nits, p):
    return _scurve(p)(nits / REFERENCE_WHITE * p["gain"])  # per channel, as a camera's curve


# -- Reinhard with a random white point -----------------------------------------------------------

def _reinhard(x, lw):
    return x * (1.0 + x / (lw * lw)) / (1.0 + x)


def draw_reinhard(rng):
    p: dict = {"mode": str(rng.choice(["luminance", "channel"], p=[0.7, 0.3])),
                    "white_nits": _log_u(rng, 300.0, 5000.0), "white_level": _log_u(rng, 0.3, 0.8)}
    lw = p["white_nits"] / REFERENCE_WHITE
    return _expose(p, lambda g: float(_reinhard(np.float64(g), lw * g)))


def apply_reinhard(nits, p):
    lw = p["white_nits"] / REFERENCE_WHITE * p["gain"]
    return _on(nits / REFERENCE_WHITE * p["gain"], lambda x: _reinhard(x, lw), p["mode"])


# -- BT.2390 EETF variants ------------------------------------------------------------------------

def draw_bt2390(rng):
    return {"source_peak": _log_u(rng, 600.0, 4000.0), "target_peak": _log_u(rng, 100.0, 300.0),
            "gain": 2.0 ** _u(rng, -1.0, 0.5), "mode": str(rng.choice(["maxrgb", "luminance", "channel"]))}


def apply_bt2390(nits, p):
    tp = p["target_peak"]
    curve = lambda v: eetf_bt2390_light(v, source_peak=p["source_peak"], target_peak=tp) / tp  # noqa: E731
    return _on(nits * p["gain"], curve, p["mode"])


# -- BT.2446 Method A / C variants ----------------------------------------------------------------

def draw_bt2446(rng):
    if rng.random() < 0.5:
        return {"method": "a", "peak": _log_u(rng, 600.0, 2000.0), "gain": 2.0 ** _u(rng, -0.25, 0.75)}
    k1, y_ip_sdr, k3 = _u(rng, 0.7, 0.95), _u(rng, 45.0, 65.0), _u(rng, 0.7, 0.88)
    y_ip = y_ip_sdr / k1
    k2 = k1 * y_ip * (1 - k3)  # slope continuity at the inflection point
    k4 = y_ip_sdr - k2 * np.log(1 - k3)  # value continuity
    return {"method": "c", "k": [k1, float(k2), k3, float(k4)], "y_ip_sdr": y_ip_sdr,
            "crosstalk": _u(rng, 0.0, 0.25), "gain": 2.0 ** _u(rng, -1.0, 0.0)}


def _crosstalk(a: float) -> np.ndarray:
    return np.array([[1 - 2 * a, a, a], [a, 1 - 2 * a, a], [a, a, 1 - 2 * a]])


def apply_bt2446(nits, p):
    x = nits * p["gain"]
    if p["method"] == "a":
        return op_bt2446a(x, peak=p["peak"])
    m = _crosstalk(p["crosstalk"])  # BT.2446 C: crosstalk before the curve, its inverse after
    out = op_bt2446c(x @ m.T, k=tuple(p["k"]), y_ip_sdr=p["y_ip_sdr"])
    return out @ np.linalg.inv(m).T


# -- a simple local (spatially varying) tone mapper -----------------------------------------------

def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``(..., h, w)`` over its last two axes (reflect padding, separable); wide
    blurs run on an area-downscaled copy (sigma >= 4 px there) and are upsampled bilinearly."""
    h, w = img.shape[-2:]
    x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float64)).reshape(-1, 1, h, w)
    step = max(1, int(sigma / 4))
    if step > 1:
        x = F.avg_pool2d(x, step, ceil_mode=True)
    s = sigma / step
    r = max(1, min(int(3 * s), min(x.shape[-2:]) - 1))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float64) ** 2 / (2 * s * s))
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
    if step > 1:
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return x.reshape(img.shape).numpy()


def draw_local(rng):
    p: dict = {"sigma": _log_u(rng, 0.02, 0.15), "compression": _u(rng, 0.35, 0.8),
                    "detail": _u(rng, 0.9, 1.4), "shoulder": _log_u(rng, 2.0, 10.0),
                    "white_level": _log_u(rng, 0.35, 0.85)}
    return _expose(p, lambda g: float(_reinhard(np.float64(g), p["shoulder"])))


def apply_local(nits, p):
    """Base/detail split of log luminance: the base (Gaussian-blurred, sigma a share of the
    picture's shorter side) is compressed around reference white, the detail kept or boosted.
    An array without two image axes (a ramp) is treated as flat: the global curve."""
    x = nits / REFERENCE_WHITE
    y = np.maximum(x @ LUMA_709, 1e-6)
    log_y = np.log(y)
    if nits.ndim >= 3 and min(nits.shape[-3:-1]) >= 4:
        base = _blur(log_y, p["sigma"] * min(nits.shape[-3:-1]))
    else:
        base = log_y
    new = p["compression"] * base + p["detail"] * (log_y - base)
    yd = _reinhard(np.exp(new) * p["gain"], p["shoulder"])
    return _scale_by_luminance(x, yd)


# -- gamut: clip vs soft compression --------------------------------------------------------------

def draw_gamut(rng):
    p: dict = {"handling": str(rng.choice(["clip", "compress"])), "saturation": _u(rng, 1.0, 1.5),
                    "threshold": _u(rng, 0.6, 0.95), "white_nits": _log_u(rng, 500.0, 5000.0),
                    "white_level": _log_u(rng, 0.4, 0.85)}
    lw = p["white_nits"] / REFERENCE_WHITE
    return _expose(p, lambda g: float(_reinhard(np.float64(g), lw * g)))


def _compress(d: np.ndarray, t: float) -> np.ndarray:
    """Distances beyond ``t`` rolled off so that 1 (the gamut boundary) is reached only at infinity."""
    return np.where(d <= t, d, t + (1 - t) * np.tanh((d - t) / (1 - t)))


def apply_gamut(nits, p):
    """A luminance tone curve, which pushes bright saturated colours out of [0, 1]; a saturation
    boost; then either a per-channel clip (hue shifts, as most SDR) or a soft compression of the
    chroma towards the luminance (no channel leaves [0, 1], hue kept)."""
    lw = p["white_nits"] / REFERENCE_WHITE * p["gain"]
    rgb = _on(nits / REFERENCE_WHITE * p["gain"], lambda x: _reinhard(x, lw), "luminance")
    y = np.minimum(rgb @ LUMA_709, 1.0)[..., None]
    rgb = y + p["saturation"] * (rgb - y)
    if p["handling"] == "clip":
        return np.clip(rgb, 0.0, 1.0)
    c = rgb - y
    room = np.where(c > 0, 1.0 - y, y)  # distance to the [0, 1] boundary per channel
    d = (np.abs(c) / np.maximum(room, 1e-9)).max(axis=-1, keepdims=True)  # 1 = on the boundary
    scale = np.where(d > 1e-9, _compress(d, p["threshold"]) / np.maximum(d, 1e-9), 1.0)
    return np.clip(y + c * scale, 0.0, 1.0)


# -- a saturation and white-balance grade ---------------------------------------------------------

def draw_grade(rng):
    temp, tint = _u(rng, -0.3, 0.3), _u(rng, -0.12, 0.12)
    gains = np.array([2.0 ** temp, 2.0 ** tint, 2.0 ** -temp])
    gains = gains / (gains @ LUMA_709)  # white balance that keeps the luminance of grey
    p: dict = {"temperature": temp, "tint": tint, "wb_gains": [float(g) for g in gains],
                    "saturation": _log_u(rng, 0.6, 1.6), "gamma": _u(rng, 0.85, 1.15),
                    "white_level": _log_u(rng, 0.35, 0.9)}
    return _expose(p, lambda g: float(_filmic_curve(_HABLE)(np.float64(g))))


_HABLE = {"shape": "hable", "a": 0.15, "b": 0.50, "c": 0.10, "d": 0.20, "e": 0.02, "f": 0.30, "white": 11.2}


def apply_grade(nits, p):
    """Hable's curve per channel at the drawn exposure, then white balance, saturation and a gamma."""
    lin = _filmic_curve(_HABLE)(nits / REFERENCE_WHITE * p["gain"]) * np.array(p["wb_gains"])
    y = (lin @ LUMA_709)[..., None]
    lin = np.maximum(y + p["saturation"] * (lin - y), 0.0)
    return np.minimum(lin, 1.0) ** p["gamma"]


# -- the registry ---------------------------------------------------------------------------------

class Family(NamedTuple):
    draw: Callable[[np.random.Generator], dict]
    apply: Callable[[np.ndarray, dict], np.ndarray]
    summary: str


FAMILIES: dict[str, Family] = {
    "filmic": Family(draw_filmic, apply_filmic, "Hable / ACES-like / AgX-like, per channel or on luminance"),
    "scurve": Family(draw_scurve, apply_scurve, "camera: knee, clip and an S-curve, per channel"),
    "reinhard": Family(draw_reinhard, apply_reinhard, "extended Reinhard, random white point"),
    "bt2390": Family(draw_bt2390, apply_bt2390, "BT.2390 EETF, random source/target peaks"),
    "bt2446": Family(draw_bt2446, apply_bt2446, "BT.2446 Method A or C, random parameters"),
    "local": Family(draw_local, apply_local, "local: blurred log-luminance base compressed, detail kept"),
    "gamut": Family(draw_gamut, apply_gamut, "saturated tone curve, then gamut clip or soft compression"),
    "grade": Family(draw_grade, apply_grade, "random white balance, saturation and gamma on a filmic curve"),
}


def check_families(names) -> list[str]:
    names = list(names)
    unknown = [n for n in names if n not in FAMILIES]
    if unknown or not names:
        raise ValueError(f"unknown or no operator families {unknown}; allowed: {', '.join(FAMILIES)}")
    return names


def draw_params(family: str, rng: np.random.Generator) -> dict:
    return FAMILIES[check_families([family])[0]].draw(rng)


def tone_map(nits: np.ndarray, family: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A family as one function of (nits, rng): SDR relative linear light and the drawn parameters."""
    params = draw_params(family, rng)
    return FAMILIES[family].apply(nits, params), params


def render_family_sdr(nits: np.ndarray, family: str, params: dict) -> np.ndarray:
    """HDR light ``(..., 3)`` cd/m2 -> clean 8-bit SDR BT.709 R'G'B' codes, as :func:`render_sdr`."""
    return encode_sdr(FAMILIES[check_families([family])[0]].apply(nits, params))
