"""Where a video is cut into chunks (pure, apart from :func:`scan_cuts`).

A chunk writes frames ``[start, end)`` and decodes ``[lo, hi)``: :data:`CONTEXT` more frames on
each side (fewer at the video's ends), so every 7-frame window of a written frame is the window
of a one-pass conversion. Chunks end at a hard cut when one lies in the second half of the
allowed length, else at the length itself.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass
from fractions import Fraction

from didtv.errors import FFmpegError, UsageError

log = logging.getLogger(__name__)

#: Frames of context decoded (and not written) on each side of a chunk: the radius of the
#: 7-frame window.
CONTEXT = 3
#: ``chunks="auto"``: videos longer than this (seconds) are converted in chunks ...
AUTO_MIN_SECONDS = 300.0
#: ... of at most this many seconds.
AUTO_CHUNK_SECONDS = 60.0
#: With several workers, ``auto`` cuts videos longer than this (seconds) into chunks of
#: duration / workers (at least half of this, at most AUTO_CHUNK_SECONDS).
AUTO_PARALLEL_MIN_SECONDS = 20.0


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # first frame written
    end: int  # one past the last frame written
    lo: int  # first frame decoded (start - CONTEXT, at least 0)
    hi: int  # one past the last frame decoded (end + CONTEXT, at most the frame count)
    at_cut: bool  # starts the video or a shot found by the scan

    @property
    def frames(self) -> int:
        return self.end - self.start

    def as_list(self) -> list:
        return [self.start, self.end, self.at_cut]


def parse_chunks(value: str | float | int | None) -> str | float | None:
    """``"auto"`` -> ``"auto"``; ``"off"``/``None``/0 -> None; a positive number of seconds ->
    that float. Anything else is a UsageError."""
    if value is None or value == "auto":
        return "auto" if value == "auto" else None
    if isinstance(value, str) and value.strip().lower() in ("off", "no", "none", "0"):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"chunks must be auto, off or a length in seconds, got {value!r}") from None
    if seconds == 0:
        return None
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise UsageError(f"chunk length must be a positive number of seconds, got {value!r}")
    return seconds


def chunk_seconds(setting: str | float | None, frames: int, fps: Fraction, parallel: int = 1) -> float | None:
    """The chunk length for a video of ``frames`` at ``fps``, or None for one pass.
    ``auto``: :data:`AUTO_CHUNK_SECONDS` when the video is longer than :data:`AUTO_MIN_SECONDS`;
    with ``parallel`` > 1 workers, duration / workers (between 10 and 60 s) when it is longer
    than :data:`AUTO_PARALLEL_MIN_SECONDS`."""
    setting = parse_chunks(setting)
    if setting != "auto":
        return setting
    duration = frames / fps if fps > 0 else 0.0
    if parallel > 1 and duration > AUTO_PARALLEL_MIN_SECONDS:
        return min(AUTO_CHUNK_SECONDS, max(AUTO_PARALLEL_MIN_SECONDS / 2, duration / parallel))
    return AUTO_CHUNK_SECONDS if duration > AUTO_MIN_SECONDS else None


def plan_chunks(total: int, max_frames: int, cuts: list[int], context: int = CONTEXT) -> list[Chunk]:
    """Chunks covering ``total`` frames, each at most ``max_frames`` long. ``cuts``: the first
    frames of shots (sorted); a chunk ends at the last cut in the second half of its allowed
    length, when there is one."""
    max_frames = max(1, int(max_frames))
    cut_set = set(cuts)
    chunks: list[Chunk] = []
    start = 0
    while start < total:
        limit = min(total, start + max_frames)
        end = limit
        if limit < total:
            i = bisect.bisect_right(cuts, limit)
            if i and cuts[i - 1] > start + max_frames // 2:
                end = cuts[i - 1]
        chunks.append(Chunk(len(chunks), start, end, max(0, start - context), min(total, end + context),
                            start == 0 or start in cut_set))
        start = end
    return chunks


def chunks_from_lists(rows: list, total: int, context: int = CONTEXT) -> list[Chunk]:
    """The inverse of ``[c.as_list() for c in chunks]`` (a saved plan); checks it covers
    ``0..total`` without gaps (ValueError otherwise)."""
    chunks, expected = [], 0
    for k, (start, end, at_cut) in enumerate(rows):
        if start != expected or end <= start:
            raise ValueError("the saved chunk plan has a gap or an empty chunk")
        chunks.append(Chunk(k, int(start), int(end), max(0, start - context), min(total, end + context),
                            bool(at_cut)))
        expected = end
    if expected != total:
        raise ValueError("the saved chunk plan does not cover the video")
    return chunks


#: Width (pixels) of the frames decoded by :func:`scan_cuts`.
SCAN_WIDTH = 128


def scan_cuts(info, size: tuple[int, int]) -> list[int]:
    """The first frame of every shot after the first: one decode of the whole video at about
    :data:`SCAN_WIDTH` pixels wide, with the runner's own test (16x16 thumbnails,
    didtv.pipeline.runner.is_cut). Close calls may differ from what the runner sees at full
    size; that only moves a chunk boundary (the shot condition is carried across chunks). A
    decode error ends the scan early (the chunk holding the damage then fails, naming itself)."""
    from didtv.io.decode import FrameReader
    from didtv.pipeline.runner import is_cut, thumbnail

    width, height = size
    if width > SCAN_WIDTH:
        height = max(16, 2 * round(height * SCAN_WIDTH / width / 2))
        width = SCAN_WIDTH
    cuts: list[int] = []
    previous = None
    try:
        with FrameReader(info, (width, height)) as reader:
            for i, frame in enumerate(reader):
                thumb = thumbnail(frame)
                if i and is_cut(previous, thumb):
                    cuts.append(i)
                previous = thumb
    except FFmpegError as exc:  # damaged: the chunk that holds the damage fails, naming itself
        log.warning("cut scan stopped (%s); chunks after it end at the maximum length", exc)
    return cuts
