"""benchmarks/graded_pair.py's loader on the real Seine SDR/HDR pair (../shared/data/graded)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
GRADED = ROOT / ".." / "shared" / "data" / "graded"

pytestmark = pytest.mark.skipif(not (GRADED / "seine_hdr_srgb_PQ16.png").exists(),
                                reason="../shared/data is not present (a user's clone): no graded pair")


def _module():
    spec = importlib.util.spec_from_file_location("graded_pair", ROOT / "benchmarks" / "graded_pair.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def gp():
    return _module()


@pytest.fixture(scope="module")
def pair(gp):
    return gp.load_pair(GRADED)


def test_sizes_and_ranges(pair):
    sdr, truth = pair
    assert sdr.shape == truth.shape == (3, 296, 400)  # 400x300 cropped to a multiple of 8
    assert sdr.dtype == truth.dtype == np.float32
    assert sdr.min() >= 0 and sdr.max() <= 1 and sdr.max() > 0.95  # the SDR grade reaches white
    assert truth.min() >= 0 and truth.max() < 0.8  # PQ 0.8 is about 1500 cd/m2
    # an 8-bit image: every value a code / 255
    assert np.allclose(sdr * 255, np.round(sdr * 255), atol=1e-4)


def test_truth_peak_is_plausible(gp, pair):
    from didtv.color.transfer import pq_eotf

    light = pq_eotf(pair[1].astype(np.float64))
    # SOURCE.txt: a grade peaking near 700 cd/m2; a BT.709-primaries PQ signal read with the wrong
    # transfer or scale would land far outside this range
    assert 500 < light.max() < 1000
    assert 5 < np.median(light) < 203  # most of a daylight scene below graphics white


def test_truth_is_bt2020_of_the_bt709_signal(gp):
    from didtv.color.gamut import BT709_TO_BT2020
    from didtv.color.transfer import pq_eotf

    truth = gp.load_hdr_truth(GRADED / gp.HDR_FILE)
    import cv2

    raw = cv2.imread(str(GRADED / gp.HDR_FILE), cv2.IMREAD_UNCHANGED)[..., ::-1].astype(np.float64) / 65535
    # grey pixels keep their PQ value under the primaries conversion; saturated ones move
    lin = pq_eotf(truth.astype(np.float64)).transpose(1, 2, 0)
    assert np.allclose(lin, pq_eotf(raw) @ BT709_TO_BT2020.T, rtol=2e-3, atol=2e-3)
    chroma = raw.max(-1) - raw.min(-1)
    assert np.abs(truth.transpose(1, 2, 0) - raw)[chroma > 0.1].mean() > 0.01


def test_bt2408_is_closer_to_the_truth_than_grey(gp, pair):
    from didtv.metrics.basic import delta_e_itp, psnr
    from didtv.models.registry import load_model

    sdr, truth = pair
    out = gp.run_still(load_model("bt2408"), sdr)
    assert out.shape == truth.shape
    grey = np.full_like(truth, truth.mean())  # the best constant for PSNR
    assert psnr(out, truth) > psnr(grey, truth) + 5
    assert delta_e_itp(out, truth) < delta_e_itp(grey, truth)
    # the pair matches best unshifted; a truth moved by 2 pixels is found to be moved
    shifted = np.roll(truth, 2, axis=2)
    assert gp.best_shift(sdr, truth) == (0, 0)
    assert gp.best_shift(sdr, shifted) == (0, 2)


def test_size_mismatch_is_refused(gp, tmp_path):
    from PIL import Image

    with Image.open(GRADED / gp.SDR_FILE) as im:
        im.crop((0, 0, 392, 300)).save(tmp_path / gp.SDR_FILE)
    (tmp_path / gp.HDR_FILE).write_bytes((GRADED / gp.HDR_FILE).read_bytes())
    with pytest.raises(ValueError, match="differ in size"):
        gp.load_pair(tmp_path)
