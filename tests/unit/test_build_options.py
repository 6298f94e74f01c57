"""Options of ``didtv data build`` that change a share of the training clips: moving objects
(didtv.data.sources.add_moving_object, --moving-objects)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clips import requires_ffmpeg

from didtv.data.sources import MAX_OBJECT_SPEED, add_moving_object


def _texture(h=120, w=240, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 1.0, (h, w, 3)).astype(np.float32)


def test_the_object_moves_against_a_still_background():
    bg = np.full((7, 48, 64, 3), 0.5, np.float32)  # a flat, still background
    rng = np.random.default_rng(4)
    out = add_moving_object(bg, _texture(), rng)
    assert out.shape == bg.shape and np.all(np.isfinite(out))
    covered = np.abs(out - 0.5).max(axis=-1) > 1e-6  # where the object is, frame by frame
    assert covered.any(axis=(1, 2)).sum() >= 2, "the object must be visible in several frames"
    cents = []
    for k in range(7):
        ys, xs = np.nonzero(covered[k])
        if len(xs) > 20:
            cents.append((k, xs.mean(), ys.mean()))
    assert len(cents) >= 2
    (k0, x0, y0), (k1, x1, y1) = cents[0], cents[-1]
    step = np.hypot(x1 - x0, y1 - y0) / (k1 - k0)
    assert 0.5 < step < MAX_OBJECT_SPEED * 1.5  # it moves (the crop at the border bends the centroid)
    # Away from the object the background is untouched.
    assert np.all(out[~covered] == 0.5)


def test_the_same_generator_state_gives_the_same_object():
    bg = np.full((7, 32, 32, 3), 0.2, np.float32)
    a = add_moving_object(bg, _texture(), np.random.default_rng(9))
    b = add_moving_object(bg, _texture(), np.random.default_rng(9))
    np.testing.assert_array_equal(a, b)


def _build_pair(tmp_path, seed: int, clips: int, **option):
    """The same train set built without and with ``option``: (plain dir, its manifest, other dir, its manifest)."""
    cv2 = pytest.importorskip("cv2")

    from didtv.data.build import build

    path = tmp_path / "scene.hdr"
    assert cv2.imwrite(str(path), (_texture(96, 192) * 8)[..., ::-1])
    kw = dict(seed=seed, clips_per_source=clips, size=(32, 32), split="train", workers=1)
    plain = build([path], tmp_path / "plain", **kw)
    other = build([path], tmp_path / "other", **option, **kw)
    with pytest.raises(ValueError):  # a share outside [0, 1]
        build([path], tmp_path / "bad", **{k: 1.5 for k in option}, **kw)
    return (plain, json.loads((plain / "manifest.json").read_text()),
            other, json.loads((other / "manifest.json").read_text()))


@requires_ffmpeg
def test_build_share_zero_is_the_old_data_and_clips_without_an_object_do_not_change(tmp_path):
    plain, a, mixed, b = _build_pair(tmp_path, 2, 6, moving_objects=0.5)
    assert a["moving_objects"] == 0.0 and b["moving_objects"] == 0.5
    flags = [r["moving_object"] for r in b["clips"]]
    assert not any(r["moving_object"] for r in a["clips"]) and any(flags) and not all(flags)
    for ra, rb in zip(a["clips"], b["clips"]):
        with np.load(plain / ra["file"]) as za, np.load(mixed / rb["file"]) as zb:
            same = np.array_equal(za["hdr"], zb["hdr"]) and np.array_equal(za["lq"], zb["lq"])
        assert same == (not rb["moving_object"]), rb


# -- continuous operator families (--operators continuous, --families, --exclude-family) ---------

def _scene_file(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "scene.hdr"
    assert cv2.imwrite(str(path), (_texture(48, 96) * 8)[..., ::-1])
    return path


@requires_ffmpeg
def test_exclude_family_really_excludes_and_the_manifest_records_the_draws(tmp_path):
    from click.testing import CliRunner

    from didtv.cli.main import cli
    from didtv.data.families import FAMILIES, render_family_sdr

    src = _scene_file(tmp_path)
    args = ["data", "build", str(src), "--clips-per-source", "12", "--size", "32", "--workers", "1", "--seed", "5"]
    res = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "no-local"), "--exclude-family", "local"])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "no-local" / "manifest.json").read_text())
    assert m["families"] == [f for f in FAMILIES if f != "local"]
    used = [r["family"] for r in m["clips"]]
    assert "local" not in used and len(set(used)) >= 4  # 12 clips over 7 families
    for r in m["clips"]:
        assert r["operator"] == r["family"] and r["params"] and (r["exposure"], r["saturation"]) == (1.0, 1.0)
        # The recorded parameters reproduce the clip's clean SDR from its HDR target.
        with np.load(tmp_path / "no-local" / r["file"]) as z:
            from didtv.color.gamut import BT2020_TO_BT709, apply_matrix
            from didtv.color.transfer import pq_eotf
            nits = apply_matrix(pq_eotf(z["hdr"][0].transpose(1, 2, 0) / 65535.0), BT2020_TO_BT709)
            sdr = z["sdr"].transpose(1, 2, 0).astype(int)
        if r["family"] != "local":  # (local's blur needs the whole clip, which is not stored)
            assert np.abs(render_family_sdr(nits, r["family"], r["params"]).astype(int) - sdr).mean() < 1.0
    # the default build is still the six fixed operators, and a family needs continuous operators
    res = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "fixed"), "--clips-per-source", "2"])
    fixed = json.loads((tmp_path / "fixed" / "manifest.json").read_text())
    assert "families" not in fixed and all("family" not in r for r in fixed["clips"])
    for bad in (["--exclude-family", "sepia"], ["--operators", "fixed", "--families", "local"]):
        res = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "bad"), *bad])
        assert res.exit_code == 2, (bad, res.output)


@requires_ffmpeg
def test_one_family_val_set_is_that_family_s_part_of_the_full_one(tmp_path):
    from didtv.data.build import build
    from didtv.data.degrade import QPS

    src = _scene_file(tmp_path)
    kw = dict(seed=1, split="val", max_width=64, workers=1)
    only = json.loads((build([src], tmp_path / "only", families=["filmic"], **kw) / "manifest.json").read_text())
    both = json.loads((build([src], tmp_path / "both", families=["local", "filmic"], **kw) / "manifest.json").read_text())
    assert [r["family"] for r in only["clips"]] == ["filmic"] * len(QPS)
    assert len({json.dumps(r["params"], sort_keys=True) for r in only["clips"]}) == 1  # one draw for every QP
    part = [r for r in both["clips"] if r["family"] == "filmic"]
    assert [r["params"] for r in part] == [r["params"] for r in only["clips"]]
    for a, b in zip(only["clips"], part):
        with np.load(tmp_path / "only" / a["file"]) as za, np.load(tmp_path / "both" / b["file"]) as zb:
            assert np.array_equal(za["sdr"], zb["sdr"]) and np.array_equal(za["hdr"], zb["hdr"])
