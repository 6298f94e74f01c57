"""Dual modulated convolution, Eq. 9-13 (didtv/models/modulated.py), and Table XI."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from didtv.models.modulated import (
    DualModulatedConv2d,
    ModulationCost,
    feature_modulated_conv2d,
    format_modulation_table,
    kernel_modulated_conv2d,
    modulation_cost_table,
)


def _case(b, c_in, c_out, k, seed=0):
    gen = torch.Generator().manual_seed(seed)
    d = torch.float64

    def r(*s):
        return torch.randn(*s, generator=gen, dtype=d)

    return r(b, c_in, 6, 7), r(c_out, c_in, k, k), r(c_out), 1 + 0.3 * r(b, c_out), r(b, c_out), 1 + 0.3 * r(b, c_in)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("use_gamma", [True, False])
@pytest.mark.parametrize("use_bias", [True, False])
def test_kernel_modulation_equals_feature_modulation(k, use_gamma, use_bias):
    x, w, bias, alpha, beta, gamma = _case(3, 4, 5, k)
    bias = bias if use_bias else None
    gamma = gamma if use_gamma else None
    kernel = kernel_modulated_conv2d(x, w, bias, alpha, beta, gamma, padding=k // 2)
    feature = feature_modulated_conv2d(x, w, bias, alpha, beta, gamma, padding=k // 2)
    assert kernel.shape == (3, 5, 6, 7)
    torch.testing.assert_close(kernel, feature, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [1, 3])
def test_kernel_modulation_is_a_per_sample_conv_with_the_modulated_kernel(k):
    """Eq. 13 spelled out sample by sample: W' = diag(alpha) W diag(gamma), b' = alpha*b + beta."""
    x, w, bias, alpha, beta, gamma = _case(2, 3, 4, k, seed=1)
    got = kernel_modulated_conv2d(x, w, bias, alpha, beta, gamma, padding=k // 2)
    for n in range(2):
        w_n = alpha[n].view(-1, 1, 1, 1) * w * gamma[n].view(1, -1, 1, 1)
        want = F.conv2d(x[n : n + 1], w_n, alpha[n] * bias + beta[n], padding=k // 2)
        torch.testing.assert_close(got[n : n + 1], want, rtol=0, atol=1e-12)


def test_samples_do_not_leak_into_each_other():
    x, w, bias, alpha, beta, gamma = _case(3, 2, 2, 3, seed=2)
    full = kernel_modulated_conv2d(x, w, bias, alpha, beta, gamma, padding=1)
    alone = kernel_modulated_conv2d(x[1:2], w, bias, alpha[1:2], beta[1:2], gamma[1:2], padding=1)
    torch.testing.assert_close(full[1:2], alone, rtol=0, atol=1e-12)


def test_layer_modes_agree_and_have_gradients():
    torch.manual_seed(0)
    kernel_layer = DualModulatedConv2d(4, 6, 3, mode="kernel")
    feature_layer = DualModulatedConv2d(4, 6, 3, mode="feature")
    feature_layer.load_state_dict(kernel_layer.state_dict())
    x = torch.randn(2, 4, 5, 5)
    alpha, beta, gamma = torch.rand(2, 6) + 0.5, torch.randn(2, 6), torch.rand(2, 4) + 0.5
    a = kernel_layer(x, alpha, beta, gamma)
    torch.testing.assert_close(a, feature_layer(x, alpha, beta, gamma), rtol=1e-5, atol=1e-5)
    a.sum().backward()
    assert kernel_layer.weight.grad.abs().sum() > 0 and kernel_layer.bias.grad.abs().sum() > 0


def test_wrong_vector_shapes_raise():
    x, w, bias, alpha, beta, gamma = _case(2, 3, 4, 1)
    with pytest.raises(ValueError, match="gamma"):
        kernel_modulated_conv2d(x, w, bias, alpha, beta, alpha)
    with pytest.raises(ValueError, match="alpha"):
        feature_modulated_conv2d(x, w, bias, alpha[:1], beta, gamma)
    with pytest.raises(ValueError, match="mode"):
        DualModulatedConv2d(3, 4, mode="pixel")


def test_table_xi_arithmetic_matches_the_paper():
    rows = modulation_cost_table(64)
    assert [(r.width, r.height) for r in rows] == [(720, 480), (1920, 1080), (3840, 2160)]
    assert [r.gfm for r in rows] == [44_236_800, 265_420_800, 1_061_683_200]  # paper: 44.22M*, 265.42M, 1061.68M
    assert all(r.ckm == 4224 for r in rows)  # paper: 4.22K
    assert rows[0].ratio * 100 == pytest.approx(0.0095, abs=1e-4)  # paper: 0.009%
    assert rows[2].ratio * 100 == pytest.approx(0.0004, abs=1e-4)  # paper: 0.0004%
    assert ModulationCost(1, 1, 64).dmc == 2 * 64 * 64 + 128
    text = format_modulation_table(rows)
    assert "265.42M" in text and "1061.68M" in text and "4.22K" in text


def test_layer_flops_reflect_the_modulation_mode():
    k = DualModulatedConv2d(64, 64, 1, mode="kernel")
    f = DualModulatedConv2d(64, 64, 1, mode="feature")
    conv = 2 * 64 * 64 * 1080 * 1920
    assert k.flops(1080, 1920) == conv + 2 * 64 * 64 + 2 * 64
    assert f.flops(1080, 1920) == conv + 3 * 64 * 1080 * 1920


@pytest.mark.parametrize("b", [1, 3])
def test_channels_last_features_stay_channels_last_with_the_same_numbers(b):
    """A channels-last x (CPU inference) takes one conv per sample instead of the grouped form
    (whose reshape copies it, and for b == 1 made oneDNN run its NCHW kernel): same numbers, and
    the result stays channels-last."""
    x, w, bias, alpha, beta, gamma = _case(b, 4, 5, 1, seed=3)
    want = kernel_modulated_conv2d(x, w, bias, alpha, beta, gamma)
    got = kernel_modulated_conv2d(x.contiguous(memory_format=torch.channels_last), w, bias, alpha, beta, gamma)
    assert got.is_contiguous(memory_format=torch.channels_last) and not got.is_contiguous()
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
