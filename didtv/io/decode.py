"""Decoding: any video FFmpeg reads -> float32 R'G'B' frames, channel-first ``(3, h, w)`` in [0, 1].

The conversion to RGB is done by zscale with the input's matrix and range stated explicitly:
FFmpeg's default path silently uses the BT.601 matrix (24 code values off on BT.709 patches,
see ../shared/RESEARCH.md). The output is planar float (``gbrpf32le``) so FFmpeg inserts no
converter of its own; zscale's float output is not clipped, so frames are clipped here.
``-fps_mode passthrough`` yields exactly the coded frames (the rawvideo muxer would otherwise
duplicate frames to keep a constant rate).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Iterator

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


def decode_argv(info: VideoInfo) -> list[str]:
    """The ffmpeg command that writes the first video stream as planar float RGB to stdout."""
    colour = decode_colour(info)
    if colour.matrix is None:
        vf = f"zscale=rin={colour.range}:r=full,format=gbrpf32le"
    else:
        vf = (f"zscale=min={colour.matrix}:rin={colour.range}:cin={colour.chroma_location}"
              f":m={colour.matrix}:r=full,format=gbrpf32le")
    stream = (
        ffmpeg_python.input(info.path)
        .output("pipe:", format="rawvideo", pix_fmt="gbrpf32le", vf=vf, map=f"0:{info.index}",
                fps_mode="passthrough", an=None, sn=None, dn=None)
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error", "-nostats")
    )
    return stream.compile(cmd=tool_path("ffmpeg"))


class FrameReader:
    """Iterates the decoded frames of ``info``'s video stream.

    Yields float32 arrays ``(3, h, w)``: BT.709 (or the input's) R'G'B' in [0, 1], in
    display orientation (FFmpeg applies rotation, so ``h, w`` are ``info.display_*``).
    A short read or a non-zero FFmpeg exit raises FFmpegError; it never ends early silently.
    Use as a context manager so the child is always reaped.
    """

    def __init__(self, info: VideoInfo) -> None:
        self.info = info
        self.width = info.display_width
        self.height = info.display_height
        self.frame_bytes = 3 * self.width * self.height * 4
        self.frames_read = 0
        self._child: Child | None = None

    def __enter__(self) -> "FrameReader":
        self._child = spawn(decode_argv(self.info), stdout=subprocess.PIPE)
        return self

    def __exit__(self, *exc) -> None:
        if self._child is not None:
            self._child.kill()
            if self._child.proc.stdout:
                self._child.proc.stdout.close()

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
        self._child.wait(f"decoding {self.info.path}")
