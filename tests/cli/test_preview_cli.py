"""`didtv preview` on tiny real clips (CliRunner), and the library's frame picking with a
7-frame model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from clips import make_clip, requires_ffmpeg
from didtv.cli.main import cli

pytestmark = requires_ffmpeg


def _run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _png_size(path):
    import struct

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_preview_writes_pictures_and_json(tmp_path):
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=12)
    out = tmp_path / "pv"
    res = _run("preview", str(src), "-o", str(out), "-m", "bt2408", "--frames", "0,5,11")
    assert res.exit_code == 0, res.output
    assert "frame 5: peak" in res.output and "wrote 3 frame(s)" in res.output
    doc = json.loads((out / "preview.json").read_text(encoding="utf-8"))
    assert doc["schema_version"] == 1 and doc["model"] == "bt2408" and doc["metrics"] is None
    assert [f["index"] for f in doc["frames"]] == [0, 5, 11]
    assert doc["view"]["white"] == 203.0 and doc["view"]["source_peak"] == 1000.0
    frame = doc["frames"][1]
    assert set(frame["files"]) == {"sdr", "hdr-view", "nits", "histogram"}
    assert frame["output"]["max_luminance"] <= 203.5  # bt2408: SDR white -> 203 cd/m2
    assert sum(frame["output"]["bands"].values()) == pytest.approx(1.0, abs=1e-5)
    assert _png_size(out / frame["files"]["sdr"]) == (64, 48)
    assert _png_size(out / frame["files"]["hdr-view"]) == (64, 48)
    assert _png_size(out / frame["files"]["histogram"]) == (800, 450)
    width, height = _png_size(out / frame["files"]["nits"])
    assert width == 640 and height > 48  # picture + legend


def test_preview_default_frames_and_preset_downscale(tmp_path):
    src = make_clip(tmp_path / "in.mp4", size=(128, 96), frames=6)
    preset = tmp_path / "small.toml"
    preset.write_text('model = "bt2408"\n[output]\nmax_height = 48\n', encoding="utf-8")
    res = _run("preview", str(src), "-o", str(tmp_path / "pv"), "--preset", str(preset))
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "pv" / "preview.json").read_text(encoding="utf-8"))
    assert [f["index"] for f in doc["frames"]] == [1, 3, 5] and (doc["width"], doc["height"]) == (64, 48)
    assert _png_size(tmp_path / "pv" / "frame000003_sdr.png") == (64, 48)


def test_preview_with_reference_adds_error_map_and_metrics(tmp_path):
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=8)
    ref = tmp_path / "ref.mkv"
    res = _run("convert", str(src), str(ref), "-m", "bt2408", "--lossless", "--x265-preset", "ultrafast", "-q")
    assert res.exit_code == 0, res.output
    out = tmp_path / "pv"
    res = _run("preview", str(src), "-o", str(out), "-m", "bt2408", "-f", "2,6", "--reference", str(ref))
    assert res.exit_code == 0, res.output
    assert "ΔE_ITP" in res.output and "mean: PSNR" in res.output
    doc = json.loads((out / "preview.json").read_text(encoding="utf-8"))
    frame = doc["frames"][0]
    assert {"reference-view", "reference-nits", "error"} <= set(frame["files"])
    for name in frame["files"].values():
        assert (out / name).is_file()
    # The reference is this model's own lossless encode: only 10-bit rounding and 4:2:0 chroma
    # differ (ΔE_ITP < 1 inside flat areas, large at testsrc2's many saturated edges).
    assert frame["metrics"]["psnr_pq"] > 35 and frame["metrics"]["delta_e_itp_mean"] < 16
    assert doc["metrics"]["delta_e_itp_mean"] == pytest.approx(
        np.mean([f["metrics"]["delta_e_itp_mean"] for f in doc["frames"]]), abs=1e-3)
    # a different model is measurably further from that reference
    res = _run("preview", str(src), "-o", str(tmp_path / "pv2"), "-m", "bt2446a", "-f", "2",
               "--reference", str(ref))
    doc2 = json.loads((tmp_path / "pv2" / "preview.json").read_text(encoding="utf-8"))
    assert doc2["metrics"]["delta_e_itp_mean"] > 2 * doc["metrics"]["delta_e_itp_mean"]


@pytest.mark.parametrize(
    "extra, code, needle",
    [
        (["--frames", "3,99"], 2, "cannot preview frame(s) 99"),
        (["--frames", "x"], 2, "expected frame numbers"),
        (["-m", "nosuchmodel"], 5, "unknown model"),
        (["--reference", "SDR"], 2, "is not PQ"),
        (["--reference", "SHORT"], 2, "has 2 frames"),
    ],
)
def test_preview_errors_are_one_line(tmp_path, extra, code, needle):
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=5)
    if "SDR" in extra:
        extra = [e if e != "SDR" else str(src) for e in extra]
    if "SHORT" in extra:
        short = make_clip(tmp_path / "short.mkv", kind="pq10", size=(64, 48), frames=2)
        extra = [e if e != "SHORT" else str(short) for e in extra]
    res = _run("preview", str(src), "-o", str(tmp_path / "pv"), *extra)
    assert res.exit_code == code, res.output
    first = res.output.strip().splitlines()[0]
    assert first.startswith("didtv: error:") and needle in first


def test_preview_refuses_hdr_input_without_force(tmp_path):
    src = make_clip(tmp_path / "in.mkv", kind="hdr10", size=(64, 48), frames=3)
    res = _run("preview", str(src), "-o", str(tmp_path / "pv"), "-m", "bt2408")
    assert res.exit_code == 6 and "--force" in res.output
    res = _run("preview", str(src), "-o", str(tmp_path / "pv"), "-m", "bt2408", "--force", "-f", "1")
    assert res.exit_code == 0, res.output


def test_output_must_be_a_folder(tmp_path):
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=3)
    (tmp_path / "file").write_text("x")
    res = _run("preview", str(src), "-o", str(tmp_path / "file"))
    assert res.exit_code != 0


def test_windows_of_a_7_frame_model_are_the_pipelines(tmp_path, monkeypatch):
    """The preview keeps only the frames chosen windows need and hands the model exactly the
    window `convert` would (replicate padding at the clip edges)."""
    torch = pytest.importorskip("torch")
    from torch import nn

    import didtv.presets
    from didtv.io.decode import FrameReader
    from didtv.io.probe import probe
    from didtv.models.analytic import BT2408
    from didtv.models.spec import ModelSpec
    from didtv.pipeline.window import window_indices
    from didtv.preview import preview

    class SevenFrames(nn.Module):
        def __init__(self):
            super().__init__()
            self.spec = ModelSpec(name="seven", window=7)
            self.seen: list[torch.Tensor] = []
            self.resets = 0
            self.inner = BT2408()

        def reset_state(self):
            self.resets += 1

        def forward(self, x):
            self.seen.append(x[0].clone())
            return self.inner(x)

    model = SevenFrames()
    monkeypatch.setattr(didtv.presets, "load_preset_model", lambda preset, name=None, **kw: ("seven", model))
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=10)
    res = preview(src, tmp_path / "pv", frames=[0, 4, 9])
    assert [f.index for f in res.frames] == [0, 4, 9] and res.model == "seven"
    assert model.resets == 3
    with FrameReader(probe(src)) as reader:
        frames = list(reader)
    windows = window_indices(10, 7)
    from didtv.pipeline.guard import motion_guard

    for seen, c in zip(model.seen, [0, 4, 9]):  # as convert feeds them: through the motion guard
        expected = motion_guard(torch.from_numpy(np.stack([frames[j] for j in windows[c]]))[None])[0]
        np.testing.assert_array_equal(seen.numpy(), expected.numpy())
