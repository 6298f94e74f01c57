"""Tiny real video clips for tests, made with the system FFmpeg (not a test module).

Every clip is generated from FFmpeg's ``testsrc2`` moving pattern (so consecutive frames differ),
with argument lists (never a shell) and ``-bitexact`` flags, so the same call gives the same
bytes. A 64x48, 10-frame clip takes well under a second on two cores.

Import it from tests as ``from clips import make_clip`` (``tests/`` is on ``sys.path`` because
``tests/conftest.py`` lives there), or use the ``clip_factory`` / ``sdr_clip`` fixtures.

Kinds (``make_clip(kind=...)``) and what ffprobe then reports (FFmpeg 5.1, x264/x265 from Debian):

========  ==========================  ===========  ==========================================
kind      codec / pix_fmt             tags         extra
========  ==========================  ===========  ==========================================
sdr       H.264 (x264 ultrafast:      bt709 x3     limited range ("tv")
          Constrained Baseline),
          yuv420p
sdr10     HEVC Main 10, yuv420p10le   bt709 x3     limited range
hdr10     HEVC Main 10, yuv420p10le   bt2020 /     x265 hdr10 SEI: mastering display P3-D65
                                      smpte2084 /  1000/0.0001 cd/m2 (:data:`HDR10_MASTER`),
                                      bt2020nc     MaxCLL 1000 / MaxFALL 400 (:data:`HDR10_CLL`)
pq10      HEVC Main 10, yuv420p10le   as hdr10     no mastering display / light level SEI
hlg       HEVC Main 10, yuv420p10le   bt2020 /     --
                                      arib-std-b67
                                      / bt2020nc
========  ==========================  ===========  ==========================================

Rotation: FFmpeg 5.1 writes an MP4/MOV display matrix only when *remuxing* (``-c copy``) with
``-metadata:s:v:0 rotate=N``; the same option on an encoding run is silently dropped. And that
tag is counter-clockwise: ``rotate=90`` makes ffprobe print ``rotation: 90`` and ffmpeg's
auto-rotation turn the picture 90 degrees *counter-clockwise*. ``make_clip(rotate=R)`` means "a
player (and ffmpeg's auto-rotate) turns the stored picture R degrees clockwise", so it writes
the tag ``(360 - R) % 360``. Matroska has no display matrix in FFmpeg 5.1: rotation needs .mp4/.mov.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from didtv.io.ffmpeg import tool_path

__all__ = ["make_clip", "make_patches_clip", "patch_box", "bt709_limited_codes", "HDR10_MASTER",
           "HDR10_CLL", "KINDS", "ffmpeg_available", "FFMPEG_MISSING_REASON", "requires_ffmpeg",
           "skip_without_ffmpeg"]

#: Skip reason for tests that need the system FFmpeg.
FFMPEG_MISSING_REASON = "FFmpeg not installed (apt-get install ffmpeg mkvtoolnix)"

KINDS = ("sdr", "sdr10", "hdr10", "pq10", "hlg")

#: x265 ``master-display`` written into "hdr10" clips: P3-D65 primaries, 1000 / 0.0001 cd/m2.
HDR10_MASTER = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
#: x265 ``max-cll`` written into "hdr10" clips (MaxCLL, MaxFALL in cd/m2).
HDR10_CLL = (1000, 400)

_QUIET = ["-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", "-y"]
_BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact"]

# (encoder, pix_fmt, primaries, transfer, matrix, x265 colour params)
_KIND_SPEC = {
    "sdr": ("libx264", "yuv420p", "bt709", "bt709", "bt709"),
    "sdr10": ("libx265", "yuv420p10le", "bt709", "bt709", "bt709"),
    "hdr10": ("libx265", "yuv420p10le", "bt2020", "smpte2084", "bt2020nc"),
    "pq10": ("libx265", "yuv420p10le", "bt2020", "smpte2084", "bt2020nc"),
    "hlg": ("libx265", "yuv420p10le", "bt2020", "arib-std-b67", "bt2020nc"),
}

_CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov"}


@lru_cache(maxsize=None)
def ffmpeg_available() -> bool:
    """True when both ffmpeg and ffprobe can be found (see didtv.io.ffmpeg.tool_path)."""
    try:
        tool_path("ffmpeg")
        tool_path("ffprobe")
    except Exception:
        return False
    return True


def skip_without_ffmpeg() -> None:
    """Call inside a test or fixture: skips it when ffmpeg/ffprobe are missing."""
    import pytest

    if not ffmpeg_available():
        pytest.skip(FFMPEG_MISSING_REASON)


def _requires_ffmpeg():
    import pytest

    return pytest.mark.skipif(not ffmpeg_available(), reason=FFMPEG_MISSING_REASON)


@lru_cache(maxsize=None)
def _encoders() -> frozenset[str]:
    out = subprocess.run([tool_path("ffmpeg"), "-hide_banner", "-encoders"], capture_output=True,
                         text=True, check=False).stdout
    return frozenset(line.split()[1] for line in out.splitlines()
                     if len(line.split()) > 1 and line.startswith(" V"))


def _run(argv: Sequence[str], *, input: bytes | None = None) -> None:
    out = subprocess.run(list(argv), input=input, capture_output=True, check=False)
    if out.returncode != 0:
        tail = out.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise RuntimeError(f"ffmpeg failed (exit {out.returncode}): {' | '.join(tail)}\nargv: {argv}")


def _write_srt(path: Path, duration: float) -> None:
    end = max(0.1, duration)

    def ts(t: float) -> str:
        ms = int(round(t * 1000))
        return f"00:00:{ms // 1000:02d},{ms % 1000:03d}"

    path.write_text(f"1\n{ts(0)} --> {ts(end / 2)}\nBonjour\n\n2\n{ts(end / 2)} --> {ts(end)}\n"
                    f"Au revoir\n\n", encoding="utf-8")


def _video_args(kind: str, encoder: str, pix_fmt: str, container: str) -> list[str]:
    _, _, prim, trc, matrix = _KIND_SPEC[kind]
    args = ["-c:v", encoder, "-pix_fmt", pix_fmt]
    if encoder == "libx264":
        args += ["-preset", "ultrafast", "-x264-params", "log-level=error"]
    elif encoder == "libx265":
        params = ["log-level=error", f"colorprim={prim}", f"transfer={trc}",
                  f"colormatrix={matrix}", "range=limited"]
        if kind == "hdr10":
            params += ["hdr10=1", "repeat-headers=1", f"master-display={HDR10_MASTER}",
                       f"max-cll={HDR10_CLL[0]},{HDR10_CLL[1]}"]
        args += ["-preset", "ultrafast", "-x265-params", ":".join(params)]
        if container in ("mp4", "mov"):
            args += ["-tag:v", "hvc1"]
    args += ["-color_primaries", prim, "-color_trc", trc, "-colorspace", matrix,
             "-color_range", "tv"]
    return args


def make_clip(path, *, kind: str = "sdr", size: tuple[int, int] = (64, 48), frames: int = 10,
              fps: str = "25", audio: bool = False, subtitles: bool = False,
              codec: str | None = None, pix_fmt: str | None = None,
              rotate: int | None = None) -> Path:
    """Write a small clip to ``path`` and return it as a Path.

    kind: one of :data:`KINDS` (see the module docstring). size: (width, height). fps: an exact
    rate as FFmpeg accepts it ("25", "30000/1001"). audio: a stereo 440 Hz sine (AAC) as long as
    the video, language "eng". subtitles: a two-cue SubRip file written next to the clip
    (``<stem>.srt``) and muxed as srt (.mkv) or mov_text (.mp4/.mov), language "fra".
    codec / pix_fmt override the kind's video encoder / pixel format (the kind's colour tags
    stay). rotate: 90/180/270, the clockwise turn a player applies (.mp4/.mov only).
    The container comes from the suffix: .mp4, .mkv or .mov.
    """
    path = Path(path)
    container = _CONTAINERS.get(path.suffix.lower())
    if container is None:
        raise ValueError(f"unsupported clip suffix {path.suffix!r}; use one of {', '.join(_CONTAINERS)}")
    if kind not in _KIND_SPEC:
        raise ValueError(f"unknown clip kind {kind!r}; use one of {', '.join(KINDS)}")
    if rotate is not None:
        rotate = int(rotate) % 360
        if rotate not in (0, 90, 180, 270):
            raise ValueError(f"rotate must be a multiple of 90, got {rotate}")
        if container == "matroska" and rotate:
            raise ValueError("FFmpeg 5.1 cannot write a rotation into Matroska; use .mp4 or .mov")
    if frames < 1:
        raise ValueError("frames must be >= 1")
    encoder, default_pix_fmt = _KIND_SPEC[kind][:2]
    if codec is None and encoder == "libx264" and "libx264" not in _encoders():
        encoder = "mpeg4"  # FFmpeg builds without GPL encoders still have this
    encoder = codec or encoder
    pix_fmt = pix_fmt or default_pix_fmt
    rate = Fraction(fps)
    duration = float(frames / rate)
    width, height = size
    path.parent.mkdir(parents=True, exist_ok=True)

    argv = [tool_path("ffmpeg"), *_QUIET,
            "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps},trim=end_frame={frames}"]
    maps = ["-map", "0:v:0"]
    n_inputs = 1
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={duration:.6f}"]
        maps += ["-map", f"{n_inputs}:a:0"]
        n_inputs += 1
    if subtitles:
        srt = path.with_name(path.stem + ".srt")
        _write_srt(srt, duration)
        argv += ["-i", str(srt)]
        maps += ["-map", f"{n_inputs}:s:0"]
        n_inputs += 1
    # The source ends after `frames` frames (trim) rather than `-frames:v`: with an encoder that
    # buffers (x265), `-frames:v` ends the whole output early and truncates the audio.
    argv += maps
    argv += _video_args(kind, encoder, pix_fmt, container)
    if audio:
        argv += ["-c:a", "aac", "-ac", "2", "-b:a", "64k", "-metadata:s:a:0", "language=eng"]
    if subtitles:
        argv += ["-c:s", "srt" if container == "matroska" else "mov_text",
                 "-metadata:s:s:0", "language=fra"]
    argv += [*_BITEXACT, "-f", container]

    if rotate:
        tmp = path.with_name(path.stem + ".norotate" + path.suffix)
        _run(argv + [str(tmp)])
        try:
            # Only a stream-copy remux makes FFmpeg 5.1's mov muxer write the display matrix.
            _run([tool_path("ffmpeg"), *_QUIET, "-i", str(tmp), "-map", "0", "-c", "copy",
                  "-metadata:s:v:0", f"rotate={(360 - rotate) % 360}", *_BITEXACT,
                  "-f", container, str(path)])
        finally:
            tmp.unlink(missing_ok=True)
    else:
        _run(argv + [str(path)])
    return path


#: ``@requires_ffmpeg`` / ``pytestmark = requires_ffmpeg``: skip when ffmpeg/ffprobe are missing.
requires_ffmpeg = _requires_ffmpeg()


# ---------------------------------------------------------------------------------------------
# Flat colour patches with exactly known Y'CbCr codes

KR, KB = 0.2126, 0.0722  # BT.709 luma coefficients
BLOCK = 16


def bt709_limited_codes(rgb8: tuple[int, int, int]) -> tuple[int, int, int]:
    """8-bit R'G'B' (0-255, full range) -> 8-bit BT.709 limited-range Y'CbCr codes (rounded).

    Y' = 16 + 219 E'y, Cb = 128 + 224 (E'b - E'y) / 1.8556, Cr = 128 + 224 (E'r - E'y) / 1.5748.
    """
    r, g, b = (np.clip(np.asarray(rgb8, dtype=np.float64), 0, 255) / 255.0)
    y = KR * r + (1 - KR - KB) * g + KB * b
    cb = (b - y) / (2 * (1 - KB))
    cr = (r - y) / (2 * (1 - KR))
    codes = np.rint([16 + 219 * y, 128 + 224 * cb, 128 + 224 * cr])
    return tuple(int(v) for v in np.clip(codes, 0, 255))


def patch_box(index: int, size: tuple[int, int] = (64, 64)) -> tuple[slice, slice]:
    """(rows, cols) slices of the ``index``-th 16x16 block, raster order, in a frame of ``size``
    (width, height). ``make_patches_clip`` puts colour ``k`` in every block ``i`` with
    ``i % len(colors) == k``; block ``k`` itself is always colour ``k``."""
    width, _ = size
    per_row = width // BLOCK
    row, col = divmod(index, per_row)
    return slice(row * BLOCK, (row + 1) * BLOCK), slice(col * BLOCK, (col + 1) * BLOCK)


def make_patches_clip(path, colors_8bit: list[tuple[int, int, int]], size: tuple[int, int] = (64, 64),
                      frames: int = 3) -> tuple[Path, list[tuple[int, int, int]]]:
    """Write a lossless 8-bit yuv420p BT.709 limited-range clip of flat 16x16 colour blocks.

    The Y'CbCr codes are computed here (:func:`bt709_limited_codes`) and fed to FFmpeg as raw
    yuv420p, so no FFmpeg colour conversion is involved; blocks are 16x16 so each 2x2 chroma
    site is uniform and 4:2:0 subsampling is exact. Blocks in raster order cycle through
    ``colors_8bit`` (see :func:`patch_box`). Codec: libx264 ``-qp 0`` (.mp4/.mov) or ffv1 (.mkv),
    both lossless; tags bt709/bt709/bt709, range tv. Returns (path, codes), ``codes[k]`` being
    the (Y', Cb, Cr) of ``colors_8bit[k]``.
    """
    path = Path(path)
    container = _CONTAINERS.get(path.suffix.lower())
    if container is None:
        raise ValueError(f"unsupported clip suffix {path.suffix!r}; use one of {', '.join(_CONTAINERS)}")
    width, height = size
    if width % BLOCK or height % BLOCK:
        raise ValueError(f"size must be a multiple of {BLOCK}, got {size}")
    n_blocks = (width // BLOCK) * (height // BLOCK)
    if not 1 <= len(colors_8bit) <= n_blocks:
        raise ValueError(f"need 1..{n_blocks} colours for a {width}x{height} frame, got {len(colors_8bit)}")
    codes = [bt709_limited_codes(tuple(c)) for c in colors_8bit]

    y_plane = np.empty((height, width), np.uint8)
    cb_plane = np.empty((height // 2, width // 2), np.uint8)
    cr_plane = np.empty((height // 2, width // 2), np.uint8)
    for i in range(n_blocks):
        rows, cols = patch_box(i, size)
        y, cb, cr = codes[i % len(codes)]
        y_plane[rows, cols] = y
        crows = slice(rows.start // 2, rows.stop // 2)
        ccols = slice(cols.start // 2, cols.stop // 2)
        cb_plane[crows, ccols] = cb
        cr_plane[crows, ccols] = cr
    frame = y_plane.tobytes() + cb_plane.tobytes() + cr_plane.tobytes()

    if container == "matroska":
        vcodec = ["-c:v", "ffv1", "-level", "3"]
    else:
        vcodec = ["-c:v", "libx264", "-qp", "0", "-preset", "ultrafast", "-x264-params", "log-level=error"]
    path.parent.mkdir(parents=True, exist_ok=True)
    argv = [tool_path("ffmpeg"), *_QUIET,
            "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}", "-r", "25",
            "-color_range", "tv", "-colorspace", "bt709", "-color_primaries", "bt709",
            "-color_trc", "bt709", "-i", "pipe:0",
            *vcodec, "-pix_fmt", "yuv420p",
            "-color_range", "tv", "-colorspace", "bt709", "-color_primaries", "bt709",
            "-color_trc", "bt709", *_BITEXACT, "-f", container, str(path)]
    _run(argv, input=frame * frames)
    return path, codes
