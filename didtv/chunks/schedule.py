"""Which chunk runs when: the chunks of one video on an engine (didtv.engine), in parallel where
they do not depend on each other.

A chunk depends on the one before it only through the shot condition (didtv.chunks.shot): a
chunk that starts inside a shot is *seeded* with its predecessor's end state. So:

- models without a shot condition (the analytic ones): every chunk is independent;
- a chunk that starts at a cut the scan found (or the video) runs unseeded, at once. Its run
  says whether its first written frame really started a shot (the runner's full-size test
  decides, as in one pass); when it did not (a close call of the small scan), the chunk is
  discarded and made again, seeded, once its predecessor is done;
- any other chunk waits for its predecessor and is seeded with its end state.

With one worker the chunks run in order, each seeded by the one before: the sequential
conversion. Chunks are written to a name unique to the attempt and accepted only after they
verify (didtv.chunks.work.Work.finish), by this process: a worker never puts a chunk in place.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from didtv.chunks.plan import Chunk
from didtv.chunks.work import Work, usable_records
from didtv.engine.tasks import ChunkDone, ChunkTask, ModelSpec, TaskError, raise_error


def convert_chunks(job, chunks: list[Chunk], work: Work, engine, spec: ModelSpec, *,
                   has_condition: bool, report: Callable | None = None):
    """Make every chunk of ``chunks`` not yet finished in ``work``. ``report(frames_done,
    frames_resumed, chunks_done, chunks_total, stats)`` as for encode_chunked. Returns the last
    stage clocks seen (None when nothing was converted). The first failing chunk stops the
    others and is raised (one line, naming the chunk)."""
    records = usable_records(work, chunks)
    resumed = sum(chunks[k].frames for k in records)
    finished_frames = resumed
    in_flight: dict = {}  # handle -> (chunk, seed)
    live: dict[int, int] = {}  # chunk index -> frames done by its running task
    needs_seed: set[int] = set()  # speculation failed: wait for the predecessor
    last = {"stats": None}
    n = len(chunks)

    def emit(stats=None) -> None:
        if stats is not None:
            last["stats"] = stats
        if report:
            report(finished_frames + sum(live.values()), resumed, len(records), n, last["stats"])

    def progress_of(index: int):
        def on_progress(frames: int, stats=None) -> None:
            live[index] = frames
            emit(stats)
        return on_progress

    emit()
    try:
        while len(records) < n:
            busy = {c.index for c, _ in in_flight.values()}
            for chunk in chunks:
                if len(in_flight) >= engine.capacity:
                    break
                if chunk.index in records or chunk.index in busy:
                    continue
                prev = records.get(chunk.index - 1)
                if prev is not None:
                    seed = prev.get("shot")
                elif chunk.index == 0 or not has_condition or (chunk.at_cut and chunk.index not in needs_seed):
                    seed = None
                else:
                    continue
                task = ChunkTask(job, chunk, str(work.partial_path(chunk, "{attempt}")), seed, spec, n)
                handle = engine.submit("chunk", task, progress_of(chunk.index))
                in_flight[handle] = (chunk, seed)
                busy.add(chunk.index)
            if not in_flight:
                raise RuntimeError("chunk schedule stalled")  # a bug: nothing runnable
            for handle in engine.wait(set(in_flight), timeout=0.2):
                chunk, seed = in_flight.pop(handle)
                live.pop(chunk.index, None)
                outcome = handle.outcome
                if isinstance(outcome, TaskError):
                    raise_error(outcome)  # (the task removed its file)
                assert isinstance(outcome, ChunkDone)
                out = Path(outcome.out)
                if seed is None and chunk.index > 0 and outcome.fresh is False:
                    out.unlink(missing_ok=True)  # it continues a shot after all: seeded later
                    needs_seed.add(chunk.index)
                    continue
                records[chunk.index] = work.finish(chunk, outcome.end_state, out, seed=seed,
                                                   fresh=outcome.fresh)
                finished_frames += chunk.frames
                emit(outcome.stages)
    except BaseException:
        engine.stop()
        for chunk, _ in in_flight.values():
            _unlink_partials(work, chunk)
        raise
    return last["stats"]


def _unlink_partials(work: Work, chunk: Chunk, tries: int = 20) -> None:
    """Remove a stopped task's temporary files (its writer may take a moment to end)."""
    for _ in range(tries):
        left = work.partials(chunk)
        for path in left:
            path.unlink(missing_ok=True)
        if not left:
            return
        time.sleep(0.05)
