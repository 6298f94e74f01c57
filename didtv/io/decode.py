"""Decoding: any video FFmpeg reads -> float32 R'G'B' frames, channel-first ``(3, h, w)`` in [0, 1].

The conversion to RGB is done by zscale with the input's matrix and range stated explicitly:
FFmpeg's default path silently uses the BT.601 matrix (24 code values off on BT.709 patches,
see ../shared/RESEARCH.md). The output is planar float (``gbrpf32le``) so FFmpeg inserts no
converter of its own; zscale's float output is not clipped, so frames are clipped here.
``-fps_mode passthrough`` yields exactly the coded frames (the rawvideo muxer would otherwise
duplicate frames to keep a constant rate). ``-enc_time_base -1`` keeps the input stream's time
base: with the default (1/r_frame_rate) the timestamps of variable-rate input collide and the
muxer prints "non monotonically increasing dts" errors (the frames still all arrive).

Damaged input fails, it is never decoded "as well as possible" (measured on FFmpeg 5.1, see
docs/batch.md): with default settings a corrupt H.264 slice in an MP4 is concealed and all 50
frames come out with exit status 0, and a truncated Matroska file yields the frames before the
cut with exit status 0 ("File ended prematurely" on stderr). So the decoder runs with
``-xerror`` (exit at the first decode error) and any message at ``-loglevel error`` is a
failure (:class:`FrameReader`).

Before zscale, :func:`prefilters` adds what some inputs need (docs/batch.md):

- interlaced input (``field_order`` tt/bb/tb/bt) is deinterlaced with ``bwdif`` in
  ``send_frame`` mode: one progressive frame per frame, same count and rate. FFmpeg's
  auto-rotation would run *before* the deinterlacer and turn field lines into columns, so
  rotated interlaced input is decoded with ``-noautorotate`` and turned after ``bwdif``.
- odd width or height (after rotation) is padded to even by repeating the last column / row
  (``pad`` + ``fillborders=mode=smear``): 4:2:0 output needs even sizes, and zscale refuses odd
  4:2:0 input ("image dimensions must be divisible by subsampling factor").
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Sequence

import ffmpeg as ffmpeg_python
import numpy as np

from didtv.errors import FFmpegError
from didtv.io.ffmpeg import Child, spawn, tool_path
from didtv.io.probe import VideoInfo

#: ffprobe ``color_space`` -> zscale matrix name.
ZSCALE_MATRIX = {
    "bt709": "709", "smpte170m": "170m", "bt470bg": "470bg", "bt2020nc": "2020_ncl",
    "bt2020c": "2020_cl", "fcc": "fcc", "smpte240m": "240m", "ycgco": "ycgco",
}
ZSCALE_CHROMA = {"left", "center", "topleft", "top", "bottomleft", "bottom"}
RGB_PIX_FMT_PREFIXES = ("gbr", "rgb", "bgr", "argb", "abgr", "0rgb", "0bgr", "rgba", "bgra")


@dataclass(frozen=True)
class DecodeColour:
    """How the input's Y'CbCr is interpreted (after didtv's rules for missing tags)."""

    matrix: str | None  # zscale name, None for RGB input
    range: str  # "limited" | "full"
    chroma_location: str

    def describe(self) -> str:
        if self.matrix is None:
            return f"RGB {self.range} range"
        return f"matrix {self.matrix}, {self.range} range, chroma {self.chroma_location}"


def decode_colour(info: VideoInfo) -> DecodeColour:
    """didtv's interpretation of the input's colour tags.

    Rules for untagged input (documented in docs/colour.md): matrix BT.709 when the picture is
    720 lines or more, BT.601 (smpte170m) below, as players do; range limited unless tagged full
    or the pixel format is a ``yuvj*`` one; chroma location ``left`` (MPEG-2/H.264/HEVC default).
    """
    pix = info.pix_fmt or ""
    is_rgb = pix.startswith(RGB_PIX_FMT_PREFIXES)
    if info.color_range == "pc" or pix.startswith("yuvj"):
        rng = "full"
    elif is_rgb and info.color_range != "tv":
        rng = "full"
    else:
        rng = "limited"
    if is_rgb:
        return DecodeColour(None, rng, "left")
    matrix = ZSCALE_MATRIX.get(info.matrix or "")
    if matrix is None:
        matrix = "709" if info.height >= 720 or info.width >= 1280 else "170m"
    chroma = info.chroma_location if info.chroma_location in ZSCALE_CHROMA else "left"
    return DecodeColour(matrix, rng, chroma)


def tool_safe_path(path) -> str:
    """``path`` as a string no FFmpeg (or mkvtoolnix) command line can misread.

    Relative names get a ``./`` prefix, so ``-x.mp4`` is never an option and ``pipe:0``,
    ``concat:a|b`` or ``http:x`` are never a protocol; absolute paths are already safe.
    """
    s = os.fspath(path)
    if os.path.isabs(s) or s.startswith(("./", "../")):
        return s
    return "./" + s


def even_size(width: int, height: int) -> tuple[int, int]:
    """The picture size after padding odd dimensions to even (4:2:0 needs both even)."""
    return width + width % 2, height + height % 2


#: ffmpeg's auto-rotation filters for VideoInfo.rotation (clockwise degrees), applied by hand
#: after the deinterlacer when input is both rotated and interlaced.
_ROTATE_FILTERS = {90: ["transpose=clock"], 180: ["hflip", "vflip"], 270: ["transpose=cclock"]}


def prefilters(info: VideoInfo) -> tuple[dict[str, object], list[str]]:
    """(ffmpeg input options, filters before zscale) for ``info``: deinterlacing, and padding
    of odd sizes to even with repeated edge pixels. Pure; see the module docstring."""
    input_opts: dict[str, object] = {}
    filters: list[str] = []
    if info.interlaced:
        filters.append("bwdif=mode=send_frame:parity=auto:deint=all")
        if info.rotation:
            input_opts["noautorotate"] = None
            filters += _ROTATE_FILTERS.get(info.rotation, [])
    w, h = info.display_width, info.display_height
    if w % 2 or h % 2:
        filters.append(f"pad=w={w + w % 2}:h={h + h % 2}:x=0:y=0")
        filters.append(f"fillborders=right={w % 2}:bottom={h % 2}:mode=smear")
    return input_opts, filters


#: Relative slack when comparing frame intervals (as didtv.io.probe.VFR_TOLERANCE).
_TIMING_TOLERANCE = Fraction(1, 200)


def retime_plan(pts: Sequence[int | None], time_base: Fraction, start: Fraction,
                fps: Fraction) -> list[float] | None:
    """Output timestamps (ms, one per frame) when the encode's constant rate ``fps`` would not
    reproduce the source timing, else None. Pure.

    ``pts``: the video packets' presentation timestamps in ``time_base`` ticks (any order: with
    B-frames packets come in decode order; sorted, they are the frames' display times).
    ``start``: the file's start time in seconds, subtracted like FFmpeg does for the audio it
    copies, so sync is kept. A re-time is needed when the intervals are uneven (VFR) or their
    median differs from ``1/fps`` by more than max(1 tick, 0.5 %). A missing pts, fewer than
    3 frames or a non-positive time base give None (nothing to go by: constant rate).
    """
    if time_base <= 0 or len(pts) < 3 or any(p is None for p in pts):
        return None
    ticks = sorted(int(p) for p in pts)
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    median = sorted(gaps)[len(gaps) // 2]
    if median <= 0:
        return None  # duplicate timestamps: broken, leave the constant rate
    slack = max(Fraction(1), _TIMING_TOLERANCE * median)
    uneven = any(abs(g - median) > slack for g in gaps)
    nominal = Fraction(1) / (fps * time_base)  # one frame at fps, in ticks
    off_rate = abs(median - nominal) > max(Fraction(1), _TIMING_TOLERANCE * nominal)
    if not (uneven or off_rate):
        return None
    return [float((t * time_base - start) * 1000) for t in ticks]


def frame_timestamps(info: VideoInfo) -> tuple[list[int | None], Fraction, Fraction]:
    """(pts of every video packet in time-base ticks, the time base, the file's start time in
    seconds), read with ffprobe (demux only, no decoding) for :func:`retime_plan`."""
    from didtv.io.ffmpeg import ffprobe_json

    def parse_fraction_or_none(value) -> Fraction | None:
        try:
            out = Fraction(str(value).strip())
        except (ValueError, ZeroDivisionError):
            return None
        return out

    data = ffprobe_json(tool_safe_path(info.path), "-select_streams", "V:0", "-show_entries",
                        "packet=pts:stream=time_base:format=start_time", timeout=3600)
    packets = data.get("packets") or []
    pts = [p.get("pts") if isinstance(p.get("pts"), int) else None for p in packets if isinstance(p, dict)]
    streams = data.get("streams") or [{}]
    time_base = parse_fraction_or_none(streams[0].get("time_base")) or Fraction(0)
    start = parse_fraction_or_none((data.get("format") or {}).get("start_time")) or Fraction(0)
    return pts, time_base, start


def fit_height(width: int, height: int, max_height: int | None) -> tuple[int, int]:
    """The picture size after a downscale to at most ``max_height`` lines (pure function).

    Unchanged when ``max_height`` is None or the picture is not taller. Otherwise the height is
    ``max_height`` rounded down to even and the width keeps the aspect ratio, rounded to the
    nearest even number (4:2:0 output needs both even); e.g. 1920x1080 at 540 -> 960x540,
    640x272 at 200 -> 470x200, 1080x1920 (portrait) at 540 -> 304x540.
    """
    if max_height is None or height <= max_height:
        return width, height
    new_h = max(2, max_height - max_height % 2)
    new_w = max(2, 2 * round(width * new_h / height / 2))
    return new_w, new_h


@dataclass(frozen=True)
class Span:
    """A run of frames to decode, by presentation timestamp in the stream's time base: from
    ``start_pts`` (included) to ``end_pts`` (excluded; None: to the end). ``seek``: seconds
    (from the file's start time) to jump to first, at or before the span's first frame; the
    demuxer lands on the keyframe at or before it (``-noaccurate_seek``) and ``trim`` on the
    untouched timestamps (``-copyts``) picks the span, frame-exactly. Deinterlacing runs before
    the trim, so the frames are the same as those of a whole-file decode (didtv.chunks)."""

    start_pts: int
    end_pts: int | None = None
    seek: float | None = None


def decode_argv(info: VideoInfo, size: tuple[int, int] | None = None, span: Span | None = None) -> list[str]:
    """The ffmpeg command that writes the first video stream as planar float RGB to stdout.

    ``size`` = (width, height) resizes in the same zscale step (spline36), after FFmpeg's
    auto-rotation; ``None`` keeps the display size. ``span``: only those frames (:class:`Span`).
    """
    colour = decode_colour(info)
    input_opts, pre = prefilters(info)
    if span is not None:
        if span.seek is not None and span.seek > 0:
            input_opts.update(ss=f"{span.seek:.6f}", noaccurate_seek=None)
        input_opts["copyts"] = None
        end = "" if span.end_pts is None else f":end_pts={int(span.end_pts)}"
        pre = pre + [f"trim=start_pts={int(span.start_pts)}{end}"]
    resize = ""
    if size is not None and tuple(size) != even_size(info.display_width, info.display_height):
        resize = f"w={int(size[0])}:h={int(size[1])}:f=spline36:"
    if colour.matrix is None:
        vf = f"zscale={resize}rin={colour.range}:r=full,format=gbrpf32le"
    else:
        vf = (f"zscale={resize}min={colour.matrix}:rin={colour.range}:cin={colour.chroma_location}"
              f":m={colour.matrix}:r=full,format=gbrpf32le")
    vf = ",".join(pre + [vf])
    stream = (
        ffmpeg_python.input(tool_safe_path(info.path), **input_opts)
        .output("pipe:", format="rawvideo", pix_fmt="gbrpf32le", vf=vf, map=f"0:{info.index}",
                fps_mode="passthrough", enc_time_base=-1, an=None, sn=None, dn=None)
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", "-xerror")
    )
    return stream.compile(cmd=tool_path("ffmpeg"))


class FrameReader:
    """Iterates the decoded frames of ``info``'s video stream.

    Yields float32 arrays ``(3, h, w)``: BT.709 (or the input's) R'G'B' in [0, 1], in
    display orientation (FFmpeg applies rotation, so ``h, w`` are ``info.display_*``), or
    resized to ``size`` = (width, height) when given (see :func:`fit_height`); odd display
    sizes are padded to even (:func:`even_size`, :func:`prefilters`); ``span``: only those
    frames (:class:`Span`). A short read, a non-zero FFmpeg exit or any decode error message raises FFmpegError; it
    never ends early silently.
    Use as a context manager so the child is always reaped.
    """

    def __init__(self, info: VideoInfo, size: tuple[int, int] | None = None,
                 span: Span | None = None) -> None:
        self.info = info
        self.span = span
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.width, self.height = self.size or even_size(info.display_width, info.display_height)
        self.frame_bytes = 3 * self.width * self.height * 4
        self.frames_read = 0
        self._child: Child | None = None

    def __enter__(self) -> "FrameReader":
        self._child = spawn(decode_argv(self.info, self.size, self.span), stdout=subprocess.PIPE)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """End the decoder now (safe from any thread, and more than once); a thread blocked
        reading a frame then sees the pipe end."""
        if self._child is not None:
            self._child.stop()

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._child is None:
            raise RuntimeError("use FrameReader as a context manager")
        pipe = self._child.proc.stdout
        size = self.frame_bytes
        while True:
            buf = bytearray(size)
            view = memoryview(buf)
            got = 0
            while got < size:
                n = pipe.readinto(view[got:])
                if not n:
                    break
                got += n
            if got == 0:
                break
            if got < size:
                self._child.proc.wait()
                raise FFmpegError(
                    f"decoding {self.info.path} ended inside frame {self.frames_read} "
                    f"({got} of {size} bytes): {self._child.stderr.text().splitlines()[-1:] or ''}")
            gbr = np.frombuffer(buf, dtype="<f4").reshape(3, self.height, self.width)
            frame = np.empty_like(gbr)
            frame[0], frame[1], frame[2] = gbr[2], gbr[0], gbr[1]  # planes G, B, R -> R, G, B
            np.clip(frame, 0.0, 1.0, out=frame)
            self.frames_read += 1
            yield frame
        rc = self._child.proc.wait()
        # At -loglevel error FFmpeg prints only errors: concealed corruption, "File ended
        # prematurely" (exit status 0 on a truncated Matroska file): the input is damaged.
        # The first line is the cause; -xerror's own "corrupt decoded frame" comes last.
        errors = [ln.strip() for ln in self._child.stderr.text().splitlines() if ln.strip()]
        if rc != 0 or errors:
            cause = _strip_ffmpeg_prefix(errors[0]) if errors else "(no message)"
            if rc == 0 or any("corrupt" in ln for ln in errors):
                raise FFmpegError(f"{self.info.path}: damaged video, decoding failed at frame "
                                  f"{self.frames_read}: {cause}")
            raise FFmpegError(f"{self.info.path}: decoding failed at frame {self.frames_read} "
                              f"(exit {rc}): {cause}")


def _strip_ffmpeg_prefix(line: str) -> str:
    """``[h264 @ 0x55d0] error while decoding MB 6 5`` -> ``h264: error while decoding MB 6 5``."""
    line = line.strip()
    if line.startswith("[") and " @ " in line and "] " in line:
        name, rest = line[1:].split("] ", 1)
        return f"{name.split(' @ ')[0]}: {rest.strip()}"
    return line
