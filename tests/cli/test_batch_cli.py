"""``didtv convert IN_DIR OUT_DIR``: the batch CLI, exit codes, report, and signals (Ctrl-C,
SIGTERM, SIGKILL) on real processes. Real FFmpeg, tiny clips, CPU only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from clips import make_clip, requires_ffmpeg
from procs import live_in_group
from didtv.cli.main import cli
from didtv.io.probe import HdrFormat, count_frames, probe

pytestmark = requires_ffmpeg

FAST = ["--model", "bt2408", "--x265-preset", "ultrafast"]
ROOT = Path(__file__).resolve().parents[2]


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if "didtv-partial" in p.name]


def test_batch_converts_mirrors_and_reports(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    make_clip(src / "one.mp4", frames=3)
    make_clip(src / "deeper" / "two.mkv", frames=3)
    (src / "readme.txt").write_text("hello\n")
    res = _run("convert", src, out, "--recursive", *FAST)
    assert res.exit_code == 0, res.output
    assert "2 converted, 1 skipped, 0 failed of 3 files" in res.output
    assert "converted" in res.output and "readme.txt" in res.output  # the summary table
    assert probe(out / "deeper" / "two.mkv").hdr == HdrFormat.HDR10
    report = json.loads((out / "didtv-report.json").read_text())
    assert report["ok"] is True and report["counts"]["converted"] == 2
    # (Re-runs: test_sigterm_mid_batch... below, and tests/io/test_batch.py.)


def test_batch_failure_exits_1_with_one_line_reasons(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    make_clip(src / "good.mp4", frames=3)
    (src / "bad.mp4").write_text("not really an mp4")
    report_path = tmp_path / "report.json"
    res = _run("convert", src, out, "--container", "mp4", "--report", report_path, "--quiet", *FAST)
    assert res.exit_code == 1
    assert "didtv: failed: bad.mp4: not a readable video" in res.output
    assert (out / "good.mp4").is_file() and not (out / "didtv-report.json").exists()
    files = {f["input"]: f for f in json.loads(report_path.read_text())["files"]}
    assert files["good.mp4"]["status"] == "converted" and files["bad.mp4"]["status"] == "failed"


def test_batch_usage_errors(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", frames=2)
    res = _run("convert", clip, tmp_path / "o.mkv", "--jobs", "2")
    assert res.exit_code == 2 and "only apply when SRC is a folder" in res.output
    (tmp_path / "in").mkdir()
    (tmp_path / "file").write_text("x")
    res = _run("convert", tmp_path / "in", tmp_path / "file", *FAST)
    assert res.exit_code == 7 and "DST must be a folder" in res.output
    res = _run("convert", tmp_path / "in", tmp_path / "in", *FAST)
    assert res.exit_code == 7 and "is the input folder" in res.output.splitlines()[0]


def test_single_file_into_a_folder(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", frames=2)
    (tmp_path / "out").mkdir()
    res = _run("convert", clip, tmp_path / "out", "--container", "mp4", "--quiet", *FAST)
    assert res.exit_code == 0, res.output
    assert probe(tmp_path / "out" / "c.mp4").hdr == HdrFormat.HDR10
    res = _run("convert", clip, tmp_path / "c.mkv", "--container", "mp4", *FAST)
    assert res.exit_code == 2 and "--container applies when SRC or DST is a folder" in res.output
    assert not (tmp_path / "c.mkv").exists()


# ---------------------------------------------------------------------------------------------
# Signals, on real processes

def _start(*args) -> subprocess.Popen:
    """didtv in its own process group, so its children can be found after it is gone."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen([sys.executable, "-m", "didtv.cli.main", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for_partial(proc: subprocess.Popen, folder: Path, timeout: float = 60,
                      ignore: Path | None = None) -> Path:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = [p for p in _partials(folder) if p != ignore] if folder.exists() else []
        if found:
            return found[0]
        if proc.poll() is not None:
            pytest.fail(f"didtv ended before writing anything: {proc.communicate()}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail("no temporary file appeared")


def _library(folder: Path, n: int = 2, frames: int = 40) -> Path:  # ~2 s of work each
    for k in range(n):
        make_clip(folder / f"v{k}.mp4", size=(160, 120), frames=frames)
    return folder


def test_sigkill_then_sigterm_then_resume(tmp_path):
    """A run killed outright leaves a hidden temporary file; the next run removes it and, when
    SIGTERM stops it mid-file, cleans up after itself; the third run finishes the job."""
    src, out = _library(tmp_path / "in"), tmp_path / "out"
    proc = _start("convert", src, out, *FAST)
    stale = _wait_for_partial(proc, out)
    proc.kill()  # SIGKILL: no cleanup can run
    proc.communicate(timeout=30)
    time.sleep(0.3)  # the orphaned encoder sees its stdin close and exits
    assert stale.exists()

    proc = _start("convert", src, out, *FAST)
    _wait_for_partial(proc, out, ignore=stale)
    time.sleep(0.3)  # inside the frame loop
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "didtv: terminated; temporary files removed" in err and "Traceback" not in err
    assert _partials(out) == []  # its own and the stale one
    time.sleep(0.1)
    assert live_in_group(proc.pid) == []  # no FFmpeg left running
    for done in out.glob("*.mkv"):  # whatever is there is complete
        assert count_frames(done) == 40 and probe(done).hdr == HdrFormat.HDR10
    report = json.loads((out / "didtv-report.json").read_text())
    assert report["interrupted"] is True and report["counts"]["interrupted"] == 1
    assert [Path(p).name for p in report["removed_partials"]] == [stale.name]

    res = _run("convert", src, out, *FAST)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.glob("*.mkv")) == ["v0.mkv", "v1.mkv"]
    assert _partials(out) == []


# A single conversion stopped by Ctrl-C / SIGTERM: tests/cli/test_signals.py.
