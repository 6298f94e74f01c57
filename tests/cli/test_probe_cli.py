"""`didtv probe` through click's CliRunner on tiny real clips."""

from __future__ import annotations

import json

from click.testing import CliRunner

from clips import requires_ffmpeg
from didtv.cli.main import cli
from didtv.errors import ProbeError

pytestmark = requires_ffmpeg

# The documented schema (docs/probe.md), schema_version 1.
TOP_KEYS = {"schema_version", "path", "container", "duration", "still_image", "video", "hdr", "audio",
            "subtitles", "other"}
VIDEO_KEYS = {"index", "codec", "profile", "width", "height", "display_width", "display_height", "rotation",
              "fps", "fps_float", "avg_fps", "avg_fps_float", "variable_fps", "frame_count", "bit_depth",
              "pix_fmt", "color_range", "matrix", "transfer", "primaries", "chroma_location", "field_order",
              "interlaced"}
HDR_KEYS = {"format", "is_hdr", "mastering_display", "content_light", "hdr10plus", "dolby_vision"}
STREAM_KEYS = {"index", "kind", "codec", "language", "title", "channels", "bitmap"}
MASTERING_KEYS = {"red", "green", "blue", "white", "max_luminance", "min_luminance"}


def _run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_probe_table(sdr_clip):
    res = _run("probe", str(sdr_clip))
    assert res.exit_code == 0, res.output
    out = res.stdout
    for needle in ("h264", "64x48", "25/1", "yuv420p", "bt709", "SDR", "aac", "eng", "mov_text", "fra"):
        assert needle in out, f"{needle!r} missing from:\n{out}"


def test_probe_table_hdr10_rotated(clip_factory):
    res = _run("probe", str(clip_factory("hdr.mkv", kind="hdr10", frames=2)))
    assert res.exit_code == 0, res.output
    assert "HDR10" in res.stdout and "1000 / 400" in res.stdout and "smpte2084" in res.stdout
    res = _run("probe", str(clip_factory("rot.mp4", frames=2, rotate=90, fps="30000/1001")))
    assert res.exit_code == 0, res.output
    assert "48x64 displayed" in res.stdout and "90 degrees" in res.stdout and "30000/1001" in res.stdout


def test_probe_json(clip_factory):
    path = clip_factory("hdr.mp4", kind="hdr10", frames=3, audio=True, subtitles=True)
    res = _run("probe", "--json", str(path))
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)  # nothing but JSON on stdout
    assert set(data) == TOP_KEYS
    assert set(data["video"]) == VIDEO_KEYS
    assert set(data["hdr"]) == HDR_KEYS
    assert set(data["hdr"]["mastering_display"]) == MASTERING_KEYS
    assert set(data["hdr"]["content_light"]) == {"max_cll", "max_fall"}
    for s in data["audio"] + data["subtitles"] + data["other"]:
        assert set(s) == STREAM_KEYS
    assert data["schema_version"] == 1
    assert data["hdr"]["format"] == "HDR10" and data["video"]["bit_depth"] == 10
    assert data["video"]["fps"] == "25/1" and data["video"]["fps_float"] == 25.0
    assert data["hdr"]["content_light"] == {"max_cll": 1000, "max_fall": 400}
    assert [s["language"] for s in data["audio"]] == ["eng"]
    assert [s["language"] for s in data["subtitles"]] == ["fra"]


def test_probe_json_option_after_file(sdr_clip):
    res = _run("probe", str(sdr_clip), "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["video"]["codec"] == "h264"


def test_probe_not_a_video(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n")
    res = _run("probe", str(bad))
    assert res.exit_code == ProbeError.exit_code != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("didtv: error: ") and "not a readable video" in lines[0]
    assert "Traceback" not in res.output
    res = _run("probe", "--json", str(tmp_path / "missing.mkv"))
    assert res.exit_code == ProbeError.exit_code and res.stdout == ""
    assert "no such file" in res.stderr


def test_probe_help_has_example():
    res = _run("probe", "--help")
    assert res.exit_code == 0 and "didtv probe" in res.output and "--json" in res.output
