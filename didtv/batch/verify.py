"""Verifying an existing output: is it a complete, valid didtv output of the source, made with
the same options (resumption, docs/batch.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from didtv.api import IDENTITY_TAG, IDENTITY_VERSION, file_fingerprint
from didtv.batch.discovery import _reason
from didtv.errors import FFmpegError
from didtv.io.probe import count_frames

def _identity_from_tags(tags: dict) -> dict | None:
    for key, value in (tags or {}).items():
        if str(key).upper() == IDENTITY_TAG:
            try:
                out = json.loads(value)
            except (TypeError, ValueError):
                return None
            return out if isinstance(out, dict) else None
    return None


def read_identity(path: str | os.PathLike) -> dict | None:
    """The ``DIDTV`` global tag of an output as a dict; None when absent or not JSON."""
    from didtv.io.decode import tool_safe_path
    from didtv.io.ffmpeg import ffprobe_json

    try:
        data = ffprobe_json(tool_safe_path(path), "-show_entries", "format_tags")
    except FFmpegError:
        return None
    return _identity_from_tags((data.get("format") or {}).get("tags") or {})


#: Seconds the quick decode check (first frame and last second) may take.
QUICK_DECODE_TIMEOUT = 300.0
#: The full decode check's time limit: this many seconds, or one second per
#: ``FULL_DECODE_MIN_FPS`` frames when that is longer (a decoder slower than that is stuck).
FULL_DECODE_TIMEOUT = 3600.0
FULL_DECODE_MIN_FPS = 5.0


def _decodes(path: Path, full: bool, frames: int = 0) -> str | None:
    """None when the video stream decodes without a single error message; else FFmpeg's
    first error line. ``full``: every frame (``frames`` of them, which sets the time limit);
    otherwise the first frame and the last second (one ffmpeg reading the file twice). A
    decode past its time limit is an error."""
    from didtv.io.decode import tool_safe_path
    from didtv.io.ffmpeg import run_result, tool_path

    name = tool_safe_path(path)
    argv = [tool_path("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", "-xerror"]
    if full:
        argv += ["-i", name, "-map", "0:v:0", "-f", "null", "-"]
    else:
        argv += ["-i", name, "-sseof", "-1", "-i", name,
                 "-map", "0:v:0", "-frames:v", "1", "-f", "null", "-",
                 "-map", "1:v:0", "-f", "null", "-"]
    timeout = max(FULL_DECODE_TIMEOUT, frames / FULL_DECODE_MIN_FPS) if full else QUICK_DECODE_TIMEOUT
    try:
        out = run_result(argv, f"decoding {name}", timeout=timeout)
    except FFmpegError as exc:
        return str(exc)
    err = [ln.strip() for ln in out.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    if out.returncode != 0 or err:
        return err[0] if err else f"exit {out.returncode}"
    return None


def verify_output(src: Path, dst: Path, options: dict, *, full: bool = False,
                  source_frames: int | None = None) -> str | None:
    """None when ``dst`` is a complete, valid didtv output of ``src`` made with ``options``
    (:func:`didtv.api.conversion_options`); otherwise the reason it is not, one line.

    One ffprobe (streams, container metadata and tags, packets counted) checks: HEVC Main10,
    PQ with HDR10 static metadata (mastering display / content light level), a DIDTV tag with
    the same source fingerprint and options, exactly the source's frame count
    (``count_frames(src)``, or ``source_frames``). Then it must decode without an error
    message (``full``: every frame; otherwise the first frame and the last second).
    """
    from didtv.io.decode import tool_safe_path
    from didtv.io.ffmpeg import ffprobe_json

    try:
        data = ffprobe_json(tool_safe_path(dst), "-count_packets", "-show_streams",
                            "-show_entries", "format_tags", "-select_streams", "V:0")
    except FFmpegError as exc:
        return f"the existing output is unreadable ({_reason(exc, tool_safe_path(dst)).split('): ')[-1]})"
    streams = data.get("streams") or []
    if not streams:
        return "the existing output has no video stream"
    v = streams[0]
    if v.get("codec_name") != "hevc" or v.get("pix_fmt") != "yuv420p10le":
        return f"the existing output is {v.get('codec_name')} {v.get('pix_fmt')}, not HEVC Main10"
    side = {sd.get("side_data_type") for sd in v.get("side_data_list") or [] if isinstance(sd, dict)}
    if v.get("color_transfer") != "smpte2084" or not side & {"Mastering display metadata",
                                                              "Content light level metadata"}:
        return "the existing output has no HDR10 metadata"
    tag = _identity_from_tags((data.get("format") or {}).get("tags") or {})
    if tag is None:
        return "the existing output was not written by didtv (no DIDTV tag)"
    if tag.get("v") != IDENTITY_VERSION:
        return f"the existing output's DIDTV tag has version {tag.get('v')!r}"
    if tag.get("source") != file_fingerprint(src):
        return "the source changed since the existing output was made"
    if tag.get("options") != json.loads(json.dumps(options)):
        return "the existing output was made with other options"
    total = count_frames(tool_safe_path(src)) if source_frames is None else source_frames
    try:
        got = int(v.get("nb_read_packets"))
    except (TypeError, ValueError):
        got = -1
    if got != total or tag.get("frames") != total:
        return f"the existing output holds {got} frames, the source {total}"
    err = _decodes(dst, full, total)
    if err:
        return f"the existing output does not decode ({err})"
    return None
