"""`didtv presets`, presets driving `didtv convert` (real FFmpeg), --verbose, and the --help
example of every command."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from clips import make_clip, requires_ffmpeg
from didtv.cli.main import cli

SHIPPED = ["archival", "hdr10-1000", "hdr10-4000", "preview", "streaming"]


def _run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_presets_table_lists_every_preset():
    res = _run("presets")
    assert res.exit_code == 0, res.output
    for name in SHIPPED:
        assert name in res.output
    assert "hdr10-1000 *" in res.output and "P3-D65" in res.output and "mastering" in res.output


def test_presets_json_is_stable():
    res = _run("presets", "--json")
    assert res.exit_code == 0
    doc = json.loads(res.output)
    assert doc["schema_version"] == 1
    names = [p["name"] for p in doc["presets"]]
    assert names == sorted(names) and set(SHIPPED) <= set(names)
    for p in doc["presets"]:
        assert p["error"] is None
        assert set(p) == {"name", "path", "description", "model", "tone", "encoder", "mastering", "output", "error"}
        assert set(p["encoder"]) == {"x265_preset", "crf", "lossless", "keyint_seconds", "x265_params"}
    assert _run("presets", "--json").output == res.output  # deterministic


def test_presets_path_is_the_packaged_folder():
    """The shipped presets are package data: `--path` prints a folder inside the installed
    package holding every one of them (so a wheel install finds them too)."""
    from pathlib import Path

    import didtv

    res = _run("presets", "--path")
    assert res.exit_code == 0, res.output
    folder = Path(res.output.strip())
    assert folder == Path(didtv.__file__).resolve().parent / "presets"
    assert {p.stem for p in folder.glob("*.toml")} >= set(SHIPPED)
    assert _run("presets", "--path", "--json").exit_code == 2


def test_a_broken_preset_is_listed_not_fatal(tmp_path, monkeypatch):
    import didtv.presets as presets

    (tmp_path / "good.toml").write_text('description = "fine"\n', encoding="utf-8")
    (tmp_path / "bad.toml").write_text("[encoder]\nspeed = 3\n", encoding="utf-8")
    monkeypatch.setattr(presets, "PRESET_DIRS", (tmp_path,))
    res = _run("presets")
    assert res.exit_code == 0 and "cannot load" in res.output and "good" in res.output
    doc = json.loads(_run("presets", "--json").output)
    bad = next(p for p in doc["presets"] if p["name"] == "bad")
    assert "unknown key encoder.speed" in bad["error"]


def _leaf_commands(group, path=()):
    import click

    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _leaf_commands(command, (*path, name))
        else:
            yield (*path, name)


def test_every_command_help_has_an_example():
    """Every command that runs something (groups' subcommands included) shows an example."""
    leaves = list(_leaf_commands(cli))
    assert {("convert",), ("presets",), ("preview",), ("probe",), ("models",), ("demo",)} <= set(leaves)
    for path in [(), *leaves]:
        res = _run(*path, "--help")
        assert res.exit_code == 0, path
        assert "Example" in res.output, f"'didtv {' '.join(path)} --help' has no example"
        assert "didtv " in res.output.split("Example", 1)[1], path


@requires_ffmpeg
def test_convert_with_a_preset_file_downscales_and_passes_x265_settings(tmp_path):
    # 128x96 -> 64x48: x265 3.5 sometimes crashes (heap corruption) with VBV on a 42x32 picture
    src = make_clip(tmp_path / "in.mp4", size=(128, 96), frames=4)
    preset = tmp_path / "small.toml"
    preset.write_text('description = "test"\nmodel = "bt2408"\n[encoder]\nx265_preset = "ultrafast"\n'
                      "keyint_seconds = 0.2\nvbv_maxrate = 500\nvbv_bufsize = 1000\n"
                      "[output]\nmax_height = 48\n", encoding="utf-8")
    dst = tmp_path / "out.mkv"
    res = _run("convert", str(src), str(dst), "--preset", str(preset), "--verbose")
    assert res.exit_code == 0, res.output
    assert "64x48" in res.output
    x265 = [ln for ln in res.output.splitlines() if "libx265" in ln]
    assert x265 and x265[0].startswith("didtv: running: ")
    assert "keyint=5" in x265[0] and "vbv-maxrate=500" in x265[0]
    decode = [ln for ln in res.output.splitlines() if "gbrpf32le" in ln and "zscale=w=64:h=48" in ln]
    assert decode, "the downscale happens in the decode zscale"
    from didtv.io.probe import probe

    info = probe(dst)
    assert (info.width, info.height) == (64, 48)


@requires_ffmpeg
def test_quiet_convert_without_verbose_prints_no_commands(tmp_path):
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=3)
    res = _run("convert", str(src), str(tmp_path / "o.mkv"), "-m", "bt2408", "--x265-preset", "ultrafast", "-q")
    assert res.exit_code == 0 and "running:" not in res.output
    # the group-level flag works for any command, e.g. probe
    res = _run("-v", "probe", str(src))
    assert res.exit_code == 0 and "didtv: running: " in res.output and "ffprobe" in res.output
    res = _run("probe", str(src))
    assert "running:" not in res.output


def test_bad_preset_is_one_line_with_exit_code_2(tmp_path):
    preset = tmp_path / "bad.toml"
    preset.write_text('[mastering]\nprimaries = "rec2100"\n', encoding="utf-8")
    res = _run("convert", "in.mp4", str(tmp_path / "o.mkv"), "--preset", str(preset))
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("didtv: error:") and "p3-d65, bt2020, bt709" in lines[0]


@pytest.mark.parametrize("name", SHIPPED)
def test_preset_names_work_on_the_command_line(name):
    # --help never runs the command; loading by name is what convert does first.
    from didtv.presets import load_preset

    assert load_preset(name).name == name
