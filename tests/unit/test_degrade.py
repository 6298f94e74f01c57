import numpy as np
import pytest

from didtv.color.tonemap import eetf_bt2390_light as eetf_bt2390
from didtv.color.transfer import REFERENCE_WHITE
from didtv.data.degrade import OPERATORS, codec_damage, op_bt2446a, render_sdr, rgb8_to_yuv420p
from didtv.data.sources import expose, roll_off_highlights
from clips import requires_ffmpeg


def grey(nits):
    return np.full((1, 1, 3), float(nits))


def test_eetf_identity_below_knee_and_peak_to_target():
    x = np.array([0.0, 1.0, 50.0, 200.0])
    np.testing.assert_allclose(eetf_bt2390(x, source_peak=10000, target_peak=1000), x, rtol=1e-9)
    assert eetf_bt2390(np.array(10000.0), source_peak=10000, target_peak=1000) == pytest.approx(1000, rel=1e-6)
    ramp = np.geomspace(1, 10000, 200)
    assert np.all(np.diff(eetf_bt2390(ramp, source_peak=10000, target_peak=1000)) > 0)


def test_roll_off_keeps_hue_and_caps_peak():
    rgb = np.array([[[4000.0, 2000.0, 1000.0]]])
    out = roll_off_highlights(rgb, 1000.0)
    assert out.max() <= 1000.0 + 1e-6
    np.testing.assert_allclose(out / out.max(), rgb / rgb.max(), rtol=1e-9)


def test_expose_maps_log_average_to_key():
    views = np.full((7, 8, 8, 3), 3.0)
    assert expose(views, 36.5)[3].mean() == pytest.approx(36.5)


def test_bt2446a_forward_sends_reference_white_to_686_percent():
    # Method A maps HDR reference white (203 cd/m2) to about 68.6 % SDR luma (Y'' = 175); this is
    # the same point the analytic inverse model brings back to 203 cd/m2.
    sdr = op_bt2446a(grey(REFERENCE_WHITE))
    assert float(sdr.mean() ** (1 / 2.4)) == pytest.approx(175 / 255, abs=0.01)


@pytest.mark.parametrize("op", OPERATORS)
def test_every_operator_is_monotonic_and_bounded(op):
    ramp = np.geomspace(0.01, 1000, 64)[:, None].repeat(3, 1)
    codes = render_sdr(ramp, op).astype(int)[:, 0]
    assert codes.min() >= 0 and codes.max() <= 255
    assert np.all(np.diff(codes) >= 0), op
    assert codes[-1] >= 200, f"{op}: 1000 cd/m2 should be near SDR white"


def test_render_sdr_rejects_unknown_operator():
    with pytest.raises(ValueError, match="allowed"):
        render_sdr(grey(100), "sepia")


def test_yuv420p_packing_sizes():
    raw = rgb8_to_yuv420p(np.zeros((2, 4, 6, 3), np.uint8))
    assert len(raw) == 2 * (4 * 6 + 2 * 2 * 3)


@requires_ffmpeg
@pytest.mark.parametrize("codec", ["x265", "x264"])
def test_codec_damage_round_trip(codec):
    rng = np.random.default_rng(0)
    base = rng.integers(30, 220, (1, 4, 4, 3)).repeat(16, axis=1).repeat(16, axis=2)  # 16 px blocks
    clip = np.repeat(base, 7, axis=0).astype(np.uint8)
    low = codec_damage(clip, codec=codec, qp=12)
    high = codec_damage(clip, codec=codec, qp=45)
    assert low.shape == (7, 3, 64, 64) and low.dtype == np.float32
    ref = clip.transpose(0, 3, 1, 2) / 255.0
    # Block interiors: at block edges 4:2:0 chroma upsampling blends neighbours even losslessly.
    inner = np.zeros((64, 64), bool)
    for k in range(4):
        inner[k * 16 + 3:k * 16 + 13, :] = True
    inner &= inner.T
    err_low = np.abs(low - ref)[..., inner].mean()
    err_high = np.abs(high - ref)[..., inner].mean()
    assert err_low < 2 / 255  # near-lossless at QP 12: within ~2 codes
    assert err_high > 2 * err_low  # a high QP does real damage
