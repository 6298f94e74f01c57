"""The exposure convention of the HDR targets (didtv/data/sources.py, ``expose``): average metering
(the default) and the ``highkey`` option, on synthetic views and the darkest/brightest real scenes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clips import requires_ffmpeg

from didtv.data.sources import (DEFAULT_KEY, DIFFUSE_WHITE, HIGHKEY_FLOOR, HIGHKEY_MAX_STOPS, LUMA_709, expose,
                                hdr_clip, read_source)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
DARKEST = SHARED / "hdri" / "train" / "blender_studio.exr"
BRIGHTEST = SHARED / "hdri" / "train" / "open3d" / "open3d_konzerthaus_py.exr"
SNOW = SHARED / "hdri" / "train-more" / "realism-effects" / "snowy_field_1k.hdr"


def _view(spread: float, seed: int = 0) -> np.ndarray:
    """A grey 7-frame view whose luminance spans ``spread`` stops, log-uniformly."""
    y = 2.0 ** np.random.default_rng(seed).uniform(-spread / 2, spread / 2, (32, 32))
    return np.repeat(np.repeat(y[None, ..., None], 3, -1), 7, 0)


def _lum(views: np.ndarray) -> np.ndarray:
    return views[3] @ LUMA_709


def test_the_convention_constants():
    assert DIFFUSE_WHITE == 203.0 and DEFAULT_KEY == pytest.approx(0.18 * 203.0)


def test_average_metering_puts_the_log_average_on_the_key():
    for spread in (1.0, 8.0):
        y = _lum(expose(_view(spread), DEFAULT_KEY))
        assert np.exp(np.log(np.clip(y, *np.percentile(y, [1, 99]))).mean()) == pytest.approx(DEFAULT_KEY, rel=1e-6)


def test_highkey_lifts_a_flat_bright_view_until_its_brightest_surfaces_reach_the_floor():
    floor = HIGHKEY_FLOOR * DIFFUSE_WHITE
    flat = _view(2.0)  # p99 about 1 stop above the log-average: ~73 cd/m2 under average metering
    avg, high = _lum(expose(flat, DEFAULT_KEY)), _lum(expose(flat, DEFAULT_KEY, "highkey"))
    assert np.percentile(avg, 99) < floor / 1.5
    assert np.percentile(high, 99) == pytest.approx(floor, rel=1e-6)
    # a uniform view would need more than the cap: lifted by exactly HIGHKEY_MAX_STOPS
    uniform = _view(0.0)
    ratio = _lum(expose(uniform, DEFAULT_KEY, "highkey")).mean() / _lum(expose(uniform, DEFAULT_KEY)).mean()
    assert ratio == pytest.approx(2.0 ** HIGHKEY_MAX_STOPS)
    # the random exposure grade (key) still scales the result
    np.testing.assert_allclose(expose(flat, 2 * DEFAULT_KEY, "highkey"), 2 * expose(flat, DEFAULT_KEY, "highkey"))


def test_highkey_leaves_a_contrasty_view_as_average_metering_renders_it():
    wide = _view(10.0)  # lamps and shadows: p99 far above the floor
    np.testing.assert_array_equal(expose(wide, DEFAULT_KEY, "highkey"), expose(wide, DEFAULT_KEY))
    with pytest.raises(ValueError, match="metering must be one of"):
        expose(wide, DEFAULT_KEY, "spot")


def _views(path, metering, n=4):
    image = read_source(path).light
    panorama = abs(image.shape[1] / image.shape[0] - 2.0) < 0.05
    return [hdr_clip(image, np.random.default_rng(s), size=(96, 96), panorama=panorama, key_range=(0.0, 0.0),
                     metering=metering) for s in range(n)]


@pytest.mark.skipif(not all(p.exists() for p in (DARKEST, BRIGHTEST, SNOW)), reason="../shared/data is not present")
def test_highkey_on_the_darkest_and_brightest_scenes():
    """The darkest scene (a studio with lamps) is metered as before; the brightest (a lit white
    ceiling) and a daylight snow field get their brightest surfaces to ~3/4 of diffuse white
    instead of 1.5-2 stops below it, and their median stays below diffuse white."""
    for a, h in zip(_views(DARKEST, "average"), _views(DARKEST, "highkey")):
        if np.percentile(_lum(a), 99) >= HIGHKEY_FLOOR * DIFFUSE_WHITE:
            np.testing.assert_array_equal(a, h)
    for path in (BRIGHTEST, SNOW):
        avg = np.median([np.percentile(_lum(v), 99) for v in _views(path, "average")])
        high = [_lum(v) for v in _views(path, "highkey")]
        p99 = np.median([np.percentile(y, 99) for y in high])
        assert avg < 110 and p99 > 140, (path.stem, avg, p99)
        assert np.median([np.median(y) for y in high]) < DIFFUSE_WHITE


@requires_ffmpeg
@pytest.mark.skipif(not BRIGHTEST.exists(), reason="../shared/data is not present")
def test_build_records_a_metering_other_than_the_default(tmp_path):
    from click.testing import CliRunner

    from didtv.cli.main import cli
    from didtv.data.build import build

    with pytest.raises(ValueError, match="metering"):
        build([BRIGHTEST], tmp_path / "x", metering="spot")
    res = CliRunner().invoke(cli, ["data", "build", str(BRIGHTEST), "-o", str(tmp_path / "y"), "--metering", "spot"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    kw = dict(seed=0, clips_per_source=1, size=(48, 48), workers=1)
    plain = json.loads((build([BRIGHTEST], tmp_path / "a", **kw) / "manifest.json").read_text())
    high = json.loads((build([BRIGHTEST], tmp_path / "b", metering="highkey", **kw) / "manifest.json").read_text())
    assert "metering" not in plain and high["metering"] == "highkey"
    [rec] = high["clips"]
    with np.load(tmp_path / "a" / rec["file"]) as za, np.load(tmp_path / "b" / rec["file"]) as zb:
        assert zb["hdr"].astype(float).mean() > za["hdr"].astype(float).mean()  # the lit ceiling, brighter
