"""``didtv convert`` stopped by Ctrl-C or SIGTERM, as a real process: exit 130 / 143 within 2 s,
every child (FFmpeg decoding, FFmpeg + x265 encoding, mkvmerge) gone, no output and no temporary
file, in the output folder or in TMPDIR. The library side (an exception at any stage, a writer
blocked on a full pipe) is tests/io/test_shutdown.py; a batch stopped by SIGTERM is
tests/cli/test_batch_cli.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clips import make_clip, requires_ffmpeg
from didtv.io.ffmpeg import tool_path
from procs import live_in_group, requires_proc

pytestmark = [requires_ffmpeg, requires_proc]

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "didtv" / "samples" / "bikes-sample.mp4"
#: From the signal to the exit of didtv and all its children.
DEADLINE = 2.0


def _start(src: Path, dst: Path, tmp: Path, **env: str) -> subprocess.Popen:
    """didtv convert in its own process group (so its children can be found after it is gone).
    x265's slowest preset makes the encoder the bottleneck: the frame loop then blocks writing
    into a full pipe, the case that used to hang."""
    tmp.mkdir(exist_ok=True)
    # torch makes its compile cache folder under TMPDIR when imported, on every run: put it
    # elsewhere so TMPDIR shows only what the conversion itself leaves.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": str(tmp),
           "TORCHINDUCTOR_CACHE_DIR": str(tmp.parent / "torch-cache"), **env}
    return subprocess.Popen([sys.executable, "-m", "didtv.cli.main", "convert", str(src), str(dst),
                             "--model", "bt2408", "--x265-preset", "veryslow"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for(proc: subprocess.Popen, ready, what: str, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ready():
            return
        if proc.poll() is not None:
            pytest.fail(f"didtv ended before {what}: {proc.communicate()}")
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def _signal(proc: subprocess.Popen, sig: int, *, group: bool, times: int = 1) -> float:
    """Send ``sig`` (to the whole process group, as a terminal's Ctrl-C does, or to didtv only,
    as ``kill PID``) ``times`` times 50 ms apart; return the seconds until didtv has exited."""
    t0 = time.monotonic()
    for k in range(times):
        if k:
            time.sleep(0.05)
        (os.killpg if group else os.kill)(proc.pid, sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("didtv did not exit within 30 s of the signal")
    return time.monotonic() - t0


def _check_stopped(proc: subprocess.Popen, took: float, code: int, *folders: Path) -> None:
    err = proc.stderr.read()
    assert proc.returncode == code, err
    assert took < DEADLINE, (took, err)
    assert ("terminated" if code == 143 else "interrupted") in err and "Traceback" not in err
    time.sleep(0.1)  # a child killed at didtv's exit may take a moment to be gone
    assert live_in_group(proc.pid) == []
    for folder in folders:
        assert sorted(p.name for p in folder.iterdir()) == [], folder


@pytest.mark.parametrize(("sig", "group", "times", "code"), [
    (signal.SIGINT, True, 1, 130),  # Ctrl-C in a terminal: didtv and its children get SIGINT
    (signal.SIGTERM, False, 1, 143),  # kill PID: only didtv gets it
    (signal.SIGINT, True, 2, 130),  # Ctrl-C twice in quick succession
], ids=["ctrl-c", "sigterm", "ctrl-c-twice"])
def test_a_signal_while_encoding_stops_everything(tmp_path, sig, group, times, code):
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    proc = _start(SAMPLE, out / "bikes-hdr.mkv", tmp)
    try:
        _wait_for(proc, lambda: any(out.iterdir()), "encoding")  # its hidden partial file
        _wait_for(proc, lambda: [n for _, n in live_in_group(proc.pid)].count("ffmpeg") == 2,
                  "the decoder and encoder")
        time.sleep(0.5)  # the encoder's pipe fills up
        took = _signal(proc, sig, group=group, times=times)
        _check_stopped(proc, took, code, out, tmp)
    finally:
        if proc.poll() is None or live_in_group(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


def _vfr_clip(folder: Path) -> Path:
    """12 frames at uneven intervals: convert re-times its output with mkvmerge."""
    cfr = make_clip(folder / "cfr.mkv", size=(64, 48), frames=12)
    ts = folder / "ts.txt"
    ts.write_text("# timestamp format v2\n" + "".join(f"{t}\n" for t in [i * 40 for i in range(6)]
                                                       + [300 + i * 100 for i in range(6)]))
    vfr = folder / "vfr.mkv"
    subprocess.run([tool_path("mkvmerge"), "-q", "-o", str(vfr), "--timestamps", f"0:{ts}", str(cfr)],
                   check=True, capture_output=True)
    return vfr


def test_sigterm_after_the_frame_loop_stops_mkvmerge(tmp_path):
    """A stage after the frame loop: the mkvmerge that re-times a variable-frame-rate output,
    here one that hangs and ignores SIGTERM (so it has to be killed)."""
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    src = _vfr_clip(tmp_path)
    started = tmp_path / "mkvmerge-started"
    fake = tmp_path / "mkvmerge"
    fake.write_text(f"#!/bin/sh\ntouch '{started}'\ntrap '' TERM\nexec sleep 60\n")
    fake.chmod(0o755)
    proc = _start(src, out / "o.mkv", tmp, DIDTV_MKVMERGE=str(fake))
    try:
        _wait_for(proc, started.exists, "mkvmerge")
        time.sleep(0.1)
        assert "sleep" in [n for _, n in live_in_group(proc.pid)]
        took = _signal(proc, signal.SIGTERM, group=False)
        _check_stopped(proc, took, 143, out, tmp)
    finally:
        if proc.poll() is None or live_in_group(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


_STUCK = """
import hashlib, shutil
from didtv.cli.signals import signals_as_interrupts
from didtv.io.ffmpeg import spawn
with signals_as_interrupts():
    child = spawn([shutil.which("sleep"), "60"])
    print(child.proc.pid, flush=True)
    # One long C call that releases the GIL (as torch's ops do): no Python signal handler runs
    # until it returns, minutes from now.
    hashlib.pbkdf2_hmac("sha256", b"x", b"y", 10**9)
"""


def test_children_stop_and_a_second_signal_exits_while_the_main_thread_is_stuck(tmp_path):
    """The watcher thread, not the main thread: 1 s after the first signal the children are
    stopped anyway; a second signal makes the process exit (143) 1.5 s later."""
    from didtv.cli.signals import CHILD_DEADLINE, HARD_EXIT_AFTER

    proc = subprocess.Popen([sys.executable, "-c", _STUCK], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        child = int(proc.stdout.readline())
        time.sleep(0.2)
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        while child in dict(live_in_group(proc.pid)) and time.monotonic() - t0 < 10:
            time.sleep(0.02)
        took = time.monotonic() - t0
        assert CHILD_DEADLINE <= took < CHILD_DEADLINE + 0.8, took
        assert proc.poll() is None  # still inside its C call
        t1 = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == 143
        assert time.monotonic() - t1 < HARD_EXIT_AFTER + 0.8
        assert live_in_group(proc.pid) == []
    finally:
        if proc.poll() is None or live_in_group(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
