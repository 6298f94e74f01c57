"""Batch conversion of a folder: discover videos by probing, mirror the folder structure, convert
each with :func:`didtv.api.convert`, resume where a previous run stopped. No click, no rich.

The design, the JSON report schema and the resumption rules are in docs/batch.md. In short::

    report = convert_batch("videos/", "videos-hdr/", model="bt2408", recursive=True)
    report.ok            # True when nothing failed (and the run was not interrupted)
    report.to_json()     # every input with its status and a one-line reason

* **Discovery** probes every file (``ffprobe``), not just those with a video extension. A file
  ffprobe cannot read is *failed* when its extension says video (a damaged video), *skipped*
  otherwise (not a video). Still images and already-HDR video (without ``force``) are skipped,
  hidden files too. Hidden folders are not entered, nor OUT_DIR when it lies inside IN_DIR.
* **Outputs** mirror IN_DIR: ``IN/a/b.mp4`` -> ``OUT/a/b.mkv``. When two inputs of one folder
  would get the same output name (``b.mp4``, ``b.mov``), both keep their extension
  (``b.mp4.mkv``, ``b.mov.mkv``).
* **Resumption**: an existing output is skipped only after :func:`verify_output` accepts it
  (HEVC Main10 with HDR10 metadata, a ``DIDTV`` tag naming the same source fingerprint and
  options, the source's exact frame count, decodable); anything else is converted again and
  replaced atomically. Stale ``.NAME.didtv-partial-PID.*`` files of dead processes are removed.
* **Isolation**: one file's failure (any exception but an interrupt) is recorded with a one-line
  reason and the batch goes on.
* **Interrupts**: KeyboardInterrupt (the CLI turns SIGTERM into one) stops the batch once the
  running conversions have removed their temporary files; :class:`BatchInterrupted` carries
  the report. With ``jobs > 1`` the workers stop at their next frame.
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from didtv.api import (IDENTITY_TAG, IDENTITY_VERSION, Progress, conversion_options, convert,
                       file_fingerprint)
from didtv.errors import DidtvError, FFmpegError, OutputError, ProbeError
from didtv.io.probe import VideoInfo, count_frames, probe

__all__ = ["convert_batch", "BatchReport", "BatchItem", "BatchEvent", "BatchInterrupted",
           "verify_output", "discover", "output_names", "clean_stale_partials",
           "REPORT_SCHEMA_VERSION", "VIDEO_EXTENSIONS", "STATUSES"]

REPORT_SCHEMA_VERSION = 1
CONTAINERS = ("mkv", "mp4")
VERIFY_MODES = ("quick", "full")
#: Item statuses: pending (not reached), converted, skipped, failed, interrupted.
STATUSES = ("pending", "converted", "skipped", "failed", "interrupted")

#: Extensions that mark a file as meant to be a video: when ffprobe cannot read such a file it
#: is a *failed* (damaged) video, not a skipped non-video. Discovery itself probes every file.
VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".wmv", ".asf", ".flv", ".f4v", ".mpg",
    ".mpeg", ".m2v", ".vob", ".ts", ".m2ts", ".mts", ".mxf", ".3gp", ".3g2", ".ogv", ".dv",
    ".y4m", ".nut", ".rm", ".rmvb", ".divx", ".h264", ".264", ".h265", ".265", ".hevc",
})

#: ``.NAME.didtv-partial-PID.SUFFIX``: what :func:`didtv.api.partial_path` writes.
PARTIAL_RE = re.compile(r"^\..+\.didtv-partial-(\d+)(\..*)?$")


@dataclass
class BatchItem:
    """One file under IN_DIR. ``input``/``output``: paths relative to IN_DIR / OUT_DIR (POSIX
    separators in the report). ``frames``: exact, for converted and verified files (else None);
    ``estimated_frames``: the probe's estimate for videos (None when unknown). ``reason``: one line for skipped/failed/interrupted (and the
    reason a previous output was redone, for converted ones)."""

    source: Path
    input: str
    output: str | None = None
    status: str = "pending"
    reason: str | None = None
    frames: int | None = None
    estimated_frames: int | None = None
    seconds: float | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    info: VideoInfo | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        return {"input": self.input, "output": self.output, "status": self.status,
                "reason": self.reason, "frames": self.frames,
                "estimated_frames": self.estimated_frames,
                "seconds": None if self.seconds is None else round(self.seconds, 3),
                "warnings": list(self.warnings), "error": self.error}


@dataclass
class BatchReport:
    in_dir: Path
    out_dir: Path
    container: str
    recursive: bool
    jobs: int
    options: dict
    items: list[BatchItem] = field(default_factory=list)
    started: str = ""
    finished: str | None = None
    seconds: float = 0.0
    interrupted: bool = False
    removed_partials: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for i in self.items if i.status == status)

    @property
    def counts(self) -> dict[str, int]:
        out = {s: self.count(s) for s in STATUSES}
        out["total"] = len(self.items)
        return out

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing was left undone by an interrupt."""
        return not self.interrupted and self.count("failed") == 0

    @property
    def frames_converted(self) -> int:
        return sum(i.frames or 0 for i in self.items if i.status == "converted")

    def to_json(self) -> dict:
        from didtv import __version__

        return {
            "schema_version": REPORT_SCHEMA_VERSION,
            "didtv_version": __version__,
            "in_dir": str(self.in_dir),
            "out_dir": str(self.out_dir),
            "container": self.container,
            "recursive": self.recursive,
            "jobs": self.jobs,
            "options": self.options,
            "started": self.started,
            "finished": self.finished,
            "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted,
            "ok": self.ok,
            "counts": self.counts,
            "frames_converted": self.frames_converted,
            "removed_partials": list(self.removed_partials),
            "excluded": list(self.excluded),
            "files": [i.to_json() for i in self.items],
        }

    def write_json(self, path: Path) -> None:
        """Write the report atomically (a hidden temporary file renamed into place)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.didtv-partial-{os.getpid()}.json")
        try:
            tmp.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n",
                           encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            raise OutputError(f"cannot write the report {path}: {exc.strerror or exc}") from exc
        finally:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass


@dataclass(frozen=True)
class BatchEvent:
    """Passed to ``on_event``. kind: "plan" (discovery done: ``report.items`` lists everything),
    "start" (``item`` begins: verification or conversion), "progress" (``progress`` of
    ``item``'s conversion), "done" (``item`` has its final status)."""

    kind: str
    report: BatchReport
    item: BatchItem | None = None
    progress: Progress | None = None


class BatchInterrupted(KeyboardInterrupt):
    """Raised by :func:`convert_batch` on an interrupt, after cleanup; ``report`` says what
    was done (the interrupted files have status "interrupted", the others "pending")."""

    def __init__(self, report: BatchReport) -> None:
        super().__init__("batch interrupted")
        self.report = report


class _Cancelled(KeyboardInterrupt):
    """Raised inside a worker's progress callback to stop its conversion."""


# ---------------------------------------------------------------------------------------------
# Folders, discovery, output names

def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
        return True
    except ValueError:
        return False


def check_dirs(in_dir: Path, out_dir: Path) -> tuple[Path, Path, bool]:
    """(IN_DIR, OUT_DIR as real absolute paths, whether OUT_DIR lies inside IN_DIR).

    Refused: IN_DIR not a folder; OUT_DIR equal to IN_DIR (outputs next to, and possibly
    replacing, inputs); IN_DIR inside OUT_DIR (mirrored outputs could land among the inputs).
    OUT_DIR inside IN_DIR is allowed and excluded from discovery.
    """
    if not in_dir.is_dir():
        raise ProbeError(f"{in_dir}: not a folder")
    real_in = Path(os.path.realpath(in_dir))
    real_out = Path(os.path.realpath(out_dir))
    if real_out == real_in:
        raise OutputError(f"output folder {out_dir} is the input folder",
                          hint="choose another folder: outputs must never replace inputs")
    if _inside(real_in, real_out):
        raise OutputError(f"input folder {in_dir} lies inside the output folder {out_dir}",
                          hint="choose an output folder outside the input folder")
    return real_in, real_out, _inside(real_out, real_in)


def _walk(in_dir: Path, recursive: bool, exclude: Path | None) -> Iterable[Path]:
    """Regular files (and links to them) under ``in_dir``, sorted; hidden folders and
    ``exclude`` are not entered; folder links are not followed (no loops)."""
    if not recursive:
        for entry in sorted(os.scandir(in_dir), key=lambda e: e.name):
            if entry.is_file():
                yield Path(entry.path)
        return
    for root, dirs, files in os.walk(in_dir, followlinks=False):
        rootp = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (exclude is None or Path(os.path.realpath(rootp / d)) != exclude))
        for name in sorted(files):
            p = rootp / name
            if p.is_file():
                yield p


def _reason(exc: BaseException, path: str | os.PathLike) -> str:
    """The exception's message on one line, without a leading ``PATH: `` (the report names
    the file already)."""
    msg = " ".join(str(exc).split())
    for prefix in (os.fspath(path), "./" + os.fspath(path)):
        if msg.startswith(prefix + ": "):
            msg = msg[len(prefix) + 2:]
    return msg or type(exc).__name__


def discover(in_dir: Path, *, recursive: bool = False, exclude: Path | None = None,
             force: bool = False) -> list[BatchItem]:
    """Every file under ``in_dir`` as a BatchItem: status "pending" for videos to convert
    (``item.info`` holds the probe), "skipped"/"failed" with a reason for the others."""
    items: list[BatchItem] = []
    for path in _walk(in_dir, recursive, exclude):
        rel = path.relative_to(in_dir).as_posix()
        item = BatchItem(source=path, input=rel)
        items.append(item)
        if path.name.startswith("."):
            item.status, item.reason = "skipped", "hidden file"
            continue
        try:
            info = probe(path, check_timestamps=False)
        except ProbeError as exc:
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                item.status, item.reason = "failed", _reason(exc, path)
                item.error = type(exc).__name__
            else:
                # ProbeError says what it is: "not a readable video (...)", "no video stream
                # (audio only)", "a text file, not a video", "empty file (0 bytes)".
                item.status, item.reason = "skipped", _reason(exc, path)
            continue
        if info.still_image:
            item.status, item.reason = "skipped", f"not a video (a still image, {info.codec})"
            continue
        if info.is_hdr and not force:
            item.status, item.reason = "skipped", f"already {info.hdr.value} (pass --force to convert it)"
            continue
        item.info = info
        item.estimated_frames = _estimate_frames(info)
    return items


def _estimate_frames(info: VideoInfo) -> int | None:
    if info.frame_count:
        return info.frame_count
    if info.duration:
        return max(1, round(info.duration * float(info.fps)))
    return None


def output_names(items: list[BatchItem], container: str) -> None:
    """Set ``item.output`` for every pending item: the input's relative path with the
    container's extension; inputs of one folder that would collide keep their own extension
    too (``a.mp4`` + ``a.mov`` -> ``a.mp4.mkv`` + ``a.mov.mkv``)."""
    pending = [i for i in items if i.status == "pending"]
    plain: dict[str, list[BatchItem]] = {}
    for item in pending:
        rel = Path(item.input)
        plain.setdefault(rel.with_suffix(f".{container}").as_posix().casefold(), []).append(item)
    taken: set[str] = set()
    for item in pending:
        rel = Path(item.input)
        name = rel.with_suffix(f".{container}")
        if len(plain[name.as_posix().casefold()]) > 1:
            name = rel.with_name(f"{rel.name}.{container}")
        key = name.as_posix().casefold()
        if key in taken:
            item.status, item.reason = "failed", f"output name {name.as_posix()} is taken by another input"
            continue
        taken.add(key)
        item.output = name.as_posix()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:
        return False
    return True


def clean_stale_partials(out_dir: Path) -> list[str]:
    """Remove ``.NAME.didtv-partial-PID.*`` files under ``out_dir`` whose process is gone (a
    run killed with SIGKILL or a power cut). Those of live processes (another didtv writing
    into the same folder) are left alone; being hidden, they are never taken for outputs.
    Returns the removed paths, relative to ``out_dir``."""
    removed: list[str] = []
    if not out_dir.is_dir():
        return removed
    for root, _dirs, files in os.walk(out_dir, followlinks=False):
        for name in files:
            m = PARTIAL_RE.match(name)
            if not m:
                continue
            pid = int(m.group(1))
            if pid == os.getpid() or _pid_alive(pid):
                continue
            p = Path(root) / name
            try:
                p.unlink()
                removed.append(p.relative_to(out_dir).as_posix())
            except FileNotFoundError:
                pass
            except OSError:
                pass  # unremovable: harmless, it stays hidden and ignored
    return sorted(removed)


# ---------------------------------------------------------------------------------------------
# Verifying an existing output

def _identity_from_tags(tags: dict) -> dict | None:
    for key, value in (tags or {}).items():
        if str(key).upper() == IDENTITY_TAG:
            try:
                out = json.loads(value)
            except (TypeError, ValueError):
                return None
            return out if isinstance(out, dict) else None
    return None


def read_identity(path: str | os.PathLike) -> dict | None:
    """The ``DIDTV`` global tag of an output as a dict; None when absent or not JSON."""
    from didtv.io.decode import tool_safe_path
    from didtv.io.ffmpeg import ffprobe_json

    try:
        data = ffprobe_json(tool_safe_path(path), "-show_entries", "format_tags")
    except FFmpegError:
        return None
    return _identity_from_tags((data.get("format") or {}).get("tags") or {})


def _decodes(path: Path, full: bool) -> str | None:
    """None when the video stream decodes without a single error message; else FFmpeg's
    first error line. ``full``: every frame; otherwise the first frame and the last second
    (one ffmpeg reading the file twice)."""
    from didtv.io.decode import tool_safe_path
    from didtv.io.ffmpeg import tool_path

    name = tool_safe_path(path)
    argv = [tool_path("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", "-xerror"]
    if full:
        argv += ["-i", name, "-map", "0:v:0", "-f", "null", "-"]
    else:
        argv += ["-i", name, "-sseof", "-1", "-i", name,
                 "-map", "0:v:0", "-frames:v", "1", "-f", "null", "-",
                 "-map", "1:v:0", "-f", "null", "-"]
    out = subprocess.run(argv, capture_output=True, check=False)
    err = [ln.strip() for ln in out.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    if out.returncode != 0 or err:
        return err[0] if err else f"exit {out.returncode}"
    return None


def verify_output(src: Path, dst: Path, options: dict, *, full: bool = False,
                  source_frames: int | None = None) -> str | None:
    """None when ``dst`` is a complete, valid didtv output of ``src`` made with ``options``
    (:func:`didtv.api.conversion_options`); otherwise the reason it is not, one line.

    One ffprobe (streams, container metadata and tags, packets counted) checks: HEVC Main10,
    PQ with HDR10 static metadata (mastering display / content light level), a DIDTV tag with
    the same source fingerprint and options, exactly the source's frame count
    (``count_frames(src)``, or ``source_frames``). Then it must decode without an error
    message (``full``: every frame; otherwise the first frame and the last second).
    """
    from didtv.io.decode import tool_safe_path
    from didtv.io.ffmpeg import ffprobe_json

    try:
        data = ffprobe_json(tool_safe_path(dst), "-count_packets", "-show_streams",
                            "-show_entries", "format_tags", "-select_streams", "V:0")
    except FFmpegError as exc:
        return f"the existing output is unreadable ({_reason(exc, tool_safe_path(dst)).split('): ')[-1]})"
    streams = data.get("streams") or []
    if not streams:
        return "the existing output has no video stream"
    v = streams[0]
    if v.get("codec_name") != "hevc" or v.get("pix_fmt") != "yuv420p10le":
        return f"the existing output is {v.get('codec_name')} {v.get('pix_fmt')}, not HEVC Main10"
    side = {sd.get("side_data_type") for sd in v.get("side_data_list") or [] if isinstance(sd, dict)}
    if v.get("color_transfer") != "smpte2084" or not side & {"Mastering display metadata",
                                                              "Content light level metadata"}:
        return "the existing output has no HDR10 metadata"
    tag = _identity_from_tags((data.get("format") or {}).get("tags") or {})
    if tag is None:
        return "the existing output was not written by didtv (no DIDTV tag)"
    if tag.get("v") != IDENTITY_VERSION:
        return f"the existing output's DIDTV tag has version {tag.get('v')!r}"
    if tag.get("source") != file_fingerprint(src):
        return "the source changed since the existing output was made"
    if tag.get("options") != json.loads(json.dumps(options)):
        return "the existing output was made with other options"
    total = count_frames(tool_safe_path(src)) if source_frames is None else source_frames
    try:
        got = int(v.get("nb_read_packets"))
    except (TypeError, ValueError):
        got = -1
    if got != total or tag.get("frames") != total:
        return f"the existing output holds {got} frames, the source {total}"
    err = _decodes(dst, full)
    if err:
        return f"the existing output does not decode ({err})"
    return None


# ---------------------------------------------------------------------------------------------
# The batch

def convert_batch(
    in_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    preset=None,
    model: str | None = None,
    container: str = "mkv",
    recursive: bool = False,
    jobs: int = 1,
    overwrite: bool = False,
    force: bool = False,
    device: str | None = None,
    precision: str | None = None,
    tile: int | str | None = None,
    batch_size: int | None = None,
    motion_guard: bool | None = None,
    torch_compile: bool = False,
    verify: str = "quick",
    report_path: str | os.PathLike | None = None,
    on_event: Callable[[BatchEvent], None] | None = None,
    cancel: threading.Event | None = None,
) -> BatchReport:
    """Convert every video under ``in_dir`` into ``out_dir`` (see the module docstring).

    ``preset``/``model``/``force``/``device``/``precision``/``tile``/``batch_size``/``motion_guard``/
    ``torch_compile``: as for
    :func:`didtv.api.convert`.
    ``container``: "mkv" or "mp4". ``jobs``: files converted at once (threads; each runs its
    own FFmpeg processes). ``overwrite``: convert again even when an output verifies.
    ``verify``: "quick" or "full" (see :func:`verify_output`). ``report_path``: where the JSON
    report is written (atomically, after every file); None: not written. ``cancel``: set it
    (from any thread) to stop like an interrupt. Returns the report; raises
    :class:`BatchInterrupted` on KeyboardInterrupt or ``cancel``, DidtvError for problems
    that stop the whole batch before any file is touched (folders, FFmpeg, model, preset).
    """
    from didtv.io.ffmpeg import check_ffmpeg
    from didtv.presets import Preset, load_preset, load_preset_model

    t0 = time.monotonic()
    started = _now()
    container = container.lower().lstrip(".")
    if container not in CONTAINERS:
        raise OutputError(f"container must be mkv or mp4, got {container!r}")
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    real_in, real_out, out_inside = check_dirs(in_dir, out_dir)
    if not isinstance(preset, Preset):
        preset = load_preset(preset)
    # Everything that can stop the whole batch fails here, before any file is touched.
    check_ffmpeg()
    model_name, _net = load_preset_model(preset, model)
    del _net
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {out_dir}: {exc.strerror or exc}") from exc
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {out_dir} is not writable")

    report = BatchReport(
        in_dir=in_dir, out_dir=out_dir, container=container, recursive=recursive, jobs=jobs,
        options={"preset": preset.name, "model": model_name, "force": force,
                 "overwrite": overwrite, "verify": verify},
        started=started)
    report.removed_partials = clean_stale_partials(out_dir)
    if out_inside:
        report.excluded.append(str(out_dir))
    report.items = discover(real_in, recursive=recursive, exclude=real_out if out_inside else None,
                            force=force)
    # Report paths as the user gave them, not resolved through links.
    for item in report.items:
        item.source = in_dir / item.input
    output_names(report.items, container)
    lock = threading.Lock()

    def emit(kind: str, item: BatchItem | None = None, progress: Progress | None = None) -> None:
        if on_event is not None:
            with lock:
                on_event(BatchEvent(kind, report, item, progress))

    def save() -> None:
        if report_path is not None:
            with lock:
                report.seconds = time.monotonic() - t0
                report.write_json(Path(report_path))

    emit("plan")
    for item in report.items:
        if item.status != "pending":
            emit("done", item)
    save()
    stop = cancel or threading.Event()

    def process(item: BatchItem) -> None:
        _process(item, out_dir=out_dir, preset=preset, model_name=model_name, overwrite=overwrite,
                 force=force, run={"device": device, "precision": precision, "tile": tile,
                                   "batch_size": batch_size, "motion_guard": motion_guard,
                                   "torch_compile": torch_compile},
                 full=verify == "full", stop=stop, emit=emit)
        save()

    todo = [i for i in report.items if i.status == "pending"]
    try:
        if jobs == 1:
            for item in todo:
                if stop.is_set():
                    raise _Cancelled()
                process(item)
        else:
            _run_parallel(todo, process, jobs, stop)
    except KeyboardInterrupt:
        stop.set()
        report.interrupted = True
        report.finished = _now()
        save()
        raise BatchInterrupted(report) from None
    report.finished = _now()
    save()
    return report


def _run_parallel(todo: list[BatchItem], process, jobs: int, stop: threading.Event) -> None:
    """Run ``process`` on the items with ``jobs`` threads. On KeyboardInterrupt in the calling
    thread: set ``stop`` (workers stop at their next frame and clean up), wait for them, raise."""
    interrupted = False
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="didtv") as pool:
        futures = {pool.submit(process, item): item for item in todo}
        pending = set(futures)
        while pending:
            try:
                done, pending = concurrent.futures.wait(pending, timeout=0.2)
                if stop.is_set() and not interrupted:
                    interrupted = True
                    for f in pending:
                        f.cancel()
            except KeyboardInterrupt:
                interrupted = True
                stop.set()
                for f in pending:
                    f.cancel()
        for f in futures:
            if not f.cancelled() and f.exception() is not None:
                raise f.exception()  # a bug in _process itself (it records everything else)
    if interrupted:
        raise _Cancelled()


def _process(item: BatchItem, *, out_dir: Path, preset, model_name: str, overwrite: bool,
             force: bool, run: dict, full: bool, stop: threading.Event, emit) -> None:
    """Verify or convert one item (``run``: convert()'s device/precision/tile/batch_size); records
    the outcome in ``item``. Re-raises interrupts
    (after marking the item) and nothing else."""
    from didtv.io.decode import tool_safe_path

    assert item.output is not None and item.info is not None
    dst = out_dir / item.output
    t0 = time.monotonic()
    emit("start", item)
    redo: str | None = None
    try:
        if stop.is_set():
            raise _Cancelled()
        if dst.exists() or dst.is_symlink():
            if dst.is_dir():
                raise OutputError(f"output {dst} is a folder")
            if overwrite:
                redo = "replaced (--overwrite)"
            else:
                source_frames = count_frames(tool_safe_path(item.source))
                options = conversion_options(preset, model_name, item.info.fps)
                redo = verify_output(item.source, dst, options, full=full, source_frames=source_frames)
                if redo is None:
                    item.status, item.frames = "skipped", source_frames
                    item.reason = "up to date (verified)"
                    return
        dst.parent.mkdir(parents=True, exist_ok=True)

        def on_progress(p: Progress) -> None:
            if stop.is_set():
                raise _Cancelled()
            emit("progress", item, p)

        result = convert(item.source, dst, preset=preset, model=model_name,
                         overwrite=redo is not None, force=force, **run,
                         on_progress=on_progress)
        item.status, item.frames, item.warnings = "converted", result.frames, list(result.warnings)
        item.reason = f"redone: {redo}" if redo else None
    except KeyboardInterrupt:
        item.status, item.reason = "interrupted", "interrupted; its temporary files were removed"
        raise
    except DidtvError as exc:
        if stop.is_set():
            # Ctrl-C in a terminal reaches FFmpeg too: its death is the interrupt, not the file.
            item.status, item.reason = "interrupted", "interrupted; its temporary files were removed"
        else:
            item.status, item.reason, item.error = "failed", _reason(exc, item.source), type(exc).__name__
    except OSError as exc:
        item.status, item.error = "failed", type(exc).__name__
        item.reason = f"cannot write {dst}: {exc.strerror or exc}"
    except Exception as exc:  # a bug must not stop the batch; the reason says what it was
        item.status, item.error = "failed", type(exc).__name__
        item.reason = f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}"
    finally:
        item.seconds = time.monotonic() - t0
        if item.status != "pending":
            emit("done", item)
