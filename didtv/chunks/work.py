"""The work folder of a chunked conversion: ``.NAME.didtv-work/`` next to the output ``NAME``.

It holds ``plan.json`` (what is being made: the conversion identity of didtv.api, the output
size, the chunk length and the chunks) and, per finished chunk, ``chunk-NNNNN.mkv`` with its
record ``chunk-NNNNN.json`` (frames, the plan's key, the shot state after its last frame). A
chunk counts as finished only when its record names the current plan and ffprobe counts its
frames; a chunk is written as ``*.partial.mkv`` and renamed, and its record is written
(atomically) after that, so a process killed at any moment leaves either a finished chunk or
debris that the next run removes. A lock (``flock``, released by the kernel when the process
dies, even by SIGKILL) keeps two conversions out of one folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from pathlib import Path

from didtv.chunks.plan import Chunk, chunks_from_lists
from didtv.errors import OutputError, ProbeError

WORK_SUFFIX = ".didtv-work"
PLAN_VERSION = 1


def work_dir(dst: str | os.PathLike) -> Path:
    """The work folder of the output ``dst`` (hidden, named after it)."""
    dst = Path(dst)
    return dst.with_name(f".{dst.name}{WORK_SUFFIX}")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class Work:
    """The work folder of one output; use as a context manager (creates it and holds the lock)."""

    def __init__(self, dst: str | os.PathLike) -> None:
        self.dst = Path(dst)
        self.path = work_dir(dst)
        self._lock_fd: int | None = None
        self.key = ""

    def __enter__(self) -> "Work":
        try:
            self.path.mkdir(exist_ok=True)
            fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise OutputError(f"cannot create the work folder {self.path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(f"another didtv is converting to {self.dst} (its work folder "
                              f"{self.path} is locked)") from None
        self._lock_fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    # -- the plan -------------------------------------------------------------------------------

    def plan(self, what: dict, total: int, make, *, any_length: bool = False) -> tuple[list[Chunk], bool]:
        """The chunks of the conversion described by ``what`` (JSON-ready): the saved plan when
        it describes the same conversion, else ``make()``'s, saved after emptying the folder of
        an older conversion's chunks. ``any_length``: a saved plan with another ``chunk_frames``
        is the same conversion (``--chunks auto``, whose length follows the workers: resuming
        with another ``--workers`` keeps the finished chunks). Returns (chunks, resumed)."""
        def same(saved_what) -> bool:
            if not any_length or not isinstance(saved_what, dict):
                return saved_what == what
            return ({k: v for k, v in saved_what.items() if k != "chunk_frames"}
                    == {k: v for k, v in what.items() if k != "chunk_frames"})

        saved = _read_json(self.path / "plan.json")
        if saved is not None and saved.get("v") == PLAN_VERSION and same(saved.get("what")):
            try:
                chunks = chunks_from_lists(saved["chunks"], total)
                self.key = str(saved["key"])
                self._remove_debris()
                return chunks, True
            except (KeyError, TypeError, ValueError):
                pass
        self._empty()
        chunks = make()
        body = {"v": PLAN_VERSION, "what": what, "chunks": [c.as_list() for c in chunks]}
        self.key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        _write_json(self.path / "plan.json", {**body, "key": self.key})
        return chunks, False

    # -- chunks ---------------------------------------------------------------------------------

    def chunk_path(self, chunk: Chunk) -> Path:
        return self.path / f"chunk-{chunk.index:05d}.mkv"

    def partial_path(self, chunk: Chunk, token: str = "") -> Path:
        """Where a chunk is written before it is accepted; ``token`` makes the name unique to
        one attempt (parallel engines: a retried task never writes over another's file)."""
        return self.path / f"chunk-{chunk.index:05d}.partial{'-' + token if token else ''}.mkv"

    def partials(self, chunk: Chunk) -> list[Path]:
        """Every temporary file of ``chunk`` (of any attempt)."""
        return sorted(self.path.glob(f"chunk-{chunk.index:05d}.partial*"))

    def finished(self, chunk: Chunk) -> dict | None:
        """The record of ``chunk`` when it is finished and verified (its record names this plan
        and these frames, ffprobe counts its frames), else None (and its files are removed)."""
        from didtv.io.probe import count_frames

        record = _read_json(self._record_path(chunk))
        path = self.chunk_path(chunk)
        ok = (record is not None and record.get("key") == self.key
              and record.get("start") == chunk.start and record.get("end") == chunk.end)
        if ok:
            try:
                ok = count_frames(path) == chunk.frames
            except (ProbeError, OSError):
                ok = False
        if ok:
            return record
        for p in (path, self._record_path(chunk)):
            p.unlink(missing_ok=True)
        return None

    def finish(self, chunk: Chunk, shot_state: dict | None, partial: Path | None = None, *,
               seed: dict | None = None, fresh: bool | None = None) -> dict:
        """Verify the chunk's partial file (ffprobe counts its frames, as :meth:`finished`
        does), move it into place and write its record. ``seed``: the shot state the chunk
        started from (its digest is recorded: see :func:`seed_digest`); ``fresh``: whether its
        first frame started a shot. A partial file that does not verify is removed and the
        chunk fails (OutputError)."""
        from didtv.io.probe import count_frames

        partial = self.partial_path(chunk) if partial is None else partial
        try:
            frames = count_frames(partial)
        except (ProbeError, OSError) as exc:
            frames = f"none ({exc})"
        if frames != chunk.frames:
            partial.unlink(missing_ok=True)
            raise OutputError(f"chunk {chunk.index + 1} was written incompletely ({frames} of "
                              f"{chunk.frames} frames): refused")
        os.replace(partial, self.chunk_path(chunk))
        record = {"key": self.key, "start": chunk.start, "end": chunk.end, "shot": shot_state,
                  "seed": seed_digest(seed), "fresh": fresh}
        _write_json(self._record_path(chunk), record)
        return record

    def _record_path(self, chunk: Chunk) -> Path:
        return self.path / f"chunk-{chunk.index:05d}.json"

    # -- cleaning -------------------------------------------------------------------------------

    def _remove_debris(self) -> None:
        for p in self.path.iterdir():
            if ".partial" in p.name or p.name.startswith("joined"):
                p.unlink(missing_ok=True)

    def _empty(self) -> None:
        for p in self.path.iterdir():
            if p.name != "lock":
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)

    def remove(self) -> None:
        """Delete the folder (success, or a failure without ``keep_work``)."""
        shutil.rmtree(self.path, ignore_errors=True)


def seed_digest(state: dict | None) -> str | None:
    """A short digest of a shot state (None for None): a chunk's record names the state it was
    seeded with, so a resumed run knows whether it still follows its predecessor."""
    if state is None:
        return None
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]


def usable_records(work: Work, chunks: list[Chunk]) -> dict[int, dict]:
    """The finished chunks a resumed run keeps: chunk k is kept when it verifies and either
    started without a seed and its first frame starts a shot (or the model has no shot state:
    it depends on nothing before it), or it was seeded with the end state of chunk k-1, itself
    kept. The files of the others are removed."""
    records: dict[int, dict] = {}
    for chunk in chunks:
        record = work.finished(chunk)
        if record is None:
            continue
        prev = records.get(chunk.index - 1)
        if chunk.index == 0 or ("seed" in record and record["seed"] is None and record.get("fresh") is not False):
            records[chunk.index] = record
        elif prev is not None and record.get("seed", seed_digest(prev.get("shot"))) == seed_digest(prev.get("shot")):
            records[chunk.index] = record
        else:  # follows a chunk that is gone: made again
            work.chunk_path(chunk).unlink(missing_ok=True)
            work._record_path(chunk).unlink(missing_ok=True)
    return records


def remove_work(dst: str | os.PathLike) -> bool:
    """Remove the work folder of ``dst`` unless another conversion holds it (its lock);
    returns whether it was removed."""
    path = work_dir(dst)
    if not path.is_dir():
        return False
    try:
        with Work(dst) as work:
            work.remove()
    except OutputError:
        return False
    return True
