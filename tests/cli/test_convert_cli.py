"""`didtv convert` and `didtv demo` through click's CliRunner (real FFmpeg, tiny clips)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from clips import make_clip, requires_ffmpeg
from didtv.cli.main import cli
from didtv.io.probe import HdrFormat, probe

pytestmark = requires_ffmpeg


def _run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_convert_writes_hdr10(tmp_path):
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=5)
    dst = tmp_path / "out.mkv"
    res = _run("convert", str(src), str(dst), "--model", "bt2408", "--x265-preset", "ultrafast", "--quiet")
    assert res.exit_code == 0, res.output
    assert probe(dst).hdr == HdrFormat.HDR10


@pytest.mark.parametrize("switch, flag, expected", [
    ("motion_guard", [], None), ("motion_guard", ["--motion-guard"], True),
    ("motion_guard", ["--no-motion-guard"], False),
    ("torch_compile", [], False), ("torch_compile", ["--compile"], True),
])
def test_convert_passes_runner_switches(tmp_path, monkeypatch, switch, flag, expected):
    from didtv.pipeline import runner

    seen = []

    class Recording(runner.Runner):
        def __init__(self, *args, **kwargs):
            seen.append(kwargs[switch])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(runner, "Runner", Recording)
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=3)
    res = _run("convert", str(src), str(tmp_path / "out.mkv"), "--model", "bt2408",
               "--x265-preset", "ultrafast", "--quiet", *flag)
    assert res.exit_code == 0, res.output
    assert seen == [expected]


def test_convert_reports_result_and_progress_lines(tmp_path):
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=5)
    res = _run("convert", str(src), str(tmp_path / "out.mp4"), "--model", "bt2446a", "--crf", "20")
    assert res.exit_code == 0, res.output
    assert "5/5 frames" in res.output  # plain log lines when not on a terminal
    assert "MaxCLL" in res.output
    assert "model bt2446a (asked for)" in res.output


def test_convert_summary_says_which_model_auto_ran_and_why(tmp_path):
    from didtv.models.registry import auto_choice

    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=3)
    res = _run("convert", str(src), str(tmp_path / "out.mkv"), "--device", "cpu", "--x265-preset", "ultrafast")
    assert res.exit_code == 0, res.output
    name, reason = auto_choice("cpu")
    assert reason.startswith("auto on CPU: ") and f"model {name} ({reason})" in res.output


@pytest.mark.parametrize(
    "args, code, needle",
    [
        (["--model", "nosuchmodel"], 5, "unknown model"),
        (["--model", "full"], 5, "no trained weights"),
        (["--preset", "nosuchpreset"], 2, "unknown preset"),
        (["--x265-preset", "warp9"], 2, "x265 preset"),
    ],
)
def test_convert_errors_are_one_line(tmp_path, monkeypatch, args, code, needle):
    from didtv.models import registry

    # An empty weights folder stands for a clone without weights (Full ships none since 2026-12-06).
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path / "no-weights")
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=3)
    res = _run("convert", str(src), str(tmp_path / "out.mkv"), *args)
    assert res.exit_code == code
    first = res.output.strip().splitlines()[0]
    assert first.startswith("didtv: error:") and needle in first
    assert not (tmp_path / "out.mkv").exists()


def test_convert_not_a_video(tmp_path):
    src = tmp_path / "notes.txt"
    src.write_text("hello\n")
    res = _run("convert", str(src), str(tmp_path / "out.mkv"))
    assert res.exit_code != 0
    assert res.output.startswith("didtv: error:")
    assert not (tmp_path / "out.mkv").exists()


def test_convert_bad_suffix(tmp_path):
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=3)
    res = _run("convert", str(src), str(tmp_path / "out.avi"))
    assert res.exit_code == 7 and ".mkv or .mp4" in res.output


def test_paths_with_spaces_quotes_dashes_and_unicode(tmp_path):
    folder = tmp_path / "dir with 'quotes' ünï"
    folder.mkdir()
    src = make_clip(folder / "-in put é.mp4", size=(64, 48), frames=3)
    dst = folder / "-out \"x\" ü.mkv"
    res = _run("convert", str(src), str(dst), "--model", "bt2408", "--quiet")
    assert res.exit_code == 0, res.output
    assert probe(dst).hdr == HdrFormat.HDR10


def test_demo_converts_bundled_sample(tmp_path):
    out = tmp_path / "demo.mkv"
    res = _run("demo", "-o", str(out))
    assert res.exit_code == 0, res.output
    info = probe(out)
    assert info.hdr == HdrFormat.HDR10 and info.codec == "hevc" and info.bit_depth == 10
    assert len(info.audio) == 1 and len(info.subtitles) == 1


def test_console_script_runs_as_a_real_process(tmp_path):
    # The installed entry point, outside CliRunner: exit codes and stderr as a user sees them.
    exe = shutil.which("didtv", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("didtv console script not installed in this environment")
    res = subprocess.run([exe, "convert", str(tmp_path / "missing.mp4"), str(tmp_path / "o.mkv")],
                         capture_output=True, text=True)
    assert res.returncode != 0
    assert res.stderr.startswith("didtv: error:") and "Traceback" not in res.stderr


def test_convert_shows_stage_throughput_and_bottleneck(tmp_path):
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=5)
    res = _run("convert", str(src), str(tmp_path / "out.mkv"), "--model", "bt2408", "--x265-preset", "ultrafast")
    assert res.exit_code == 0, res.output
    assert "cpu fp32: decode" in res.output and "bottleneck:" in res.output


@pytest.mark.parametrize("args,message", [
    (["--model", "tiny", "--precision", "fp16", "--device", "cpu"], "fp16 needs a CUDA GPU"),
    (["--model", "bt2408", "--precision", "bf16"], "float32 only"),
    (["--model", "bt2408", "--tile", "huge"], "tile must be auto, off or a number"),
])
def test_convert_refuses_what_it_cannot_run(tmp_path, args, message):
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=3)
    res = CliRunner().invoke(cli, ["convert", str(src), str(tmp_path / "o.mkv"), *args])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not (tmp_path / "o.mkv").exists()


def test_convert_tiled_and_batched_output_is_valid(tmp_path):
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=4)
    dst = tmp_path / "o.mkv"
    res = _run("convert", str(src), str(dst), "--model", "tiny", "--tile", "32", "--batch-size", "2",
               "--x265-preset", "ultrafast", "--quiet")
    assert res.exit_code == 0, res.output
    assert probe(dst).hdr == HdrFormat.HDR10


@pytest.mark.parametrize("kind, pix_fmt, size, codec", [
    ("sdr10", "yuv422p10le", (72, 40), None),   # 10-bit 4:2:2 SDR
    ("sdr", "yuv444p", (37, 29), "libx264"),   # 4:4:4, odd size asked for
    ("sdr", "yuv420p", (40, 16), None),        # a tiny frame (x265 needs 16x16; < 64 px)
])
def test_lite_converts_10bit_422_odd_and_tiny_inputs(tmp_path, kind, pix_fmt, size, codec):
    src = make_clip(tmp_path / "in.mkv", kind=kind, pix_fmt=pix_fmt, size=size, frames=9, codec=codec)
    dst = tmp_path / "out.mkv"
    res = _run("convert", str(src), str(dst), "--model", "lite", "--device", "cpu", "--x265-preset", "ultrafast")
    assert res.exit_code == 0, res.output
    from didtv.io.decode import even_size

    info, source = probe(dst), probe(src)
    assert info.hdr == HdrFormat.HDR10 and "model lite (asked for)" in res.output
    assert (info.width, info.height) == even_size(source.width, source.height)
