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


# -- continuous operator families (didtv/data/families.py) ----------------------------------------

from didtv.data.degrade import op_bt2446c  # noqa: E402
from didtv.data.families import FAMILIES, apply_bt2446, apply_gamut, apply_local, draw_params, tone_map  # noqa: E402


def _flat(nits, size=8):
    return np.full((size, size, 3), float(nits))


def _numbers(params):
    return [v for v in params.values() if isinstance(v, float)]


@pytest.mark.parametrize("family", FAMILIES)
def test_family_is_deterministic_per_seed_and_varies_across_seeds(family):
    scene = np.random.default_rng(0).uniform(0, 1, (2, 24, 24, 3)) ** 3 * 2000
    a, pa = tone_map(scene, family, np.random.default_rng(11))
    b, pb = tone_map(scene, family, np.random.default_rng(11))
    assert pa == pb and np.array_equal(a, b)
    draws = [draw_params(family, np.random.default_rng(s)) for s in range(10)]
    assert len({d["gain"] for d in draws}) == 10  # the exposure, drawn or solved, differs per seed
    assert all(len(set(map(round, np.array(_numbers(d)) * 1e6))) >= 2 for d in draws)
    outs = [FAMILIES[family].apply(scene, d) for d in draws[:3]]
    assert not np.allclose(outs[0], outs[1]) and not np.allclose(outs[1], outs[2])


@pytest.mark.parametrize("family", FAMILIES)
def test_family_is_monotone_on_grey_and_puts_reference_white_in_the_sdr_range(family):
    levels = np.geomspace(0.05, 4000, 40)
    whites = []
    for s in range(25):
        p = draw_params(family, np.random.default_rng(s))
        # flat fields: the local family's spatial part sees no detail there, so this is its curve
        out = np.stack([np.clip(FAMILIES[family].apply(_flat(v), p), 0, 1)[0, 0] for v in levels])
        assert np.all(np.diff(out, axis=0) >= -1e-9), (family, p)
        assert out[0].max() < 0.05 and out[-1].min() > 0.5, (family, p)  # black stays dark, highlights bright
        whites.append(np.clip(FAMILIES[family].apply(_flat(REFERENCE_WHITE), p), 0, 1).mean())
    # Diffuse white (203 cd/m2) lands where SDR puts it: 20-100 % of SDR white, typically 30-90 %.
    assert 0.2 <= min(whites) and max(whites) <= 1.0, whites
    assert 0.3 <= float(np.median(whites)) <= 0.9, whites


def test_bt2446_family_contains_the_standard_curves():
    scene = np.random.default_rng(1).uniform(0, 1, (16, 16, 3)) ** 2 * 1000
    np.testing.assert_allclose(apply_bt2446(scene, {"method": "a", "peak": 1000.0, "gain": 1.0}),
                               op_bt2446a(scene), atol=1e-12)
    spec = {"method": "c", "k": [0.83802, 15.09968, 0.74204, 78.99439], "y_ip_sdr": 58.5, "crosstalk": 0.0,
            "gain": 1.0}
    np.testing.assert_allclose(apply_bt2446(scene, spec), op_bt2446c(scene), atol=1e-12)


def test_local_family_is_spatially_varying():
    p = draw_params("local", np.random.default_rng(3))
    p.update(sigma=0.1, compression=0.5, detail=1.0)
    dark, bright = _flat(5.0, 64), _flat(2000.0, 64)
    dark[28:36, 28:36] = bright[28:36, 28:36] = REFERENCE_WHITE  # the same grey patch in two surrounds
    in_dark, in_bright = apply_local(dark, p)[32, 32, 0], apply_local(bright, p)[32, 32, 0]
    assert in_dark > 1.5 * in_bright  # a dark surround lifts it, a bright one holds it down


def test_gamut_family_clips_or_compresses_out_of_gamut_colour():
    red = np.array([[[600.0, 60.0, 12.0]]])  # luminance below reference white, red far above SDR white
    p = draw_params("gamut", np.random.default_rng(0))
    p.update(saturation=1.3, threshold=0.8)
    clipped = apply_gamut(red, {**p, "handling": "clip"})[0, 0]
    soft = apply_gamut(red, {**p, "handling": "compress"})[0, 0]
    luma = np.array([0.2126, 0.7152, 0.0722])
    assert clipped[0] == 1.0 and clipped[1] < soft[1]  # the clip keeps the hue saturated, and darker
    assert soft[0] >= soft[1] >= soft[2] and soft.max() <= 1.0  # compression: hue order kept, inside
    # Soft compression moves chroma towards the luminance and keeps the luminance; the clip loses it.
    assert soft @ luma == pytest.approx(apply_gamut(red, {**p, "handling": "compress", "threshold": 0.999}) @ luma,
                                        abs=1e-6)
    assert clipped @ luma < soft @ luma - 0.05


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="allowed"):
        draw_params("sepia", np.random.default_rng(0))
