"""Folders, discovery (every file probed), output names mirroring IN_DIR, and the removal of
stale partial files of dead processes."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

from didtv.batch.report import BatchItem
from didtv.errors import OutputError, ProbeError
from didtv.io.probe import VideoInfo, probe

#: Extensions that mark a file as meant to be a video: when ffprobe cannot read such a file it
#: is a *failed* (damaged) video, not a skipped non-video. Discovery itself probes every file.
VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".wmv", ".asf", ".flv", ".f4v", ".mpg",
    ".mpeg", ".m2v", ".vob", ".ts", ".m2ts", ".mts", ".mxf", ".3gp", ".3g2", ".ogv", ".dv",
    ".y4m", ".nut", ".rm", ".rmvb", ".divx", ".h264", ".264", ".h265", ".265", ".hevc",
})

#: ``.NAME.didtv-partial-HOST-PID.SUFFIX``: what :func:`didtv.api.partial_path` writes (HOST:
#: :func:`host_tag` of the machine writing it; older files and the batch report have none).
PARTIAL_RE = re.compile(r"^\..+\.didtv-partial-(?:(h[0-9a-f]{8})-)?(\d+)(\..*)?$")
#: A partial file of another machine (a Ray node) that nobody has written for this long is stale
#: (its PID means nothing here; a conversion in progress writes its file all the time).
OTHER_HOST_STALE_SECONDS = 24 * 3600


def host_tag() -> str:
    """This machine, in partial file names: ``h`` + 8 hex digits of a hash of its host name."""
    import hashlib
    import socket

    return "h" + hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


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
    """Remove ``.NAME.didtv-partial-HOST-PID.*`` files under ``out_dir`` whose process is gone (a
    run killed with SIGKILL or a power cut): of this machine, when the PID is not alive; of
    another machine (a Ray node on a shared filesystem), when not written for
    :data:`OTHER_HOST_STALE_SECONDS`. Those of live processes (another didtv writing into the
    same folder) are left alone; being hidden, they are never taken for outputs. Returns the
    removed paths, relative to ``out_dir``."""
    import time

    removed: list[str] = []
    if not out_dir.is_dir():
        return removed
    here = host_tag()
    for root, _dirs, files in os.walk(out_dir, followlinks=False):
        for name in files:
            m = PARTIAL_RE.match(name)
            if not m:
                continue
            p = Path(root) / name
            if m.group(1) in (None, here):
                pid = int(m.group(2))
                if pid == os.getpid() or _pid_alive(pid):
                    continue
            else:
                try:
                    if time.time() - p.stat().st_mtime < OTHER_HOST_STALE_SECONDS:
                        continue
                except OSError:
                    continue
            try:
                p.unlink()
                removed.append(p.relative_to(out_dir).as_posix())
            except FileNotFoundError:
                pass
            except OSError:
                pass  # unremovable: harmless, it stays hidden and ignored
    return sorted(removed)
