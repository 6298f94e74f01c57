"""Running ffprobe: :func:`probe` (two short calls, then :func:`~didtv.io.probe.parse.parse_probe`)
and :func:`count_frames` (demuxes the whole file)."""

from __future__ import annotations

import os

from didtv.errors import FFmpegError, ProbeError
from didtv.io.ffmpeg import ffprobe_json, tool_path
from didtv.io.probe.fields import _dict, _int, _is_cover_art, _list_of_dicts
from didtv.io.probe.info import VideoInfo
from didtv.io.probe.parse import parse_probe

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
