"""ffprobe's JSON -> :class:`~didtv.io.probe.info.VideoInfo`: the pure :func:`parse_probe`,
the HDR classification and VFR detection from packet timestamps."""

from __future__ import annotations

import os
from typing import Any

from didtv.errors import ProbeError
from didtv.io.probe.fields import (_content_light, _dict, _dovi, _float, _int, _is_cover_art, _list_of_dicts,
                                   _mastering_display, _positive_fraction, _rotation, _str, _stream_info, _tag,
                                   bit_depth_of)
from didtv.io.probe.info import HdrFormat, VideoInfo

#: Relative difference between avg_frame_rate and r_frame_rate above which a stream is VFR.
VFR_TOLERANCE = 0.005

#: Demuxers that read still images (plus every "*_pipe" one: png_pipe, jpeg_pipe, ...).
_IMAGE_DEMUXERS = frozenset({"image2", "image2pipe"})


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
