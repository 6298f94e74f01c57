"""`didtv eval --protocol`: in-family, held-out-scenes and leave-one-family-out (issue 26)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from clips import requires_ffmpeg

from didtv.cli.main import cli
from didtv.train.protocols import (ALL, ProtocolError, format_protocol, lofo_family, margins, protocol_cells,
                                   run_protocol)

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / ".." / "shared" / "data" / "hdri" / "train" / "open3d" / "open3d_hall_px.exr"
LITE = ROOT / "didtv" / "weights" / "didnet-lite.safetensors"
needs_data = pytest.mark.skipif(not SOURCE.exists(), reason="../shared/data is not present")


# -- the tables, on made-up scores -----------------------------------------------------------------

def _rows():
    """Two families (bt2446 with both variants, reinhard), two clips each, three models."""
    by_file = {"a.npz": {"operator": "bt2446", "family": "bt2446", "params": {"method": "a"}},
               "c.npz": {"operator": "bt2446", "family": "bt2446", "params": {"method": "c"}},
               "r1.npz": {"operator": "reinhard", "family": "reinhard", "params": {}},
               "r2.npz": {"operator": "reinhard", "family": "reinhard", "params": {}}}
    psnr = {"tiny": {"a.npz": 30, "c.npz": 26, "r1.npz": 27, "r2.npz": 29},
            "bt2408": {"a.npz": 25, "c.npz": 24, "r1.npz": 24, "r2.npz": 26},
            "bt2446a": {"a.npz": 36, "c.npz": 22, "r1.npz": 28, "r2.npz": 29}}
    rows = [{"model": m, "file": f, "qp": 37, "psnr": float(v), "delta_e_itp": 100.0 - 2 * v}
            for m, files in psnr.items() for f, v in files.items()]
    return rows, by_file


def test_cells_group_by_family_split_bt2446_into_its_variants_and_average_the_families():
    rows, by_file = _rows()
    cells, order = protocol_cells(rows, by_file, ["tiny", "bt2408", "bt2446a"])
    assert order == ["bt2446", "bt2446 · A", "bt2446 · C", "reinhard", ALL]
    c = {(x["row"], x["model"]): x for x in cells}
    assert c[("bt2446", "tiny")]["psnr"] == 28 and c[("bt2446 · A", "tiny")]["psnr"] == 30
    assert c[("reinhard", "bt2408")]["n"] == 2 and c[("reinhard", "bt2408")]["psnr"] == 25
    # the mean row weighs the families equally, not the variant rows
    assert c[(ALL, "tiny")]["psnr"] == (28 + 28) / 2 and c[(ALL, "tiny")]["n"] == 4
    # the BT.2446-A formula is an oracle on its own variant, never the learned model or BT.2408
    assert c[("bt2446 · A", "bt2446a")]["oracle"] and not c[("bt2446 · C", "bt2446a")]["oracle"]
    assert not any(x["oracle"] for x in cells if x["model"] != "bt2446a")


def test_table_marks_oracles_bolds_the_best_fair_cell_and_states_the_margins():
    rows, by_file = _rows()
    cells, order = protocol_cells(rows, by_file, ["tiny", "bt2408", "bt2446a"])
    result = {"protocol": "held-out-scenes", "data": "v", "family": None, "models": ["tiny", "bt2408", "bt2446a"],
              "clips": 4, "qps": [37], "rows": order, "cells": cells}
    text = format_protocol(result)
    assert "| family | tiny | bt2408 | bt2446a |" in text
    # on variant A the formula's 36 dB is an oracle: marked, and the bold goes to the best other cell
    assert "| bt2446 · A | **30.00 / 40.0** | 25.00 / 50.0 | 36.00 / 28.0 ††" in text
    assert "†† oracle: exact inverse of this variant" in text
    assert "| reinhard | 28.00 / 44.0 | 25.00 / 50.0 | **28.50 / 43.0** |" in text
    [m] = margins(result)
    assert m["model"] == "tiny" and m["mean_margin"] == pytest.approx(3.25)
    assert m["min_margin"] == pytest.approx(3.0) and m["min_row"] == "reinhard"
    assert m["behind_rival"] == ["reinhard"]  # bt2446 is an oracle row of bt2446a: not counted
    assert "- tiny: +3.25 dB over bt2408 on the mean, +3.00 at the least (reinhard)" in text


def test_lofo_family_is_given_or_read_from_the_run(tmp_path):
    fams = ["filmic", "local", "reinhard"]
    assert lofo_family(["bt2408"], "local", fams) == "local"
    with pytest.raises(ProtocolError, match="unknown family"):
        lofo_family(["bt2408"], "nope", fams)
    with pytest.raises(ProtocolError, match="give --family"):
        lofo_family(["bt2408", "tiny"], None, fams)  # nothing says what was left out
    train = tmp_path / "train"
    train.mkdir()
    (train / "manifest.json").write_text(json.dumps({"families": ["filmic", "reinhard"], "sources": [], "clips": []}))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"train_data": str(train)}))
    weights = str(run / "ema-0000300.safetensors")
    assert lofo_family([weights, "bt2408"], None, fams) == "local"
    (train / "manifest.json").write_text(json.dumps({"families": ["filmic"], "sources": [], "clips": []}))
    with pytest.raises(ProtocolError, match="exactly one"):
        lofo_family([weights], None, fams)
    shutil.rmtree(train)
    with pytest.raises(ProtocolError, match="is not here"):
        lofo_family([weights], None, fams)


# -- on real (tiny) val sets -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def val_sets(tmp_path_factory):
    from didtv.data.build import build

    root = tmp_path_factory.mktemp("protocols")
    fixed = build([SOURCE], root / "fixed", seed=1, split="val", max_width=64, workers=1)
    cont = build([SOURCE], root / "cont", seed=1, split="val", max_width=64, workers=1,
                 families=["bt2446", "reinhard"])
    return fixed, cont


@requires_ffmpeg
@needs_data
def test_held_out_scenes_scores_every_family_and_in_family_the_fixed_pool(val_sets):
    fixed, cont = val_sets
    held = run_protocol("held-out-scenes", ["bt2408", "bt2446a"], cont, qps=[42])
    assert held["clips"] == 2 and held["rows"][0] == "bt2446" and held["rows"][-1] == ALL
    assert {r["operator"] for r in held["rows_detail"]} == {"bt2446", "reinhard"}
    c = {(x["row"], x["model"]): x for x in held["cells"]}
    assert c[("bt2446", "bt2446a")]["oracle"] and np.isfinite(c[(ALL, "bt2408")]["psnr"])
    inf = run_protocol("in-family", ["bt2408", "bt2446a"], fixed, qps=[42])
    c = {(x["row"], x["model"]): x for x in inf["cells"]}
    assert c[("bt2446a", "bt2446a")]["oracle"] and c[("bt2446a", "bt2446a")]["psnr"] > c[("bt2446a", "bt2408")]["psnr"]
    with pytest.raises(ProtocolError, match="continuous families"):
        run_protocol("in-family", ["bt2408"], cont)
    with pytest.raises(ProtocolError, match="fixed operators"):
        run_protocol("held-out-scenes", ["bt2408"], fixed)


@requires_ffmpeg
@needs_data
def test_lofo_reads_the_left_out_family_from_the_run_and_scores_only_it(val_sets, tmp_path):
    from didtv.data.build import build

    _, cont = val_sets
    train = build([SOURCE], tmp_path / "train", seed=2, clips_per_source=1, size=(48, 48), workers=1,
                  families=["bt2446"])  # built without reinhard
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"train_data": str(train)}))
    weights = run / "final.safetensors"
    shutil.copy(LITE, weights)
    # trained without seven families: lofo cannot tell which one is meant
    with pytest.raises(ProtocolError, match="exactly one"):
        run_protocol("lofo", [str(weights), "bt2408"], cont, qps=[42])
    lofo = run_protocol("lofo", [str(weights), "bt2408"], cont, family="reinhard", qps=[42])
    assert lofo["family"] == "reinhard" and {r["operator"] for r in lofo["rows_detail"]} == {"reinhard"}
    assert lofo["rows"] == ["reinhard"]
    # the held-out check: this run trained on the val set's own scene
    with pytest.raises(ProtocolError, match="trained on scenes of"):
        run_protocol("held-out-scenes", [str(weights)], cont, qps=[42])


@requires_ffmpeg
@needs_data
def test_eval_cli_prints_the_protocol_table_and_refuses_misuse(val_sets):
    fixed, cont = val_sets
    res = CliRunner().invoke(cli, ["eval", "-m", "bt2408", "-m", "bt2446a", "--data", str(cont), "--qp", "42",
                                   "--protocol", "held-out-scenes"])
    assert res.exit_code == 0, res.output
    assert "### Protocol held-out-scenes" in res.output and "| **mean** |" in res.output and "† oracle" in res.output
    res = CliRunner().invoke(cli, ["eval", "-m", "bt2408", "--data", str(fixed), "--protocol", "lofo"])
    assert res.exit_code == 2 and "fixed operators" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(cli, ["eval", "-m", "bt2408", "--data", str(cont), "--family", "local"])
    assert res.exit_code == 2 and "--protocol lofo" in res.output
