"""Stopping on an error: every child process ends at once, even an encoder that stopped reading
while a thread is blocked writing into it, and nothing is left on disk. Real FFmpeg; the
command-line side (signals, exit codes) is tests/cli/test_signals.py."""

from __future__ import annotations

import importlib
import os
import signal
import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from clips import make_clip, requires_ffmpeg
from didtv.api import convert
from didtv.errors import DidtvError
from didtv.io.encode import EncodeSettings, HDR10Writer
from didtv.io.ffmpeg import STOP_GRACE
from procs import live_children, requires_proc

pytestmark = [requires_ffmpeg, requires_proc]


def _fake_tool(folder, name: str, body: str):
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def _wait_until_blocked(writer: HDR10Writer, feeder: threading.Thread, timeout: float = 30) -> None:
    """Until the feeding thread is alive and has not written a frame for 0.3 s."""
    end = time.monotonic() + timeout
    seen, since = -1, time.monotonic()
    while time.monotonic() < end:
        assert feeder.is_alive(), "the writer never blocked"
        if writer.frames_written != seen:
            seen, since = writer.frames_written, time.monotonic()
        elif time.monotonic() - since > 0.3:
            return
        time.sleep(0.02)
    pytest.fail("the writer kept writing")


@pytest.mark.parametrize("encoder", ["never-reads", "sigstopped"])
def test_abort_ends_an_encoder_while_a_thread_is_blocked_writing_to_it(tmp_path, monkeypatch, encoder):
    """The old abort() closed stdin first: that waits for the blocked write() (it holds the
    pipe's lock), which waits for the encoder to read, which it never does: a hang."""
    if encoder == "never-reads":  # ignores SIGTERM too, so the SIGKILL after the grace is needed
        monkeypatch.setenv("DIDTV_FFMPEG", str(_fake_tool(tmp_path, "ffmpeg", "trap '' TERM\nexec sleep 60")))
    writer = HDR10Writer(tmp_path / "o.mkv", width=64, height=48, fps=Fraction(25),
                         settings=EncodeSettings(preset="ultrafast"), source=None)
    pid = writer._child.proc.pid
    if encoder == "sigstopped":  # a real FFmpeg + x265 that stops reading mid-stream
        os.kill(pid, signal.SIGSTOP)
    frame = np.full((3, 48, 64), 0.5, np.float32)  # 36 KiB a frame: a pipe holds under 2
    errors: list[BaseException] = []

    def feed() -> None:
        try:
            for _ in range(1000):
                writer.write(frame)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        _wait_until_blocked(writer, feeder)
        aborter = threading.Thread(target=writer.abort, daemon=True)
        t0 = time.monotonic()
        aborter.start()
        aborter.join(timeout=5)
        took = time.monotonic() - t0
        assert not aborter.is_alive(), "abort() hangs"
        assert took < 2, took
        if encoder == "never-reads":
            assert took >= STOP_GRACE  # SIGTERM ignored: killed after the grace
        feeder.join(timeout=2)
        assert not feeder.is_alive(), "the writing thread is still blocked"
        assert errors and isinstance(errors[0], DidtvError)  # a failure, not a silent stop
        assert pid not in dict(live_children())
    finally:
        if pid in dict(live_children()):  # a failed run: do not leave it behind
            os.kill(pid, signal.SIGKILL)


_ERROR, _INTERRUPT = RuntimeError("boom"), KeyboardInterrupt()


@pytest.mark.parametrize(("stage", "where", "attr", "exc"), [
    ("model", "didtv.pipeline.runner:Runner", "infer_batch", _ERROR),  # decoder and encoder running
    ("model", "didtv.pipeline.runner:Runner", "infer_batch", _INTERRUPT),
    ("encode", "didtv.io.encode:HDR10Writer", "write", _INTERRUPT),  # in the encode thread
    ("measure", "didtv.io.encode", "measure_written", _ERROR),  # after the frame loop
    ("metadata", "didtv.io.encode", "write_container_hdr10", _INTERRUPT),
    ("remux", "didtv.io.encode", "remux_mp4", _ERROR),
], ids=["model-error", "model-interrupt", "encode-interrupt", "measure-error", "metadata-interrupt",
        "remux-error"])
def test_an_exception_at_any_stage_ends_every_child_and_leaves_nothing(tmp_path, monkeypatch, stage,
                                                                       where, attr, exc):
    """(The CLI turns SIGTERM into the same KeyboardInterrupt.)"""
    module, _, cls = where.partition(":")
    holder = importlib.import_module(module)
    holder = getattr(holder, cls) if cls else holder
    real = getattr(holder, attr)
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4 or stage not in ("model", "encode"):  # mid-stream / at once
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(holder, attr, flaky)
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=10)
    before = set(live_children())
    with pytest.raises(type(exc)):
        convert(src, tmp_path / "o.mp4", model="bt2408")
    assert calls["n"] >= 1  # the stage was reached
    assert set(live_children()) - before == set()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
