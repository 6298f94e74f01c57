"""Presets: model, tone targets, encoder settings, mastering display and output size, from TOML.

A preset is chosen by name (a file ``NAME.toml`` shipped in the package's ``didtv/presets/``
folder, which ``didtv presets --path`` prints) or by path. CLI flags override
single fields (:meth:`Preset.with_overrides`). The schema is strict: an unknown table or key, a
value of the wrong type or outside its range is a :class:`PresetError` naming the key and what
is allowed. Every key, with its unit and default::

    description = "one line"            # shown by `didtv presets`
    model = "auto"                      # "auto", a registered model (`didtv models`), or a .safetensors file

    [tone]                              # targets for models that take them (see below)
    diffuse_white = 203.0               # cd/m2 that SDR reference (100%) white becomes
    peak = 1000.0                       # cd/m2, brightest the grade may go (default and upper limit:
                                        # mastering.max_luminance)

    [encoder]
    crf = 18                            # x265 constant rate factor, 0..51 (ignored when lossless)
    x265_preset = "medium"              # ultrafast .. placebo
    lossless = false                    # x265 lossless (of the 10-bit 4:2:0 picture)
    vbv_maxrate = 20000                 # kbit/s; with vbv_bufsize: capped CRF (no cap by default)
    vbv_bufsize = 40000                 # kbit
    keyint_seconds = 2.0                # maximum keyframe interval in seconds (x265 default: 250 frames)
    closed_gop = true                   # x265 open-gop=0 (segmenters cut at every keyframe)
    x265_params = ["aq-mode=3"]         # extra x265 key=value params (not the ones didtv sets)

    [mastering]                         # SMPTE ST 2086 mastering display, written as HDR10 metadata
    primaries = "p3-d65"                # p3-d65 | bt2020 | bt709
    max_luminance = 1000.0              # cd/m2
    min_luminance = 0.0001              # cd/m2

    [output]
    max_height = 540                    # downscale taller pictures to this height (even, aspect kept)

What the tone targets do. They reach a model only through keyword arguments its constructor
declares (``white`` <- ``diffuse_white``, ``peak`` <- ``peak``), and only for analytic models
(registered without weights): a learned network's behaviour is fixed by its training, so learned
models ignore both (a future model that can honour them must declare the keyword *and* be
analytic, or this module must learn about it). Today:

- ``bt2408`` takes ``white``: SDR 100% maps to ``diffuse_white`` cd/m2 (BT.2408 says 203). Its
  output never exceeds ``diffuse_white``, so ``peak`` has nothing to do.
- ``bt2446a`` takes neither: BT.2446 Method A is defined for a 1000 cd/m2 peak with SDR white at
  1000 cd/m2 and 69% grey (code 175) at 203 cd/m2.
- ``tiny`` / ``full`` (DIDNet) ignore both.

``peak`` is checked against the mastering display (it may not exceed ``max_luminance``) and is
used by ``didtv preview`` as the source peak of its viewing tone map; it never clips the output.
"""

from __future__ import annotations

import inspect
import math
import tomllib
from importlib import resources
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from didtv.color.hdr10 import PRIMARIES, MasteringDisplay
from didtv.errors import DidtvError
from didtv.io.encode import X265_PRESETS, EncodeSettings

DEFAULT_PRESET = "hdr10-1000"
#: Where presets are looked up by name, first folder first. The shipped ones are package data
#: (``didtv/presets/*.toml``), so a wheel, an sdist and a checkout all find them.
PRESET_DIRS = (Path(str(resources.files("didtv") / "presets")),)

_NUMBER = ((int, float), "a number")
_INT = ((int,), "an integer")
_STR = ((str,), "a string")
_BOOL = ((bool,), "true or false")
_STR_LIST = ((list,), "a list of strings")

#: table -> key -> (accepted Python types, what to call them in an error). "" is the top level.
_SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], str]]] = {
    "": {"description": _STR, "model": _STR},
    "tone": {"diffuse_white": _NUMBER, "peak": _NUMBER},
    "encoder": {"crf": _NUMBER, "x265_preset": _STR, "lossless": _BOOL, "vbv_maxrate": _INT,
                "vbv_bufsize": _INT, "keyint_seconds": _NUMBER, "closed_gop": _BOOL,
                "x265_params": _STR_LIST},
    "mastering": {"primaries": _STR, "max_luminance": _NUMBER, "min_luminance": _NUMBER},
    "output": {"max_height": _INT},
}

#: x265 parameters didtv sets itself (HDR10 signalling, rate control from the keys above):
#: a preset's ``x265_params`` may not set them.
RESERVED_X265 = frozenset({
    "hdr10", "hdr10-opt", "repeat-headers", "colorprim", "transfer", "colormatrix", "range",
    "chromaloc", "master-display", "max-cll", "log-level", "lossless", "crf", "qp", "bitrate",
    "vbv-maxrate", "vbv-bufsize", "keyint", "open-gop", "input-depth", "output-depth", "input-csp",
    "input-res", "fps", "profile",
})

#: Model constructor keyword -> the ToneTargets field that feeds it.
TONE_KEYWORDS = {"white": "diffuse_white", "peak": "peak"}

MIN_MAX_HEIGHT = 16


class PresetError(DidtvError):
    exit_code = 2


@dataclass(frozen=True)
class ToneTargets:
    """Luminance targets in cd/m2 (see the module docstring for what each model does with them)."""

    diffuse_white: float = 203.0
    peak: float = 1000.0

    def model_keywords(self, accepted) -> dict[str, float]:
        """The constructor keywords (of those in ``accepted``) these targets feed."""
        return {kw: float(getattr(self, attr)) for kw, attr in TONE_KEYWORDS.items() if kw in accepted}


@dataclass(frozen=True)
class Preset:
    """A complete conversion recipe. ``encode`` holds everything x265 needs except the
    keyframe interval, which depends on the frame rate (:meth:`encode_for`)."""

    name: str
    description: str = ""
    model: str = "auto"
    encode: EncodeSettings = EncodeSettings()
    tone: ToneTargets = ToneTargets()
    keyint_seconds: float | None = None
    max_height: int | None = None
    path: Path | None = field(default=None, compare=False)

    def with_overrides(self, *, model: str | None = None, crf: float | None = None,
                       x265_preset: str | None = None, lossless: bool | None = None,
                       max_height: int | None = None) -> "Preset":
        """A copy with the given fields replaced (``None`` keeps the preset's value)."""
        enc = self.encode
        try:
            enc = replace(enc, **{k: v for k, v in (("crf", crf), ("preset", x265_preset),
                                                     ("lossless", lossless)) if v is not None})
        except ValueError as exc:
            raise PresetError(str(exc)) from exc
        if max_height is not None:
            _check_max_height(max_height, "max_height")
        return replace(self, model=model or self.model, encode=enc,
                       max_height=self.max_height if max_height is None else max_height)

    def encode_for(self, fps: Fraction | float) -> EncodeSettings:
        """The encoder settings for a video at ``fps``: adds ``keyint`` (frames) when the preset
        sets ``keyint_seconds``."""
        if self.keyint_seconds is None:
            return self.encode
        frames = max(1, round(float(fps) * self.keyint_seconds))
        return replace(self.encode, x265_params=self.encode.x265_params + (f"keyint={frames}",))

    def summary_encoder(self) -> str:
        """One line about the encoder settings, for tables."""
        enc = self.encode
        text = f"x265 {enc.preset} " + ("lossless" if enc.lossless else f"CRF {enc.crf:g}")
        params = dict(p.split("=", 1) for p in enc.x265_params if "=" in p)
        if "vbv-maxrate" in params:
            text += (f", max {int(params['vbv-maxrate']) / 1000:g} Mbit/s "
                     f"(VBV {int(params['vbv-bufsize']) / 1000:g} Mbit)")
        if self.keyint_seconds is not None:
            text += f", keyint {self.keyint_seconds:g} s"
        if params.get("open-gop") == "0":
            text += ", closed GOP"
        if self.max_height is not None:
            text += f", max {self.max_height}p"
        return text

    def summary_mastering(self) -> str:
        md = self.encode.mastering
        prim = _primaries_name(md)
        return f"{_PRIMARIES_LABEL.get(prim, prim)} {md.max_luminance:g}/{md.min_luminance:g} cd/m2"

    def to_json(self) -> dict:
        """A JSON-ready dict (the ``didtv presets --json`` record; keys are stable)."""
        enc, md = self.encode, self.encode.mastering
        return {
            "name": self.name,
            "path": None if self.path is None else str(self.path),
            "description": self.description,
            "model": self.model,
            "tone": {"diffuse_white": self.tone.diffuse_white, "peak": self.tone.peak},
            "encoder": {
                "x265_preset": enc.preset,
                "crf": None if enc.lossless else enc.crf,
                "lossless": enc.lossless,
                "keyint_seconds": self.keyint_seconds,
                "x265_params": list(enc.x265_params),
            },
            "mastering": {
                "primaries": _primaries_name(md),
                "red": list(md.red), "green": list(md.green), "blue": list(md.blue),
                "white": list(md.white),
                "max_luminance": md.max_luminance, "min_luminance": md.min_luminance,
            },
            "output": {"max_height": self.max_height},
        }


_PRIMARIES_LABEL = {"p3-d65": "P3-D65", "bt2020": "BT.2020", "bt709": "BT.709"}


def _primaries_name(md: MasteringDisplay) -> str:
    for name, (r, g, b) in PRIMARIES.items():
        if (md.red, md.green, md.blue) == (r, g, b):
            return name
    return "custom"


def preset_paths() -> dict[str, Path]:
    """Every preset found, name -> file (the first folder of :data:`PRESET_DIRS` wins)."""
    found: dict[str, Path] = {}
    for folder in PRESET_DIRS:
        if folder.is_dir():
            for p in sorted(folder.glob("*.toml")):
                found.setdefault(p.stem, p)
    return found


def _check_max_height(value: Any, key: str, source: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_MAX_HEIGHT:
        where = f"{source}: " if source else ""
        raise PresetError(f"{where}{key} = {value!r}; allowed: an integer >= {MIN_MAX_HEIGHT} (pixels)")


def _check_types(data: dict[str, Any], source: str) -> None:
    tables = [k for k in _SCHEMA if k]
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in _SCHEMA or not key:
                raise PresetError(f"{source}: unknown table [{key}]; allowed: {', '.join(tables)}")
            table, prefix = value, f"{key}."
            allowed = _SCHEMA[key]
        else:
            table, prefix, allowed = {key: value}, "", _SCHEMA[""]
        for k, v in table.items():
            if k not in allowed:
                hint = f"allowed: {', '.join(prefix + a for a in allowed)}"
                if not prefix:
                    hint += f", or a table: {', '.join(f'[{t}]' for t in tables)}"
                raise PresetError(f"{source}: unknown key {prefix}{k}; {hint}")
            types, what = allowed[k]
            bad = not isinstance(v, types) or (isinstance(v, bool) and bool not in types)
            if not bad and isinstance(v, float) and not math.isfinite(v):
                bad = True
            if bad:
                raise PresetError(f"{source}: {prefix}{k} = {v!r} has the wrong type; allowed: {what}")


def _choice(value: str, allowed, key: str, source: str) -> str:
    if value not in allowed:
        raise PresetError(f"{source}: {key} = {value!r}; allowed: {', '.join(allowed)}")
    return value


def _check_model(name: str, source: str) -> None:
    from didtv.models.registry import registered  # no torch: the registry is a table

    names = [m.name for m in registered()]
    if name != "auto" and name not in names and not name.endswith(".safetensors"):
        raise PresetError(f"{source}: model = {name!r}; allowed: auto, {', '.join(names)}, "
                          "or a .safetensors file")


def _x265_params(enc: dict[str, Any], source: str) -> tuple[str, ...]:
    params: list[str] = []
    maxrate, bufsize = enc.get("vbv_maxrate"), enc.get("vbv_bufsize")
    if (maxrate is None) != (bufsize is None):
        raise PresetError(f"{source}: encoder.vbv_maxrate and encoder.vbv_bufsize go together; "
                          "allowed: both (kbit/s, kbit) or neither")
    if maxrate is not None:
        for key, v in (("vbv_maxrate", maxrate), ("vbv_bufsize", bufsize)):
            if v <= 0:
                raise PresetError(f"{source}: encoder.{key} = {v}; allowed: a positive integer (kbit)")
        if enc.get("lossless"):
            raise PresetError(f"{source}: encoder.vbv_maxrate with encoder.lossless = true; allowed: "
                              "one of them (lossless has no rate control)")
        params += [f"vbv-maxrate={maxrate}", f"vbv-bufsize={bufsize}"]
    if enc.get("closed_gop"):
        params.append("open-gop=0")
    for item in enc.get("x265_params", []):
        if not isinstance(item, str) or "=" not in item or item.startswith("=") or ":" in item:
            raise PresetError(f"{source}: encoder.x265_params item {item!r}; allowed: "
                              "strings \"key=value\" without ':'")
        key = item.split("=", 1)[0].strip()
        if key in RESERVED_X265:
            raise PresetError(f"{source}: encoder.x265_params sets {key!r}, which didtv controls; "
                              f"allowed: any x265 parameter except {', '.join(sorted(RESERVED_X265))}")
        params.append(item)
    return tuple(params)


def load_preset(name_or_path: str | Path | None = None) -> Preset:
    """Load a preset by name (see :func:`preset_paths`) or path; ``None`` gives the default."""
    ref = str(name_or_path or DEFAULT_PRESET)
    path = Path(ref)
    if not (ref.endswith(".toml") or path.is_file()):
        paths = preset_paths()
        if ref not in paths:
            raise PresetError(f"unknown preset {ref!r}", hint=f"choose one of: {', '.join(paths) or '(none found)'}, or a .toml file")
        path = paths[ref]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PresetError(f"cannot read preset {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"preset {path} is not valid TOML: {exc}") from exc
    return preset_from_dict(data, name=path.stem, source=str(path), path=path)


def preset_from_dict(data: dict[str, Any], *, name: str, source: str = "preset",
                     path: Path | None = None) -> Preset:
    """Build a :class:`Preset` from parsed TOML, checking every key and value."""
    _check_types(data, source)
    enc, mst = data.get("encoder", {}), data.get("mastering", {})
    tone, out = data.get("tone", {}), data.get("output", {})
    model = data.get("model", "auto")
    _check_model(model, source)
    primaries = _choice(mst.get("primaries", "p3-d65"), PRIMARIES, "mastering.primaries", source)
    x265_preset = _choice(enc.get("x265_preset", "medium"), X265_PRESETS, "encoder.x265_preset", source)
    crf = float(enc.get("crf", 18))
    if not 0 <= crf <= 51:
        raise PresetError(f"{source}: encoder.crf = {crf:g}; allowed: 0 to 51 (lower = better)")
    max_lum = float(mst.get("max_luminance", 1000.0))
    min_lum = float(mst.get("min_luminance", 0.0001))
    if not 0 <= min_lum < max_lum <= 10000:
        raise PresetError(f"{source}: mastering.min_luminance = {min_lum:g}, mastering.max_luminance = "
                          f"{max_lum:g}; allowed: 0 <= min_luminance < max_luminance <= 10000 (cd/m2)")
    white = float(tone.get("diffuse_white", 203.0))
    peak = float(tone.get("peak", max_lum))
    if not 1 <= white <= 10000:
        raise PresetError(f"{source}: tone.diffuse_white = {white:g}; allowed: 1 to 10000 (cd/m2, BT.2408: 203)")
    if not white <= peak <= max_lum:
        raise PresetError(f"{source}: tone.peak = {peak:g}; allowed: from tone.diffuse_white ({white:g}) "
                          f"to mastering.max_luminance ({max_lum:g}) cd/m2")
    keyint = enc.get("keyint_seconds")
    if keyint is not None and not 0 < keyint <= 60:
        raise PresetError(f"{source}: encoder.keyint_seconds = {keyint:g}; allowed: more than 0, at most 60")
    max_height = out.get("max_height")
    if max_height is not None:
        _check_max_height(max_height, "output.max_height", source)
    try:
        mastering = MasteringDisplay.named(primaries, max_lum, min_lum)
        settings = EncodeSettings(crf=crf, preset=x265_preset, lossless=bool(enc.get("lossless", False)),
                                  mastering=mastering, x265_params=_x265_params(enc, source))
    except ValueError as exc:
        raise PresetError(f"{source}: {exc}") from exc
    return Preset(name=name, description=data.get("description", ""), model=model, encode=settings,
                  tone=ToneTargets(white, peak), keyint_seconds=None if keyint is None else float(keyint),
                  max_height=max_height, path=path)


def load_preset_model(preset: Preset, model: str | None = None, *, device: str = "cpu"):
    """Load ``model`` (default: the preset's; ``"auto"`` resolved for ``device``) with the preset's
    tone targets.

    Returns ``(resolved name, model)``. Analytic registered models whose constructor declares
    ``white`` / ``peak`` are built with ``diffuse_white`` / ``peak``; learned models and
    ``.safetensors`` files are loaded unchanged (see the module docstring).
    """
    from didtv.models.registry import build, default_model_name, get_info, load_model

    name = model or preset.model
    if name == "auto":
        name = default_model_name(device)  # per device: Lite on a CPU, Tiny on CUDA
    from didtv.identity import weights_file  # a Ray node's copy of a weights file, if any

    # fails early: unknown name, missing or bad weights
    net = load_model(weights_file(name) if str(name).endswith(".safetensors") else name, device=device)
    if str(name).endswith(".safetensors") or get_info(str(name)).learned:
        return str(name), net
    info = get_info(str(name))
    keywords = preset.tone.model_keywords(inspect.signature(type(net)).parameters)
    if keywords:
        net = build(info.arch, {**info.config, **keywords}).to(device).eval()
    return str(name), net
