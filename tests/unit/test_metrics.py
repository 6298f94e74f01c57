import numpy as np
import pytest

import colour

from didtv.color.transfer import pq_eotf
from didtv.metrics import delta_e_itp, psnr


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


def test_psnr_by_hand():
    a = np.zeros((3, 4, 4))
    b = np.full((3, 4, 4), 0.1)
    assert psnr(a, b) == pytest.approx(20.0)
    assert psnr(a, a) > 150
