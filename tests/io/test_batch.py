"""``didtv.batch.convert_batch``: discovery, mirroring, resumption, isolation, interrupts.

Real FFmpeg, tiny clips, ``bt2408`` + x265 ``ultrafast``. docs/batch.md describes the rules
tested here.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from clips import make_clip, requires_ffmpeg
from didtv.api import conversion_options
from didtv.batch import schedule as batch_schedule
from didtv.batch.discovery import PARTIAL_RE, host_tag
from didtv.batch import (BatchInterrupted, REPORT_SCHEMA_VERSION, clean_stale_partials, convert_batch,
                         verify_output)
from didtv.errors import ModelError, OutputError
from didtv.io.ffmpeg import tool_path
from didtv.io.probe import HdrFormat, count_frames, probe
from didtv.presets import load_preset

pytestmark = requires_ffmpeg

FAST = load_preset().with_overrides(model="bt2408", x265_preset="ultrafast")


def _run(in_dir, out_dir, **kw):
    kw.setdefault("preset", FAST)
    return convert_batch(in_dir, out_dir, **kw)


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if "didtv-partial" in p.name]


def _by_input(report) -> dict:
    return {i.input: i for i in report.items}


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """IN/: a.mp4 + a.mov (same stem), sub/b c.mkv (with audio), a video without extension,
    a text file, an empty .mkv, a text file named .mp4, an 8x8 video, an HDR10 clip, a hidden
    clip, and a clip in a hidden folder."""
    d = tmp_path_factory.mktemp("lib") / "in"
    make_clip(d / "a.mp4", frames=4)
    make_clip(d / "a.mov", frames=3)
    make_clip(d / "sub" / "b c.mkv", frames=3, audio=True)
    shutil.copy(d / "a.mov", d / "no_extension")
    (d / "notes.txt").write_text("not a video\n")
    (d / "empty.mkv").write_bytes(b"")
    (d / "fake.mp4").write_text("this is text, not an mp4")
    make_clip(d / "tiny.mkv", size=(8, 8), frames=2, codec="ffv1")
    make_clip(d / "hdr.mkv", kind="hdr10", frames=2)
    make_clip(d / ".hidden.mp4", frames=2)
    make_clip(d / ".cache" / "c.mp4", frames=2)
    return d


@pytest.fixture(scope="module")
def first_run(library, tmp_path_factory):
    out = tmp_path_factory.mktemp("lib-out") / "out"
    events = []
    report = _run(library, out, recursive=True, report_path=out / "report.json",
                  on_event=lambda e: events.append((e.kind, e.item.input if e.item else None)))
    return report, out, events


def test_discovery_statuses_and_reasons(first_run):
    report, out, _ = first_run
    items = _by_input(report)
    assert sorted(items) == [".hidden.mp4", "a.mov", "a.mp4", "empty.mkv", "fake.mp4", "hdr.mkv",
                             "no_extension", "notes.txt", "sub/b c.mkv", "tiny.mkv"]  # not .cache/
    status = {k: v.status for k, v in items.items()}
    assert status == {
        ".hidden.mp4": "skipped", "a.mov": "converted", "a.mp4": "converted", "empty.mkv": "failed",
        "fake.mp4": "failed", "hdr.mkv": "skipped", "no_extension": "converted",
        "notes.txt": "skipped", "sub/b c.mkv": "converted", "tiny.mkv": "failed"}
    assert items[".hidden.mp4"].reason == "hidden file"
    assert items["notes.txt"].reason.startswith("not a readable video")  # probed, not by extension
    assert items["fake.mp4"].reason.startswith("not a readable video")  # a video name: failed
    assert items["empty.mkv"].reason == "empty file (0 bytes)"
    assert items["hdr.mkv"].reason == "already HDR10 (pass --force to convert it)"
    assert "too small" in items["tiny.mkv"].reason and items["tiny.mkv"].error == "UnsupportedInputError"
    for item in report.items:
        assert item.reason is None or "\n" not in item.reason
    assert not report.ok and report.counts == {"pending": 0, "converted": 4, "skipped": 3, "failed": 3,
                                               "interrupted": 0, "total": 10}


def test_outputs_mirror_the_tree_and_are_hdr10(first_run, library):
    report, out, _ = first_run
    items = _by_input(report)
    # Same stem in one folder: both keep their extension.
    assert (items["a.mp4"].output, items["a.mov"].output) == ("a.mp4.mkv", "a.mov.mkv")
    assert items["sub/b c.mkv"].output == "sub/b c.mkv"
    assert items["no_extension"].output == "no_extension.mkv"
    for name, frames in (("a.mp4.mkv", 4), ("a.mov.mkv", 3), ("sub/b c.mkv", 3), ("no_extension.mkv", 3)):
        info = probe(out / name)
        assert info.hdr == HdrFormat.HDR10 and count_frames(out / name) == frames
    assert len(probe(out / "sub" / "b c.mkv").audio) == 1
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "a.mov.mkv", "a.mp4.mkv", "no_extension.mkv", "report.json", "sub", "sub/b c.mkv"]
    assert _partials(out) == []
    assert sorted(p.name for p in library.iterdir())[:2] == [".cache", ".hidden.mp4"]  # inputs untouched


def test_json_report_schema(first_run):
    report, out, events = first_run
    data = json.loads((out / "report.json").read_text())
    assert data["schema_version"] == REPORT_SCHEMA_VERSION
    assert set(data) >= {"didtv_version", "in_dir", "out_dir", "container", "recursive", "jobs", "options",
                         "started", "finished", "seconds", "interrupted", "ok", "counts",
                         "frames_converted", "removed_partials", "excluded", "files"}
    assert data["ok"] is False and data["interrupted"] is False and data["frames_converted"] == 13
    assert data["options"]["model"] == "bt2408" and data["container"] == "mkv"
    for f in data["files"]:
        assert set(f) == {"input", "output", "status", "reason", "frames", "estimated_frames", "seconds",
                          "warnings", "error"}
        assert f["status"] in ("converted", "skipped", "failed")
    assert data == json.loads(json.dumps(report.to_json()))  | {"seconds": data["seconds"]}
    kinds = [k for k, _ in events]
    assert kinds[0] == "plan" and kinds.count("done") == 10 and "progress" in kinds


def test_rerun_skips_verified_outputs_without_converting(first_run, library, monkeypatch):
    _, out, _ = first_run

    def no_convert(*a, **k):
        raise AssertionError("a verified output was converted again")

    monkeypatch.setattr(batch_schedule, "convert", no_convert)
    report = _run(library, out, recursive=True)
    items = _by_input(report)
    for name in ("a.mp4", "a.mov", "no_extension", "sub/b c.mkv"):
        assert items[name].status == "skipped" and items[name].reason == "up to date (verified)"
    assert items["a.mp4"].frames == 4


def test_redo_when_output_damaged_foreign_stale_or_made_differently(tmp_path):
    src_dir, out = tmp_path / "in", tmp_path / "out"
    make_clip(src_dir / "v.mp4", frames=4)
    assert _by_input(_run(src_dir, out))["v.mp4"].status == "converted"
    dst = out / "v.mkv"
    good = dst.read_bytes()

    def rerun(**kw):
        item = _by_input(_run(src_dir, out, **kw))["v.mp4"]
        assert item.status == "converted", item
        return item.reason

    options = conversion_options(FAST, "bt2408", probe(src_dir / "v.mp4").fps)
    # Files that merely exist under the output's name are never trusted:
    shutil.copy(src_dir / "v.mp4", dst)  # someone else's video
    assert "not HEVC Main10" in verify_output(src_dir / "v.mp4", dst, options)
    make_clip(dst.with_name("x.mkv"), kind="hdr10", frames=4).replace(dst)  # SEI only, no container metadata
    assert "no HDR10 metadata" in verify_output(src_dir / "v.mp4", dst, options)
    dst.write_bytes(good)
    subprocess.run([tool_path("mkvpropedit"), "-q", str(dst), "--tags", "global:"], check=True)
    assert "no DIDTV tag" in verify_output(src_dir / "v.mp4", dst, options)  # HDR10, but whose?
    dst.write_bytes(good[: len(good) // 2])  # cut short (not by didtv: it renames only whole files)
    assert "redone: the existing output" in rerun()
    assert "other options" in rerun(preset=FAST.with_overrides(crf=30))
    make_clip(src_dir / "v.mp4", frames=5)  # the source changed
    assert "source changed" in rerun()
    assert count_frames(dst) == 5
    assert verify_output(src_dir / "v.mp4", dst, conversion_options(
        FAST, "bt2408", probe(src_dir / "v.mp4").fps)) is None


def test_decode_check_goes_through_the_runner_logged_and_timed(tmp_path, monkeypatch, caplog):
    from didtv.batch import verify as verify_mod

    clip = make_clip(tmp_path / "v.mp4", frames=4)
    with caplog.at_level(logging.DEBUG, logger="didtv.io.ffmpeg"):
        assert verify_mod._decodes(clip, full=False) is None
        assert verify_mod._decodes(clip, full=True, frames=4) is None
    commands = [r.getMessage() for r in caplog.records if "-xerror" in r.getMessage()]
    assert len(commands) == 2 and "-sseof" in commands[0] and "-sseof" not in commands[1]
    damaged = tmp_path / "cut.mp4"
    damaged.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    assert verify_mod._decodes(damaged, full=True, frames=4) is not None
    monkeypatch.setattr(verify_mod, "QUICK_DECODE_TIMEOUT", 1e-4)
    assert "timed out after 0.0001 s" in verify_mod._decodes(clip, full=False)


def test_stale_partials_removed_live_ones_kept(tmp_path):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    here = host_tag()
    dead = out / "sub" / f".v.mkv.didtv-partial-{here}-999999999.mkv"  # no such PID
    old_dead = out / ".u.mkv.didtv-partial-999999999.mkv"  # a name without the machine (before)
    live = out / f".w.mkv.didtv-partial-{here}-{os.getppid()}.mkv"  # our parent: alive
    # another machine's (a Ray node's): its PID means nothing here; kept while written lately
    away_fresh = out / f".x.mkv.didtv-partial-h00000000-{os.getppid()}.mkv"
    away_old = out / ".y.mkv.didtv-partial-h00000000-1.mkv"
    other = out / ".notes"
    for p in (dead, old_dead, live, away_fresh, away_old, other):
        p.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(away_old, (two_days_ago, two_days_ago))
    assert clean_stale_partials(out) == [".u.mkv.didtv-partial-999999999.mkv", away_old.name,
                                         f"sub/{dead.name}"]
    assert live.exists() and away_fresh.exists() and other.exists()
    assert not dead.exists() and not old_dead.exists() and not away_old.exists()


def test_partial_files_name_this_machine(tmp_path):
    from didtv.api import partial_path

    name = partial_path(tmp_path / "a.mkv", ".mkv").name
    m = PARTIAL_RE.match(name)
    assert m and m.group(1) == host_tag() and int(m.group(2)) == os.getpid()


def test_interrupt_cleans_up_and_next_run_continues(tmp_path):
    src_dir, out = tmp_path / "in", tmp_path / "out"
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        make_clip(src_dir / name, frames=6)

    def stop_in_second_file(event):
        if event.kind == "progress" and event.item.input == "b.mp4" and event.progress.frames_done == 2:
            raise KeyboardInterrupt

    with pytest.raises(BatchInterrupted) as exc:
        _run(src_dir, out, on_event=stop_in_second_file, report_path=out / "r.json")
    report = exc.value.report
    assert report.interrupted and not report.ok
    assert [(i.input, i.status) for i in report.items] == [
        ("a.mp4", "converted"), ("b.mp4", "interrupted"), ("c.mp4", "pending")]
    assert sorted(p.name for p in out.iterdir()) == ["a.mkv", "r.json"]  # complete outputs only
    assert json.loads((out / "r.json").read_text())["interrupted"] is True
    again = _run(src_dir, out)
    assert [i.status for i in again.items] == ["skipped", "converted", "converted"] and again.ok


def test_parallel_jobs_and_cancel(tmp_path):
    src_dir, out = tmp_path / "in", tmp_path / "out"
    for name in ("a.mp4", "b.mp4"):
        make_clip(src_dir / name, frames=4)
    cancel = threading.Event()
    seen = []

    def on_event(e):
        seen.append(e.kind)
        if e.kind == "progress" and e.progress.frames_done == 2:
            cancel.set()  # from a worker thread: every worker stops at its next frame

    with pytest.raises(BatchInterrupted) as exc:
        _run(src_dir, out, jobs=2, cancel=cancel, on_event=on_event)
    statuses = {i.input: i.status for i in exc.value.report.items}
    assert "interrupted" in statuses.values() and "converted" not in statuses.values()
    assert _partials(out) == [] and not list(out.glob("*.mkv"))
    report = _run(src_dir, out, jobs=2, container="mp4")
    assert report.ok and [i.status for i in report.items] == ["converted"] * 2
    assert sorted(p.name for p in out.glob("*.mp4")) == ["a.mp4", "b.mp4"]
    assert probe(out / "b.mp4").hdr == HdrFormat.HDR10


def test_folder_rules(tmp_path):
    src_dir = tmp_path / "in"
    make_clip(src_dir / "v.mp4", frames=2)
    with pytest.raises(OutputError, match="is the input folder"):
        _run(src_dir, src_dir)
    with pytest.raises(OutputError, match="lies inside the output folder"):
        _run(src_dir, tmp_path)
    # OUT_DIR inside IN_DIR: allowed, and never scanned (its outputs are not inputs next time).
    report = _run(src_dir, src_dir / "hdr", recursive=True)
    assert [(i.input, i.status) for i in report.items] == [("v.mp4", "converted")]
    assert report.excluded == [str(src_dir / "hdr")]
    again = _run(src_dir, src_dir / "hdr", recursive=True)
    assert [(i.input, i.status) for i in again.items] == [("v.mp4", "skipped")]


def test_bad_model_stops_before_any_work(tmp_path):
    src_dir = tmp_path / "in"
    make_clip(src_dir / "v.mp4", frames=2)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(ModelError):
        convert_batch(src_dir, tmp_path / "out", preset=FAST, model=str(bad))
    assert not (tmp_path / "out").exists()
