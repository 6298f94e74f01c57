"""``--workers N``: the chunks of one file, and the files of a folder, in N worker processes
(didtv.engine.local). The results must be those of one worker, bit for bit (lossless x265, so
the decoded frames show the model's output exactly)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clips import make_clip, requires_ffmpeg
from didtv.api import convert
from didtv.chunks import work_dir
from didtv.errors import FFmpegError
from test_chunks import (LOSSLESS, ROOT, decoded, hidden_leftovers, make_cut_clip, make_damaged_clip,
                         video_times, kill_a_worker_writing)

pytestmark = requires_ffmpeg
SAMPLE = ROOT / "didtv" / "samples" / "bikes-sample.mp4"


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run([sys.executable, "-m", "didtv.cli.main", "convert", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_two_workers_equal_one_on_the_sample_clip(tmp_path):
    """The bundled clip (48 frames) in 0.4 s chunks with Lite (a shot condition carried over
    chunk boundaries) and x265 lossless: 2 workers give the frames of 1 worker."""
    outs = {}
    for n in (1, 2):
        outs[n] = tmp_path / f"w{n}.mkv"
        done = _cli(str(SAMPLE), str(outs[n]), "--model", "lite", "--lossless", "--x265-preset", "ultrafast",
                    "--chunks", "0.4", "--workers", str(n), "--device", "cpu")
        assert done.returncode == 0, done.stderr
        assert "chunks 5/5" in done.stderr or "chunks" in done.stderr, done.stderr
    assert np.array_equal(decoded(outs[1]), decoded(outs[2]))
    assert video_times(outs[1]) == video_times(outs[2])
    assert hidden_leftovers(tmp_path) == []


def test_workers_chunks_with_cuts_equal_one_pass(tmp_path):
    src = make_cut_clip(tmp_path / "cuts.mp4")
    one = convert(src, tmp_path / "one.mkv", preset=LOSSLESS, chunks="off")
    seen = []
    two = convert(src, tmp_path / "two.mkv", preset=LOSSLESS, chunks=0.2, workers=2, on_progress=seen.append)
    assert seen[-1].chunks_done == seen[-1].chunks_total >= 5 and seen[-1].frames_done == one.frames
    assert seen[-1].eta == 0
    assert np.array_equal(decoded(one.output), decoded(two.output))
    assert two.light == one.light
    assert not work_dir(two.output).exists() and hidden_leftovers(tmp_path) == []


def test_a_failed_chunk_fails_the_file_in_one_line(tmp_path):
    bad = make_damaged_clip(tmp_path)
    dst = tmp_path / "out.mkv"
    with pytest.raises(FFmpegError) as info:
        convert(bad, dst, preset=LOSSLESS, chunks=0.4, workers=2)
    msg = str(info.value)
    assert "\n" not in msg and "chunk " in msg and "/5 (00:00:0" in msg and "damaged video" in msg, msg
    assert not dst.exists() and not work_dir(dst).exists()
    assert hidden_leftovers(tmp_path) == []


def test_a_killed_worker_is_retried_and_the_output_is_right(tmp_path):
    # SIGKILL of a worker process in the middle of its chunk breaks the process pool: the engine
    # starts a new one and runs the chunks that were in flight again (their attempts' files are
    # never taken); the output is that of one pass
    src = make_clip(tmp_path / "long.mp4", frames=120, size=(320, 240))
    dst = tmp_path / "two.mkv"
    thread, killed = kill_a_worker_writing(work_dir(dst))
    out = convert(src, dst, preset=LOSSLESS, chunks=1.6, workers=2)
    thread.join(timeout=5)
    assert killed, "no worker was seen writing a chunk"
    one = convert(src, tmp_path / "one.mkv", preset=LOSSLESS, chunks="off")
    assert np.array_equal(decoded(one.output), decoded(out.output))
    assert video_times(one.output) == video_times(out.output)
    assert not work_dir(dst).exists() and hidden_leftovers(tmp_path) == []


def test_batch_files_in_two_workers(tmp_path):
    """A folder in 2 worker processes: the good files are converted (as one process converts
    them), the damaged one fails with its reason, the report says so; a rerun skips all."""
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=10)
    make_clip(src / "b.mkv", frames=14, size=(48, 32))
    (src / "c.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2000))
    out = tmp_path / "out"
    args = ["--model", "bt2408", "--lossless", "--x265-preset", "ultrafast", "-q"]
    done = _cli(str(src), str(out), *args, "--workers", "2")
    assert done.returncode == 1, done.stderr  # one file failed
    report = json.loads((out / "didtv-report.json").read_text())
    status = {f["input"]: f["status"] for f in report["files"]}
    assert status == {"a.mp4": "converted", "b.mkv": "converted", "c.mp4": "failed"}
    assert report["options"]["workers"] == 2 and "c.mp4" in done.stderr
    for name, frames in (("a.mkv", 10), ("b.mkv", 14)):
        one = convert(src / Path(name).with_suffix(".mp4" if name == "a.mkv" else ".mkv"),
                      tmp_path / f"one-{name}", preset=LOSSLESS)
        assert np.array_equal(decoded(out / name), decoded(one.output))
    again = _cli(str(src), str(out), *args, "--workers", "2")
    report = json.loads((out / "didtv-report.json").read_text())
    assert again.returncode == 1 and report["counts"]["skipped"] == 2
    assert hidden_leftovers(out) == []


def test_jobs_and_workers_exclude_each_other(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    done = _cli(str(src), str(tmp_path / "out"), "--jobs", "2", "--workers", "2")
    assert done.returncode == 2 and "exclude each other" in done.stderr
    done = _cli(str(SAMPLE), str(tmp_path / "o.mkv"), "--address", "x:1")
    assert done.returncode == 2 and "--address applies to --engine ray" in done.stderr
