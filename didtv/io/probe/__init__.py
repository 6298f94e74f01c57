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

Modules: :mod:`~didtv.io.probe.info` (the :class:`VideoInfo` it returns),
:mod:`~didtv.io.probe.fields` (defensive parsers of single ffprobe fields and side data),
:mod:`~didtv.io.probe.parse` (:func:`parse_probe`, the HDR classification, VFR detection),
:mod:`~didtv.io.probe.ffprobe` (running ffprobe: :func:`probe`, :func:`count_frames`).
"""

from didtv.io.probe.fields import BITMAP_SUBTITLES, bit_depth_of
from didtv.io.probe.ffprobe import VFR_PACKETS, count_frames, probe
from didtv.io.probe.info import SCHEMA_VERSION, HdrFormat, StreamInfo, VideoInfo
from didtv.io.probe.parse import VFR_TOLERANCE, classify_hdr, parse_probe, timestamps_irregular

__all__ = ["HdrFormat", "StreamInfo", "VideoInfo", "probe", "parse_probe", "count_frames",
           "bit_depth_of", "classify_hdr", "timestamps_irregular", "SCHEMA_VERSION", "VFR_TOLERANCE",
           "VFR_PACKETS", "BITMAP_SUBTITLES"]
