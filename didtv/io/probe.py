"""ffprobe JSON -> a frozen :class:`VideoInfo` (exact Fraction frame rates, colour tags, HDR
side data, the other streams).

:func:`probe` runs ffprobe twice: once for the container and streams (``-show_format
-show_streams``), once for the side data of the first decoded frame of the video stream (HDR10
mastering display / content light level SEI, HDR10+). All interpretation happens in the pure
function :func:`parse_probe`, which never raises anything but :class:`ProbeError` on any input,
however malformed (property-tested).

Which stream is "the video": the first video stream that is not an attached picture (cover art),
i.e. ffprobe's ``V:0`` specifier. Other video streams (cover art, second angles) are listed in
``VideoInfo.other`` with kind "video".

The JSON schema of :meth:`VideoInfo.to_json`, the HDR classification and the caveats are
documented in docs/probe.md.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from typing import Any, Mapping

from didtv.color.hdr10 import ContentLightLevel, MasteringDisplay
from didtv.errors import FFmpegError, ProbeError
from didtv.io.ffmpeg import ffprobe_json, tool_path

__all__ = ["HdrFormat", "StreamInfo", "VideoInfo", "probe", "parse_probe", "count_frames",
           "bit_depth_of", "classify_hdr", "timestamps_irregular", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1

#: Relative difference between avg_frame_rate and r_frame_rate above which a stream is VFR.
VFR_TOLERANCE = 0.005

#: Subtitle codecs that are pictures, not text (cannot become mov_text/srt).
BITMAP_SUBTITLES = frozenset({
    "hdmv_pgs_subtitle", "dvd_subtitle", "dvb_subtitle", "xsub", "dvb_teletext", "arib_caption",
})

#: Values of ffprobe's colour fields that mean "not tagged".
_UNTAGGED = frozenset({"unknown", "unspecified", "reserved", "reserved0", "n/a", ""})

#: Demuxers that read still images (plus every "*_pipe" one: png_pipe, jpeg_pipe, ...).
_IMAGE_DEMUXERS = frozenset({"image2", "image2pipe"})


class HdrFormat(str, Enum):
    """The dynamic range / HDR signalling of a video stream (value = human-readable name)."""

    SDR = "SDR"
    HDR10 = "HDR10"
    PQ10 = "PQ10"
    HLG = "HLG"
    HDR10PLUS = "HDR10+"
    DOLBY_VISION = "Dolby Vision"

    def __str__(self) -> str:  # so f"{fmt}" prints "HDR10+" rather than "HdrFormat.HDR10PLUS"
        return self.value


@dataclass(frozen=True)
class StreamInfo:
    """A non-primary stream. kind: "audio", "subtitle", "attachment", "data" (anything
    unknown) or "video" (extra video streams and cover art). channels: audio only, else None.
    bitmap: True for picture subtitles (PGS, VobSub, DVB), False otherwise."""

    index: int
    kind: str
    codec: str
    language: str | None = None
    title: str | None = None
    channels: int | None = None
    bitmap: bool = False

    def to_json(self) -> dict:
        return {"index": self.index, "kind": self.kind, "codec": self.codec,
                "language": self.language, "title": self.title, "channels": self.channels,
                "bitmap": self.bitmap}


@dataclass(frozen=True)
class VideoInfo:
    """What didtv needs to know about an input, from its first (non cover-art) video stream.

    width/height: as stored (coded orientation). display_width/display_height: after the
    rotation ffmpeg applies on decode (what a decode pipe delivers). rotation: clockwise degrees
    ffmpeg's auto-rotation turns the picture, one of 0/90/180/270. fps: r_frame_rate (exact);
    avg_fps: avg_frame_rate or None. bit_depth: from pix_fmt. matrix/transfer/primaries: ffprobe's
    color_space/color_transfer/color_primaries names, None when untagged. frame_count: the
    container's nb_frames (None when it has none; :func:`count_frames` gives the exact count).
    duration: seconds (container, else stream), None when unknown (still images).
    """

    path: str
    container: str
    duration: float | None
    index: int
    codec: str
    profile: str | None
    width: int
    height: int
    display_width: int
    display_height: int
    fps: Fraction
    avg_fps: Fraction | None
    variable_fps: bool
    bit_depth: int
    pix_fmt: str
    color_range: str | None
    matrix: str | None
    transfer: str | None
    primaries: str | None
    chroma_location: str | None
    field_order: str | None
    rotation: int
    frame_count: int | None
    hdr: HdrFormat
    mastering_display: MasteringDisplay | None
    content_light: ContentLightLevel | None
    dolby_vision: dict | None = field(hash=False)  # a dict: left out of hash() so VideoInfo stays hashable
    hdr10plus: bool = False
    audio: tuple[StreamInfo, ...] = ()
    subtitles: tuple[StreamInfo, ...] = ()
    other: tuple[StreamInfo, ...] = ()
    still_image: bool = False

    @property
    def is_hdr(self) -> bool:
        return self.hdr is not HdrFormat.SDR

    @property
    def interlaced(self) -> bool:
        return self.field_order not in (None, "progressive", "unknown")

    @property
    def rotated(self) -> bool:
        return self.rotation in (90, 270)

    def to_json(self) -> dict:
        """A JSON-ready dict, schema version 1 (docs/probe.md lists every key)."""

        def frac(value: Fraction | None) -> str | None:
            return None if value is None else f"{value.numerator}/{value.denominator}"

        def flt(value: Fraction | None) -> float | None:
            return None if value is None else float(value)

        md = self.mastering_display
        cl = self.content_light
        return {
            "schema_version": SCHEMA_VERSION,
            "path": self.path,
            "container": self.container,
            "duration": self.duration,
            "still_image": self.still_image,
            "video": {
                "index": self.index,
                "codec": self.codec,
                "profile": self.profile,
                "width": self.width,
                "height": self.height,
                "display_width": self.display_width,
                "display_height": self.display_height,
                "rotation": self.rotation,
                "fps": frac(self.fps),
                "fps_float": flt(self.fps),
                "avg_fps": frac(self.avg_fps),
                "avg_fps_float": flt(self.avg_fps),
                "variable_fps": self.variable_fps,
                "frame_count": self.frame_count,
                "bit_depth": self.bit_depth,
                "pix_fmt": self.pix_fmt,
                "color_range": self.color_range,
                "matrix": self.matrix,
                "transfer": self.transfer,
                "primaries": self.primaries,
                "chroma_location": self.chroma_location,
                "field_order": self.field_order,
                "interlaced": self.interlaced,
            },
            "hdr": {
                "format": self.hdr.value,
                "is_hdr": self.is_hdr,
                "mastering_display": None if md is None else {
                    "red": list(md.red), "green": list(md.green), "blue": list(md.blue),
                    "white": list(md.white), "max_luminance": md.max_luminance,
                    "min_luminance": md.min_luminance,
                },
                "content_light": None if cl is None else {"max_cll": cl.max_cll, "max_fall": cl.max_fall},
                "hdr10plus": self.hdr10plus,
                "dolby_vision": None if self.dolby_vision is None else dict(self.dolby_vision),
            },
            "audio": [s.to_json() for s in self.audio],
            "subtitles": [s.to_json() for s in self.subtitles],
            "other": [s.to_json() for s in self.other],
        }


# ---------------------------------------------------------------------------------------------
# Defensive field parsers: garbage in -> None out, never an exception.

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


# ---------------------------------------------------------------------------------------------

def classify_hdr(transfer: str | None, *, dolby_vision: bool, hdr10plus: bool,
                 static_metadata: bool) -> HdrFormat:
    """Precedence: Dolby Vision > HDR10+ > HDR10 (PQ + static metadata) > PQ10 > HLG > SDR."""
    if dolby_vision:
        return HdrFormat.DOLBY_VISION
    if hdr10plus:
        return HdrFormat.HDR10PLUS
    if transfer == "smpte2084":
        return HdrFormat.HDR10 if static_metadata else HdrFormat.PQ10
    if transfer == "arib-std-b67":
        return HdrFormat.HLG
    return HdrFormat.SDR


def parse_probe(path: str, format_json: dict, frames_json: dict,
                packets_json: dict | None = None) -> VideoInfo:
    """Build a VideoInfo from ffprobe's JSON. Pure; raises only ProbeError (one line).

    format_json: ``-show_format -show_streams`` output, optionally with a "packets" list
    (``-show_entries packet=stream_index,pts``, the first packets) used for VFR detection.
    frames_json: ``-select_streams V:0 -show_frames`` output for the first frame (side data).
    packets_json: packet timestamps from a separate call, used instead of format_json's.
    """
    try:
        return _parse(os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path),
                      format_json, frames_json, packets_json)
    except ProbeError:
        raise
    except Exception as exc:  # a parser bug must still read as one line, not a traceback
        raise ProbeError(f"{path}: cannot interpret ffprobe's output ({type(exc).__name__}: {exc})") from exc


def timestamps_irregular(packets_json: Any, stream_index: int | None = None) -> bool:
    """True when the packet pts (in time-base ticks) of ``ffprobe -show_entries
    packet=stream_index,pts`` are not evenly spaced: some gap between consecutive sorted pts
    differs from the median gap by more than max(1 tick, 0.5 %). One tick of slack absorbs
    rounding to a coarse time base (30000/1001 fps in Matroska's 1 ms base alternates 33 and
    34). Only packets of ``stream_index`` count (packets without a stream_index always count);
    missing pts are ignored; fewer than 3 timestamps say nothing (False)."""
    packets = [d for d in _list_of_dicts(_dict(packets_json).get("packets"))
               if stream_index is None or "stream_index" not in d
               or _int(d.get("stream_index")) == stream_index]
    pts = sorted(p for p in (_int(d.get("pts")) for d in packets) if p is not None)
    if len(pts) < 3:
        return False
    gaps = [b - a for a, b in zip(pts, pts[1:])]
    median = sorted(gaps)[len(gaps) // 2]
    if median <= 0:
        return True
    tolerance = max(1.0, VFR_TOLERANCE * median)
    return any(abs(g - median) > tolerance for g in gaps)


def _parse(path: str, format_json: Any, frames_json: Any, packets_json: Any = None) -> VideoInfo:
    if not isinstance(format_json, dict):
        raise ProbeError(f"{path}: ffprobe returned no stream information")
    fmt = _dict(format_json.get("format"))
    streams = _list_of_dicts(format_json.get("streams"))
    container = _str(fmt.get("format_name")) or "unknown"

    videos = [s for s in streams if s.get("codec_type") == "video"]
    main = next((s for s in videos if not _is_cover_art(s)), None)
    if main is None:
        if any(s.get("codec_type") == "audio" for s in streams):
            raise ProbeError(f"{path}: no video stream (audio only)")
        raise ProbeError(f"{path}: no video stream")
    codec = _str(main.get("codec_name")) or "unknown"
    if container == "tty" or codec == "ansi":
        raise ProbeError(f"{path}: a text file, not a video (FFmpeg would render it as ANSI art)")

    index = _int(main.get("index"))
    if index is None or index < 0:
        raise ProbeError(f"{path}: the video stream has no valid index")
    width, height = _int(main.get("width")), _int(main.get("height"))
    if width is None or height is None or width <= 0 or height <= 0:
        raise ProbeError(f"{path}: the video stream has no valid frame size")
    pix_fmt = _tag(main.get("pix_fmt"))
    if pix_fmt is None:
        raise ProbeError(f"{path}: the video stream has no pixel format (unsupported codec "
                         f"{codec!r} or a corrupt stream)")
    bit_depth = bit_depth_of(pix_fmt) or 8

    r_fps = _positive_fraction(main.get("r_frame_rate"))
    avg_fps = _positive_fraction(main.get("avg_frame_rate"))
    fps = r_fps or avg_fps
    if fps is None:
        raise ProbeError(f"{path}: the video stream has no usable frame rate")
    field_order = _str(main.get("field_order"))
    interlaced = field_order not in (None, "progressive", "unknown")
    # avg vs r: differ for VFR, but also when r_frame_rate is the field rate of interlaced video.
    variable = (r_fps is not None and avg_fps is not None
                and abs(avg_fps - r_fps) > VFR_TOLERANCE * r_fps
                and not (interlaced and r_fps == 2 * avg_fps))
    # ffprobe may print the same wrong rate for both (a Matroska with 25 then 10 fps reads
    # 10/1 and 10/1): only the timestamps tell.
    variable = variable or timestamps_irregular(
        format_json if packets_json is None else packets_json, index)

    duration = _float(fmt.get("duration"))
    if duration is None or duration < 0:
        duration = _float(main.get("duration"))
    if duration is not None and duration < 0:
        duration = None
    frame_count = _int(main.get("nb_frames"))
    if frame_count is not None and frame_count <= 0:
        frame_count = None

    rotation = _rotation(main)
    dw, dh = (height, width) if rotation in (90, 270) else (width, height)

    # HDR: static metadata may sit in the container (stream side data, e.g. MKV
    # MasteringMetadata) or in the bitstream (first-frame side data from SEI).
    frames = _list_of_dicts(_dict(frames_json).get("frames")) if isinstance(frames_json, dict) else []
    frame_sd = _list_of_dicts(frames[0].get("side_data_list")) if frames else []
    stream_sd = _list_of_dicts(main.get("side_data_list"))
    mastering = light = dovi = None
    hdr10plus = dovi_frame = False
    for sd in stream_sd + frame_sd:
        kind = _str(sd.get("side_data_type")) or ""
        if kind == "Mastering display metadata" and mastering is None:
            mastering = _mastering_display(sd)
        elif kind == "Content light level metadata" and light is None:
            light = _content_light(sd)
        elif kind == "DOVI configuration record" and dovi is None:
            dovi = _dovi(sd)
        elif "SMPTE2094-40" in kind or "HDR10+" in kind:
            hdr10plus = True
        elif kind.startswith("Dolby Vision"):  # RPU side data without a config record
            dovi_frame = True
    if dovi is None and dovi_frame:
        dovi = {k: None for k in ("profile", "level", "rpu_present", "el_present", "bl_present",
                                  "compatibility_id", "version")}
        dovi["rpu_present"] = True

    transfer = _tag(main.get("color_transfer"))
    hdr = classify_hdr(transfer, dolby_vision=dovi is not None, hdr10plus=hdr10plus,
                       static_metadata=mastering is not None or light is not None)

    audio, subs, other = [], [], []
    for s in streams:
        if s is main:
            continue
        stype = _str(s.get("codec_type")) or "data"
        if stype not in ("audio", "subtitle", "attachment", "data", "video"):
            stype = "data"
        info = _stream_info(s, stype)
        if info is None:
            continue
        (audio if stype == "audio" else subs if stype == "subtitle" else other).append(info)

    still = container in _IMAGE_DEMUXERS or container.endswith("_pipe")
    if still:
        duration = None

    return VideoInfo(
        path=path, container=container, duration=duration, index=index, codec=codec,
        profile=_tag(main.get("profile")), width=width, height=height, display_width=dw,
        display_height=dh, fps=fps, avg_fps=avg_fps, variable_fps=variable, bit_depth=bit_depth,
        pix_fmt=pix_fmt, color_range=_tag(main.get("color_range")),
        matrix=_tag(main.get("color_space")), transfer=transfer,
        primaries=_tag(main.get("color_primaries")),
        chroma_location=_tag(main.get("chroma_location")),
        field_order=None if field_order is None or field_order.lower() in ("unknown", "") else field_order,
        rotation=rotation, frame_count=frame_count, hdr=hdr, mastering_display=mastering,
        content_light=light, dolby_vision=dovi, hdr10plus=hdr10plus, audio=tuple(audio),
        subtitles=tuple(subs), other=tuple(other), still_image=still,
    )


# ---------------------------------------------------------------------------------------------
# Running ffprobe

def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise ProbeError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ProbeError(f"{path}: is a directory, not a video file")
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise ProbeError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if size == 0:
        raise ProbeError(f"{path}: empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise ProbeError(f"{path}: permission denied")


def _unreadable(path: str, exc: FFmpegError) -> ProbeError:
    # FFmpegError reads "ffprobe PATH failed (exit N): PATH: Invalid data found ..."; keep
    # ffprobe's own reason, without the repeated path, on one line.
    detail = str(exc).split("): ", 1)[-1]
    if detail.startswith(path + ": "):
        detail = detail[len(path) + 2:]
    detail = " ".join(detail.split()) or "ffprobe failed"
    return ProbeError(f"{path}: not a readable video ({detail})")


#: Packets (all streams together) whose timestamps :func:`probe` reads for VFR detection:
#: demux only, no decoding; with one audio track that is a few hundred video packets.
VFR_PACKETS = 720


def probe(path, *, check_timestamps: bool = True) -> VideoInfo:
    """Probe ``path`` with ffprobe; ProbeError when it is not a readable video, FFmpegError
    when ffprobe itself is missing.

    Runs ffprobe twice: format + streams (plus, unless ``check_timestamps`` is False, the pts
    of the first :data:`VFR_PACKETS` packets, so VFR files whose header rates look constant
    are still caught), then the first video frame's side data (decodes one frame).
    """
    path = os.fspath(path)
    tool_path("ffprobe")  # a missing tool is an FFmpegError, not the input's fault
    _check_file(path)
    args = ["-show_format", "-show_streams"]
    if check_timestamps:
        args += ["-show_entries", "packet=stream_index,pts", "-read_intervals", f"%+#{VFR_PACKETS}"]
    try:
        format_json = ffprobe_json(path, *args)
    except FFmpegError as exc:
        raise _unreadable(path, exc) from exc
    frames_json: dict = {}
    streams = _list_of_dicts(_dict(format_json).get("streams"))
    if not any(s.get("codec_type") == "video" and not _is_cover_art(s) for s in streams):
        return parse_probe(path, format_json, frames_json)  # raises "no video stream"
    try:
        frames_json = ffprobe_json(
            path, "-select_streams", "V:0", "-read_intervals", "%+#1", "-show_frames",
            "-show_entries", "frame=side_data_list")
    except FFmpegError:
        frames_json = {}  # no decodable first frame: no SEI side data, the rest still holds
    return parse_probe(path, format_json, frames_json)


def count_frames(path) -> int:
    """Exact number of packets (= coded frames) of the first non-cover-art video stream.

    Reads the whole file (demux only, no decode); container nb_frames may be missing or wrong.
    """
    path = os.fspath(path)
    tool_path("ffprobe")
    _check_file(path)
    try:
        data = ffprobe_json(path, "-count_packets", "-select_streams", "V:0",
                            "-show_entries", "stream=nb_read_packets", timeout=3600)
    except FFmpegError as exc:
        raise _unreadable(path, exc) from exc
    streams = _list_of_dicts(_dict(data).get("streams"))
    count = _int(streams[0].get("nb_read_packets")) if streams else None
    if count is None:
        raise ProbeError(f"{path}: no video stream to count frames in")
    return count
