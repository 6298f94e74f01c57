"""Encoding: float PQ BT.2020 R'G'B' frames -> HEVC Main10 with HDR10 metadata, in MKV or MP4.

Three steps, each a separate, checkable process:

1. ``ffmpeg``: frames arrive as planar float RGB (``gbrpf32le``) on stdin; zscale converts them
   to 10-bit 4:2:0 BT.2020nc limited range with the matrix stated explicitly (FFmpeg's default
   path would use BT.601 while tagging BT.2020); ``setparams`` and the output flags tag
   bt2020 / smpte2084 / bt2020nc / tv; x265 writes the mastering display SEI. Audio, subtitles,
   attachments, chapters and metadata are mapped from the source into a Matroska file.
2. ``mkvpropedit``: the container's MasteringMetadata and MaxCLL / MaxFALL, measured from the
   frames written (no FFmpeg version writes them, see ../shared/RESEARCH.md).
3. For ``.mp4``: ``ffmpeg -c copy`` remux with ``-tag:v hvc1``, converting what MP4 cannot hold
   (text subtitles to mov_text, PCM audio to ALAC); it carries mdcv/clli over from the MKV.

Variable-frame-rate input is encoded at a nominal rate and then re-timed with the source's own
frame timestamps (:func:`retime_mkv`: ``mkvmerge --timestamps 0:FILE``, a timestamps v2 file).

Failures are loud: FFmpeg 5.1 exits with status 0 when the disk fills up ("Error writing
trailer ...: No space left on device"), so any error line on stderr fails the step, and an
encoder killed by SIGXFSZ (a file size limit) or reporting ENOSPC / EFBIG is an
:class:`OutputError` saying so.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from didtv.color.hdr10 import ContentLightLevel, LightLevelMeter, MasteringDisplay
from didtv.color.transfer import pq_inverse_eotf
from didtv.errors import DidtvError, FFmpegError, OutputError
from didtv.io.decode import tool_safe_path
from didtv.io.ffmpeg import FFMPEG_FLAGS, Child, last_line, run, spawn, tool_path
from didtv.io.probe import VideoInfo

CONTAINERS = (".mkv", ".mp4")
X265_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")
COLOUR_TAGS = ["-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc",
               "-color_range", "tv"]

# What MP4 takes as it is; other audio is converted (see _mp4_stream_args).
MP4_AUDIO_COPY = {"aac", "mp3", "ac3", "eac3", "alac", "opus", "mp2", "dts"}
MP4_AUDIO_EXPERIMENTAL = {"flac", "truehd"}  # allowed with -strict -2
TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}


@dataclass(frozen=True)
class EncodeSettings:
    """x265 settings. ``crf`` is ignored when ``lossless``."""

    crf: float = 18.0
    preset: str = "medium"
    lossless: bool = False
    mastering: MasteringDisplay = field(default_factory=MasteringDisplay.named)
    x265_params: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.preset not in X265_PRESETS:
            raise ValueError(f"unknown x265 preset {self.preset!r}; allowed: {', '.join(X265_PRESETS)}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be between 0 and 51, got {self.crf}")

    def x265_param_string(self) -> str:
        params = [
            "hdr10=1", "hdr10-opt=0", "repeat-headers=1", "colorprim=bt2020", "transfer=smpte2084",
            "colormatrix=bt2020nc", "range=limited", "chromaloc=0",
            f"master-display={self.mastering.x265()}", "log-level=error",
        ]
        if self.lossless:
            params.append("lossless=1")
        params.extend(self.x265_params)
        return ":".join(params)


#: x265 3.5 refuses pictures narrower or lower than this ("Image size is too small"), whatever
#: the preset (measured: 16x16 works, 16x14 and 14x16 fail).
MIN_ENCODE_SIZE = 16

#: Narrower than this, x265's SIMD code is switched off (``asm=0``): Debian's libx265 3.5
#: corrupts its heap and aborts (SIGABRT, "corrupted size vs. prev_size") on 10-bit pictures 34
#: to 48 pixels wide with its AVX2 routines (measured: 21 of 24 runs crash; 0 with asm=0 or
#: asm=sse4). Pictures this small encode in no time without SIMD.
X265_NO_ASM_BELOW_WIDTH = 64

#: Messages with which the OS reports a full disk or an exceeded file size limit.
_NO_SPACE = ("No space left on device", "File too large", "Disk quota exceeded")


def write_failure(what: str, path, rc: int | None, stderr: str) -> DidtvError:
    """The error for a writer (ffmpeg, mkvmerge, mkvpropedit) that failed: an OutputError
    naming the cause for a full disk / size limit, else FFmpegError with FFmpeg's last line."""
    if rc is not None and rc == -signal.SIGXFSZ:
        return OutputError(f"cannot write {path}: file size limit exceeded (SIGXFSZ; ulimit -f)")
    for needle in _NO_SPACE:
        if needle in stderr:
            return OutputError(f"cannot write {path}: {needle.lower()}",
                               hint="free some space (or raise the quota) and run again")
    status = f"exit {rc}" if rc is not None else "error"
    return FFmpegError(f"{what} failed ({status}): {last_line(stderr)}")


def run_strict(argv: Sequence[str], what: str, path) -> None:
    """Run a writing command to completion; a non-zero exit *or any line on stderr* (the tools
    run at their error-only log level) is a failure (:func:`write_failure`)."""
    with spawn(argv, stdout=subprocess.DEVNULL) as child:  # stopped on any exception
        rc = child.proc.wait()
    err = child.stderr.text().strip()
    if rc != 0 or err:
        raise write_failure(what, path, rc, err)


def _fps_arg(fps: Fraction) -> str:
    return f"{fps.numerator}/{fps.denominator}"


def encode_argv(dst: Path, *, width: int, height: int, fps: Fraction, settings: EncodeSettings,
                source: VideoInfo | None, metadata: Mapping[str, str] | None = None) -> list[str]:
    """ffmpeg argv: raw ``gbrpf32le`` frames on stdin (+ the source for its other streams) -> MKV.

    ``metadata``: extra global tags (after the source's, which are copied), e.g. didtv's
    ``DIDTV`` record of the source and options (see didtv.api.conversion_identity)."""
    argv = [tool_path("ffmpeg"), *FFMPEG_FLAGS, "-y",
            "-f", "rawvideo", "-pix_fmt", "gbrpf32le", "-s", f"{width}x{height}",
            "-framerate", _fps_arg(fps), "-i", "pipe:0"]
    if source is not None:
        argv += ["-i", tool_safe_path(source.path)]
    argv += _source_args(source, metadata)
    argv += [
        "-vf", ("zscale=rin=full:m=2020_ncl:r=limited:c=left,format=yuv420p10le,"
                "setparams=color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc:range=tv"),
        "-c:v", "libx265", "-preset", settings.preset,
    ]
    if not settings.lossless:
        argv += ["-crf", f"{settings.crf:g}"]
    x265_params = settings.x265_param_string()
    if width < X265_NO_ASM_BELOW_WIDTH:
        x265_params += ":asm=0"
    from didtv.engine.limits import x265_thread_params

    x265_params += x265_thread_params(height)  # a worker of several: its share of the cores
    argv += ["-x265-params", x265_params, *COLOUR_TAGS,
             "-metadata:s:v:0", "title=", "-f", "matroska", tool_safe_path(dst)]
    return argv


def _source_args(source: VideoInfo | None, metadata: Mapping[str, str] | None) -> list[str]:
    """Maps for an ffmpeg whose input 0 is the video and input 1 ``source``: the video, then
    the source's audio, subtitles, attachments, chapters and tags, stream-copied; ``metadata``
    as global tags after the source's."""
    argv = ["-map", "0:v:0"]
    if source is not None:
        argv += ["-map", "1:a?", "-map", "1:s?", "-map", "1:t?",
                 "-map_metadata", "1", "-map_chapters", "1", "-c:a", "copy", "-c:s", "copy", "-c:t", "copy"]
        for k, sub in enumerate(source.subtitles):
            if sub.codec == "mov_text":  # MP4's text format is not allowed in Matroska
                argv += [f"-c:s:{k}", "srt"]
    for key, value in (metadata or {}).items():
        argv += ["-metadata", f"{key}={value}"]
    return argv


def mux_source_streams(video: Path, dst: Path, source: VideoInfo | None,
                       metadata: Mapping[str, str] | None = None) -> None:
    """``video`` (an MKV of the encoded video only) + ``source``'s other streams, chapters and
    tags -> the MKV ``dst``, as :func:`encode_argv` maps them in one pass (the video copied)."""
    argv = [tool_path("ffmpeg"), *FFMPEG_FLAGS, "-y", "-i", tool_safe_path(video)]
    if source is not None:
        argv += ["-i", tool_safe_path(source.path)]
    argv += [*_source_args(source, metadata), "-c:v", "copy", *COLOUR_TAGS,
             "-metadata:s:v:0", "title=", "-f", "matroska", tool_safe_path(dst)]
    run_strict(argv, "muxing the source's streams", dst)


def cfr_timestamps_ms(frames: int, fps: Fraction) -> list[int]:
    """The millisecond timestamps FFmpeg's Matroska muxer gives frames at the constant ``fps``
    (``i / fps`` rounded to the nearest ms, halves up, as av_rescale_q does)."""
    return [int(Fraction(1000 * i) / fps + Fraction(1, 2)) for i in range(frames)]


def join_mkv(parts: Sequence[Path], out_path: Path, timestamps_ms: Sequence[float], ts_file: Path) -> None:
    """Append the video-only MKVs ``parts`` into ``out_path`` (``mkvmerge a + b + ...``), frame
    after frame, with these timestamps (ms, one per frame of all parts): appending alone would
    offset each part by its rounded duration (1 ms off per part)."""
    if not parts:
        raise ValueError("nothing to join")
    argv: list[str] = []
    for k, part in enumerate(parts):
        argv += ([] if k == 0 else ["+"]) + [tool_safe_path(part)]
    _mkvmerge(argv, out_path, timestamps_ms, ts_file, "mkvmerge (joining chunks)")


class HDR10Writer:
    """Streams frames into x265.

    ``write(frame)`` takes PQ BT.2020 R'G'B' ``(3, h, w)`` float32; values are clipped to
    [0, 1], and with ``peak`` (cd/m2, the mastering display's maximum) each channel is clipped at
    that luminance's PQ code: an HDR10 file should not hold light its mastering display cannot
    show (a learned model's residual is not bounded; DIDNet Tiny reached 2051 cd/m2 on the
    sample). ``close()`` finishes the stream into ``mkv_path``; ``abort()`` ends the encoder at
    once (the caller deletes the file), even while another thread is blocked in ``write()``. Content light levels are measured afterwards from the file
    itself (:func:`measure_written`).
    """

    def __init__(self, mkv_path: Path, *, width: int, height: int, fps: Fraction,
                 settings: EncodeSettings, source: VideoInfo | None,
                 metadata: Mapping[str, str] | None = None, peak: float | None = None) -> None:
        if width % 2 or height % 2:
            raise OutputError(f"4:2:0 output needs even width and height, got {width}x{height}")
        if width < MIN_ENCODE_SIZE or height < MIN_ENCODE_SIZE:
            raise OutputError(f"x265 needs at least {MIN_ENCODE_SIZE}x{MIN_ENCODE_SIZE} pixels, "
                              f"got {width}x{height}")
        self.path = Path(mkv_path)
        self.width, self.height = width, height
        self.frames_written = 0
        self._argv = encode_argv(self.path, width=width, height=height, fps=fps, settings=settings,
                                 source=source, metadata=metadata)
        self._child: Child = spawn(self._argv, stdin=subprocess.PIPE)
        self._planes = np.empty((3, height, width), dtype="<f4")
        self.max_code = 1.0 if peak is None else float(pq_inverse_eotf(np.float64(peak)))

    @property
    def argv(self) -> list[str]:
        return list(self._argv)

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (3, self.height, self.width):
            raise ValueError(f"frame shape {frame.shape} != (3, {self.height}, {self.width})")
        planes = self._planes
        top = self.max_code
        np.clip(frame[1], 0.0, top, out=planes[0])  # G
        np.clip(frame[2], 0.0, top, out=planes[1])  # B
        np.clip(frame[0], 0.0, top, out=planes[2])  # R
        try:
            self._child.proc.stdin.write(planes.tobytes())
        except (BrokenPipeError, OSError) as exc:
            rc = self._child.proc.wait()
            raise write_failure(f"encoder (stopped at frame {self.frames_written})", self.path, rc,
                                self._child.stderr.text()) from exc
        self.frames_written += 1

    def close(self) -> None:
        try:
            self._child.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        rc = self._child.proc.wait()
        err = self._child.stderr.text().strip()
        # FFmpeg 5.1 exits 0 after "Error writing trailer ...: No space left on device".
        if rc != 0 or err:
            raise write_failure("encoding (x265)", self.path, rc, err)

    def abort(self) -> None:
        # Kill first, close stdin after: a thread blocked in write() holds the pipe's lock until
        # the encoder reads or dies, so closing first would wait on it (and x265 may never read).
        self._child.stop()


def measure_written(path: Path) -> tuple[ContentLightLevel, int]:
    """Decode the encoded file and measure MaxCLL / MaxFALL of what a decoder shows.

    The light levels describe the frames actually written: 10-bit quantised, 4:2:0 subsampled
    and (unless lossless) compressed, decoded back to R'G'B' with zscale. Chroma upsampling at
    sharp saturated edges makes max(R, G, B) overshoot the pre-encode frames (measured: 1278 vs
    1005 cd/m2 on colour patches), which is why the frames fed to x265 are not measured instead.
    Also returns the number of frames decoded, so the caller can check nothing was lost.
    """
    from didtv.io.decode import FrameReader
    from didtv.io.probe import probe

    meter = LightLevelMeter(quantise=False)
    with FrameReader(probe(tool_safe_path(path))) as reader:
        for frame in reader:
            meter.update(frame)
    return meter.result(), meter.frames


def write_container_hdr10(mkv_path: Path, mastering: MasteringDisplay, light: ContentLightLevel) -> None:
    """Put MasteringMetadata and MaxCLL / MaxFALL into the MKV's first video track, in place."""
    argv = [tool_path("mkvpropedit"), "--quiet", tool_safe_path(mkv_path), "--edit", "track:v1",
            *mastering.mkvpropedit_args(),
            "--set", f"max-content-light={light.max_cll}", "--set", f"max-frame-light={light.max_fall}"]
    run(argv, "mkvpropedit (HDR10 container metadata)")


def _mp4_stream_args(source: VideoInfo | None) -> tuple[list[str], list[str]]:
    """Per-stream ffmpeg options for the MKV -> MP4 remux, and warnings for dropped streams.

    Streams in the intermediate MKV are: video 0, then the source's audio, subtitles,
    attachments, in that order (the encode maps them so).
    """
    args: list[str] = ["-map", "0:v:0"]
    warnings: list[str] = []
    if source is None:
        return args, warnings
    strict = False
    for k, a in enumerate(source.audio):
        args += ["-map", f"0:a:{k}"]
        if a.codec in MP4_AUDIO_COPY:
            args += [f"-c:a:{k}", "copy"]
        elif a.codec in MP4_AUDIO_EXPERIMENTAL:
            args += [f"-c:a:{k}", "copy"]
            strict = True
        elif a.codec.startswith("pcm_"):
            args += [f"-c:a:{k}", "alac"]
            warnings.append(f"audio stream {a.index} ({a.codec}) converted to ALAC (lossless) for MP4")
        else:
            args += [f"-c:a:{k}", "aac", f"-b:a:{k}", "256k"]
            warnings.append(f"audio stream {a.index} ({a.codec}) converted to AAC 256k: MP4 cannot hold it")
    out_k = 0
    for k, s in enumerate(source.subtitles):
        if s.codec in TEXT_SUBTITLES:
            args += ["-map", f"0:s:{k}", f"-c:s:{out_k}", "mov_text"]
            out_k += 1
        else:
            warnings.append(f"subtitle stream {s.index} ({s.codec}) dropped: MP4 cannot hold bitmap subtitles")
    if source.other:
        warnings.append("attachments and data streams dropped: MP4 cannot hold them")
    if strict:
        args += ["-strict", "-2"]
    return args, warnings


def remux_mp4(mkv_path: Path, mp4_path: Path, source: VideoInfo | None) -> list[str]:
    """MKV -> MP4 (hvc1), stream copy where MP4 allows; returns warnings for what changed."""
    stream_args, warnings = _mp4_stream_args(source)
    # use_metadata_tags: MP4's iTunes-style tags have no free-form key, so without it the DIDTV
    # tag (what batch resumption checks) would be dropped; tags are then stored as mdta keys.
    argv = [tool_path("ffmpeg"), *FFMPEG_FLAGS, "-y", "-i", tool_safe_path(mkv_path), *stream_args,
            "-map_metadata", "0", "-map_chapters", "0", "-c:v", "copy", "-tag:v", "hvc1",
            *COLOUR_TAGS, "-movflags", "+faststart+write_colr+use_metadata_tags", "-f", "mp4",
            tool_safe_path(mp4_path)]
    run_strict(argv, "remux to MP4", mp4_path)
    return warnings


def retime_mkv(mkv_path: Path, out_path: Path, timestamps_ms: Sequence[float], ts_file: Path) -> None:
    """Give the video track of ``mkv_path`` these presentation timestamps (milliseconds, one per
    frame, in order), writing ``out_path``; ``ts_file`` is where the timestamps v2 file goes
    (the caller removes it). Other tracks, chapters, tags and attachments are kept by mkvmerge;
    the video track is track 0 (the encode maps it first)."""
    _mkvmerge([tool_safe_path(mkv_path)], out_path, timestamps_ms, ts_file,
              "mkvmerge (variable frame rate timestamps)")


def _mkvmerge(inputs: Sequence[str], out_path: Path, timestamps_ms: Sequence[float], ts_file: Path,
              what: str) -> None:
    """mkvmerge ``inputs`` -> ``out_path`` with track 0 of the first input re-timed."""
    lines = ["# timestamp format v2"] + [f"{t:.6f}".rstrip("0").rstrip(".") for t in timestamps_ms]
    Path(ts_file).write_text("\n".join(lines) + "\n", encoding="ascii")
    argv = [tool_path("mkvmerge"), "--quiet", "--output", tool_safe_path(out_path),
            "--timestamps", f"0:{tool_safe_path(ts_file)}", *inputs]
    with spawn(argv, stdout=subprocess.PIPE) as child:  # stopped on any exception
        out = child.proc.stdout.read().decode("utf-8", "replace")
        rc = child.proc.wait()
    # mkvmerge: 0 = fine, 1 = warnings (the file is written), 2 = error; it reports on stdout.
    if rc not in (0, 1):
        raise write_failure(what, out_path, rc, out + child.stderr.text())


def container_of(path: Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in CONTAINERS:
        raise OutputError(f"output must end in .mkv or .mp4, got {os.fspath(path)!r}")
    return suffix
