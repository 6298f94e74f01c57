"""`didtv bench` runs each part for real (tiny sizes here; the numbers are in docs/benchmarks.md)."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from clips import make_clip, requires_ffmpeg
from didtv.bench import ISA_ENV, default_parts, machine, model_cost, parse_size, summarise
from didtv.cli.main import cli
from didtv.errors import UsageError
from didtv.models.align import native_deform_available

pytestmark = requires_ffmpeg


def test_bench_json_has_every_part_and_a_bottleneck():
    res = CliRunner().invoke(cli, ["bench", "--model", "bt2408", "--size", "64x48", "--frames", "4",
                                   "--preset", "preview", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    # preview encodes at x265 veryfast, so x265 medium alone is its own part
    assert set(report["parts"]) == {"reference", "network", "decode", "encode", "x265", "pipeline"}
    for part in ("network", "decode", "encode", "x265", "pipeline"):
        assert report["parts"][part]["fps"] > 0
        assert report["parts"][part]["memory"]["rss_mb"] > 0
        assert report["parts"][part]["memory"]["tree_rss_mb"] > 0
    assert report["parts"]["reference"]["flops_per_s"] > 0
    assert report["parts"]["pipeline"]["frames"] == 4
    assert "deform_sampling" not in report["parts"]["network"]  # an analytic model has no DCN
    assert report["bottleneck"] in ("network", "decode", "encode")
    assert report["efficiency"] > 0
    parts = report["parts"]
    assert parts["encode"]["x265_preset"] != "medium" and parts["encode"]["default_encoder"] is False
    assert (parts["x265"]["x265_preset"], parts["x265"]["crf"], parts["x265"]["preset"]) == ("medium", 18, "hdr10-1000")
    assert parts["x265"]["frames"] == 4 and report["x265_medium_part"] == "x265"
    assert report["network_vs_x265"] == parts["network"]["fps"] / parts["x265"]["fps"]
    assert report["convert_vs_x265"] == parts["pipeline"]["fps"] / parts["x265"]["fps"]
    assert report["streaming_vs_x265"] == parts["pipeline"]["streaming_fps"] / parts["x265"]["fps"]
    assert report["pipeline_peak_mb"] == parts["pipeline"]["memory"]["tree_rss_mb"]
    assert report["gflops_per_frame"] is None  # bt2408 counts no FLOPs of its own


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
    from didtv.bench import _random_weights, parts as bench

    sizes = []
    real = bench.ReferenceConv.__init__

    def recording(self, runner, size):
        sizes.append(size)
        real(self, runner, size)

    monkeypatch.setattr(bench.ReferenceConv, "__init__", recording)
    r = bench._network(size=(64, 48), frames=3, model=str(_random_weights("tiny", tmp_path)),
                       device="cpu", precision="fp32", threads=1, tile=32, batch_size=None,
                       source=make_clip(tmp_path / "source.mp4", frames=3), torch_compile=False)
    assert r["tile"] == 32 and sizes == [(32, 32)] and r["reference_flops_per_s"] > 0


def test_the_default_preset_s_encode_part_is_x265_medium_alone():
    assert "x265" not in default_parts("hdr10-1000") and "encode" in default_parts("hdr10-1000")
    assert "x265" in default_parts("preview")
    parts = {"network": {"fps": 1.0}, "encode": {"fps": 4.0, "default_encoder": True},
             "pipeline": {"fps": 3.0, "streaming_fps": 3.2, "memory": {"rss_mb": 900.0, "tree_rss_mb": 1200.0}}}
    s = summarise(parts)
    assert (s["x265_medium_fps"], s["x265_medium_part"]) == (4.0, "encode")
    assert (s["network_vs_x265"], s["convert_vs_x265"], s["streaming_vs_x265"]) == (0.25, 0.75, 0.8)
    assert s["pipeline_peak_mb"] == 1200.0
    parts["encode"]["default_encoder"] = False  # another preset's encoder is no x265-medium reference
    assert "x265_medium_fps" not in summarise(parts) and "convert_vs_x265" not in summarise(parts)
    parts["x265"] = {"fps": 2.0}
    assert summarise(parts)["x265_medium_part"] == "x265" and summarise(parts)["network_vs_x265"] == 0.5


def test_model_cost_is_the_model_s_own_flop_count():
    from didtv.models.didnet import gflops_1080p
    from didtv.models.registry import load_model

    net = load_model("tiny", pretrained=False)
    cost = model_cost("tiny", (64, 48))
    assert list(cost) == ["64x48", "1920x1080"]
    assert cost["64x48"] == net.flops(48, 64)["total"] / 1e9
    assert cost["1920x1080"] == gflops_1080p(net)  # as `didtv models` counts it
    assert list(model_cost("tiny", (1920, 1080))) == ["1920x1080"]
    assert model_cost("bt2408", (64, 48)) is None


def test_emulating_a_small_avx2_cpu(monkeypatch):
    """--cpu-isa avx2 --cores 1: the part runs with PyTorch capped at AVX2, on one CPU, in fp32,
    and the machine block says so; the caller's environment is left as it was."""
    for k in ISA_ENV:
        monkeypatch.delenv(k, raising=False)
    res = CliRunner().invoke(cli, ["bench", "--model", "tiny", "--untrained", "--size", "32x32", "--frames", "2",
                                   "--cpu-isa", "avx2", "--cores", "1", "--part", "network", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    net = report["parts"]["network"]
    assert net["cpu_capability"] == "AVX2" and net["cpus"] == 1 and net["precision"] == "fp32"
    assert net["device"] == "cpu" and report["threads"] == 1
    assert report["machine"]["emulated"] == {"cpu_isa": "avx2", "cores": 1, "precision": "fp32",
                                             "env": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
                                                     "DIDTV_NATIVE_MARCH": "x86-64-v3"}}
    assert not any(k in os.environ for k in ISA_ENV)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # set by hand instead: recorded too
    assert machine()["env"] == {"ONEDNN_MAX_CPU_ISA": "AVX2"}


def test_emulation_refuses_what_the_emulated_cpu_cannot_run():
    for extra, needle in ((["--precision", "bf16"], "without native bfloat16"),
                          (["--precision", "fp16"], "without native bfloat16"),
                          (["--device", "cuda"], "cannot go with --device cuda")):
        res = CliRunner().invoke(cli, ["bench", "--model", "bt2408", "--size", "32x32", "--cpu-isa", "avx2",
                                       "--part", "decode", *extra])
        assert res.exit_code != 0 and needle in res.output, res.output
    res = CliRunner().invoke(cli, ["bench", "--model", "bt2408", "--size", "32x32", "--cores", "1000", "--part", "decode"])
    assert res.exit_code != 0 and "cores must be between 1 and" in res.output, res.output


def test_bench_table_prints_the_x265_ratios_and_memory():
    res = CliRunner().invoke(cli, ["bench", "--model", "bt2408", "--size", "64x48", "--frames", "3",
                                   "--part", "network", "--part", "x265", "--part", "pipeline"])
    assert res.exit_code == 0, res.output
    for line in ("x265 medium alone:", "network / x265-medium:", "convert / x265-medium:", "convert peak memory:"):
        assert line in res.output, res.output
    assert "GFLOP per frame" not in res.output  # bt2408 has no FLOP count
