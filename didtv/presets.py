"""Presets: model, encoder settings and mastering display, read from TOML files.

A preset is chosen by name (a file ``NAME.toml`` in ``presets/``) or by path. CLI flags override
single fields. Unknown keys and bad values are errors naming the key and the allowed values.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from didtv.color.hdr10 import PRIMARIES, MasteringDisplay
from didtv.errors import DidtvError
from didtv.io.encode import X265_PRESETS, EncodeSettings

DEFAULT_PRESET = "hdr10-1000"
PRESET_DIRS = (
    Path(__file__).resolve().parent.parent / "presets",  # source checkout / editable install
    Path(sys.prefix) / "share" / "didtv" / "presets",     # wheel install (data-files)
)

_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "": {"description": str, "model": str},
    "encoder": {"crf": (int, float), "x265_preset": str, "lossless": bool},
    "mastering": {"primaries": str, "max_luminance": (int, float), "min_luminance": (int, float)},
}


class PresetError(DidtvError):
    exit_code = 2


@dataclass(frozen=True)
class Preset:
    name: str
    description: str = ""
    model: str = "auto"
    encode: EncodeSettings = EncodeSettings()

    def with_overrides(self, *, model: str | None = None, crf: float | None = None,
                       x265_preset: str | None = None, lossless: bool | None = None) -> "Preset":
        enc = self.encode
        try:
            enc = replace(enc, **{k: v for k, v in (("crf", crf), ("preset", x265_preset),
                                                     ("lossless", lossless)) if v is not None})
        except ValueError as exc:
            raise PresetError(str(exc)) from exc
        return replace(self, model=model or self.model, encode=enc)


def preset_paths() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in PRESET_DIRS:
        if folder.is_dir():
            for p in sorted(folder.glob("*.toml")):
                found.setdefault(p.stem, p)
    return found


def _check(data: dict[str, Any], source: str) -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in _SCHEMA or not key:
                raise PresetError(f"{source}: unknown table [{key}]; allowed: "
                                  f"{', '.join(k for k in _SCHEMA if k)}")
            table, prefix = value, f"{key}."
            allowed = _SCHEMA[key]
        else:
            table, prefix, allowed = {key: value}, "", _SCHEMA[""]
        for k, v in table.items():
            if k not in allowed:
                raise PresetError(f"{source}: unknown key {prefix}{k}; allowed: {', '.join(prefix + a for a in allowed)}")
            if not isinstance(v, allowed[k]) or (isinstance(v, bool) and allowed[k] != bool):
                raise PresetError(f"{source}: {prefix}{k} has the wrong type ({type(v).__name__})")


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
    _check(data, str(path))
    enc, mst = data.get("encoder", {}), data.get("mastering", {})
    primaries = mst.get("primaries", "p3-d65")
    if primaries not in PRIMARIES:
        raise PresetError(f"{path}: mastering.primaries = {primaries!r}; allowed: {', '.join(PRIMARIES)}")
    x265_preset = enc.get("x265_preset", "medium")
    if x265_preset not in X265_PRESETS:
        raise PresetError(f"{path}: encoder.x265_preset = {x265_preset!r}; allowed: {', '.join(X265_PRESETS)}")
    try:
        mastering = MasteringDisplay.named(primaries, mst.get("max_luminance", 1000.0), mst.get("min_luminance", 0.0001))
        settings = EncodeSettings(crf=float(enc.get("crf", 18)), preset=x265_preset,
                                  lossless=bool(enc.get("lossless", False)), mastering=mastering)
    except ValueError as exc:
        raise PresetError(f"{path}: {exc}") from exc
    return Preset(name=path.stem, description=data.get("description", ""),
                  model=data.get("model", "auto"), encode=settings)
