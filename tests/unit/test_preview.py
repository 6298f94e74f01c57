"""The preview's pure parts: viewing tone map (and the BT.2390 EETF it uses), bands, PNG writing,
frame choice. Its metrics are didtv.metrics' (tests/unit/test_metrics.py)."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest

from didtv.color.tonemap import eetf_bt2390
from didtv.color.transfer import pq_eotf, pq_inverse_eotf
from didtv.pipeline.window import window_indices
from didtv.preview import (ERROR_BANDS, NITS_BANDS, PreviewError, band_index, default_frames,
                           false_colour, hdr_nits, histogram_picture, parse_frames, sdr_nits, to_uint8,
                           view_sdr, window_of, write_png, with_legend)


def _read_png(path):
    """Minimal reader for the files write_png makes (8-bit RGB, filter 0)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(tag + body)
        if tag == b"IHDR":
            size = struct.unpack(">II", body[:8])
            assert body[8:10] == b"\x08\x02"
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    w, h = size
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(h, w, 3)


def _bt2408(sdr):
    """The BT.2408 mapping in numpy (as didtv.models.analytic.BT2408 does it)."""
    from didtv.color.gamut import BT709_TO_BT2020

    light = np.clip(sdr, 0, 1) ** 2.4 * 203.0
    return pq_inverse_eotf(np.einsum("ij,jhw->ihw", BT709_TO_BT2020, light).clip(0, None))


# --- the BT.2390 EETF -------------------------------------------------------------------------

def test_eetf_identity_below_knee_and_peak_to_peak():
    src, dst = 1000.0, 203.0
    pq = lambda nits: pq_inverse_eotf(np.float64(nits))  # noqa: E731
    knee_pq = (1.5 * pq(dst) / pq(src) - 0.5) * pq(src)
    assert pq_eotf(np.float64(knee_pq)) == pytest.approx(88.0, abs=0.5)  # documented knee
    below = pq_inverse_eotf(np.array([0.0, 1.0, 50.0, 87.0]))
    np.testing.assert_allclose(eetf_bt2390(below, src, dst), below, atol=1e-12)
    assert pq_eotf(eetf_bt2390(pq_inverse_eotf(np.float64(src)), src, dst)) == pytest.approx(dst, rel=1e-9)
    # above the source peak: clipped to it first
    assert pq_eotf(eetf_bt2390(np.float64(0.95), src, dst)) == pytest.approx(dst, rel=1e-9)


def test_eetf_is_monotonic_and_continuous():
    e = np.linspace(0.0, pq_inverse_eotf(np.float64(4000.0)), 20001)
    for src in (400.0, 1000.0, 4000.0):
        out = eetf_bt2390(e, src, 203.0)
        assert (np.diff(out) >= -1e-12).all()
        assert np.abs(np.diff(out)).max() < 1e-3  # no jump at the knee
        assert pq_eotf(out.max()) <= 203.0 + 1e-6


def test_eetf_target_brighter_than_source_is_identity_then_clip():
    e = pq_inverse_eotf(np.array([10.0, 150.0, 300.0]))
    out = pq_eotf(eetf_bt2390(e, 150.0, 203.0))
    np.testing.assert_allclose(out, [10.0, 150.0, 150.0], rtol=1e-9)


# --- the viewing map --------------------------------------------------------------------------

def test_view_of_bt2408_output_reproduces_the_sdr_input_below_the_knee():
    rng = np.random.default_rng(1)
    sdr = rng.uniform(0.0, 0.69, (3, 16, 16))  # <= 0.69^2.4 * 203 = 83 cd/m2: below the knee
    view = view_sdr(_bt2408(sdr), source_peak=1000.0)
    np.testing.assert_array_equal(view, to_uint8(sdr))


def test_view_rolls_off_highlights_and_keeps_white_near_white():
    grey = lambda nits: np.full((3, 1, 1), pq_inverse_eotf(np.float64(nits)))  # noqa: E731
    values = [int(view_sdr(grey(n), source_peak=1000.0)[0, 0, 0]) for n in (50, 203, 400, 1000, 4000)]
    assert values == sorted(values) and values[-2] == values[-1] == 255  # peak and above: SDR 100%
    assert 225 <= values[1] < 255  # reference white: just under SDR white, highlights above it
    assert values[2] < 255  # 400 cd/m2 is still distinguishable from the peak


def test_view_is_not_pq_shown_as_srgb():
    """100 cd/m2 grey is PQ 0.51: shown directly it would be code 130 (dim); the view shows it
    at (100/203)^(1/2.4) = 75%, like SDR 75% grey."""
    grey = np.full((3, 2, 2), pq_inverse_eotf(np.float64(100.0)))
    assert abs(int(view_sdr(grey)[0, 0, 0]) - round(255 * (100 / 203) ** (1 / 2.4))) <= 1


def test_view_clips_colours_outside_bt709_without_hue_flip():
    pure_2020_green = np.zeros((3, 1, 1))
    pure_2020_green[1] = pq_inverse_eotf(np.float64(50.0))
    r, g, b = view_sdr(pure_2020_green)[0, 0]
    assert g > r and g > b and r == 0 and b == 0


def test_view_keeps_hue_when_rolling_off():
    colour = pq_inverse_eotf(np.array([800.0, 400.0, 100.0]).reshape(3, 1, 1))
    from didtv.color.gamut import BT709_TO_BT2020

    lin2020 = np.einsum("ij,jhw->ihw", BT709_TO_BT2020, pq_eotf(colour))
    r, g, b = view_sdr(pq_inverse_eotf(lin2020)).astype(float)[0, 0] / 255
    lin = np.array([r, g, b]) ** 2.4
    np.testing.assert_allclose(lin / lin[0], [1.0, 0.5, 0.125], rtol=0.03)  # ratios kept


# --- luminance, bands, false colour -----------------------------------------------------------

def test_nits_helpers():
    assert sdr_nits(np.ones((3, 1, 1)))[0, 0] == pytest.approx(100.0)
    assert hdr_nits(np.full((3, 1, 1), pq_inverse_eotf(np.float64(203.0))))[0, 0] == pytest.approx(203.0)


@pytest.mark.parametrize(
    "value, label",
    [(0.0, "< 1"), (1.0, "< 1"), (1.5, "1-10"), (99.99, "10-100"), (203.0, "100-203"),
     (203.004, "100-203"), (203.2, "203-400"), (1000.0, "400-1000"), (3999.0, "1000-4000"),
     (4000.5, ">= 4000"), (10000.0, ">= 4000")],
)
def test_band_index_upper_edge_included(value, label):
    assert NITS_BANDS[int(band_index(np.array([value]))[0])][2] == label


def test_false_colour_shares_sum_to_one():
    values = np.array([[0.5, 5.0], [150.0, 2000.0]])
    picture, shares = false_colour(values)
    assert picture.shape == (2, 2, 3) and picture.dtype == np.uint8
    assert math.isclose(sum(shares), 1.0)
    assert tuple(picture[1, 1]) == NITS_BANDS[6][3]
    _, err_shares = false_colour(np.array([0.5, 3.0, 70.0]), ERROR_BANDS)
    assert err_shares[0] == err_shares[2] == err_shares[6] == pytest.approx(1 / 3)


# --- frame choice -----------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 5, 9, 30])
@pytest.mark.parametrize("size", [1, 3, 7])
def test_window_of_matches_the_pipeline(n, size):
    expected = window_indices(n, size)
    assert [window_of(i, n, size) for i in range(n)] == expected


def test_default_frames():
    assert default_frames(48) == [8, 24, 40]
    assert default_frames(1) == [0]
    assert default_frames(2) == [0, 1]
    assert default_frames(0) == []


def test_parse_frames():
    assert parse_frames("40, 8,8,24") == [8, 24, 40]
    for bad in ("a", "1;2", ",", "1.5"):
        with pytest.raises(PreviewError):
            parse_frames(bad)


# --- pictures ---------------------------------------------------------------------------------

def test_write_png_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    path = write_png(tmp_path / "x.png", rgb)
    np.testing.assert_array_equal(_read_png(path), rgb)
    with pytest.raises(ValueError):
        write_png(tmp_path / "y.png", np.zeros((4, 4), np.uint8))


def test_png_is_readable_by_a_standard_decoder(tmp_path):
    image = pytest.importorskip("matplotlib.image")
    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    back = image.imread(write_png(tmp_path / "x.png", rgb))
    np.testing.assert_array_equal(np.rint(back[..., :3] * 255).astype(np.uint8), rgb)


def test_legend_and_histogram_pictures():
    pytest.importorskip("matplotlib")
    picture = np.zeros((48, 64, 3), np.uint8)
    out = with_legend(picture, "title", NITS_BANDS, [1 / 8] * 8)
    assert out.shape[1] == 640 and out.shape[0] > 48 + 40 and out.dtype == np.uint8
    assert out[48:].std() > 10  # something was drawn
    hist = histogram_picture([("a", np.full((4, 4), 50.0), "tab:blue"), ("b", np.full((4, 4), 0.0), "tab:red")],
                             title="t", markers=[(203.0, "white")])
    assert hist.shape == (450, 800, 3)
