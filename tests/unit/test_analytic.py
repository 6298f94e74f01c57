import os

import numpy as np
import pytest
import torch

os.environ.setdefault("COLOUR_SCIENCE__FILTER_USAGE_WARNINGS", "True")
import colour  # noqa: E402

from didtv.color.transfer import pq_eotf  # noqa: E402
from didtv.models.registry import load_model  # noqa: E402


def _frames(rgb: np.ndarray) -> torch.Tensor:
    """(n, 3) colours -> (1, 1, 3, 1, n) window."""
    return torch.tensor(rgb.T[None, None, :, None, :], dtype=torch.float32)


def _bt2408_reference(rgb709: np.ndarray) -> np.ndarray:
    lin = colour.models.eotf_BT1886(rgb709, L_B=0, L_W=1) * 203.0
    lin2020 = colour.RGB_to_RGB(lin, colour.RGB_COLOURSPACES["ITU-R BT.709"], colour.RGB_COLOURSPACES["ITU-R BT.2020"])
    return colour.models.eotf_inverse_ST2084(np.clip(lin2020, 0, None))


def test_bt2408_matches_colour_science():
    rng = np.random.default_rng(1)
    rgb = np.concatenate([rng.random((64, 3)), np.eye(3), [[1, 1, 1], [0, 0, 0]]])
    out = load_model("bt2408")(_frames(rgb))[0, :, 0].numpy().T
    # colour-science derives the matrix from primaries with a rounded white: agree to ~1e-4 PQ.
    np.testing.assert_allclose(out, _bt2408_reference(rgb), atol=2e-4)


def test_bt2408_white_is_reference_white():
    out = load_model("bt2408")(_frames(np.ones((1, 3))))
    assert pq_eotf(out.double()).numpy() == pytest.approx(203.0, rel=1e-4)


def test_bt2446a_endpoints_and_neutrals():
    m = load_model("bt2446a")
    grey = np.linspace(0, 1, 256)[:, None].repeat(3, 1)
    out = m(_frames(grey))[0, :, 0].double()
    nits = pq_eotf(out).numpy()
    assert nits[:, -1] == pytest.approx(1000.0, rel=2e-3)  # SDR white -> the method's 1000 cd/m2 peak
    assert nits[:, 0].max() < 1e-3
    np.testing.assert_allclose(nits[0], nits[1], rtol=1e-4, atol=1e-4)  # neutrals stay neutral
    np.testing.assert_allclose(nits[0], nits[2], rtol=1e-4, atol=1e-4)
    assert np.all(np.diff(nits[1]) >= 0)  # monotonic


def test_bt2446a_reference_white_point():
    # Method A maps HDR reference white (203 cd/m2) to about 68.6 % SDR luma; the inverse must
    # bring that grey back near 203 cd/m2 (Y'' = 175 gives 175 ** E(175) = 514 = 1000 * (203/1000) ** (1/2.4)).
    out = load_model("bt2446a")(_frames(np.full((1, 3), 175 / 255)))
    assert pq_eotf(out.double()).numpy().mean() == pytest.approx(203.0, rel=0.01)


def test_bt2446a_saturated_colours_stay_in_range():
    rgb = np.concatenate([np.eye(3), 1 - np.eye(3)])
    out = load_model("bt2446a")(_frames(rgb))
    assert torch.all(out >= 0) and torch.all(out <= pq_eotf_max())


def pq_eotf_max() -> float:
    from didtv.color.transfer import pq_inverse_eotf

    return float(pq_inverse_eotf(np.array(1000.0))) + 1e-6


@pytest.mark.parametrize("name", ["bt2408", "bt2446a"])
def test_analytic_models_take_centre_of_window(name):
    m = load_model(name)
    x = torch.rand(2, 1, 3, 4, 6)
    assert m(x).shape == (2, 3, 4, 6)
    assert m.spec.window == 1 and not m.spec.learned
    with pytest.raises(ValueError, match="expected"):
        m(torch.rand(2, 3, 4, 6))
