"""Transfer functions and matrices against colour-science (an independent implementation)."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("COLOUR_SCIENCE__FILTER_USAGE_WARNINGS", "True")
colour = pytest.importorskip("colour")

from didtv.color import gamut, transfer  # noqa: E402
from didtv.color.hdr10 import LightLevelMeter, MasteringDisplay  # noqa: E402


def test_pq_matches_colour_science():
    light = np.array([0.0, 0.01, 1.0, 92.2457, 100.0, 203.0, 1000.0, 4000.0, 10000.0])
    ours = transfer.pq_inverse_eotf(light)
    ref = colour.models.eotf_inverse_ST2084(light)
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    np.testing.assert_allclose(transfer.pq_eotf(ref), colour.models.eotf_ST2084(ref), rtol=1e-10, atol=1e-9)


def test_pq_known_values():
    # Values recorded in ../shared/RESEARCH.md.
    assert transfer.pq_eotf(np.array(0.5)) == pytest.approx(92.2457, abs=1e-3)
    assert transfer.pq_inverse_eotf(np.array(100.0)) == pytest.approx(0.5081, abs=1e-4)
    assert transfer.pq_inverse_eotf(np.array(203.0)) == pytest.approx(0.5807, abs=1e-4)
    assert transfer.pq_inverse_eotf(np.array(1000.0)) == pytest.approx(0.7518, abs=1e-4)


def test_pq_torch_equals_numpy():
    x = np.linspace(0, 10000, 101)
    np.testing.assert_allclose(transfer.pq_inverse_eotf(torch.tensor(x)).numpy(), transfer.pq_inverse_eotf(x))


def test_bt1886_matches_colour_science():
    v = np.linspace(0, 1, 33)
    ref = colour.models.eotf_BT1886(v, L_B=0, L_W=1)
    np.testing.assert_allclose(transfer.bt1886_eotf(v), ref, atol=1e-12)
    np.testing.assert_allclose(transfer.bt1886_inverse_eotf(ref), v, atol=1e-12)


def test_hlg_matches_colour_science():
    e = np.linspace(0, 1, 41)
    np.testing.assert_allclose(transfer.hlg_oetf(e), colour.models.oetf_BT2100_HLG(e), atol=1e-7)
    np.testing.assert_allclose(transfer.hlg_inverse_oetf(transfer.hlg_oetf(e)), e, atol=1e-9)


def test_bt709_to_bt2020_matrix_matches_colour_science():
    ref = colour.matrix_RGB_to_RGB(colour.RGB_COLOURSPACES["ITU-R BT.709"], colour.RGB_COLOURSPACES["ITU-R BT.2020"])
    np.testing.assert_allclose(gamut.BT709_TO_BT2020, ref, atol=2e-4)  # colour rounds the white
    np.testing.assert_allclose(gamut.BT709_TO_BT2020.sum(axis=1), 1.0, atol=1e-12)  # white stays white
    np.testing.assert_allclose(gamut.BT709_TO_BT2020 @ gamut.BT2020_TO_BT709, np.eye(3), atol=1e-12)


@pytest.mark.parametrize("system", ["bt709", "bt2020", "bt601"])
@pytest.mark.parametrize("bits", [8, 10])
def test_ycbcr_roundtrip(system, bits):
    rng = np.random.default_rng(0)
    rgb = rng.random((100, 3))
    ycc = gamut.apply_matrix(rgb, gamut.rgb_to_ycbcr_matrix(system))
    codes = gamut.quantise_ycbcr(ycc, bits)
    back = gamut.apply_matrix(gamut.dequantise_ycbcr(codes, bits), gamut.ycbcr_to_rgb_matrix(system))
    assert np.abs(back - rgb).max() < 1.5 / (219 * 2 ** (bits - 8)) * 2


def test_ycbcr_matrix_matches_colour_science():
    # colour's RGB_to_YCbCr in float, full "legal" scaling off -> Y in [0,1], C in [-0.5, 0.5].
    rgb = np.array([[1.0, 0.5, 0.25], [0.1, 0.9, 0.3]])
    ref = colour.RGB_to_YCbCr(rgb, K=colour.WEIGHTS_YCBCR["ITU-R BT.709"], in_legal=False, out_legal=False,
                              out_int=False)
    ours = gamut.apply_matrix(rgb, gamut.rgb_to_ycbcr_matrix("bt709"))
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_master_display_x265_string():
    # The P3-D65 1000/0.0001 string from ../shared/RESEARCH.md.
    md = MasteringDisplay.named("p3-d65", 1000, 0.0001)
    assert md.x265() == "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"


def test_mastering_rejects_bad_values():
    with pytest.raises(ValueError, match="primaries"):
        MasteringDisplay.named("srgb")
    with pytest.raises(ValueError, match="luminance"):
        MasteringDisplay.named("p3-d65", 0.0, 1.0)


def test_light_level_meter_by_hand():
    meter = LightLevelMeter(quantise=False)
    f1 = np.zeros((3, 2, 2), np.float64)
    f1[:, 0, 0] = transfer.pq_inverse_eotf(np.array(1000.0))  # one 1000-nit white pixel
    f2 = np.full((3, 2, 2), transfer.pq_inverse_eotf(np.array(100.0)), np.float64)
    f2[2] = 0.0  # max(R,G,B) still 100 nits
    meter.update(f1)
    meter.update(f2)
    res = meter.result()
    assert res.max_cll == 1000
    assert res.max_fall == 250  # frame 1: 1000 / 4 pixels beats frame 2's 100
    assert meter.frames == 2


def test_light_level_meter_quantises_to_written_codes():
    meter = LightLevelMeter()
    pq = 0.75
    meter.update(np.full((3, 4, 4), pq, np.float32))
    code = round(64 + 876 * pq)
    expected = transfer.pq_eotf(np.array((code - 64) / 876))
    assert meter.result().max_cll == int(np.ceil(expected))
