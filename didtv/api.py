"""Library entry points. No click, no rich, no sys.exit: errors are DidtvError subclasses and
progress goes to an optional callback.

The data flow: decode -> window -> model -> colour -> encode::

    FrameReader(info)            float32 (3, h, w) BT.709 R'G'B'     didtv.io.decode
    Runner.process(frames)       sliding windows -> model -> PQ BT.2020 didtv.pipeline.runner
    HDR10Writer.write(frame)     x265 Main10 + MaxCLL/MaxFALL meter   didtv.io.encode
    write_container_hdr10 / remux_mp4                                 didtv.io.encode
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

from didtv.color.hdr10 import ContentLightLevel, MasteringDisplay
from didtv.errors import FFmpegError, OutputError, UnsupportedInputError
from didtv.io.ffmpeg import check_ffmpeg
from didtv.io.probe import VideoInfo, count_frames, probe
from didtv.presets import Preset, load_preset


@dataclass(frozen=True)
class Progress:
    """Passed to ``on_progress`` after every frame (and once at the start with 0 done)."""

    frames_done: int
    frames_total: int
    elapsed: float  # seconds since the first frame was requested

    @property
    def fps(self) -> float:
        return self.frames_done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if self.frames_done == 0 or self.fps == 0:
            return None
        return (self.frames_total - self.frames_done) / self.fps


@dataclass(frozen=True)
class ConvertResult:
    output: Path
    model: str
    frames: int
    fps: Fraction
    width: int
    height: int
    light: ContentLightLevel
    mastering: MasteringDisplay
    seconds: float
    warnings: list[str] = field(default_factory=list)
    decode_colour: str = ""


def partial_path(dst: Path, suffix: str) -> Path:
    """The temporary file next to ``dst``; hidden and clearly unfinished."""
    return dst.with_name(f".{dst.name}.didtv-partial-{os.getpid()}{suffix}")


def check_output(src: Path, dst: Path, *, overwrite: bool) -> None:
    from didtv.io.encode import container_of

    container_of(dst)
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise OutputError(f"output {dst} is the input file")
    if dst.exists() and not overwrite:
        raise OutputError(f"output {dst} exists", hint="pass --overwrite to replace it")
    if dst.is_dir():
        raise OutputError(f"output {dst} is a directory")
    parent = dst.parent
    if not parent.is_dir():
        raise OutputError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {parent} is not writable")


def check_input(info: VideoInfo, *, force: bool = False) -> None:
    if info.is_hdr and not force:
        raise UnsupportedInputError(
            f"{info.path} is already {info.hdr.value} (transfer {info.transfer}); converting it again "
            "would treat HDR code values as SDR",
            hint="pass --force to convert it anyway")


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    preset: Preset | str | None = None,
    model: str | None = None,
    overwrite: bool = False,
    force: bool = False,
    device: str | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> ConvertResult:
    """Convert one SDR video to HDR10.

    ``preset`` is a :class:`Preset` or a preset name/path (default ``hdr10-1000``); ``model``
    overrides the preset's model (a registered name or a ``.safetensors`` path). The output is
    written to a hidden temporary file next to ``dst`` and renamed only when complete; on any
    error or interrupt the temporary files are removed and ``dst`` is untouched.
    """
    import torch  # noqa: F401  (imported here: `import didtv` stays light)

    from didtv.io.decode import FrameReader, decode_colour
    from didtv.io.encode import HDR10Writer, container_of, measure_written, remux_mp4, write_container_hdr10
    from didtv.models.registry import default_model_name, load_model
    from didtv.pipeline.runner import Runner

    t0 = time.monotonic()
    src, dst = Path(src), Path(dst)
    if not isinstance(preset, Preset):
        preset = load_preset(preset)
    check_ffmpeg()
    check_output(src, dst, overwrite=overwrite)
    info = probe(src)
    check_input(info, force=force)
    container = container_of(dst)
    model_name = model or preset.model
    if model_name == "auto":
        model_name = default_model_name()
    net = load_model(model_name)  # fails before any work when weights are missing or bad
    runner = Runner(net, device=device)
    total = count_frames(src)
    width, height = info.display_width, info.display_height
    if width % 2 or height % 2:
        raise UnsupportedInputError(f"{src} is {width}x{height}: HDR10 4:2:0 output needs even width and height")

    tmp_mkv = partial_path(dst, ".mkv")
    tmp_mp4 = partial_path(dst, ".mp4")
    warnings: list[str] = []
    try:
        with FrameReader(info) as reader:
            writer = HDR10Writer(tmp_mkv, width=width, height=height, fps=info.fps,
                                 settings=preset.encode, source=info)
            try:
                start = time.monotonic()
                if on_progress:
                    on_progress(Progress(0, total, 0.0))
                for hdr in runner.process(reader):
                    writer.write(hdr)
                    if on_progress:
                        on_progress(Progress(writer.frames_written, total, time.monotonic() - start))
            except BaseException:
                writer.abort()
                raise
            writer.close()
        if reader.frames_read != total or writer.frames_written != total:
            raise FFmpegError(f"decoded {reader.frames_read} and wrote {writer.frames_written} frames, "
                              f"but {src} has {total}: the input is damaged")
        light, written = measure_written(tmp_mkv)
        if written != total:
            raise FFmpegError(f"the encoded file holds {written} frames instead of {total}")
        write_container_hdr10(tmp_mkv, preset.encode.mastering, light)
        final = tmp_mkv
        if container == ".mp4":
            warnings += remux_mp4(tmp_mkv, tmp_mp4, info)
            final = tmp_mp4
        if dst.exists() and not overwrite:
            raise OutputError(f"output {dst} appeared while converting", hint="pass --overwrite to replace it")
        os.replace(final, dst)
    except OSError as exc:
        raise OutputError(f"cannot write {dst}: {exc.strerror or exc}") from exc
    finally:
        for p in (tmp_mkv, tmp_mp4):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
    return ConvertResult(
        output=dst, model=model_name, frames=total, fps=info.fps, width=width, height=height,
        light=light, mastering=preset.encode.mastering, seconds=time.monotonic() - t0,
        warnings=warnings, decode_colour=decode_colour(info).describe(),
    )
