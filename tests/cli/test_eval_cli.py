"""`didtv eval --clip`: flicker of the output on real SDR video, next to BT.2408's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from clips import requires_ffmpeg

from didtv.cli.main import cli

SAMPLE = Path(__file__).resolve().parents[2] / "didtv" / "samples" / "bikes-sample.mp4"

pytestmark = requires_ffmpeg


def test_eval_clip_reports_jitter_and_ratio_to_bt2408():
    res = CliRunner().invoke(cli, ["eval", "-m", "bt2446a", "--clip", str(SAMPLE), "--frames", "8", "--json"])
    assert res.exit_code == 0, res.output
    [clip] = json.loads(res.output)["real_clips"]
    assert clip["frames"] == 8 and set(clip["jitter"]) == {"bt2446a", "bt2408"}
    assert clip["jitter"]["bt2408"] > 0 and clip["ratio"]["bt2408"] == pytest.approx(1.0)
    assert clip["ratio"]["bt2446a"] == pytest.approx(clip["jitter"]["bt2446a"] / clip["jitter"]["bt2408"])
    # both are global curves: the static mapping fitted to their output reproduces their jitter
    for name in ("bt2446a", "bt2408"):
        assert clip["static_jitter"][name] > 0
        assert clip["own_ratio"][name] == pytest.approx(clip["jitter"][name] / clip["static_jitter"][name])
        assert clip["own_ratio"][name] == pytest.approx(1.0, abs=0.05)


def test_eval_clip_table():
    res = CliRunner().invoke(cli, ["eval", "-m", "bt2408", "--clip", str(SAMPLE), "--frames", "3"])
    assert res.exit_code == 0, res.output
    assert "### Flicker on real SDR clips" in res.output
    assert "didtv: bikes-sample.mp4: bt2408" in res.output  # progress, one line per clip and model
    assert "| bikes-sample.mp4 | 3 | bt2408 |" in res.output and "| 1.00 |" in res.output
    assert "| static curve | own ratio |" in res.output


def test_eval_clip_that_is_not_a_video(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    res = CliRunner().invoke(cli, ["eval", "-m", "bt2408", "--clip", str(bad)])
    assert res.exit_code != 0 and "Traceback" not in res.output


def test_eval_clip_refuses_hdr_input(tmp_path):
    from clips import make_clip

    hdr = make_clip(tmp_path / "hdr10.mkv", kind="hdr10", frames=4)
    res = CliRunner().invoke(cli, ["eval", "-m", "bt2408", "--clip", str(hdr)])
    assert res.exit_code != 0 and "already HDR10" in res.output and "Traceback" not in res.output


def test_eval_motion_guard_switch_reaches_the_learned_model():
    """The bundled clip has fast motion: the guard changes Tiny's output there, never BT.2408's."""
    runs = {}
    for flag in ("--motion-guard", "--no-motion-guard"):
        res = CliRunner().invoke(cli, ["eval", "-m", "tiny", "--clip", str(SAMPLE), "--frames", "8", flag, "--json"])
        assert res.exit_code == 0, res.output
        [clip] = json.loads(res.output)["real_clips"]
        runs[flag] = clip["jitter"]
    assert runs["--motion-guard"]["bt2408"] == runs["--no-motion-guard"]["bt2408"]
    assert runs["--motion-guard"]["tiny"] != runs["--no-motion-guard"]["tiny"]
