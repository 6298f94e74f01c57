"""Converting one video chunk by chunk, resumably (docs/user-guide.md#long-videos-chunks).

``encode_chunked`` replaces the one-pass frame loop of :func:`didtv.api.convert`: it writes the
same intermediate MKV (the video, the source's other streams, the DIDTV tag, constant-rate
timestamps), and convert() finishes it as it finishes a one-pass encode (re-timing, MaxCLL /
MaxFALL measured over the whole joined file, MP4). Each chunk is its own decode -> model ->
encode run (didtv.pipeline.stages), so x265 starts each one with a keyframe; mkvmerge appends
them frame-exactly.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

from didtv.chunks.plan import Chunk, plan_chunks, scan_cuts
from didtv.chunks.shot import ChunkShot
from didtv.chunks.work import Work
from didtv.errors import DidtvError, FFmpegError


@dataclass(frozen=True)
class ChunkJob:
    """What every chunk of one conversion shares."""

    info: object  # VideoInfo
    size: tuple[int, int]
    settings: object  # EncodeSettings
    peak: float | None
    pts: Sequence[int]  # every frame's pts, sorted (display order)
    time_base: Fraction
    start_time: Fraction  # the file's start time (seconds)

    def seconds(self, frame: int) -> float:
        """Frame ``frame``'s time from the file's start."""
        return float(self.pts[frame] * self.time_base - self.start_time)

    def span(self, chunk: Chunk, seek: bool = True):
        from didtv.io.decode import Span

        end = self.pts[chunk.hi] if chunk.hi < len(self.pts) else None
        at = self.seconds(chunk.lo) - SEEK_MARGIN if seek else None
        return Span(int(self.pts[chunk.lo]), end, at if at is not None and at > 0 else None)


#: Seconds before a chunk's first decoded frame that the decoder seeks to (then decodes and drops).
SEEK_MARGIN = 1.0


def clock(seconds: float) -> str:
    """``3723.5`` -> ``01:02:03.500``."""
    ms = int(round(max(0.0, seconds) * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


@contextlib.contextmanager
def chunk_work(dst: Path, keep_work: bool | str = False):
    """The locked work folder for the duration of a conversion. Afterwards it is removed: on
    success unless ``keep_work`` is True; on an error unless ``keep_work`` is True or
    ``"on-failure"``; never on KeyboardInterrupt / SystemExit (an interrupted conversion resumes
    from it)."""
    work = Work(dst)
    with work:
        try:
            yield work
        except Exception:
            if keep_work is False:
                work.remove()
            raise
        if keep_work is not True:
            work.remove()


def convert_chunk(job: ChunkJob, chunk: Chunk, runner, out: Path, seed: dict | None,
                  on_frame: Callable | None = None, seek: bool = True):
    """Decode ``chunk.lo .. chunk.hi``, run the model, write ``chunk.start .. chunk.end`` to
    ``out`` (video only). Returns (the ChunkShot after the run, the stage clocks)."""
    from didtv.io.decode import FrameReader
    from didtv.io.encode import HDR10Writer
    from didtv.pipeline.stages import queue_depth, run_stages

    width, height = job.size
    shot = ChunkShot(chunk.start - chunk.lo, chunk.frames, seed)
    runner.shot = shot
    try:
        with FrameReader(job.info, job.size, job.span(chunk, seek)) as reader:
            writer = HDR10Writer(out, width=width, height=height, fps=job.info.fps,
                                 settings=job.settings, source=None, peak=job.peak)
            try:
                def model(frames):  # the written part of the chunk's outputs
                    for i, y in enumerate(runner.process(frames), start=chunk.lo):
                        if chunk.start <= i < chunk.end:
                            yield y

                def abort() -> None:
                    writer.abort()
                    reader.stop()
                stages = run_stages(reader, model, writer.write, depth=queue_depth(reader.frame_bytes),
                                    on_frame=on_frame, abort=abort)
                writer.close()
            except BaseException:
                writer.abort()
                raise
    finally:
        runner.shot = None
    decoded = chunk.hi - chunk.lo
    if reader.frames_read != decoded or writer.frames_written != chunk.frames:
        raise FFmpegError(f"decoded {reader.frames_read} of {decoded} frames and wrote "
                          f"{writer.frames_written} of {chunk.frames}")
    return shot, stages


def encode_chunked(job: ChunkJob, *, dst: Path, work: Work, runner, seconds: float, what: dict,
                   out_mkv: Path, metadata: dict, report: Callable | None = None,
                   engine=None, spec=None, any_length: bool = False):
    """Convert every chunk not yet finished in ``work``, then join all of them with the source's
    other streams into ``out_mkv``. ``report(frames_done, frames_resumed, chunks_done,
    chunks_total, stats)`` is called as frames are done. ``engine`` (didtv.engine; default: this
    process, with ``runner``) runs the chunks, ``spec`` tells its workers how to build the model
    (didtv.chunks.schedule); ``any_length``: resume a saved plan of another chunk length
    (``--chunks auto``). Returns the last stage clocks seen (None when every chunk was
    already finished)."""
    from didtv.chunks.schedule import convert_chunks
    from didtv.engine.base import InlineEngine
    from didtv.io.encode import cfr_timestamps_ms, join_mkv, mux_source_streams

    info = job.info
    total = len(job.pts)
    max_frames = max(1, int(round(seconds * info.fps)))
    chunks, _ = work.plan({**what, "size": list(job.size), "chunk_frames": max_frames}, total,
                          lambda: plan_chunks(total, max_frames, scan_cuts(info, job.size)),
                          any_length=any_length)
    stats = convert_chunks(job, chunks, work, engine or InlineEngine(runner), spec,
                           has_condition=hasattr(runner.model, "condition_vector"), report=report)
    joined = work.path / "joined.mkv"
    try:
        join_mkv([work.chunk_path(c) for c in chunks], joined,
                 cfr_timestamps_ms(total, info.fps), work.path / "joined.timestamps.txt")
        mux_source_streams(joined, out_mkv, info, metadata)
    finally:
        joined.unlink(missing_ok=True)
        (work.path / "joined.timestamps.txt").unlink(missing_ok=True)
    return stats


def convert_chunk_named(job: ChunkJob, chunk: Chunk, runner, out: Path, seed, on_frame, n: int):
    """:func:`convert_chunk`; a seek that lands wrong is retried decoding from the start; a
    failure becomes one line naming the chunk and its time."""
    t0 = time.monotonic()
    try:
        return convert_chunk(job, chunk, runner, out, seed, on_frame)
    except DidtvError as first:
        out.unlink(missing_ok=True)
        if not isinstance(first, FFmpegError):
            raise
        try:  # some demuxers seek imprecisely: decode from the start of the file instead
            return convert_chunk(job, chunk, runner, out, seed, on_frame, seek=False)
        except FFmpegError:
            out.unlink(missing_ok=True)
            where = (f"chunk {chunk.index + 1}/{n} ({clock(job.seconds(chunk.start))}-"
                     f"{clock(job.seconds(chunk.end - 1))}, frames {chunk.start}-{chunk.end - 1})")
            raise FFmpegError(f"{job.info.path}: {where} failed after {time.monotonic() - t0:.1f} s: "
                              f"{first}") from first
