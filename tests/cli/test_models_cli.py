"""``didtv models`` (didtv/cli/models.py)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from didtv.cli.main import cli


def _invoke(*args):
    result = CliRunner().invoke(cli, ["models", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_json_lists_every_registered_model():
    from didtv.models.didnet import count_parameters, FULL_CONFIG
    from didtv.models.registry import registered

    data = json.loads(_invoke("--json"))
    rows = {r["name"]: r for r in data["models"]}
    assert list(rows) == [info.name for info in registered()]
    assert {"bt2408", "bt2446a", "full", "tiny"} <= set(rows)
    for name in ("bt2408", "bt2446a"):
        r = rows[name]
        assert (r["kind"], r["parameters"], r["window"], r["weights_present"]) == ("analytic", 0, 1, None)
        assert 0 <= r["gflops_1080p"] < 1
    full, tiny = rows["full"], rows["tiny"]
    assert (full["kind"], full["window"], full["multiple_of"]) == ("learned", 7, 8)
    assert full["parameters"] == count_parameters(FULL_CONFIG)
    assert tiny["gflops_1080p"] <= 0.4 * full["gflops_1080p"]
    assert isinstance(full["weights_present"], bool) and full["weights_file"].endswith("didnet-full.safetensors")
    assert set(full) == {"name", "kind", "architecture", "parameters", "window", "multiple_of",
                         "gflops_1080p", "weights_present", "weights_file", "description"}
    assert "table_xi" not in data


def test_table_lists_names_and_costs():
    out = _invoke()
    for name in ("bt2408", "bt2446a", "full", "tiny", "analytic", "learned"):
        assert name in out
    assert "Table XI" not in out


def test_flops_prints_table_xi():
    out = _invoke("--flops")
    assert "Table XI" in out
    for text in ("720x480x64", "44.24M", "265.42M", "1061.68M", "4.22K"):
        assert text in out


def test_flops_json():
    rows = json.loads(_invoke("--json", "--flops"))["table_xi"]
    assert [r["feature_modulation"] for r in rows] == [44_236_800, 265_420_800, 1_061_683_200]
    assert all(r["kernel_modulation"] == 4224 for r in rows)


def test_help_has_an_example():
    out = _invoke("--help")
    assert "Example" in out and "didtv models --json" in out
