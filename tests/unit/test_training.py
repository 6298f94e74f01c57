"""Data build and training on tiny real data (one 256x256 HDR cube face from ../shared/data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from clips import requires_ffmpeg

SOURCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "hdri" / "train" / "open3d" / "open3d_hall_px.exr"

pytestmark = [
    requires_ffmpeg,
    pytest.mark.skipif(not SOURCE.exists(), reason="../shared/data is not present (a user's clone): no HDR source"),
]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from didtv.data.build import build

    out = tmp_path_factory.mktemp("data")
    build([SOURCE], out, seed=3, clips_per_source=3, size=(48, 48), split="train", workers=1)
    return out


def test_build_writes_manifest_and_clips(tiny_data):
    manifest = json.loads((tiny_data / "manifest.json").read_text())
    assert len(manifest["clips"]) == 3
    rec = manifest["clips"][0]
    with np.load(tiny_data / rec["file"]) as z:
        assert z["lq"].shape == (7, 3, 48, 48) and z["lq"].dtype == np.uint16
        assert z["sdr"].shape == (3, 48, 48) and z["sdr"].dtype == np.uint8
        assert z["hdr"].shape == (1, 3, 48, 48) and z["hdr"].dtype == np.uint16
        hdr = z["hdr"] / 65535.0
    from didtv.color.transfer import pq_eotf

    assert pq_eotf(hdr).max() <= 1000.5  # rolled off to the mastering peak
    assert rec["operator"] and rec["qp"] in (27, 32, 37, 42)


def test_build_is_deterministic(tiny_data, tmp_path):
    from didtv.data.build import build

    again = build([SOURCE], tmp_path, seed=3, clips_per_source=3, size=(48, 48), split="train", workers=1)
    a = json.loads((tiny_data / "manifest.json").read_text())["clips"]
    b = json.loads((again / "manifest.json").read_text())["clips"]
    assert [r["operator"] for r in a] == [r["operator"] for r in b]
    for r in a:
        with np.load(tiny_data / r["file"]) as za, np.load(again / r["file"]) as zb:
            np.testing.assert_array_equal(za["hdr"], zb["hdr"])
            np.testing.assert_array_equal(za["sdr"], zb["sdr"])
            np.testing.assert_array_equal(za["lq"], zb["lq"])


def _cfg(data, out, **kw):
    from didtv.train.config import TrainConfig

    base = dict(train_data=str(data), val_data=str(data), out_dir=str(out), iterations=4, batch_size=2, patch=32,
                log_every=1, val_every=4, val_clips=2, checkpoint_every=1, threads=1,
                model_overrides={"channels": 8, "offset_channels": 8, "cond_channels": 8, "cond_size": 8})
    base.update(kw)
    return TrainConfig(**base)


def test_resume_gives_identical_weights(tiny_data, tmp_path):
    from didtv.models.registry import read_weights
    from didtv.train.loop import train

    straight = train(_cfg(tiny_data, tmp_path / "a"))
    train(_cfg(tiny_data, tmp_path / "b"), stop_after=2)
    resumed = train(_cfg(tiny_data, tmp_path / "b"), resume=True)
    _, _, sa, _ = read_weights(straight / "final.safetensors")
    _, cfg_b, sb, _ = read_weights(resumed / "final.safetensors")
    assert cfg_b["channels"] == 8
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0)
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert any("val" in r for r in log) and max(r["iteration"] for r in log) == 4


def test_branch_continues_from_another_runs_checkpoint(tiny_data, tmp_path):
    """init_from = the same run resumed, when the config is otherwise equal; a new lr applies from there."""
    from didtv.models.registry import read_weights
    from didtv.train.loop import train

    straight = train(_cfg(tiny_data, tmp_path / "a"))
    train(_cfg(tiny_data, tmp_path / "b", iterations=2))
    branch = train(_cfg(tiny_data, tmp_path / "c", init_from=str(tmp_path / "b" / "checkpoint.pt")))
    _, _, sa, _ = read_weights(straight / "final.safetensors")
    _, _, sc, _ = read_weights(branch / "final.safetensors")
    for k in sa:
        torch.testing.assert_close(sa[k], sc[k], rtol=0, atol=0)
    log = [json.loads(line) for line in (tmp_path / "c" / "log.jsonl").read_text().splitlines()]
    assert log[0] == {"iteration": 2, "init_from": str(tmp_path / "b" / "checkpoint.pt")}
    assert [r["iteration"] for r in log if "loss" in r] == [3, 4]
    slower = train(_cfg(tiny_data, tmp_path / "d", lr_halve_after=2, lr_halve_every=1,
                        init_from=str(tmp_path / "b" / "checkpoint.pt")))
    log = [json.loads(line) for line in (slower / "log.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in log if "loss" in r] == [2.5e-4, 1.25e-4]
    with pytest.raises(ValueError, match="another architecture"):
        train(_cfg(tiny_data, tmp_path / "e", init_from=str(tmp_path / "b" / "checkpoint.pt"),
                   model_overrides={"channels": 12, "offset_channels": 8, "cond_channels": 8, "cond_size": 8}))


def test_refuses_to_clobber_or_resume_with_other_config(tiny_data, tmp_path):
    from didtv.train.loop import train

    train(_cfg(tiny_data, tmp_path / "c"), stop_after=1)
    with pytest.raises(FileExistsError):
        train(_cfg(tiny_data, tmp_path / "c"))
    with pytest.raises(ValueError, match="different config"):
        train(_cfg(tiny_data, tmp_path / "c", lr=1e-3), resume=True)


def test_training_reduces_the_loss(tiny_data, tmp_path):
    from didtv.train.loop import train

    out = train(_cfg(tiny_data, tmp_path / "d", iterations=30, lr=2e-3, val_every=1000, checkpoint_every=1000,
                     log_every=10))
    losses = [json.loads(l)["loss"] for l in (out / "log.jsonl").read_text().splitlines() if "loss" in l]
    assert losses[-1] < losses[0]


def test_trained_weights_load_and_convert_shapes(tiny_data, tmp_path):
    from didtv.models.registry import load_model
    from didtv.train.loop import train

    out = train(_cfg(tiny_data, tmp_path / "e", iterations=1))
    model = load_model(out / "final.safetensors")
    hdr, _ = model(torch.rand(1, 7, 3, 16, 24))
    assert hdr.shape == (1, 3, 16, 24)


def test_eval_scores_models_side_by_side(tiny_data, tmp_path):
    from click.testing import CliRunner

    from didtv.cli.main import cli
    from didtv.train.evaluate import evaluate
    from didtv.train.loop import train

    out = train(_cfg(tiny_data, tmp_path / "f", iterations=1))
    weights = str(out / "final.safetensors")
    result = evaluate(["bt2408", "bt2446a", weights], tiny_data)
    assert result["clips"] == 3 and len(result["rows"]) == 9
    overall = {g["model"]: g for g in result["summary"]["groups"] if g["operator"] == "*" and g["qp"] == "*"}
    assert set(overall) == {"bt2408", "bt2446a", weights}
    # An untrained DIDNet starts as the BT.2408 mapping plus a small residual: close to it.
    assert abs(overall[weights]["psnr"] - overall["bt2408"]["psnr"]) < 3
    for metric in ("ssim", "ms_ssim", "vif_p", "haarpsi", "vsi", "hf_psnr", "msrl_psnr", "delta_e_itp"):
        assert metric in result["rows"][0]
    # 48x48 clips: MS-SSIM needs 161 pixels; a train-split set has no temporal target.
    assert np.isnan(overall["bt2408"]["ms_ssim"]) and np.isnan(overall["bt2408"]["msrl_psnr"])
    assert 0 < overall["bt2408"]["ssim"] < 1 and 0 < overall["bt2408"]["haarpsi"] < 1
    res = CliRunner().invoke(cli, ["eval", "-m", "bt2408", "--data", str(tiny_data)])
    assert res.exit_code == 0, res.output
    for table in ("### PSNR", "### SSIM", "### MS-SSIM", "### ΔE_ITP", "### VIFp", "### HaarPSI", "### VSI",
                  "### HF-PSNR", "### MSRL-PSNR"):
        assert table in res.output
    assert "| all | bt2408 |" in res.output
    quick = evaluate(["bt2408"], tiny_data, quick=True)
    assert quick["metrics"] == ["psnr", "delta_e_itp"]
    q = {g["model"]: g for g in quick["summary"]["groups"] if g["operator"] == "*" and g["qp"] == "*"}
    assert q["bt2408"]["psnr"] == overall["bt2408"]["psnr"] and np.isnan(q["bt2408"]["ssim"])
    res = CliRunner().invoke(cli, ["eval", "-m", "bt2408", "--data", str(tiny_data), "--quick"])
    assert res.exit_code == 0 and "### PSNR" in res.output and "### ΔE_ITP" in res.output
    assert "### SSIM" not in res.output and "### MSRL-PSNR" not in res.output


def test_eval_on_a_val_set_scores_every_operator_and_the_temporal_measure(tmp_path):
    from didtv.data.build import build
    from didtv.data.degrade import OPERATORS
    from didtv.train.evaluate import evaluate

    val = build([SOURCE], tmp_path / "val", seed=1, split="val", max_width=64, workers=1)
    result = evaluate(["bt2408", "bt2446a"], val, qps=[42])
    assert {r["operator"] for r in result["rows"]} == set(OPERATORS)
    for r in result["rows"]:
        assert 10 < r["msrl_psnr"] < 100, r  # two consecutive frames of a moving clip: finite, defined
    # BT.2446-A inverts its own operator better than BT.2408 does.
    own = {r["model"]: r["psnr"] for r in result["rows"] if r["operator"] == "bt2446a"}
    assert own["bt2446a"] > own["bt2408"]


def test_flicker_on_val_clips_against_the_truth(tmp_path):
    from click.testing import CliRunner

    from didtv.cli.main import cli
    from didtv.data.build import build
    from didtv.train.evaluate import evaluate_flicker

    val = build([SOURCE], tmp_path / "val", seed=1, split="val", max_width=64, workers=1)
    result = evaluate_flicker(["bt2446a"], val, qps=[27])
    n = len({r["operator"] for r in json.loads((val / "manifest.json").read_text())["clips"]})
    assert result["clips"] == n and result["frames"] == 7
    assert set(result["models"]) == {"bt2446a", "bt2408"}
    # The synthetic camera moves, so the truth's brightness changes, and so do the outputs.
    assert result["truth_jitter"] > 0
    for m in result["models"].values():
        assert m["jitter"] > 0 and m["jitter_error"] > 0
    assert result["models"]["bt2408"]["ratio"] == pytest.approx(1.0)
    b = result["models"]["bt2446a"]
    assert b["ratio"] == pytest.approx(b["jitter"] / result["models"]["bt2408"]["jitter"])
    res = CliRunner().invoke(cli, ["eval", "-m", "bt2408", "--data", str(val), "--qp", "27", "--flicker"])
    assert res.exit_code == 0, res.output
    assert "### Flicker on moving val clips" in res.output and "| truth |" in res.output
    assert "| bt2408 |" in res.output and "| 1.00 |" in res.output
    res = CliRunner().invoke(cli, ["eval", "-m", "bt2408", "--clip", str(val / "manifest.json"), "--flicker"])
    assert res.exit_code != 0 and "--flicker" in res.output


def test_eval_cli_needs_data_or_a_clip():
    from click.testing import CliRunner

    from didtv.cli.main import cli

    res = CliRunner().invoke(cli, ["eval", "-m", "bt2408"])
    assert res.exit_code == 2 and "nothing to evaluate" in res.output


def test_config_rejects_unknown_keys(tmp_path):
    from didtv.train.config import ConfigError, load_config

    p = tmp_path / "c.toml"
    p.write_text('model = "tiny"\nlearning_rate = 1e-3\n')
    with pytest.raises(ConfigError, match="unknown key 'learning_rate'"):
        load_config(p)
    p.write_text('model = "tiny"\niterations = 10\n')
    assert load_config(p).iterations == 10


def test_shipped_training_config_loads():
    from didtv.train.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "didtv" / "train" / "configs" / "tiny.toml")
    assert cfg.model == "tiny" and cfg.hdr_weight == 0.8 and cfg.aux_weight == 0.2
    assert cfg.model_config()["name"] == "tiny"


def test_init_weights_starts_a_run_from_a_weights_file_with_new_parts(tiny_data, tmp_path):
    """A run started from weights keeps every tensor the file has; parts the file lacks (here the
    auxiliary head of a model trained without it) keep their initialisation; the EMA starts equal
    to the model."""
    import copy

    from didtv.models.didnet import DIDNet
    from didtv.models.registry import read_weights
    from didtv.train.config import ConfigError
    from didtv.train.loop import _start_from_weights, train

    first = train(_cfg(tiny_data, tmp_path / "a", iterations=2, aux_weight=0.0))  # no aux head
    weights = first / "final.safetensors"
    with_aux = _cfg(tiny_data, tmp_path / "b", init_weights=str(weights), iterations=2)
    model = DIDNet(**with_aux.model_config())
    ema = copy.deepcopy(model)
    assert _start_from_weights(weights, model, ema) == ["aux.weight", "aux.bias"]
    _, _, state, _ = read_weights(weights)
    for k, v in state.items():
        assert torch.equal(model.state_dict()[k], v) and torch.equal(ema.state_dict()[k], v)
    out = train(with_aux)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[0] == {"iteration": 0, "init_weights": str(weights), "new_parameters": ["aux.weight", "aux.bias"]}
    steps = [r for r in log if "loss" in r]
    assert [r["iteration"] for r in steps] == [1, 2] and all(r["l1_aux"] > 0 for r in steps)
    # a file with tensors the model does not have is refused (here: the no-aux model from an aux file)
    with pytest.raises(ValueError, match="lacks"):
        train(_cfg(tiny_data, tmp_path / "c", init_weights=str(out / "final.safetensors"), aux_weight=0.0))
    with pytest.raises(ConfigError, match="exclude"):
        _cfg(tiny_data, tmp_path / "d", init_weights=str(weights), init_from="x/checkpoint.pt")


CONFIGS = sorted((Path(__file__).resolve().parents[2] / "didtv" / "train" / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_loads_and_its_starting_point_can_be_made(path):
    """A config that starts from a weights file names one in the repo; one that branches from a
    checkpoint names the one another shipped config writes (its out_dir), so every run can be
    redone from scratch (docs/training.md, "Reproducing the shipped weights")."""
    from didtv.models.registry import build
    from didtv.train.config import load_config

    cfg = load_config(path)
    build(cfg.arch, cfg.model_config())
    root = Path(__file__).resolve().parents[2]
    assert not cfg.init_weights or (root / cfg.init_weights).is_file(), cfg.init_weights
    if cfg.init_from:
        start = Path(cfg.init_from)
        made_by = [p.stem for p in CONFIGS if Path(load_config(p).out_dir) == start.parent]
        assert start.name == "checkpoint.pt" and made_by and path.stem not in made_by, cfg.init_from


def test_lite_trains_resumes_and_its_lut_regularization_counts(tiny_data, tmp_path):
    """`model = "lite"` builds DIDLite (the arch follows the model), the file rebuilds it, and
    `reg_weight` adds DIDLite.regularization() to the loss (a different run with it)."""
    from didtv.models.registry import load_model, read_weights
    from didtv.train.loop import train

    small = {"channels": 8, "cond_channels": 8, "cond_size": 8, "luts": 2, "lut_size": 5}
    plain = train(_cfg(tiny_data, tmp_path / "a", model="lite", model_overrides=small, iterations=3))
    arch, config, _, _ = read_weights(plain / "final.safetensors")
    assert arch == "didlite" and config["luts"] == 2
    hdr, _ = load_model(plain / "final.safetensors")(torch.rand(1, 7, 3, 16, 24))
    assert hdr.shape == (1, 3, 16, 24)
    train(_cfg(tiny_data, tmp_path / "b", model="lite", model_overrides=small, reg_weight=1.0), stop_after=2)
    reg = train(_cfg(tiny_data, tmp_path / "b", model="lite", model_overrides=small, reg_weight=1.0), resume=True)
    log = [r for r in map(json.loads, (reg / "log.jsonl").read_text().splitlines()) if "loss" in r]
    assert [r["iteration"] for r in log] == [1, 2, 3, 4]
    a = [json.loads(line) for line in (plain / "log.jsonl").read_text().splitlines() if "loss" in line]
    assert a[0]["loss"] == log[0]["loss"]  # LUTs start at zero: no regularization yet
    assert a[2]["loss"] != log[2]["loss"]  # then the term is in the loss


def test_train_data_may_list_several_folders(tiny_data, tmp_path):
    """`train_data = [A, B]`: the clips of both folders, in that order, each read from its own
    folder (the robust recipe mixes a fixed-operator and a continuous-family build); an empty list
    is refused."""
    import shutil

    from didtv.train.config import ConfigError
    from didtv.train.dataset import ClipSet
    from didtv.train.loop import train

    other = tmp_path / "other"
    shutil.copytree(tiny_data, other)
    manifest = json.loads((other / "manifest.json").read_text())
    keep = manifest["clips"][:1]
    for rec in manifest["clips"][1:]:
        (other / rec["file"]).unlink()  # a clip read from the wrong folder would fail to load
    (other / "manifest.json").write_text(json.dumps({**manifest, "clips": keep}))
    both = ClipSet([tiny_data, other])
    assert len(both) == len(ClipSet(tiny_data)) + 1
    np.testing.assert_array_equal(both.hdr[-1], ClipSet(other).hdr[0])
    cfg = _cfg(tiny_data, tmp_path / "run", train_data=[str(tiny_data), str(other)], iterations=2)
    assert cfg.train_dirs == [str(tiny_data), str(other)]
    out = train(cfg)
    assert json.loads((out / "config.json").read_text())["train_data"] == [str(tiny_data), str(other)]
    with pytest.raises(ConfigError, match="train_data"):
        _cfg(tiny_data, tmp_path / "x", train_data=[])


def test_exclude_families_leaves_a_family_out_of_training_and_the_protocol_reads_it(tmp_path):
    """`exclude_families = ["filmic"]`: no filmic clip is trained on, and the lofo protocol's
    `trained_families` reads the run as trained without filmic; an unknown name is refused."""
    from didtv.data.build import build
    from didtv.train.config import ConfigError
    from didtv.train.dataset import ClipSet
    from didtv.train.loop import train
    from didtv.train.protocols import trained_families

    data = build([SOURCE], tmp_path / "cont", seed=1, clips_per_source=6, size=(48, 48), split="train",
                 workers=1, families=["filmic", "reinhard"])
    records = json.loads((data / "manifest.json").read_text())["clips"]
    assert {r["family"] for r in records} == {"filmic", "reinhard"}
    kept = ClipSet(data, exclude_families=["filmic"])
    assert len(kept) == sum(r["family"] == "reinhard" for r in records) and {r["family"] for r in kept.records} == {"reinhard"}
    out = train(_cfg(data, tmp_path / "run", exclude_families=["filmic"], iterations=2, model="lite", model_overrides={}))
    assert trained_families(str(out / "final.safetensors")) == ["reinhard"]
    with pytest.raises(ConfigError, match="exclude_families"):
        _cfg(data, tmp_path / "x", exclude_families=["filmc"])
