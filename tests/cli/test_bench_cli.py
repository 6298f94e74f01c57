"""`didtv bench` runs each part for real (tiny sizes here; the numbers are in docs/benchmarks.md)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from clips import make_clip, requires_ffmpeg
from didtv.bench import parse_size, summarise
from didtv.cli.main import cli
from didtv.errors import UsageError
from didtv.models.align import native_deform_available

pytestmark = requires_ffmpeg


def test_bench_json_has_every_part_and_a_bottleneck():
    res = CliRunner().invoke(cli, ["bench", "--model", "bt2408", "--size", "64x48", "--frames", "4",
                                   "--preset", "preview", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert set(report["parts"]) == {"reference", "network", "decode", "encode", "pipeline"}
    for part in ("network", "decode", "encode", "pipeline"):
        assert report["parts"][part]["fps"] > 0
        assert report["parts"][part]["memory"]["rss_mb"] > 0
        assert report["parts"][part]["memory"]["tree_rss_mb"] > 0
    assert report["parts"]["reference"]["flops_per_s"] > 0
    assert report["parts"]["pipeline"]["frames"] == 4
    assert "deform_sampling" not in report["parts"]["network"]  # an analytic model has no DCN
    assert report["bottleneck"] in ("network", "decode", "encode")
    assert report["efficiency"] > 0


def test_bench_table_for_an_untrained_model_part():
    res = CliRunner().invoke(cli, ["bench", "--model", "full", "--untrained", "--size", "32x32", "--frames", "2",
                                   "--part", "reference", "--part", "network"])
    assert res.exit_code == 0, res.output
    assert "network achieved FLOP/s" in res.output and "(untrained)" in res.output
    assert "sampling:" in res.output  # the network note "deformable sampling: ..." (wrapped at 80 columns)


def test_bench_network_part_measures_the_reference_between_its_windows():
    res = CliRunner().invoke(cli, ["bench", "--model", "tiny", "--untrained", "--size", "32x32", "--frames", "3",
                                   "--part", "network", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    net = report["parts"]["network"]
    assert net["reference_flops_per_s"] > 0
    assert net["deform_sampling"] == ("native" if native_deform_available() else "torch")
    assert abs(report["network_vs_reference"] - net["flops_per_s"] / net["reference_flops_per_s"]) < 1e-12


def test_sizes_and_summary():
    assert parse_size("960x540") == (960, 540)
    for bad in ("960", "961x540", "8x8", "axb"):
        try:
            parse_size(bad)
        except UsageError:
            continue
        raise AssertionError(f"{bad} accepted")
    parts = {"network": {"fps": 2.0, "flops_per_s": 50e9}, "decode": {"fps": 40.0}, "encode": {"fps": 20.0},
             "pipeline": {"streaming_fps": 1.8}, "reference": {"flops_per_s": 100e9}}
    s = summarise(parts)
    assert s["bottleneck"] == "network" and abs(s["efficiency"] - 0.9) < 1e-9
    assert abs(s["network_vs_reference"] - 0.5) < 1e-9
    parts["network"]["reference_flops_per_s"] = 200e9  # measured between the network's windows
    assert abs(summarise(parts)["network_vs_reference"] - 0.25) < 1e-9


def test_tiled_frames_get_the_reference_on_one_tile(tmp_path, monkeypatch):
    """A 4K reference would add two 64-channel 4K frames (4 GB) to the network part's memory."""
    from didtv import bench

    sizes = []
    real = bench.ReferenceConv.__init__

    def recording(self, runner, size):
        sizes.append(size)
        real(self, runner, size)

    monkeypatch.setattr(bench.ReferenceConv, "__init__", recording)
    r = bench._network(size=(64, 48), frames=3, model=str(bench._random_weights("tiny", tmp_path)),
                       device="cpu", precision="fp32", threads=1, tile=32, batch_size=None,
                       source=make_clip(tmp_path / "source.mp4", frames=3), torch_compile=False)
    assert r["tile"] == 32 and sizes == [(32, 32)] and r["reference_flops_per_s"] > 0
