"""Chunked, resumable conversion of one long video (``convert --chunks``).

The video is cut at hard cuts, or at a maximum length (:mod:`~didtv.chunks.plan`); each chunk
is decoded with 3 frames of context on each side, so its 7-frame windows are those of one pass,
and the shot condition is carried over boundaries inside a shot (:mod:`~didtv.chunks.shot`).
Finished chunks are kept, verified, in a hidden work folder next to the output
(:mod:`~didtv.chunks.work`), so an interrupted conversion resumes; the chunks are joined with
mkvmerge (:mod:`~didtv.chunks.run`). :func:`didtv.api.convert` delegates here.
"""

from didtv.chunks.plan import AUTO_CHUNK_SECONDS, AUTO_MIN_SECONDS, CONTEXT, Chunk, chunk_seconds, parse_chunks
from didtv.chunks.work import WORK_SUFFIX, Work, work_dir

__all__ = ["AUTO_CHUNK_SECONDS", "AUTO_MIN_SECONDS", "CONTEXT", "Chunk", "chunk_seconds", "parse_chunks",
           "WORK_SUFFIX", "Work", "work_dir"]
