"""What :func:`~didtv.io.probe.probe` returns: a frozen :class:`VideoInfo` for the video
stream and a :class:`StreamInfo` for every other stream; :meth:`VideoInfo.to_json` (schema in
docs/probe.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction

from didtv.color.hdr10 import ContentLightLevel, MasteringDisplay

SCHEMA_VERSION = 1


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
