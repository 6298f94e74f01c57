"""One real `didtv convert` under a pseudo-terminal: the rich progress bar appears (it only does
when stderr is a terminal), the result line follows, and the exit code is 0."""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from clips import make_clip, requires_ffmpeg

pytestmark = [requires_ffmpeg, pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")]

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def _run_in_pty(argv: list[str], timeout: float = 120.0) -> tuple[int, bytes]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))  # rows, cols
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "30"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError as exc:  # EIO: the child closed the terminal
                    if exc.errno != errno.EIO:
                        raise
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            pytest.fail(f"timed out; output so far: {bytes(out)[-2000:]!r}")
        return proc.wait(timeout=30), bytes(out)
    finally:
        os.close(master)


def test_convert_under_a_terminal_shows_rich_progress(tmp_path):
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=24)
    dst = tmp_path / "out.mkv"
    argv = [sys.executable, "-m", "didtv.cli.main", "convert", str(src), str(dst),
            "--model", "bt2408", "--x265-preset", "ultrafast"]
    code, raw = _run_in_pty(argv)
    text = ANSI.sub(b"", raw).decode("utf-8", "replace")
    assert code == 0, text
    assert "converting" in text  # the rich bar's label
    assert re.search(r"\d+/24", text), text  # its M/N column
    assert "━" in text or "╸" in text  # the bar itself
    assert "\x1b[" in raw.decode("utf-8", "replace")  # drawn with terminal control sequences
    assert "24 frames 64x48" in text and "MaxCLL" in text
    assert re.search(r"decode [\d.]+ fps · model [\d.]+ fps · encode [\d.]+ fps · bottleneck: \w+", text), text
    assert "didtv: 24/24 frames" not in text  # the plain log lines are for non-terminals only
    assert dst.is_file()
