"""Defensive parsers of single ffprobe fields and side data: garbage in -> None out, never an
exception (the property tests feed them anything)."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any, Mapping

from didtv.color.hdr10 import ContentLightLevel, MasteringDisplay
from didtv.io.probe.info import StreamInfo

#: Subtitle codecs that are pictures, not text (cannot become mov_text/srt).
BITMAP_SUBTITLES = frozenset({
    "hdmv_pgs_subtitle", "dvd_subtitle", "dvb_subtitle", "xsub", "dvb_teletext", "arib_caption",
})

#: Values of ffprobe's colour fields that mean "not tagged".
_UNTAGGED = frozenset({"unknown", "unspecified", "reserved", "reserved0", "n/a", ""})


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,18}", value.strip()):
        return int(value.strip())
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return out if math.isfinite(out) else None


def _fraction(value: Any) -> Fraction | None:
    """ "30000/1001", "25:1", "25", 25, 0.5 -> Fraction; "0/0", "1/0", "abc", nan -> None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = value.strip().replace(":", "/", 1)
    m = re.fullmatch(r"([+-]?\d{1,20})\s*/\s*([+-]?\d{1,20})", text)
    if m:
        den = int(m.group(2))
        return None if den == 0 else Fraction(int(m.group(1)), den)
    if re.fullmatch(r"[+-]?(\d{1,20}(\.\d{0,20})?|\.\d{1,20})([eE][+-]?\d{1,2})?", text):
        try:
            return Fraction(text)
        except (ValueError, ZeroDivisionError, OverflowError):
            return None
    return None


def _positive_fraction(value: Any) -> Fraction | None:
    f = _fraction(value)
    return f if f is not None and f > 0 else None


def _str(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def _tag(value: Any) -> str | None:
    """A colour / profile field: None when untagged ("unknown", "unspecified", ...)."""
    s = _str(value)
    return None if s is None or s.lower() in _UNTAGGED else s


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list_of_dicts(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _tags(stream: Mapping) -> dict[str, Any]:
    """Stream tags with lower-cased keys (Matroska writes LANGUAGE/TITLE, MP4 language/title)."""
    return {str(k).lower(): v for k, v in _dict(stream.get("tags")).items()}


def bit_depth_of(pix_fmt: str) -> int | None:
    """Bits per component of an FFmpeg pixel format name, from the name alone.

    yuv420p -> 8, yuv420p10le -> 10, p010le -> 10, gray12be -> 12, rgb48le -> 16,
    gbrpf32le -> 32, nv12 -> 8, x2rgb10le -> 10. Packed formats of fewer than 8 bits per
    component (rgb565, bgr4, ...) report 8. None when the name is not a string.
    HEVC streams report no bits_per_raw_sample in ffprobe, so the pixel format is the only
    reliable source.
    """
    if not isinstance(pix_fmt, str) or not pix_fmt.strip():
        return None
    name = pix_fmt.strip().lower()
    name = re.sub(r"(le|be)$", "", name)
    if re.search(r"f32", name):
        return 32
    if re.search(r"f16", name):
        return 16
    m = re.fullmatch(r"p[0-4](\d\d)", name)  # p010, p016, p210, p416
    if m:
        return int(m.group(1))
    if re.fullmatch(r"nv\d\d", name):  # nv12, nv16, nv21, nv24, nv42: 8-bit; nv20: 10-bit
        return 10 if name == "nv20" else 8
    if re.fullmatch(r"y2(\d\d)", name):  # y210, y212
        return int(name[2:])
    if name in ("xv30", "v30x", "x2rgb10", "x2bgr10"):
        return 10
    if name in ("xv36",):
        return 12
    if name in ("rgb48", "bgr48", "rgba64", "bgra64", "ayuv64"):
        return 16
    m = re.search(r"(?:p|gray|ya|xyz)(\d{1,2})$", name)
    if m:
        return int(m.group(1))
    m = re.search(r"(\d{1,2})$", name)
    if m and int(m.group(1)) in (9, 10, 12, 14, 16):
        return int(m.group(1))
    return 8


def _rotation(stream: Mapping) -> int:
    """Clockwise degrees ffmpeg's auto-rotation turns the decoded picture (0/90/180/270).

    ffprobe prints av_display_rotation_get(), the counter-clockwise angle of the display
    matrix; ffmpeg (fftools) rotates by its negation, clockwise. Non-right angles snap to the
    nearest right angle (ffmpeg would rotate them inside the same frame size; never seen).
    """
    for sd in _list_of_dicts(stream.get("side_data_list")):
        if _str(sd.get("side_data_type")) == "Display Matrix":
            ccw = _float(sd.get("rotation"))
            if ccw is None:
                return 0
            return int((round(-ccw / 90.0) * 90) % 360)
    # Very old FFmpeg exported the clockwise angle as a "rotate" tag instead of side data.
    cw = _float(_tags(stream).get("rotate"))
    return int((round(cw / 90.0) * 90) % 360) if cw is not None else 0


def _mastering_display(sd: Mapping) -> MasteringDisplay | None:
    def xy(prefix: str) -> tuple[float, float] | None:
        x = _fraction(sd.get(f"{prefix}_x"))
        y = _fraction(sd.get(f"{prefix}_y"))
        if x is None or y is None or not (0 <= x <= 1 and 0 <= y <= 1):
            return None
        return float(x), float(y)

    red, green, blue, white = xy("red"), xy("green"), xy("blue"), xy("white_point")
    max_l = _fraction(sd.get("max_luminance"))
    min_l = _fraction(sd.get("min_luminance"))
    if None in (red, green, blue, white, max_l, min_l) or max_l <= 0 or min_l < 0:
        return None
    return MasteringDisplay(red, green, blue, white, float(max_l), float(min_l))


def _content_light(sd: Mapping) -> ContentLightLevel | None:
    cll = _int(sd.get("max_content"))
    fall = _int(sd.get("max_average"))
    if cll is None or fall is None or cll < 0 or fall < 0:
        return None
    return ContentLightLevel(cll, fall)


def _dovi(sd: Mapping) -> dict:
    def flag(key: str) -> bool | None:
        v = _int(sd.get(key))
        return None if v is None else bool(v)

    major, minor = _int(sd.get("dv_version_major")), _int(sd.get("dv_version_minor"))
    return {
        "profile": _int(sd.get("dv_profile")),
        "level": _int(sd.get("dv_level")),
        "rpu_present": flag("rpu_present_flag"),
        "el_present": flag("el_present_flag"),
        "bl_present": flag("bl_present_flag"),
        "compatibility_id": _int(sd.get("dv_bl_signal_compatibility_id")),
        "version": None if major is None else f"{major}.{minor or 0}",
    }


def _stream_info(stream: Mapping, kind: str) -> StreamInfo | None:
    index = _int(stream.get("index"))
    if index is None:
        return None
    tags = _tags(stream)
    codec = _str(stream.get("codec_name")) or "unknown"
    language = _tag(tags.get("language"))
    if language is not None and language.lower() in ("und", "unk", "zxx", "mis"):
        language = None
    channels = _int(stream.get("channels")) if kind == "audio" else None
    if channels is not None and channels <= 0:
        channels = None
    return StreamInfo(index=index, kind=kind, codec=codec, language=language,
                      title=_str(tags.get("title")), channels=channels,
                      bitmap=kind == "subtitle" and codec in BITMAP_SUBTITLES)


def _is_cover_art(stream: Mapping) -> bool:
    disp = _dict(stream.get("disposition"))
    return bool(_int(disp.get("attached_pic"))) or bool(_int(disp.get("timed_thumbnails")))
