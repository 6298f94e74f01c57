"""Finding and running FFmpeg, ffprobe and mkvtoolnix: argument lists, never shell strings.

Every child gets ``-nostdin -hide_banner`` (FFmpeg) and its stderr is drained in a thread so a
chatty FFmpeg can never block on a full pipe; the tail of stderr is shown when it fails.

Children started with :func:`spawn` are ended, never waited on, when anything goes wrong:
:meth:`Child.stop` sends SIGTERM, SIGKILL after :data:`STOP_GRACE` seconds, reaps the process and
only then closes its pipes (a thread blocked writing into a child that stopped reading gets EPIPE
instead of hanging). :func:`stop_all` does that for every child still running (the CLI's signal
handling, see didtv.cli.convert).

Every command started is logged at DEBUG level on the ``didtv.io.ffmpeg`` logger (a child of
``didtv``), as a shell-quoted line one can paste into a terminal. The library never prints:
``didtv convert --verbose`` attaches a handler.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from didtv.errors import FFmpegError

INSTALL_HINT = "install Debian's packages: apt-get install ffmpeg mkvtoolnix"
# Common flags for every ffmpeg we start.
FFMPEG_FLAGS = ["-nostdin", "-hide_banner", "-loglevel", "error", "-nostats"]

log = logging.getLogger(__name__)


def _log_command(argv: Sequence[str]) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.debug("running: %s", shlex.join(os.fspath(a) for a in argv))


def tool_path(name: str) -> str:
    """Absolute path of ``name`` (ffmpeg, ffprobe, mkvmerge, mkvpropedit), honouring
    ``DIDTV_<NAME>`` environment overrides; raises FFmpegError naming what to install."""
    override = os.environ.get(f"DIDTV_{name.upper()}")
    path = override or shutil.which(name)
    if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise FFmpegError(f"{name} not found on PATH", hint=INSTALL_HINT)
    return path


@lru_cache(maxsize=None)
def _ffmpeg_features(ffmpeg: str) -> tuple[frozenset[str], frozenset[str]]:
    def listing(flag: str) -> str:
        out = run_result([ffmpeg, "-hide_banner", flag], f"ffmpeg {flag}", timeout=60)
        return out.stdout.decode("utf-8", "replace")

    encoders = frozenset(line.split()[1] for line in listing("-encoders").splitlines()
                         if len(line.split()) > 1 and line.startswith(" V"))
    filters = frozenset(line.split()[1] for line in listing("-filters").splitlines()
                        if len(line.split()) > 2 and not line.startswith("Filters"))
    return encoders, filters


def check_ffmpeg(*, need_mkvtoolnix: bool = True) -> None:
    """Raise FFmpegError unless ffmpeg has libx265 and zscale (and mkvtoolnix is present)."""
    ffmpeg = tool_path("ffmpeg")
    tool_path("ffprobe")
    encoders, filters = _ffmpeg_features(ffmpeg)
    missing = [n for n, ok in (("libx265", "libx265" in encoders), ("zscale", "zscale" in filters)) if not ok]
    if missing:
        raise FFmpegError(f"{ffmpeg} lacks {' and '.join(missing)}",
                          hint="Debian's ffmpeg package has both: apt-get install ffmpeg")
    if need_mkvtoolnix:
        tool_path("mkvmerge")
        tool_path("mkvpropedit")


class StderrDrain:
    """Reads a child's stderr in a thread, keeping the last lines for error messages."""

    def __init__(self, stream, keep: int = 40) -> None:
        self.lines: deque[str] = deque(maxlen=keep)
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace").rstrip())
        stream.close()

    def text(self) -> str:
        self._thread.join(timeout=5)
        return "\n".join(self.lines)


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no message)"


#: Seconds a child gets to exit after SIGTERM before SIGKILL (:meth:`Child.stop`).
STOP_GRACE = 0.2


def _end(procs: Sequence[subprocess.Popen], grace: float) -> None:
    """SIGTERM each running process, SIGKILL what is left after ``grace`` seconds, reap all."""
    running = [p for p in procs if p.poll() is None]
    for p in running:
        try:
            if grace > 0:
                p.terminate()
            else:
                p.kill()
        except OSError:  # already gone
            pass
    deadline = time.monotonic() + grace
    for p in running:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@dataclass(eq=False)
class Child:
    """A running FFmpeg with its stderr drained. As a context manager it is stopped
    (:meth:`stop`) when the block raises, whatever the exception."""

    argv: list[str]
    proc: subprocess.Popen
    stderr: StderrDrain

    def wait(self, what: str) -> None:
        rc = self.proc.wait()
        if rc != 0:
            raise FFmpegError(f"{what} failed (exit {rc}): {last_line(self.stderr.text())}")

    def stop(self, grace: float = STOP_GRACE) -> None:
        """End the process now (SIGTERM; SIGKILL after ``grace`` s), reap it, then close our
        ends of its pipes. Bounded: never waits on a pipe, never longer than ``grace`` plus the
        time the kernel takes to reap."""
        _end([self.proc], grace)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except (OSError, ValueError):  # EPIPE flushing what a dead child never read
                    pass

    def __enter__(self) -> "Child":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.stop()


_live: "weakref.WeakSet[Child]" = weakref.WeakSet()
_live_lock = threading.Lock()


def spawn(argv: Sequence[str], *, stdin=None, stdout=None) -> Child:
    """Start a child process with stderr drained. ``argv[0]`` must be an absolute tool path."""
    _log_command(argv)
    proc = subprocess.Popen(list(argv), stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    child = Child(list(argv), proc, StderrDrain(proc.stderr))
    with _live_lock:
        _live.add(child)
    return child


def stop_all(grace: float = STOP_GRACE) -> int:
    """Stop every child started by :func:`spawn` that is still running (any thread's); returns
    how many there were. Pipes are left to their owners. Safe to call from any thread."""
    with _live_lock:
        procs = [c.proc for c in _live if c.proc.poll() is None]
    _end(procs, grace)
    return len(procs)


def run_result(argv: Sequence[str], what: str, *, timeout: float | None) -> subprocess.CompletedProcess:
    """Run a command to completion whatever its exit status; stdout and stderr as bytes. Logged
    like every command; FFmpegError only when it runs past ``timeout`` seconds (then killed)."""
    _log_command(argv)
    try:
        return subprocess.run(list(argv), capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise FFmpegError(f"{what} timed out after {timeout} s") from exc


def run(argv: Sequence[str], what: str, *, timeout: float | None = None) -> str:
    """Run a short command to completion; returns stdout; FFmpegError on failure."""
    out = run_result(argv, what, timeout=timeout)
    if out.returncode != 0:
        msg = out.stderr.decode("utf-8", "replace") or out.stdout.decode("utf-8", "replace")
        raise FFmpegError(f"{what} failed (exit {out.returncode}): {last_line(msg)}")
    return out.stdout.decode("utf-8", "replace")


def ffprobe_json(path: str, *args: str, timeout: float = 120) -> dict:
    """Run ffprobe with ``-of json`` and extra arguments on ``path``; returns the parsed JSON."""
    argv = [tool_path("ffprobe"), "-hide_banner", "-loglevel", "error", "-of", "json", *args, "--", ]
    # ffprobe takes the input after "-i"; "-i" protects names starting with a dash.
    argv = argv[:-1] + ["-i", os.fspath(path)]
    text = run(argv, f"ffprobe {os.fspath(path)}", timeout=timeout)
    try:
        return json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise FFmpegError(f"ffprobe printed invalid JSON for {path}: {exc}") from exc
