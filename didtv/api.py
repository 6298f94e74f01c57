"""Library entry points. No click, no rich, no sys.exit: errors are DidtvError subclasses and
progress goes to an optional callback.

The data flow: decode -> window -> model -> colour -> encode::

    FrameReader(info)            float32 (3, h, w) BT.709 R'G'B'     didtv.io.decode
    Runner.process(frames)       sliding windows -> model -> PQ BT.2020 didtv.pipeline.runner
    HDR10Writer.write(frame)     x265 Main10 + MaxCLL/MaxFALL meter   didtv.io.encode
    write_container_hdr10 / remux_mp4                                 didtv.io.encode

The first three run concurrently, joined by bounded queues (didtv.pipeline.stages.run_stages).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

from didtv.color.hdr10 import ContentLightLevel, MasteringDisplay
from didtv.errors import FFmpegError, OutputError, ProbeError, UnsupportedInputError
from didtv.identity import (IDENTITY_TAG, IDENTITY_VERSION, conversion_identity,  # noqa: F401 (API)
                            conversion_options, file_fingerprint)
from didtv.io.ffmpeg import check_ffmpeg
from didtv.io.probe import VideoInfo, count_frames, probe
from didtv.pipeline.stages import StageStats
from didtv.presets import Preset, load_preset, load_preset_model


@dataclass(frozen=True)
class Progress:
    """Passed to ``on_progress`` after every frame (and once at the start with 0 done)."""

    frames_done: int  # frames through the model (the encoder trails by at most a queue)
    frames_total: int
    elapsed: float  # seconds since the first frame was requested
    #: Per-stage throughput so far (decode, model, encode) and the bottleneck; None at the start.
    stages: StageStats | None = None
    #: Chunked conversions (didtv.chunks): chunks finished and in all; None for one pass.
    chunks_done: int | None = None
    chunks_total: int | None = None
    frames_resumed: int = 0  # frames of chunks finished by an earlier, interrupted run

    @property
    def fps(self) -> float:
        done = self.frames_done - self.frames_resumed  # converted by this run
        return done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if self.frames_done <= self.frames_resumed or self.fps == 0:
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
    device: str = ""
    precision: str = ""
    stages: StageStats | None = None
    model_reason: str = ""  # why this model ran: "auto on CPU: ...", or "asked for" (option or preset)


def partial_path(dst: Path, suffix: str) -> Path:
    """The temporary file next to ``dst``; hidden, clearly unfinished, naming machine and PID."""
    from didtv.batch.discovery import host_tag
    return dst.with_name(f".{dst.name}.didtv-partial-{host_tag()}-{os.getpid()}{suffix}")


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
    # access() says yes to root everywhere and knows nothing of read-only or pseudo file
    # systems: create (and remove) the hidden temporary name for real.
    probe_file = partial_path(dst, ".check")
    try:
        fd = os.open(probe_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe_file)
    except FileExistsError:
        pass  # a leftover of this very PID: the folder is writable
    except OSError as exc:
        raise OutputError(f"output folder {parent} is not writable ({exc.strerror or exc})") from exc


def check_input(info: VideoInfo, *, force: bool = False) -> None:
    """Refuse inputs didtv will not convert, before any work (docs/batch.md lists every case):
    already HDR (unless ``force``), a still image, a picture smaller than x265's 16x16.
    Accepted as they are: 10-bit SDR; interlaced (deinterlaced with bwdif), odd sizes (padded
    to even), rotated (turned upright), variable frame rate (source timestamps kept)."""
    from didtv.io.decode import even_size
    from didtv.io.encode import MIN_ENCODE_SIZE

    if info.is_hdr and not force:
        raise UnsupportedInputError(
            f"{info.path} is already {info.hdr.value} (transfer {info.transfer}); converting it again "
            "would treat HDR code values as SDR",
            hint="pass --force to convert it anyway")
    if info.still_image:
        raise UnsupportedInputError(f"{info.path} is a still image ({info.codec}), not a video")
    width, height = even_size(info.display_width, info.display_height)
    if width < MIN_ENCODE_SIZE or height < MIN_ENCODE_SIZE:
        raise UnsupportedInputError(
            f"{info.path} is {info.display_width}x{info.display_height}: too small, HEVC (x265) "
            f"needs at least {MIN_ENCODE_SIZE}x{MIN_ENCODE_SIZE} pixels")


def _write_error(exc: FFmpegError, dst: Path) -> Exception:
    """A tool's failure that is really the output's fault -> OutputError (one line)."""
    text = str(exc)
    if "(exit -25)" in text:  # SIGXFSZ: a file size limit (ulimit -f) killed the writer
        return OutputError(f"cannot write {dst}: file size limit exceeded (SIGXFSZ; ulimit -f)")
    for needle in ("No space left on device", "Disk quota exceeded", "File too large",
                   "Permission denied", "Read-only file system"):
        if needle in text:
            return OutputError(f"cannot write {dst}: {needle.lower()}")
    return exc


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    preset: Preset | str | None = None,
    model: str | None = None,
    overwrite: bool = False,
    force: bool = False,
    device: str | None = None,
    precision: str | None = None,
    tile: int | str | None = None,
    batch_size: int | None = None,
    motion_guard: bool | None = None,
    torch_compile: bool = False,
    chunks: str | float | None = "auto",
    keep_work: bool | str = False,
    workers: int | None = None,
    engine: str | None = None,
    address: str | None = None,
    ray_data: str | None = None,
    task_cpus: float | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> ConvertResult:
    """Convert one SDR video to HDR10.

    ``preset`` is a :class:`Preset` or a preset name/path (default ``hdr10-1000``); ``model``
    overrides the preset's model (a registered name or a ``.safetensors`` path).
    ``device``/``precision``/``tile``/``batch_size``/``motion_guard``/``torch_compile`` go to
    :class:`~didtv.pipeline.runner.Runner` (defaults: CUDA when present, ``auto`` precision and
    tiling, 1 window per pass on CPU, the Runner's motion guard setting, no torch.compile).
    Decoding, the model and encoding run concurrently (:func:`~didtv.pipeline.stages.run_stages`);
    ``on_progress`` gets per-stage throughput. The output is
    written to a hidden temporary file next to ``dst`` and renamed only when complete; on any
    error or interrupt, at any stage, the FFmpeg / mkvtoolnix processes are ended first
    (:meth:`~didtv.io.ffmpeg.Child.stop`), then the temporary files are removed; ``dst`` is
    untouched.

    ``chunks``: ``"auto"`` (chunks of 60 s for videos longer than 5 min), ``"off"``/None (one
    pass) or a chunk length in seconds (didtv.chunks): chunks are converted one after the other
    into a hidden work folder next to ``dst`` and joined; a conversion that was stopped resumes
    from its finished chunks. The folder is removed on success and on an error, kept after
    KeyboardInterrupt; ``keep_work``: True keeps it always, ``"on-failure"`` on an error too.
    ``workers``/``engine``/``address``: the chunks run on ``workers`` processes of this machine
    or as Ray tasks (didtv.engine, docs/scale.md); ``auto`` chunks then start at 20 s. Ray only:
    ``ray_data`` "shared" (default) or "object-store", ``task_cpus`` CPUs per task (default 1).
    """
    import torch  # noqa: F401  (imported here: `import didtv` stays light)

    from didtv.chunks import chunk_seconds, parse_chunks
    from didtv.io.decode import decode_colour, even_size, fit_height, frame_timestamps, retime_plan, tool_safe_path
    from didtv.io.encode import container_of, measure_written, remux_mp4, write_container_hdr10
    from didtv.pipeline.runner import Runner

    from didtv.engine import check_engine, is_parallel, open_engine

    t0 = time.monotonic()
    src, dst = Path(src), Path(dst)
    engine, workers = check_engine(engine, workers, address, data=ray_data, task_cpus=task_cpus)
    parallel = is_parallel(engine, workers)
    if engine == "ray":  # other nodes: the same absolute paths (a shared filesystem)
        src, dst = Path(os.path.abspath(src)), Path(os.path.abspath(dst))
    if not isinstance(preset, Preset):
        preset = load_preset(preset)
    check_ffmpeg()
    check_output(src, dst, overwrite=overwrite)
    info = probe(tool_safe_path(src))  # "./-x.mp4": never an option or a protocol for FFmpeg
    check_input(info, force=force)
    container = container_of(dst)
    # "auto" resolved; the preset's tone targets reach analytic models. Fails before any work
    # when weights are missing or bad.
    from didtv.models.registry import auto_choice
    from didtv.pipeline.runner import pick_device

    target = str(pick_device(device))
    model_name, net = load_preset_model(preset, model, device=target)
    requested = model or preset.model
    model_reason = auto_choice(target)[1] if requested == "auto" else "asked for"
    # Every video packet's pts, in one demux pass: their number is the exact frame count (the
    # same as `ffprobe -count_packets`), their spacing tells whether to re-time (VFR).
    pts, time_base, ts_start = frame_timestamps(info)
    total = len(pts)
    warnings: list[str] = []
    seconds = chunk_seconds(chunks, total, info.fps, parallel=workers or (2 if parallel else 1))
    if parallel and seconds is None:
        warnings.append("converted in one pass by one worker: the video is not cut into chunks")
    if seconds is not None and (None in pts or len(set(pts)) != total):
        seconds = None  # chunks are cut by timestamp
        warnings.append("converted in one pass, not in chunks: the video's timestamps are missing or repeated")
    if seconds is not None:  # its shot condition is carried over chunk boundaries
        from didtv.chunks.shot import ChunkRunner as Runner  # noqa: F811
    runner = Runner(net, device=device, precision=precision, tile=tile, batch=batch_size,
                    motion_guard=motion_guard, torch_compile=torch_compile)
    if total == 0:
        raise ProbeError(f"{src}: the video stream holds no frames")
    if info.frame_count is not None and info.frame_count > total and "mp4" in info.container:
        # An MP4 cut short with its index at the front: the index lists frames that are gone.
        # (Only MP4/MOV: an AVI index also counts empty "repeat the previous frame" chunks, so
        # there nb_frames exceeds the coded frames in perfectly good files.)
        raise FFmpegError(f"{src} is truncated: its index lists {info.frame_count} frames, "
                          f"only {total} are present")
    # Odd sizes are padded to even by the decoder (repeated edge; docs/batch.md).
    width, height = even_size(info.display_width, info.display_height)
    width, height = fit_height(width, height, preset.max_height)  # the preset's downscale, if any
    identity = conversion_identity(info.path, conversion_options(preset, model_name, info.fps), total)

    tmp_mkv = partial_path(dst, ".mkv")
    tmp_mp4 = partial_path(dst, ".mp4")
    tmp_vfr = partial_path(dst, ".vfr.mkv")
    tmp_ts = partial_path(dst, ".timestamps.txt")
    warnings += _input_notes(info, (width, height))
    metadata = {IDENTITY_TAG: json.dumps(identity, sort_keys=True)}
    work_ctx = engine_ctx = contextlib.nullcontext()
    if seconds is not None:
        from didtv.chunks.run import ChunkJob, chunk_work, encode_chunked
        from didtv.engine.tasks import ModelSpec
        work_ctx = chunk_work(dst, keep_work)
        engine_ctx = open_engine(engine, workers, address, device=device, task_cpus=task_cpus,
                                 data=ray_data) or engine_ctx
        spec = ModelSpec(preset, model_name, {"device": device, "precision": precision, "tile": tile,
                                              "batch_size": batch_size, "motion_guard": motion_guard,
                                              "torch_compile": torch_compile})
    with work_ctx as work, engine_ctx as pool:
        try:
            if work is None:
                stages = _one_pass(info, (width, height), preset, runner, tmp_mkv, metadata, total, on_progress)
            else:
                job = ChunkJob(info, (width, height), preset.encode_for(info.fps),
                               preset.encode.mastering.max_luminance, sorted(pts), time_base, ts_start)
                stages = encode_chunked(job, dst=dst, work=work, runner=runner, seconds=seconds,
                                        what=identity, out_mkv=tmp_mkv, metadata=metadata,
                                        report=_chunk_reporter(on_progress, total), engine=pool, spec=spec,
                                        any_length=parse_chunks(chunks) == "auto")
            # -- after the frame loop: timing, verification, metadata, container (issue 5) --
            encoded = _retime_if_needed(retime_plan(pts, time_base, ts_start, info.fps), tmp_mkv,
                                        tmp_vfr, tmp_ts, warnings)
            light, written = measure_written(encoded)
            if written != total:
                raise FFmpegError(f"the encoded file holds {written} frames instead of {total}")
            write_container_hdr10(encoded, preset.encode.mastering, light)
            final = encoded
            if container == ".mp4":
                warnings += remux_mp4(encoded, tmp_mp4, info)
                final = tmp_mp4
            # The remuxed MP4 is checked once more: FFmpeg 5.1 can exit 0 with a truncated file.
            if final is tmp_mp4 and count_frames(tool_safe_path(final)) != total:
                raise OutputError(f"cannot write {dst}: the finished file does not hold {total} frames")
            if dst.exists() and not overwrite:
                raise OutputError(f"output {dst} appeared while converting", hint="pass --overwrite to replace it")
            os.replace(final, dst)
        except OSError as exc:
            raise OutputError(f"cannot write {dst}: {exc.strerror or exc}") from exc
        except FFmpegError as exc:
            raise _write_error(exc, dst) from exc
        except OutputError as exc:  # name the output, not its hidden temporary file
            msg = str(exc)
            for tmp in (tmp_mkv, tmp_mp4, tmp_vfr):
                msg = msg.replace(str(tmp), str(dst))
            if msg == str(exc):
                raise
            raise OutputError(msg, hint=exc.hint) from exc
        finally:
            for p in (tmp_mkv, tmp_mp4, tmp_vfr, tmp_ts):
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass
    return ConvertResult(
        output=dst, model=model_name, frames=total, fps=info.fps, width=width, height=height,
        light=light, mastering=preset.encode.mastering, seconds=time.monotonic() - t0,
        warnings=warnings, decode_colour=decode_colour(info).describe(),
        device=str(runner.device), precision=runner.precision, stages=stages, model_reason=model_reason,
    )


def _one_pass(info: VideoInfo, size: tuple[int, int], preset: Preset, runner, tmp_mkv: Path,
              metadata: dict, total: int, on_progress) -> StageStats:
    """The frame loop of a one-pass conversion: decode -> model -> x265 into ``tmp_mkv``."""
    from didtv.io.decode import FrameReader
    from didtv.io.encode import HDR10Writer
    from didtv.pipeline.stages import queue_depth, run_stages

    with FrameReader(info, size) as reader:
        writer = HDR10Writer(tmp_mkv, width=size[0], height=size[1], fps=info.fps,
                             settings=preset.encode_for(info.fps), source=info, metadata=metadata,
                             peak=preset.encode.mastering.max_luminance)
        try:
            start = time.monotonic()
            report = None
            if on_progress:
                on_progress(Progress(0, total, 0.0))

                def report(stats: StageStats) -> None:  # frames through the model
                    on_progress(Progress(stats.clocks["model"].frames, total, time.monotonic() - start, stats))
            loop_start = time.perf_counter()

            def abort() -> None:  # ends both processes; their threads then end too
                writer.abort()
                reader.stop()
            stages = run_stages(reader, runner.process, writer.write,
                                depth=queue_depth(reader.frame_bytes), on_frame=report, abort=abort)
            writer.close()  # x265 finishing the stream: interruptible as well
        except BaseException:
            writer.abort()
            raise
        stages.wall = time.perf_counter() - loop_start  # up to x265's finished file
    if reader.frames_read != total or writer.frames_written != total:
        raise FFmpegError(f"decoded {reader.frames_read} and wrote {writer.frames_written} frames, "
                          f"but {info.path} has {total}: the input is damaged")
    return stages


def _chunk_reporter(on_progress, total: int):
    """didtv.chunks.run's progress calls -> :class:`Progress` (None without ``on_progress``)."""
    if on_progress is None:
        return None
    start = time.monotonic()

    def report(done: int, resumed: int, chunks_done: int, chunks_total: int, stats) -> None:
        on_progress(Progress(done, total, time.monotonic() - start, stats, chunks_done, chunks_total, resumed))
    return report


def _input_notes(info: VideoInfo, size: tuple[int, int]) -> list[str]:
    """What convert() does about this input beyond the plain path (shown as warnings)."""
    notes = []
    if info.interlaced:
        notes.append(f"interlaced input ({info.field_order}) deinterlaced with bwdif, one frame per frame")
    if info.display_width % 2 or info.display_height % 2:
        notes.append(f"odd size {info.display_width}x{info.display_height} padded to "
                     f"{info.display_width + info.display_width % 2}x"
                     f"{info.display_height + info.display_height % 2} by repeating the last column/row")
    return notes


def _retime_if_needed(plan: list[float] | None, mkv: Path, retimed: Path, ts_file: Path,
                      warnings: list[str]) -> Path:
    """The encode runs at the constant ``info.fps``; when the source's own frame timestamps say
    otherwise (``plan``, from didtv.io.decode.retime_plan: variable frame rate, or a rate
    header that lies), remux with them. Returns the file to continue with."""
    from didtv.io.encode import retime_mkv

    if plan is None:
        return mkv
    retime_mkv(mkv, retimed, plan, ts_file)
    warnings.append("variable frame rate: the source's frame timestamps were kept")
    return retimed
