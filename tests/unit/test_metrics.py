import numpy as np
import pytest

import colour

from didtv.color.transfer import pq_eotf
from didtv.metrics import delta_e_itp, delta_e_itp_map, psnr


def test_delta_e_itp_grey_step_by_hand():
    # PQ 0.5 vs 0.501 grey: I changes by 0.001, Ct = Cp = 0 -> 720 * 0.001 (RESEARCH.md).
    assert delta_e_itp(np.full((3, 2, 2), 0.5), np.full((3, 2, 2), 0.501)) == pytest.approx(0.72, abs=1e-6)


def test_delta_e_itp_matches_colour_science():
    rng = np.random.default_rng(0)
    a = rng.random((3, 8, 8))
    b = np.clip(a + rng.normal(0, 0.02, a.shape), 0, 1)
    ictcp = lambda x: colour.RGB_to_ICtCp(pq_eotf(x).transpose(1, 2, 0), method="ITU-R BT.2100-2 PQ")  # noqa: E731
    ref = colour.difference.delta_E_ITP(ictcp(a), ictcp(b)).mean()
    assert delta_e_itp(a, b) == pytest.approx(ref, rel=1e-9)


def test_delta_e_itp_map_is_per_pixel():
    # The preview's error map: one value per pixel, 0.720 for the grey step, 0 where equal.
    a, b = np.full((3, 2, 3), 0.501), np.full((3, 2, 3), 0.5)
    b[:, 1, 2] = 0.501
    de = delta_e_itp_map(a, b)
    assert de.shape == (2, 3)
    np.testing.assert_allclose(np.delete(de.ravel(), 5), 0.720, atol=1e-6)
    assert de[1, 2] == 0.0
    assert delta_e_itp(a, b) == pytest.approx(de.mean(), rel=1e-12)


def test_psnr_by_hand():
    a = np.zeros((3, 4, 4))
    b = np.full((3, 4, 4), 0.1)
    assert psnr(a, b) == pytest.approx(20.0)
    assert psnr(a, a) > 150


# -- SSIM family (piq): hand-computed cases -----------------------------------------------------

C1 = 0.01**2  # (K1 * data range)^2


def _luminance_term(a: float, b: float) -> float:
    return (2 * a * b + C1) / (a * a + b * b + C1)


def test_ssim_of_flat_frames_is_the_luminance_term():
    # Flat frames have no contrast or structure: SSIM reduces to (2ab + C1) / (a^2 + b^2 + C1).
    from didtv.metrics.structural import score

    a, b = 0.3, 0.5
    assert score("ssim", np.full((3, 32, 32), a), np.full((3, 32, 32), b)) == pytest.approx(_luminance_term(a, b), rel=1e-4)


def test_ms_ssim_of_flat_frames_weights_the_coarsest_luminance():
    # Wang et al. 2003: only the 5th scale has a luminance term, with exponent 0.1333.
    from didtv.metrics.structural import score

    a, b = 0.3, 0.5
    got = score("ms_ssim", np.full((3, 176, 176), a), np.full((3, 176, 176), b))
    assert got == pytest.approx(_luminance_term(a, b) ** 0.1333, rel=1e-4)


def test_structural_metrics_are_one_for_identical_frames_and_fall_with_noise():
    from didtv.metrics import structural_scores

    rng = np.random.default_rng(1)
    x = np.clip(rng.random((3, 192, 192)) * 0.2 + np.linspace(0.2, 0.7, 192)[None, None, :], 0, 1)
    same = structural_scores(x, x)
    assert all(v == pytest.approx(1.0, abs=1e-4) for v in same.values()), same
    light = structural_scores(np.clip(x + rng.normal(0, 0.01, x.shape), 0, 1), x)
    heavy = structural_scores(np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1), x)
    for name in same:
        assert 0 < heavy[name] < light[name] < 1, (name, light[name], heavy[name])


def test_structural_metrics_are_nan_below_their_window():
    from didtv.metrics import structural_scores

    x = np.full((3, 48, 48), 0.5)
    scores = structural_scores(x, x)
    assert np.isnan(scores["ms_ssim"])  # needs 161 pixels
    assert scores["ssim"] == pytest.approx(1.0) and scores["vif_p"] == pytest.approx(1.0, abs=1e-4)


# -- high-frequency PSNR and temporal measures: hand-computed cases -----------------------------

def test_hf_psnr_by_hand():
    from didtv.metrics import hf_psnr

    # A checkerboard [[d, 0], [0, d]] has only the diagonal Haar detail, HH = d: MSE over the three
    # detail bands is d^2 / 3; over pixels it is d^2 / 2.
    d = 0.1
    board = np.tile(np.array([[d, 0.0], [0.0, d]]), (3, 4, 4))
    zero = np.zeros_like(board)
    assert hf_psnr(board, zero) == pytest.approx(10 * np.log10(3 / d**2))
    assert psnr(board, zero) == pytest.approx(10 * np.log10(2 / d**2))
    # A constant offset is not detail.
    assert hf_psnr(board + 0.2, board) > 150


def test_msrl_psnr_by_hand():
    from didtv.metrics import msrl_psnr

    rng = np.random.default_rng(2)
    f = rng.random((3, 16, 16))
    # The output stands still while the target brightens by delta: the change error is delta at
    # every scale -> PSNR = -20 log10(delta).
    assert msrl_psnr([f, f], [f, f + 0.05]) == pytest.approx(-20 * np.log10(0.05))
    # A steady offset (a different but stable grade) is no temporal error.
    assert msrl_psnr([f + 0.1, f + 0.2], [f, f + 0.1]) > 150
    with pytest.raises(ValueError):
        msrl_psnr([f], [f, f])


def test_jitter_by_hand():
    from didtv.metrics import jitter

    assert jitter([0.0, 1 / 1023, 3 / 1023]) == pytest.approx(1.5)
    assert jitter([0.5]) == 0.0


def test_jitter_error_by_hand():
    from didtv.metrics import jitter_error

    truth = [0.0, 2 / 1023, 2 / 1023]  # changes +2, 0 codes
    assert jitter_error(truth, truth) == 0.0
    # changes +1, +1 against +2, 0: off by 1 code each time, although the jitter is the same size
    assert jitter_error([0.0, 1 / 1023, 2 / 1023], truth) == pytest.approx(1.0)
    # a constant offset is no change error
    assert jitter_error([t + 0.3 for t in truth], truth) == pytest.approx(0.0, abs=1e-9)
    assert jitter_error([0.1], [0.2]) == 0.0
    with pytest.raises(ValueError):
        jitter_error([0.0, 0.1], [0.0])


def _drifting_clip(frames=12, size=48, seed=0):
    """SDR frames of 8-bit codes: smooth gradients (as real pictures, each colour cell gets
    samples from many frames) whose brightness drifts and wobbles over time."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.05, 0.9, size)
    base = np.stack([np.broadcast_to(ramp, (size, size)), np.broadcast_to(ramp[:, None], (size, size)),
                     np.full((size, size), 0.4)])
    clip = []
    for t in range(frames):
        level = 0.01 * t + 0.01 * np.sin(1.7 * t)
        clip.append(np.round(np.clip(base * (0.8 + level) + 0.004 * rng.standard_normal(base.shape), 0, 1) * 255) / 255)
    return clip


def _global(sdr, gamma):
    """A global curve with a luminance term (not per-channel separable)."""
    y = 0.2627 * sdr[0] + 0.678 * sdr[1] + 0.0593 * sdr[2]
    return np.clip(sdr ** gamma * (0.6 + 0.4 * y), 0, 1)


def _own_ratio(sdr, out):
    from didtv.metrics import StaticCurve, jitter

    fit = StaticCurve()
    for s, o in zip(sdr, out):
        fit.add(s, o)
    return jitter([float(o.mean()) for o in out]) / jitter(fit.frame_means())


def test_static_curve_reproduces_a_global_mapping():
    from didtv.metrics import jitter

    sdr = _drifting_clip()
    gentle = [_global(f, 1.0) for f in sdr]
    steep = [_global(f, 2.4) * 1.6 for f in sdr]
    # the steeper curve jitters more, and neither adds flicker of its own
    assert jitter([o.mean() for o in steep]) > 1.2 * jitter([o.mean() for o in gentle])
    assert _own_ratio(sdr, gentle) == pytest.approx(1.0, abs=0.02)
    assert _own_ratio(sdr, steep) == pytest.approx(1.0, abs=0.02)


def test_static_curve_sees_flicker_of_its_own():
    sdr = _drifting_clip()
    flicker = [_global(f, 1.0) * (1 + 0.03 * (-1) ** t) for t, f in enumerate(sdr)]
    assert _own_ratio(sdr, flicker) > 1.5
    # and an output steadier than any static curve of its input comes out below 1
    steady = [_global(sdr[0], 1.0) * (1 + 0.001 * t) for t in range(len(sdr))]
    assert _own_ratio(sdr, steady) < 0.5


def test_static_curve_refuses_mismatched_sizes():
    from didtv.metrics import StaticCurve

    with pytest.raises(ValueError):
        StaticCurve().add(np.zeros((3, 8, 8)), np.zeros((3, 8, 6)))
