"""Moving objects in the training data (didtv.data.sources.add_moving_object, build --moving-objects)."""

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


@requires_ffmpeg
def test_build_share_zero_is_the_old_data_and_clips_without_an_object_do_not_change(tmp_path):
    cv2 = pytest.importorskip("cv2")

    from didtv.data.build import build

    path = tmp_path / "scene.hdr"
    assert cv2.imwrite(str(path), (_texture(96, 192) * 8)[..., ::-1])
    kw = dict(seed=2, clips_per_source=6, size=(32, 32), split="train", workers=1)
    plain = build([path], tmp_path / "plain", **kw)
    mixed = build([path], tmp_path / "mixed", moving_objects=0.5, **kw)
    a = json.loads((plain / "manifest.json").read_text())
    b = json.loads((mixed / "manifest.json").read_text())
    assert a["moving_objects"] == 0.0 and b["moving_objects"] == 0.5
    flags = [r["moving_object"] for r in b["clips"]]
    assert not any(r["moving_object"] for r in a["clips"]) and any(flags) and not all(flags)
    for ra, rb in zip(a["clips"], b["clips"]):
        with np.load(plain / ra["file"]) as za, np.load(mixed / rb["file"]) as zb:
            same = np.array_equal(za["hdr"], zb["hdr"]) and np.array_equal(za["lq"], zb["lq"])
        assert same == (not rb["moving_object"]), rb
    with pytest.raises(ValueError):
        build([path], tmp_path / "bad", moving_objects=1.5, **kw)
